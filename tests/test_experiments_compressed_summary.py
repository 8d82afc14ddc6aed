"""``cosmolaw run compressed-summary --quick``: the learned and the distilled summaries against
the Fisher matrix of P(k) computed by autodiff through the simulator.

Everything is recomputed here from the run's files: the Fisher matrix of P(k) from the stored
held-out spectra and their autodiff derivatives (NumPy, F = J^T C^-1 J), the network from
``compressor.h5`` and the laws from ``discoveries.json``.
"""

from __future__ import annotations

import json

import h5py
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sympy as sp

from discovery.compress import load_network, summarise
from discovery.operators import DEFAULT_OPERATORS, parse_operators
from experiments.compressed_summary import ANGLE_TOL_DEG, DISTILL_TOL, QUICK, power_simulator
from experiments.core.registry import run_experiment


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("compressed-summary")
    run_experiment("compressed-summary", quick=True, out_dir=out)
    return out


def test_search_space_does_not_know_the_answer():
    assert parse_operators(QUICK["operators"]) == DEFAULT_OPERATORS
    assert QUICK["max_complexity"] >= 15


def smallest_eigenvector(fisher: np.ndarray) -> np.ndarray:
    return np.linalg.eigh(fisher)[1][:, 0]


def angle_deg(u: np.ndarray, v: np.ndarray) -> float:
    cos = abs(u @ v) / (np.linalg.norm(u) * np.linalg.norm(v))
    return float(np.degrees(np.arccos(min(cos, 1.0))))


@pytest.mark.slow
def test_autodiff_derivatives_match_finite_differences(run_dir):
    """The stored dP(k)/d(Omega_m, sigma8) of the first held-out simulation against central
    differences of the same simulation (the held-out keys are those of
    ``simulate_fisher_set``: the third of three split keys, split once per simulation)."""
    with h5py.File(run_dir / "summaries.h5") as h5:
        power = h5["test/power"][0]
        deriv = h5["test/power_derivative"][0]
    key = jax.random.split(jax.random.split(jax.random.key(QUICK["seed"]), 3)[2], QUICK["n_sims"])
    simulate = jax.jit(power_simulator(QUICK))
    theta = np.array([QUICK["omega_m"], QUICK["sigma8"]])
    np.testing.assert_allclose(np.asarray(simulate(jnp.asarray(theta), key[0])), power, rtol=1e-4)
    for i, h in enumerate((3e-3, 3e-3)):
        step = np.eye(2)[i] * h
        fd = (
            np.asarray(simulate(jnp.asarray(theta + step), key[0]))
            - np.asarray(simulate(jnp.asarray(theta - step), key[0]))
        ) / (2 * h)
        scale = np.max(np.abs(deriv[i]))
        np.testing.assert_allclose(deriv[i], fd, atol=0.02 * scale)


@pytest.mark.slow
def test_compressed_summary_has_the_fisher_degeneracy_direction(run_dir):
    with h5py.File(run_dir / "summaries.h5") as h5:
        power = h5["test/power"][:].astype(float)
        deriv = h5["test/power_derivative"][:].astype(float)
        f_net = h5["fisher/network"][:]
        f_sym = h5["fisher/symbolic"][:]
    n, p = power.shape
    cov = np.cov(power, rowvar=False)
    jac = deriv.mean(axis=0).T  # (bins, 2)
    f_pk = (n - p - 2) / (n - 1) * jac.T @ np.linalg.solve(cov, jac)
    direction = smallest_eigenvector(f_pk)
    # A real degeneracy: the eigenvalues differ by more than a factor 2.
    eig = np.linalg.eigvalsh(f_pk)
    assert eig[1] > 2 * eig[0]
    assert angle_deg(smallest_eigenvector(f_net), direction) < ANGLE_TOL_DEG
    assert angle_deg(smallest_eigenvector(f_sym), direction) < ANGLE_TOL_DEG
    # A compression of P(k) holds at most its information (up to estimation noise).
    assert 0.5 < np.linalg.det(f_net) / np.linalg.det(f_pk) < 1.2


@pytest.mark.slow
def test_distilled_laws_reproduce_the_network_on_held_out_sims(run_dir):
    found = json.loads((run_dir / "discoveries.json").read_text())
    with h5py.File(run_dir / "summaries.h5") as h5:
        power = h5["spread/power"][:]
        bands = h5["spread/band_log_power"][:]
        stored = h5["spread/summaries"][:]
    model, _ = load_network(run_dir / "compressor.h5")
    summaries = np.asarray(summarise(model, power))
    np.testing.assert_allclose(summaries, stored, rtol=1e-5, atol=1e-5)
    half = len(power) // 2
    names = [f"lnP{i}" for i in range(QUICK["n_bands"])]
    for j, record in enumerate(found["laws"]):
        expr = sp.sympify(record["srepr"])
        assert expr.free_symbols  # a law of the data, not a constant
        fn = sp.lambdify(sp.symbols(names), expr, "numpy")
        pred = np.broadcast_to(fn(*bands[half:].T), (len(power) - half,))
        t = summaries[half:, j]
        assert np.sqrt(np.mean((pred - t) ** 2)) / np.std(t) < DISTILL_TOL
