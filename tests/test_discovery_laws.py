"""Known laws recovered by the search pipeline, from noiseless and 1%-noise data.

Every search uses 128 rows, so that the compiled fitting kernels are shared by the tests.
"""

import numpy as np
import pytest
import sympy as sp

from discovery import discover, equivalent
from discovery.expressions import make_symbols
from discovery.units import consistent, parse_unit_map

N_ROWS = 128
OPS = "add,sub,mul,div,exp,sqrt,square"


def _noisy(y, noise, seed):
    return y * (1 + noise * np.random.default_rng(seed).normal(size=y.shape))


@pytest.mark.parametrize("noise", [0.0, 0.01])
def test_power_law_exponent_survives_snapping(noise):
    x = np.random.default_rng(0).uniform(1, 5, (N_ROWS, 1))
    y = _noisy(x[:, 0] ** 0.55, noise, 1)
    # 15 s of work: the post-processing (refits, snapping) must reach the power law
    front = discover(x, y, variables=["x"], operators=OPS, budget_s=15, seed=0, clock="work")
    best = front.best("mdl").expression
    (xs,) = front.variables
    powers = [p.exp for p in best.atoms(sp.Pow) if p.base == xs]
    assert len(powers) == 1
    if noise == 0:
        # exact data: the exponent is snapped to 11/20 exactly, not to a simpler 1/2
        assert powers[0] == sp.Rational(11, 20)
        assert equivalent(best, xs ** sp.Rational(11, 20), [xs], x)
    else:
        assert abs(float(powers[0]) - 0.55) < 0.02


@pytest.mark.slow
@pytest.mark.parametrize("noise", [0.0, 0.01])
def test_exhaustive_returns_exponential_decay_as_mdl_best(noise):
    a, b = 2.5, 1.7
    x = np.random.default_rng(2).uniform(0.1, 4, (N_ROWS, 1))
    clean = a * np.exp(-x[:, 0] / b)
    y = _noisy(clean, noise, 3)
    front = discover(
        x,
        y,
        variables=["t"],
        operators=OPS,
        backend="exhaustive",
        max_complexity=5,
        budget_s=6,
        clock="work",
    )
    best = front.best("mdl")
    (t,) = front.variables
    pred = best.numpy(front.variables)(x)
    if noise == 0:
        assert equivalent(best.expression, a * sp.exp(-t / sp.Float(b)), [t], x)
        np.testing.assert_allclose(pred, clean, rtol=1e-8)
    else:  # the same form, with constants within the noise
        A, B = sp.Wild("A"), sp.Wild("B")
        match = best.expression.match(A * sp.exp(B * t))
        assert match is not None and not match[A].free_symbols and not match[B].free_symbols
        assert abs(float(match[A]) - a) < 0.05 * a
        assert abs(float(match[B]) + 1 / b) < 0.05 / b


KEPLER_UNITS = {"a": "m", "M": "kg", "G": "m^3 kg^-1 s^-2", "T": "s"}


@pytest.mark.parametrize("noise", [0.0, pytest.param(0.01, marks=pytest.mark.slow)])
def test_kepler_third_law_with_units(noise):
    rng = np.random.default_rng(4)
    X = np.stack(
        [rng.uniform(0.5, 3, N_ROWS), rng.uniform(1, 4, N_ROWS), rng.uniform(1, 2, N_ROWS)], 1
    )
    y = _noisy(2 * np.pi * np.sqrt(X[:, 0] ** 3 / (X[:, 1] * X[:, 2])), noise, 5)
    front = discover(
        X,
        y,
        variables=["a", "M", "G"],
        units=KEPLER_UNITS,
        target="T",
        operators=OPS,
        budget_s=5,
        clock="work",
    )
    a, M, G = front.variables
    truth = 2 * sp.pi * sp.sqrt(a**3 / (G * M))
    best = front.best("mdl").expression
    assert equivalent(best, truth, front.variables, X)
    if noise == 0:
        assert sp.simplify(best - truth) == 0  # 2*pi snapped exactly
    dims = parse_unit_map(KEPLER_UNITS, ["a", "M", "G", "T"])
    symdims = {s: dims[str(s)] for s in front.variables}
    assert all(consistent(c.expression, symdims, dims["T"]) for c in front.candidates)


def test_dimensionally_wrong_candidates_are_rejected():
    dims = parse_unit_map(KEPLER_UNITS, ["a", "M", "G", "T"])
    a, M, G = make_symbols(["a", "M", "G"])
    symdims = {a: dims["a"], M: dims["M"], G: dims["G"]}
    assert consistent(2 * sp.pi * sp.sqrt(a**3 / (G * M)), symdims, dims["T"])
    assert not consistent(sp.sqrt(a**3 / M), symdims, dims["T"])  # wrong units
    assert not consistent(a + M, symdims, None)  # adds metres to kilograms
    assert not consistent(sp.exp(a), symdims, None)  # exp of a length
    assert dims["G"] == (3, -1, -2, 0, 0, 0, 0)
