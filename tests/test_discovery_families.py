"""``discovery.families.cutoff_power_laws``: a power law with an exponential cut-off,
``A u**p exp(B u**q)``, found in closed form on a grid of ``q`` and checked against the
generating law (a Schechter-like function and Neyrinck et al.'s bias law)."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from discovery.families import cutoff_power_laws

U = sp.Symbol("u", positive=True)


@pytest.mark.parametrize(
    ("amplitude", "p", "b", "q"),
    [(2.0, -1.25, -1.0, 1.0), (1.0, 1.5, -(0.4**1.5), -1.5)],  # Schechter; Neyrinck
)
def test_grid_exponent_recovers_the_generating_law(amplitude, p, b, q):
    u = np.geomspace(0.05, 5.0, 80)
    z = amplitude * u**p * np.exp(b * u**q)
    best = cutoff_power_laws(u, z, U, weights=1 / (0.01 * z))[0]
    f = sp.lambdify(U, best, "numpy")
    np.testing.assert_allclose(f(u), z, rtol=1e-6)  # q on the grid: exact in closed form


def test_noisy_law_off_the_grid_is_close_and_refuses_mixed_signs():
    rng = np.random.default_rng(0)
    u = np.geomspace(0.1, 4.0, 60)
    z = u**0.8 * np.exp(-0.3 * u**1.1)  # q = 1.1 lies between grid points
    sigma = 0.01 * z
    best = cutoff_power_laws(u, z + sigma * rng.normal(size=u.size), U, weights=1 / sigma)[0]
    f = sp.lambdify(U, best, "numpy")
    assert np.max(np.abs(f(u) / z - 1)) < 0.05  # a starting point the refit polishes
    assert cutoff_power_laws(u, np.sin(3 * u), U) == []
