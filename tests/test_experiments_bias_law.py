"""``cosmolaw run bias-law --quick``: the discovered law of FoF halo number density against the
smoothed matter density, against linear bias and the Neyrinck et al. (2014) law.

Independent pieces checked here too: the jackknife error of a binned mean against the exact
standard error of the mean of smoothed white noise, the smoothed density of a uniform
lattice, and the least-squares fits on curves with known parameters.
"""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import sympy as sp

from discovery.operators import DEFAULT_OPERATORS, parse_operators
from experiments.bias_law import (
    QUICK,
    fit_linear_bias,
    fit_neyrinck,
    jackknife_binned_mean,
    neyrinck_law,
    smoothed_density,
)
from experiments.core.registry import run_experiment


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("bias-law")
    run_experiment("bias-law", quick=True, out_dir=out)
    return out


def test_search_space_does_not_know_the_answer():
    assert parse_operators(QUICK["operators"]) == DEFAULT_OPERATORS
    assert QUICK["max_complexity"] >= 15


def test_jackknife_error_is_the_error_of_the_mean_of_correlated_cells():
    """Smoothing white noise (unit variance per cell) leaves the mean over the box unchanged,
    so its standard error is 1/sqrt(N) exactly, although neighbouring cells are correlated
    and the naive error from the cell scatter is smaller. Sub-cubes of 16 cells are much
    larger than the correlation length (a Gaussian of half a cell)."""
    n, sigma_cells = 32, 0.5
    rng = np.random.default_rng(2)
    k = np.fft.fftfreq(n)[:, None, None] ** 2 + np.fft.fftfreq(n)[None, :, None] ** 2
    k = k + np.fft.rfftfreq(n)[None, None, :] ** 2
    kernel = np.exp(-2 * (np.pi * sigma_cells) ** 2 * k)
    errors, naive = [], []
    for _ in range(32):
        noise = np.fft.rfftn(rng.normal(size=(n, n, n)))
        smooth = np.fft.irfftn(noise * kernel, s=(n,) * 3, axes=(0, 1, 2))
        _, _, err = jackknife_binned_mean(rng.normal(size=(n, n, n)), smooth, 1, 2)
        errors.append(err[0])
        naive.append(np.std(smooth) / np.sqrt(n**3))
    assert np.mean(naive) * np.sqrt(n**3) < 0.5
    assert abs(np.sqrt(np.mean(np.square(errors))) * np.sqrt(n**3) - 1) < 0.15


def test_jackknife_bins_of_independent_cells():
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(16, 16, 16))
    y = 2 * x + rng.normal(size=x.shape)
    xm, ym, err = jackknife_binned_mean(x, y, 8, 4)
    assert np.all(np.diff(xm) > 0)
    np.testing.assert_allclose(err, 1 / np.sqrt(x.size / 8), rtol=0.5)
    assert np.all(np.abs(ym - 2 * xm) < 4 * err)


def test_smoothed_density_of_a_lattice_is_uniform():
    n, box = 16, 50.0
    i = np.arange(2 * n) * 0.5
    cells = np.stack(np.meshgrid(i, i, i, indexing="ij"), -1).reshape(-1, 3)
    field = smoothed_density(cells, n, 6.0, box)
    np.testing.assert_allclose(field, 1.0, atol=1e-5)


def test_least_squares_fits_recover_known_laws():
    rho = np.geomspace(0.2, 5.0, 30)
    truth = np.array([1.3, 1.7, 0.45, 1.8])
    np.testing.assert_allclose(fit_neyrinck(rho, neyrinck_law(rho, truth)), truth, rtol=1e-4)
    assert fit_linear_bias(rho, 1 + 2.1 * (rho - 1)) == pytest.approx(2.1)


@pytest.mark.slow
def test_discovered_law_on_held_out_simulation(run_dir):
    found = json.loads((run_dir / "discoveries.json").read_text())
    checks = {c["name"]: c for c in found["checks"]}
    assert all(c["passed"] for c in checks.values()), checks
    summary = found["summary"]
    assert summary["description_length_law"] < summary["description_length_linear"]
    law = sp.sympify(found["best"]["srepr"])
    rho = sp.Symbol("rho")
    slope = sp.lambdify(rho, sp.diff(law, rho), "numpy")
    fn = sp.lambdify(rho, law, "numpy")
    with h5py.File(run_dir / "haloes.h5") as h5:
        train, test = h5["seed_0"], h5["seed_1"]
        x_train, y_train = train["rho_bin"][:], train["y_bin"][:]
        x_test, y_test = test["rho_bin"][:], test["y_bin"][:]
        assert train["halo_members"].size > 100
        tolerance = float(h5.attrs["tolerance"])
    # haloes above the minimum mass are biased: 1 + b delta fitted to the bins has b > 1
    d = x_train - 1
    assert np.sum(d * (y_train - 1)) / np.sum(d**2) > 1
    grid = np.linspace(min(x_train.min(), x_test.min()), max(x_train.max(), x_test.max()), 200)
    assert np.all(np.broadcast_to(slope(grid), grid.shape) > 0)
    assert np.sqrt(np.mean((fn(x_test) - y_test) ** 2)) < tolerance


@pytest.mark.parametrize(
    ("key", "value"), [("jackknife", 1), ("radius", 0.0), ("n_bins", 2), ("test_seeds", [])]
)
def test_bad_settings_are_refused_before_simulating(tmp_path, key, value):
    with pytest.raises(ValueError, match=key):
        run_experiment("bias-law", quick=True, out_dir=tmp_path, overrides={key: value})
