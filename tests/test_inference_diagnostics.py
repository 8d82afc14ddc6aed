"""Split-Rhat and bulk/tail ESS on chains whose answer is known analytically, and against
ArviZ's on the same draws."""

import warnings

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


def _arviz_diagnostics(draws):
    """ArviZ's rank split-Rhat, bulk and tail ESS of ``(chains, draws, dims)`` draws."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import arviz as az

        ds = az.convert_to_dataset(draws)
        return (
            az.rhat(ds)["x"].values,
            az.ess(ds, method="bulk")["x"].values,
            az.ess(ds, method="tail")["x"].values,
        )


def _arviz_cases():
    """Draws of several chain shapes: mixed, autocorrelated, anticorrelated, unmixed
    (offset chain, chains far from stationarity, a trend, chains stuck apart), heavy-tailed,
    tied, very short and odd-length."""
    rng = np.random.default_rng(5)
    offset = rng.standard_normal((4, 300, 2))
    offset[0] += 3.0
    stuck = np.ones((3, 100, 1))
    stuck[1] = 2.0
    return {
        "iid": rng.standard_normal((4, 500, 3)),
        "ar1_0.9": _ar1(rng, 0.9, 4, 400, 2),
        "antithetic": _ar1(rng, -0.7, 3, 400, 2),
        "unmixed_slow": _ar1(rng, 0.995, 2, 301, 2),
        "offset_chain": offset,
        "trend": rng.standard_normal((2, 301, 2)) + np.linspace(0, 3, 301)[None, :, None],
        "cauchy": rng.standard_cauchy((4, 300, 2)),
        "ties": np.round(rng.standard_normal((3, 200, 2))),
        "short": rng.standard_normal((2, 9, 2)),
        "stuck_apart": stuck,
    }


@pytest.mark.parametrize("case", list(_arviz_cases()))
def test_agrees_with_arviz(case):
    """Rank split-Rhat, bulk and tail ESS equal ArviZ's (rhat, ess bulk/tail) on the same
    draws, converged or not (for chains stuck apart both are astronomically large)."""
    draws = _arviz_cases()[case]
    rhat, bulk, tail = _arviz_diagnostics(draws)
    if case == "stuck_apart":  # within-chain variance zero up to round-off
        assert np.all(split_rhat(draws) > 1e6) and np.all(rhat > 1e6)
    else:
        np.testing.assert_allclose(split_rhat(draws), rhat, rtol=1e-9)
    np.testing.assert_allclose(ess_bulk(draws), bulk, rtol=1e-9)
    np.testing.assert_allclose(ess_tail(draws), tail, rtol=1e-9)
