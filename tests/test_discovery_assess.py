"""``discovery.assess``: a hand-written law scored on the search's footing (chi-square fit of
its constants, description length), checked against the generating law and least squares."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import curve_fit

from discovery import assess


def _neyrinck(x, beta, rho, eps):
    return x**beta * np.exp(-((x / rho) ** -eps))


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(3)
    x = np.geomspace(0.1, 5.0, 60)
    sigma = 0.02 + 0.03 * _neyrinck(x, 1.5, 0.4, 1.5)
    y = _neyrinck(x, 1.5, 0.4, 1.5) + sigma * rng.normal(size=x.size)
    return x[:, None], y, sigma


def _cutoff(x, p, c, q):
    """Neyrinck's law as ``x**p exp(c x**q)``: ``p = beta``, ``c = -rho**eps``, ``q = -eps``."""
    return x**p * np.exp(c * x**q)


def test_constants_and_chi_square_match_weighted_least_squares(data):
    X, y, sigma = data
    got = assess("x**1.2*exp(-0.3*x**(-1.3))", X, y, ["x"], sigma)
    ref, cov = curve_fit(_cutoff, X[:, 0], y, p0=[1.2, -0.3, -1.3], sigma=sigma,
                         absolute_sigma=True)  # fmt: skip
    pulls = (ref - [1.5, -(0.4**1.5), -1.5]) / np.sqrt(np.diag(cov))
    assert np.all(np.abs(pulls) < 5)  # the reference fit finds the generating law
    values = sorted(v for v, _ in got.constants)
    np.testing.assert_allclose(values, sorted(ref), rtol=1e-4)
    errors = dict(got.constants)
    for v, s in zip(ref, np.sqrt(np.diag(cov)), strict=True):
        key = min(errors, key=lambda k: abs(k - v))
        assert errors[key] == pytest.approx(s, rel=0.02)
    chi2 = float(np.sum(((_cutoff(X[:, 0], *ref) - y) / sigma) ** 2))
    assert got.chi2 == pytest.approx(chi2, rel=1e-4)
    # the generating law fits within the noise: chi-square near its degrees of freedom
    assert abs(got.chi2 - (len(y) - 3)) < 4 * np.sqrt(2 * len(y))


def test_description_length_prefers_the_generating_law_to_a_wrong_form(data):
    X, y, sigma = data
    true = assess("x**1.2*exp(-0.3*x**(-1.3))", X, y, ["x"], sigma)
    wrong = assess("1.1*x**1.4 - 0.1", X, y, ["x"], sigma)
    assert true.description_length < wrong.description_length
    assert {str(s) for s in true.expression.free_symbols} == {"x"}


def test_bad_sigma_is_refused(data):
    X, y, _ = data
    with pytest.raises(ValueError, match="sigma"):
        assess("1.0*x", X, y, ["x"], -1.0)
