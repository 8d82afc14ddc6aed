"""Split-Rhat and bulk/tail ESS on chains whose answer is known analytically."""

import numpy as np
import pytest

from inference.diagnostics import efficiency, ess_bulk, ess_tail, split_rhat


def _ar1(rng, phi, chains, draws, dims):
    """AR(1) chains x_t = phi x_{t-1} + e_t started in their stationary distribution."""
    e = rng.standard_normal((chains, draws, dims))
    x = np.empty_like(e)
    x[:, 0] = e[:, 0] / np.sqrt(1 - phi**2)
    for t in range(1, draws):
        x[:, t] = phi * x[:, t - 1] + e[:, t]
    return x


def test_iid_chains_have_full_ess_and_unit_rhat():
    """iid draws: ESS = number of draws, Rhat = 1."""
    draws = np.random.default_rng(0).standard_normal((4, 1000, 20))
    n = 4 * 1000
    assert np.all(np.abs(split_rhat(draws) - 1.0) < 0.01)
    assert np.mean(ess_bulk(draws)) == pytest.approx(n, rel=0.1)
    assert np.mean(ess_tail(draws)) == pytest.approx(n, rel=0.15)


@pytest.mark.parametrize("phi", [0.5, 0.9])
def test_ar1_ess_matches_integrated_autocorrelation_time(phi):
    """AR(1): tau = (1 + phi) / (1 - phi), so ESS = N (1 - phi) / (1 + phi)."""
    draws = _ar1(np.random.default_rng(1), phi, 4, 4000, 10)
    expected = draws.shape[0] * draws.shape[1] * (1 - phi) / (1 + phi)
    assert np.mean(ess_bulk(draws)) == pytest.approx(expected, rel=0.15)
    assert np.all(split_rhat(draws) < 1.02)


def test_rhat_flags_chains_that_disagree():
    """Chains offset by one standard deviation are not mixed: Rhat well above 1.01."""
    draws = np.random.default_rng(2).standard_normal((4, 500, 3))
    draws[0] += 1.0
    assert np.all(split_rhat(draws) > 1.05)


def test_rhat_flags_a_drifting_single_chain():
    """Split-Rhat sees a trend within one chain (its halves disagree)."""
    draws = (
        np.random.default_rng(3).standard_normal((1, 1000, 1))
        + np.linspace(0, 3, 1000)[None, :, None]
    )
    assert split_rhat(draws)[0] > 1.1


def test_efficiency_per_gradient_and_bad_input():
    """ESS per 1000 gradients scales the bulk ESS; too few draws are refused."""
    draws = np.random.default_rng(4).standard_normal((2, 500, 2))
    eff = efficiency(draws, num_grads=10_000)
    np.testing.assert_allclose(eff["ess_bulk_per_1000_grads"], eff["ess_bulk"] / 10.0)
    with pytest.raises(ValueError, match="draws"):
        split_rhat(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="num_grads"):
        efficiency(draws, num_grads=0)
