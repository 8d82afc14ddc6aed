"""Building blocks for the patterns of cosmological laws: shifted arguments, power laws in a
shifted variable, broken power laws, power laws with an exponential cut-off
(``discovery.families.cutoff_power_laws``, found in closed form on a grid of ``q``: a
Schechter-like function and Neyrinck et al.'s bias law) and a leading term plus a small
correction; with several inputs, a power whose exponent is an input (Sersic) and powers
of shifted monomials (NFW, Plummer); laws of ``sqrt(1 - u)`` (the rapidity); powers of
a polynomial times a power or ``log(1 + a u)/(a u)`` (transfer-function-like forms).

Each test generates data from a law and checks that the candidate found is that law
(SRBench equivalence: the difference or the ratio is a constant), after the refit that
every candidate gets in ``discover``.
"""

import numpy as np
import pytest
import sympy as sp

from discovery import equivalent
from discovery.exhaustive import affine_pair_search, affine_search
from discovery.families import (
    broken_power_laws,
    cutoff_power_laws,
    polynomial_power_laws,
    root_shift_laws,
    shifted_monomial_laws,
    shifted_power_laws,
    variable_exponent_laws,
)
from discovery.fit import refit
from discovery.operators import DEFAULT_OPERATORS
from discovery.programs import to_sympy

RNG = np.random.default_rng(2)
U = RNG.uniform(0.05, 8.0, (400, 1))
x = sp.Symbol("x", positive=True)
SYM_U = sp.Symbol("u", positive=True)


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


def test_pair_search_skips_trees_not_finite_beyond_the_scanned_rows():
    """log(x) is finite on the 128 scanned rows but not on the one row where x = 0."""
    X = RNG.uniform(0.5, 2.0, (300, 1))
    X[1, 0] = 0.0  # not among the evenly spread scanned rows
    t = 1.0 + 2.0 * X[:, 0] + 3.0 * X[:, 0] ** 2
    ((best, *_),) = affine_pair_search(X, [t], DEFAULT_OPERATORS, 3)
    h1, h2, coef, mse = best
    law = coef[0] + coef[1] * to_sympy(h1, [x], []) + coef[2] * to_sympy(h2, [x], [])
    assert mse < 1e-20 and equivalent(law, 1 + 2 * x + 3 * x**2, [x], X)


@pytest.mark.parametrize(
    ("amplitude", "p", "b", "q"),
    [(2.0, -1.25, -1.0, 1.0), (1.0, 1.5, -(0.4**1.5), -1.5)],  # Schechter; Neyrinck
)
def test_grid_exponent_recovers_the_generating_law(amplitude, p, b, q):
    u = np.geomspace(0.05, 5.0, 80)
    z = amplitude * u**p * np.exp(b * u**q)
    best = cutoff_power_laws(u, z, SYM_U, weights=1 / (0.01 * z))[0]
    f = sp.lambdify(SYM_U, best, "numpy")
    np.testing.assert_allclose(f(u), z, rtol=1e-6)  # q on the grid: exact in closed form


def test_noisy_law_off_the_grid_is_close_and_refuses_mixed_signs():
    rng = np.random.default_rng(0)
    u = np.geomspace(0.1, 4.0, 60)
    z = u**0.8 * np.exp(-0.3 * u**1.1)  # q = 1.1 lies between grid points
    sigma = 0.01 * z
    best = cutoff_power_laws(u, z + sigma * rng.normal(size=u.size), SYM_U, weights=1 / sigma)[0]
    f = sp.lambdify(SYM_U, best, "numpy")
    assert np.max(np.abs(f(u) / z - 1)) < 0.05  # a starting point the refit polishes
    assert cutoff_power_laws(u, np.sin(3 * u), SYM_U) == []


def _positive_symbols(names: str) -> list[sp.Symbol]:
    return list(sp.symbols(names, positive=True))


def test_a_power_whose_exponent_is_an_input_is_found():
    """Sersic's profile, I_e exp(-(2 n - 1/3) ((R/R_e)**(1/n) - 1)): its exponent is 1/n."""
    i_e, big_r, r_e, n = syms = _positive_symbols("I_e R R_e n")
    truth = i_e * sp.exp(-(2 * n - sp.Rational(1, 3)) * ((big_r / r_e) ** (1 / n) - 1))
    X = np.column_stack(
        [RNG.uniform(*r, 300) for r in ((1.0, 5.0), (0.1, 10.0), (0.5, 5.0), (1.0, 4.0))]
    )
    y = sp.lambdify(syms, truth, "numpy")(*X.T)
    assert _any_equivalent(variable_exponent_laws(X, y, syms), truth, X, syms)
    assert variable_exponent_laws(X[:, :1], y, syms[:1]) == []  # needs two inputs


@pytest.mark.parametrize(
    "law",
    [
        lambda rho, r, a: rho / ((r / a) * (1 + r / a) ** 2),  # Navarro-Frenk-White
        lambda m, r, a: 3 * m / (4 * sp.pi * a**3) * (1 + r**2 / a**2) ** sp.Rational(-5, 2),
    ],
    ids=["nfw", "plummer"],
)
def test_powers_of_shifted_monomials_are_found(law):
    syms = _positive_symbols("A r a")
    truth = law(*syms)
    X = np.column_stack([RNG.uniform(*r, 300) for r in ((1.0, 5.0), (0.1, 10.0), (0.5, 3.0))])
    y = sp.lambdify(syms, truth, "numpy")(*X.T)
    assert _any_equivalent(shifted_monomial_laws(X, y, syms), truth, X, syms)


def test_a_law_of_the_square_root_of_a_shifted_input_is_found():
    """The rapidity atanh(sqrt(1 - u)) of a Lorentz factor 1/sqrt(u), also with noise."""
    u = RNG.uniform(0.05, 0.95, (300, 1))
    truth = sp.atanh(sp.sqrt(1 - SYM_U))
    z = sp.lambdify(SYM_U, truth, "numpy")(u[:, 0])
    laws = root_shift_laws(u[:, 0], z, SYM_U, DEFAULT_OPERATORS)
    assert _any_equivalent(laws, truth, u, [SYM_U])
    sigma = 1e-4 * np.ones_like(z)
    noisy = z + sigma * np.random.default_rng(3).normal(size=z.size)
    laws = root_shift_laws(u[:, 0], noisy, SYM_U, DEFAULT_OPERATORS, weights=1 / sigma)
    assert _any_equivalent(laws, truth, u, [SYM_U])


@pytest.mark.parametrize(
    "truth",
    [
        SYM_U / sp.sqrt(1 + 3 * SYM_U + 5 * SYM_U**2),
        sp.log(1 + 3 * SYM_U) / (3 * SYM_U) / sp.sqrt(1 + 2 * SYM_U**2),  # a = 3, off the grid
    ],
    ids=["power", "logarithm"],
)
def test_a_power_of_a_polynomial_is_found(truth):
    u = np.geomspace(0.01, 10.0, 300)[:, None]
    z = sp.lambdify(SYM_U, truth, "numpy")(u[:, 0])
    laws = polynomial_power_laws(u[:, 0], z, SYM_U)
    assert _any_equivalent(laws, truth, u, [SYM_U])
