"""Problem reduction before the search: power laws and monomial inputs split off exactly,
and redundant fitted constants merged, on analytic laws."""

from fractions import Fraction

import numpy as np
import sympy as sp

from discovery.postprocess import merge_constants, round_off
from discovery.reduce import power_law_reduction

N_ROWS = 300


def _rows(d, low=1.0, high=5.0, seed=0):
    return np.random.default_rng(seed).uniform(low, high, (N_ROWS, d))


def test_pure_power_law_is_split_with_exact_exponents():
    X = _rows(2)
    y = 3 * X[:, 0] ** 2 / np.sqrt(X[:, 1])
    red = power_law_reduction(X, y)
    assert red is not None and red.subset == () and red.monomial == ()
    assert red.exponents == {0: Fraction(2), 1: Fraction(-1, 2)}
    assert all(isinstance(a, Fraction) for a in red.exponents.values())
    # what is left for the search is the constant 3
    np.testing.assert_allclose(y / red.factor(X), 3.0, rtol=1e-12)


def test_function_of_a_ratio_becomes_one_input():
    X = np.stack([_rows(1, 1, 2, 1)[:, 0], _rows(1, 3, 10, 2)[:, 0], _rows(1, 1, 5, 3)[:, 0]], 1)
    v, c, m = X.T
    y = m / np.sqrt(1 - v**2 / c**2)
    red = power_law_reduction(X, y)
    assert red is not None and red.subset == ()
    assert dict(red.monomial) in ({0: 1, 1: -1}, {0: -1, 1: 1})  # u = v/c or c/v
    assert red.exponents == {2: 1}
    u = red.inputs(X)[:, 0]
    np.testing.assert_allclose(u ** dict(red.monomial)[0], v / c, rtol=1e-12)
    # the remaining factor is a function of u alone: exactly 1/sqrt(1 - (v/c)**2)
    np.testing.assert_allclose(y / red.factor(X), 1 / np.sqrt(1 - (v / c) ** 2), rtol=1e-12)
    syms = sp.symbols("v c m", positive=True)
    (expr,) = red.input_symbols(syms)
    assert sp.simplify(expr ** dict(red.monomial)[0] - syms[0] / syms[1]) == 0


def test_law_without_power_law_or_monomial_structure_is_not_reduced():
    X = _rows(3)
    # exp(x0) + x1*x2: no power-law factor, and no single monomial input explains it
    assert power_law_reduction(X, np.exp(X[:, 0]) + X[:, 1] * X[:, 2]) is None


def test_products_of_fitted_constants_merge_into_one():
    a, b, x = sp.symbols("a b x", positive=True)
    expr = sp.Float(0.42) * x * (sp.Float(2.38) * a - sp.Float(2.38) * b)
    merged = merge_constants(expr)
    assert len(merged.atoms(sp.Float)) == 1
    values = {a: 3.0, b: 1.25, x: 0.7}
    assert abs(float(merged.subs(values)) - float(expr.subs(values))) < 1e-12


def test_round_off_makes_only_round_off_exact():
    x, y = sp.symbols("x y", positive=True)
    expr = sp.Float(1.0000000000002) * x + sp.Float(0.49999999999997) * y + sp.Float(0.4999)
    assert round_off(expr) == x + y / 2 + sp.Float(0.4999)
    thirds = sp.Float(1 / 3, 15) * x  # exact to round-off
    assert round_off(thirds) == x / 3
    assert round_off(sp.Float(0.3333333) * x) == sp.Float(0.3333333) * x  # a fit, not 1/3
