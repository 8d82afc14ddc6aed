"""``cosmolaw run velocity-density --quick``: the discovered theta(delta) law on a held-out
simulation, against linear theory and the shape of Bernardeau's (1992) law.

Independent pieces checked here too: the top-hat window is normalised and the velocity
divergence of a pure linear-theory (Zel'dovich) displacement field equals -f delta.
"""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import sympy as sp
from scipy.optimize import curve_fit

from cosmolaw.cli import main
from discovery.operators import DEFAULT_OPERATORS, parse_operators
from experiments.velocity_density import QUICK, binned_mean, smoothed_fields, tophat_window


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("velocity-density")
    assert main(["run", "velocity-density", "--quick", "--out", str(out)]) == 0
    return out


def test_search_space_does_not_know_the_answer():
    assert parse_operators(QUICK["operators"]) == DEFAULT_OPERATORS
    assert QUICK["max_complexity"] >= 15


def test_tophat_window():
    kr = np.array([0.0, 1e-3, 1.0, 4.493409457909064])  # last: first zero, tan x = x
    np.testing.assert_allclose(
        tophat_window(kr), [1.0, 1.0, 3 * (np.sin(1) - np.cos(1)), 0.0], atol=2e-4
    )


def test_linear_displacement_gives_theta_equal_minus_f_delta():
    """Particles at cell centres displaced by a small plane wave, vel = f * disp."""
    n, box, f = 32, 100.0, 0.5
    q = (np.stack(np.meshgrid(*[np.arange(n)] * 3, indexing="ij"), -1).reshape(-1, 3) + 0.5) * (
        box / n
    )
    k = 2 * np.pi / box * 2
    disp = np.zeros_like(q)
    disp[:, 0] = 0.01 * np.sin(k * q[:, 0]) / k  # delta = -div(disp) = -0.01 cos(k x)
    delta, theta = smoothed_fields(q + disp, f * disp, box, n, radius=4.0)
    assert np.std(delta) > 0.005
    np.testing.assert_allclose(-theta / f, delta, atol=0.04 * np.std(delta))


def test_binned_mean_of_a_known_relation():
    rng = np.random.default_rng(0)
    x = rng.normal(size=20000)
    xm, ym, err = binned_mean(x, x**2 + 0.1 * rng.normal(size=x.size), 20)
    assert np.all(np.diff(xm) > 0)
    assert np.all(np.abs(ym - xm**2) < 5 * err + 0.02)


@pytest.mark.slow
def test_discovered_law_beats_linear_theory_on_held_out_simulation(run_dir):
    found = json.loads((run_dir / "discoveries.json").read_text())
    law = sp.sympify(found["best"]["srepr"])
    (rho,) = law.free_symbols
    fn = sp.lambdify(rho, law, "numpy")
    with h5py.File(run_dir / "fields.h5") as h5:
        held_out = h5["seed_1"]
        d, y = held_out["delta_bin"][:], held_out["y_bin"][:]
    mse_law = np.mean((fn(1 + d) - y) ** 2)
    mse_linear = np.mean((d - y) ** 2)
    mse_bernardeau = np.mean((1.5 * ((1 + d) ** (2 / 3) - 1) - y) ** 2)
    assert mse_law < 0.3 * mse_linear
    assert mse_bernardeau < mse_linear
    # Bernardeau's shape: concave, and alpha (rho^beta - 1) fitted to the law has beta ~ 2/3.
    assert float(sp.diff(law, rho, 2).subs(rho, 1.0)) < 0
    grid = np.linspace(1 + d.min(), 1 + d.max(), 100)
    (alpha, beta), _ = curve_fit(
        lambda r, a, b: a * (r**b - 1), grid, np.broadcast_to(fn(grid), grid.shape), p0=[1.5, 0.6]
    )
    assert abs(beta - 2 / 3) <= 0.15
