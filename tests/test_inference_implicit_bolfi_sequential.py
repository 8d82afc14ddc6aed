"""BOLFI and the sequential (truncated-prior) NPE against the exact posterior of the
linear-Gaussian problem (2 parameters, 4 data, noise 0.5, prior N(0, I))."""

import numpy as np
import pytest

from inference.implicit.bolfi import BOLFI
from inference.implicit.flows import FlowSettings
from inference.implicit.linear_gaussian import random_problem
from inference.implicit.sequential import sequential_npe

SMALL = FlowSettings(ensemble=2, max_epochs=60, patience=10)


@pytest.fixture(scope="module")
def problem():
    return random_problem(num_params=2, num_data=4, seed=3, noise=0.5)


def test_bolfi_locates_the_exact_posterior(problem):
    # Noise-free data of the prior mean: the exact posterior is centred where the prior is, so
    # the ABC likelihood's extra width (an ABC method's tolerance) does not shift the mean.
    observed = problem.offset.copy()
    sims = np.random.default_rng(11)
    bolfi = BOLFI(
        problem.prior,
        lambda theta: problem.simulate(theta, sims),
        observed,
        budget=150,
        initial=40,
        batch=10,
        seed=0,
    ).fit(progress=False)
    draws = bolfi.sample(4000, seed=1)
    mean, cov = problem.posterior(observed)
    std = np.sqrt(np.diag(cov))
    assert np.all(np.abs(draws.mean(0) - mean) < 0.5 * std)
    # Wider than exact (tolerance 0.5 in log discrepancy, 150 simulations), never narrower.
    ratio = draws.std(0) / std
    assert np.all((ratio > 0.9) & (ratio < 3.0)), ratio


def test_sequential_npe_matches_the_exact_posterior(problem):
    rng = np.random.default_rng(5)
    truth = problem.prior.sample(rng, 1)
    observed = problem.simulate(truth, rng)[0]
    sims = np.random.default_rng(12)
    posterior, history = sequential_npe(
        lambda theta: problem.simulate(theta, sims),
        problem.prior,
        observed,
        rounds=2,
        per_round=1000,
        settings=SMALL,
        seed=0,
        progress=False,
    )
    assert [h["simulations"] for h in history] == [1000, 2000]
    assert history[0]["prior_mass"] == 1.0 and 0 < history[1]["prior_mass"] < 1
    mean, cov = problem.posterior(observed)
    std = np.sqrt(np.diag(cov))
    draws = posterior.sample(observed, 4000, seed=1)
    assert np.all(np.abs(draws.mean(0) - mean) < 0.3 * std)
    assert np.all(np.abs(draws.std(0) / std - 1) < 0.25)
