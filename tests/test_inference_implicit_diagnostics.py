"""Coverage diagnostics and the out-of-distribution warning, on draws of known calibration."""

import warnings

import numpy as np
import pytest

from inference.implicit.diagnostics import (
    OutOfDistributionWarning,
    out_of_distribution,
    predictive_check,
    sbc_ranks,
    tarp_coverage,
)
from inference.implicit.summaries import LinearCompression, PowerSummary, Whitener


def _gaussian_draws(rng, scale):
    """Truths ``theta ~ N(0, 1)``, data ``x ~ N(theta, 1)`` and draws of the exact posterior
    ``N(x / 2, 1 / 2)`` with its width multiplied by ``scale`` (1: calibrated)."""
    truth = rng.normal(size=(400, 2))
    x = truth + rng.normal(size=truth.shape)
    return x[:, None] / 2 + scale * np.sqrt(0.5) * rng.normal(size=(400, 300, 2)), truth


def test_tarp_and_sbc_accept_calibrated_and_reject_overconfident_draws():
    rng = np.random.default_rng(0)
    draws, truth = _gaussian_draws(rng, 1.0)
    assert tarp_coverage(draws, truth)["error"] < 0.09  # noise alone ~ 0.9 / sqrt(400)
    assert np.all(sbc_ranks(draws, truth)["pvalues"] > 1e-3)
    draws, truth = _gaussian_draws(rng, 0.5)
    assert tarp_coverage(draws, truth)["error"] > 0.12
    assert np.all(sbc_ranks(draws, truth)["pvalues"] < 1e-6)


def test_out_of_distribution_warning_fires_10_sigma_off_only():
    rng = np.random.default_rng(1)
    cov = np.array([[4.0, 1.9, 0.0], [1.9, 1.0, 0.0], [0.0, 0.0, 0.01]])
    train = rng.multivariate_normal([1.0, 2.0, 3.0], cov, size=2000)
    whitener = Whitener.fit(train)
    inside = rng.multivariate_normal([1.0, 2.0, 3.0], cov)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check = out_of_distribution(inside, whitener)
    assert not check.outside
    # 10 sigma along the narrowest direction: small in raw units, far in whitened ones.
    far = np.array([1.0, 2.0, 3.0 + 10 * 0.1])
    with pytest.warns(OutOfDistributionWarning, match="outside the training distribution"):
        check = out_of_distribution(far, whitener)
    assert check.outside and check.distance > 9 and check.quantile == 1.0


def test_predictive_check_flags_data_the_model_cannot_make():
    rng = np.random.default_rng(2)
    predictive = rng.normal(size=(200, 4))
    assert predictive_check(rng.normal(size=4), predictive)["pvalue"] > 0.01
    assert predictive_check(np.full(4, 8.0), predictive)["pvalue"] < 0.01


def test_pk_cut_and_moped_recover_a_linear_model():
    k = np.linspace(0.02, 0.3, 12)
    assert PowerSummary(tuple(k), 0.15)(np.ones(12)).shape == (k[k <= 0.15].size,)
    assert PowerSummary(tuple(k), None)(np.ones(12)).shape == (12,)
    with pytest.raises(ValueError, match="kmax=0.01"):
        PowerSummary(tuple(k), 0.01)
    # log P = a + D theta + noise: MOPED summaries are linear in theta with unit noise.
    rng = np.random.default_rng(3)
    theta = rng.uniform(0, 1, size=(3000, 2))
    slope = rng.normal(size=(12, 2))
    pk = np.exp(1 + theta @ slope.T + 0.1 * rng.normal(size=(3000, 12)))
    moped = LinearCompression.fit(PowerSummary(tuple(k), None), theta, pk)
    t = moped(pk)
    resid = (
        t
        - np.column_stack([np.ones(3000), theta])
        @ np.linalg.lstsq(np.column_stack([np.ones(3000), theta]), t, rcond=None)[0]
    )
    np.testing.assert_allclose(np.cov(resid, rowvar=False), np.eye(2), atol=0.1)
    fisher = slope.T @ slope / 0.01  # of log P with noise 0.1 per bin
    info = moped.weights @ slope  # dt/dtheta; its Gram matrix is the summaries' Fisher matrix
    np.testing.assert_allclose(info.T @ info, fisher, rtol=0.1)


def test_tarp_reference_points_are_independent_of_the_truths_generator():
    # Truths drawn uniformly from default_rng(0): TARP's own reference points must not
    # coincide with them (they did when TARP drew them from default_rng(seed=0) too).
    rng = np.random.default_rng(0)
    truth = rng.uniform(0.5, 1.5, (300, 2))
    x = truth + 0.05 * rng.normal(size=truth.shape)
    draws = x[:, None] + 0.05 * rng.normal(size=(300, 300, 2))
    assert tarp_coverage(draws, truth, seed=0)["error"] < 0.1
