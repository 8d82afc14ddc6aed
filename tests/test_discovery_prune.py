"""``discovery.postprocess.prune`` on a law whose fitted constants came out equal: the law
then has fewer distinct floats than its fit has parameters (sympy keeps one atom for equal
numbers), and pruning must refit rather than pair the wrong uncertainties with the values."""

from __future__ import annotations

import numpy as np
import sympy as sp

from discovery import fit, postprocess
from discovery.expressions import make_symbols


def test_prune_refits_a_law_whose_equal_constants_merged():
    rng = np.random.default_rng(0)
    rho = np.linspace(0.3, 3.0, 50)
    X, sigma = rho[:, None], 0.01
    y = 0.655 / rho**0.29 + 0.655 * rho + sigma * rng.normal(size=rho.size)
    (r,) = make_symbols(["rho"], X)
    _, three = fit.Law.of(0.6 / r ** sp.Float(0.29) + 0.7 * r, [r]).refit(X, y)
    merged = sp.Float(0.655, 15) / r ** sp.Float(0.29, 15) + sp.Float(0.655, 15) * r
    assert len(merged.atoms(sp.Float)) == 2 < len(three.params) == 3
    law, refit, fixed = postprocess.prune(merged, three, [r], X, y, sigma, known=sigma)
    assert len(refit.params) == len(law.atoms(sp.Float))
    # every constant is determined to far better than 30%: nothing to prune
    assert fixed == [] and law == merged
