"""Compressors on a 2D Gaussian random field with P(k) = A k^-B at theta = (A, B) = (1, 0.5).

References computed here, independently of the package: the Fisher matrix of the field (sum over
the modes of the full FFT grid) and the mean and variance of the P(k) bins (mode sums).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from discovery.compress import (
    IMNNConfig,
    binned_power,
    build_network,
    compressor_fisher,
    fit_input_scaling,
    fit_moped,
    gaussian_field,
    power_bins,
    power_law_fisher,
    simulate_finite_difference_set,
    simulate_fisher_set,
    summary_derivatives,
    train_imnn,
)

SHAPE = (64, 64)
BOX = 1.0
N_BINS = 16
THETA = np.array([1.0, 0.5])


def full_grid_k(n: int) -> np.ndarray:
    """|k| of every mode of the full (complex) FFT grid of an n x n box of side BOX."""
    freq = 2 * np.pi * np.fft.fftfreq(n, d=BOX / n)
    return np.hypot(freq[:, None], freq[None, :])


def field_fisher(theta: np.ndarray) -> np.ndarray:
    """F_ij = 1/2 sum over full-grid modes k != 0 of dlnP/dtheta_i dlnP/dtheta_j."""
    k = full_grid_k(SHAPE[0])
    k = k[k > 0]
    grad = np.stack([np.full_like(k, 1 / theta[0]), -np.log(k)])
    return 0.5 * grad @ grad.T


def bin_moments(theta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean (n_bins,), derivative (n_bins, 2) and covariance (diagonal) of the P(k) bins.

    A bin averages |delta_k|^2 over its full-grid modes S: mean <P_k>_S and, since k and -k
    are in the same bin (or k is real), variance 2 sum_S P_k^2 / |S|^2; bins are independent.
    """
    k = full_grid_k(SHAPE[0])
    edges = np.linspace(0.5 * 2 * np.pi / BOX, k.max() * (1 + 1e-6), N_BINS + 1)
    idx = np.digitize(k, edges) - 1
    mask = k > 0
    ks = np.where(mask, k, 1.0)
    power = theta[0] * ks ** -theta[1]
    d_power = [power / theta[0], -np.log(ks) * power]

    def bin_sum(x):
        return np.bincount(idx[mask], weights=x[mask], minlength=N_BINS)

    counts = bin_sum(np.ones_like(k))
    mean = bin_sum(power) / counts
    dmu = np.stack([bin_sum(d) / counts for d in d_power], axis=1)
    return mean, dmu, np.diag(2 * bin_sum(power**2) / counts**2)


def pk_simulator(theta, key):
    """P(k) bins of one field: the data vector of MOPED and the input of the spectral IMNN."""
    bins = power_bins(SHAPE, BOX, N_BINS)
    return binned_power(gaussian_field(theta, key, SHAPE, BOX), bins, BOX)


@pytest.fixture(scope="module")
def pk_sets():
    """Training, validation and test sets of P(k) bins with exact derivatives."""
    theta = jnp.asarray(THETA, jnp.float32)
    train = simulate_fisher_set(pk_simulator, theta, jax.random.key(0), 2000, 2000, 500)
    val = simulate_fisher_set(pk_simulator, theta, jax.random.key(1), 1000, 1000, 500)
    test = simulate_fisher_set(pk_simulator, theta, jax.random.key(2), 20000, 4000, 500)
    return train, val, test


def test_analytic_fisher_matches_full_grid_sum():
    fisher = power_law_fisher(THETA, SHAPE, BOX)
    np.testing.assert_allclose(fisher, field_fisher(THETA), rtol=1e-12)
    # A-A element: half the number of non-zero modes (each carries (1/A)^2 / 2)
    assert fisher[0, 0] == pytest.approx((np.prod(SHAPE) - 1) / 2)


