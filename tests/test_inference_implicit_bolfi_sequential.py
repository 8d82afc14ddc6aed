"""BOLFI and the sequential (truncated-prior) NPE against the exact posterior of the
linear-Gaussian problem (2 parameters, 4 data, noise 0.5, prior N(0, I))."""

import json

import h5py
import numpy as np
import pytest

from cosmolaw.cli import main
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


def test_sbi_bolfi_on_a_mock(tmp_path):
    """``cosmolaw sbi bolfi`` on a 32^3 mock, 50 simulations of its own model: draws inside the
    box prior, the truth within 3 standard deviations, sigma8 narrower than its prior (standard
    deviation 0.4 / sqrt(12)), and the simulations stored."""
    mock, out = tmp_path / "mock", tmp_path / "bolfi"
    assert (
        main(["mock", "--out", str(mock), "--mesh", "32", "--box", "256", "--model", "lpt1"]) == 0
    )
    argv = ["sbi", "bolfi", "--data", str(mock / "mock.h5"), "--out", str(out), "--budget", "50"]
    assert main([*argv, "--initial", "20", "--samples", "1000", "--no-progress"]) == 0
    result = json.loads((out / "summary.json").read_text())
    mean, std = np.array(result["mean"]), np.array(result["std"])
    truth = np.array([result["truth"][n] for n in result["names"]])
    assert np.all(np.abs(mean - truth) < 3 * std)
    assert std[1] < 0.8 * 0.4 / np.sqrt(12)
    with h5py.File(out / "posterior.h5") as f:
        draws = f["samples"][()]
        assert f["simulations/theta"].shape == (50, 2) and f.attrs["method"] == "bolfi"
    assert draws.shape == (1000, 2)
    assert np.all((draws >= [0.2, 0.6]) & (draws <= [0.45, 1.0]))
    assert (out / "contours.png").stat().st_size > 10_000


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
