"""Building blocks for the patterns of cosmological laws: shifted arguments, power laws in a
shifted variable, broken power laws and a leading term plus a small correction.

Each test generates data from a law and checks that the candidate found is that law
(SRBench equivalence: the difference or the ratio is a constant), after the refit that
every candidate gets in ``discover``.
"""

import numpy as np
import sympy as sp

from discovery import equivalent
from discovery.exhaustive import affine_pair_search, affine_search
from discovery.families import broken_power_laws, shifted_power_laws
from discovery.fit import refit
from discovery.operators import DEFAULT_OPERATORS
from discovery.programs import to_sympy

RNG = np.random.default_rng(2)
U = RNG.uniform(0.05, 8.0, (400, 1))
x = sp.Symbol("x", positive=True)


def _any_equivalent(laws, truth, X, symbols) -> bool:
    """Whether one of ``laws``, refitted, is ``truth`` (ratio or difference constant)."""
    y = sp.lambdify(symbols, truth, "numpy")(*X.T)
    for found in refit(laws, symbols, X, y):
        if found is not None and equivalent(found[0], truth, symbols, X):
            return True
    return False


def test_the_number_one_is_a_leaf_of_the_affine_trees():
    t = 3.0 - 2.0 * np.log(1.0 + U[:, 0])
    (((node, _, a, b, mse), *_),) = affine_search(U, [t], DEFAULT_OPERATORS, 4)
    assert mse < 1e-20
    law = a + b * to_sympy(node, [x], [])
    assert equivalent(law, 3 - 2 * sp.log(1 + x), [x], U)


def test_a_leading_term_and_a_correction_are_found_together():
    """log y of Om**(0.6 + 0.05 w) is log(Om) plus a small correction w log(Om)."""
    om, w = sp.symbols("Om w", real=True)
    X = np.column_stack([RNG.uniform(0.1, 1.0, 400), RNG.uniform(-1.5, -0.5, 400)])
    t = (0.6 + 0.05 * X[:, 1]) * np.log(X[:, 0])
    (((h1, h2, coef, mse), *_),) = affine_pair_search(X, [t], DEFAULT_OPERATORS, 4)
    assert mse < 1e-20
    law = coef[0] + coef[1] * to_sympy(h1, [om, w], []) + coef[2] * to_sympy(h2, [om, w], [])
    assert equivalent(law, (0.6 + 0.05 * w) * sp.log(om), [om, w], X)


def test_a_power_of_a_shifted_argument_is_found():
    """2 (1 - 1/sqrt(1 + z)) and exp(-|log x - 0.6|**3.8)."""
    truth = 2 * (1 - 1 / sp.sqrt(1 + x))
    y = sp.lambdify(x, truth, "numpy")(U[:, 0])
    assert _any_equivalent(shifted_power_laws(U[:, 0], y, x), truth, U, [x])
    truth = sp.exp(-(sp.Abs(sp.log(x) - sp.Rational(3, 5)) ** sp.Rational(19, 5)))
    y = sp.lambdify(x, truth, "numpy")(U[:, 0])
    assert _any_equivalent(shifted_power_laws(U[:, 0], y, x), truth, U, [x])


def test_a_broken_power_law_in_a_shifted_variable_is_found():
    truth = (1 + x) ** sp.Rational(27, 10) / (1 + ((1 + x) / sp.Rational(29, 10)) ** 5.6)
    y = sp.lambdify(x, truth, "numpy")(U[:, 0])
    assert _any_equivalent(broken_power_laws(U[:, 0], y, x), truth, U, [x])