def test_field_power_spectrum_matches_input(pk_sets):
    train, _, _ = pk_sets
    mean, _, cov = bin_moments(THETA)
    sims = np.asarray(train.fiducial, np.float64)
    err = np.sqrt(np.diag(cov) / sims.shape[0])
    assert np.all(np.abs(sims.mean(0) - mean) < 4 * err)
    # variance of each band power, 2 sum P^2 / |S|^2: a band power is ~ chi^2 with nu ~ |S|
    # degrees of freedom (kurtosis 3 + 12 / nu), which sets the error of its sample variance
    var = np.diag(cov)
    nu = 2 * mean**2 / var
    ratio = sims.var(0, ddof=1) / var
    assert np.all(np.abs(ratio - 1) < 4 * np.sqrt((2 + 12 / nu) / sims.shape[0]))


def test_pk_bins_keep_nearly_all_field_information():
    _, dmu, cov = bin_moments(THETA)
    fisher_bins = dmu.T @ np.linalg.solve(cov, dmu)
    frac = np.linalg.det(fisher_bins) / np.linalg.det(field_fisher(THETA))
    assert 0.98 < frac <= 1.0


def test_exact_and_finite_difference_derivatives_agree(pk_sets):
    train, _, _ = pk_sets
    theta = jnp.asarray(THETA, jnp.float32)
    fd = simulate_finite_difference_set(
        pk_simulator, theta, jnp.array([0.01, 0.01]), jax.random.key(0), 128, 128
    )
    identity = lambda batch: batch
    exact = summary_derivatives(identity, train)[:128]
    approx = summary_derivatives(identity, fd)
    np.testing.assert_allclose(np.asarray(fd.fiducial), np.asarray(train.fiducial[:128]))
    scale = np.abs(np.asarray(exact)).max(axis=-1, keepdims=True)
    # central differences err by delta^2 (ln k)^3 / 6 ~ 5e-4 relative at the highest k
    assert np.max(np.abs(np.asarray(approx - exact)) / scale) < 1e-3


def test_moped_keeps_pk_bin_information(pk_sets):
    """MOPED estimated from simulations; the information it keeps is computed analytically."""
    _, _, sims = pk_sets
    moped = fit_moped(sims.fiducial, sims.derivative)
    _, dmu, cov = bin_moments(THETA)
    fisher_bins = dmu.T @ np.linalg.solve(cov, dmu)
    weights = np.asarray(moped.weights, np.float64)
    dt = weights @ dmu
    fisher_moped = dt.T @ np.linalg.solve(weights @ cov @ weights.T, dt)
    frac = np.linalg.det(fisher_moped) / np.linalg.det(fisher_bins)
    assert 0.99 <= frac <= 1 + 1e-6
    # MOPED summaries are uncorrelated with unit variance (true covariance of the bins)
    np.testing.assert_allclose(weights @ cov @ weights.T, np.eye(2), atol=0.05)


def test_imnn_reaches_analytic_fisher(pk_sets):
    """IMNN on fields through a fixed P(k)-bin layer and a learned affine head."""
    train, val, test = pk_sets
    spec = {"kind": "mlp", "n_in": N_BINS, "n_out": 2, "hidden": []}
    model = build_network(spec, seed=0)
    fit_input_scaling(model, train.fiducial)
    config = IMNNConfig(learning_rate=3e-3, max_steps=1500, patience=200)
    history = train_imnn(model, train, val, config, progress=False)
    assert history["best_step"] > 0
    # the loss decreased: ln det F on the training set grew from its initial value
    assert history["log_det_F"][history["best_step"] - 1] > history["log_det_F"][0] + 1
    stats = compressor_fisher(model, test)
    frac = np.linalg.det(np.asarray(stats.fisher)) / np.linalg.det(field_fisher(THETA))
    assert 0.95 <= frac < 1.05
    # the regulariser brought the covariance of the summaries to the identity
    np.testing.assert_allclose(np.asarray(stats.cov), np.eye(2), atol=0.1)
