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


@pytest.mark.parametrize("trial", [0, 1, 2])
def test_bolfi_matches_the_exact_posterior(problem, trial):
    """Noisy data of a truth drawn from the prior, 150 simulations: the emulated-summary
    likelihood gives the exact posterior's mean within 0.75 and its widths within 0.75 to 1.4
    times (no ABC tolerance widens it)."""
    rng = np.random.default_rng(100 + trial)
    observed = problem.simulate(problem.prior.sample(rng, 1), rng)[0]
    sims = np.random.default_rng(11 + trial)
    bolfi = BOLFI(
        problem.prior,
        lambda theta: problem.simulate(theta, sims),
        observed,
        budget=150,
        initial=40,
        batch=10,
        seed=trial,
    ).fit(progress=False)
    draws = bolfi.sample(4000, seed=1)
    mean, cov = problem.posterior(observed)
    std = np.sqrt(np.diag(cov))
    assert np.all(np.abs(draws.mean(0) - mean) < 0.75 * std)
    ratio = draws.std(0) / std
    assert np.all((ratio > 0.75) & (ratio < 1.4)), ratio


def test_bolfi_refuses_bad_input(problem):
    observed = problem.offset
    for kwargs, name in (
        ({"initial": 3}, "initial=3"),
        ({"budget": 40}, "budget=40"),
        ({"temperature": 0.5}, "temperature=0.5"),
        ({"candidates": 5}, "candidates=5"),
    ):
        with pytest.raises(ValueError, match=name):
            BOLFI(
                problem.prior, lambda theta: problem.simulate(theta, np.random), observed, **kwargs
            )
    with pytest.raises(RuntimeError, match="fit"):
        BOLFI(problem.prior, lambda theta: theta, observed).sample(10)


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
