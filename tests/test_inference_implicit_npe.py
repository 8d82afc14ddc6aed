"""Neural posterior estimation on the linear-Gaussian problem, against its exact posterior."""

import dataclasses

import numpy as np
import pytest

from inference.implicit.diagnostics import sbc_ranks, tarp_coverage
from inference.implicit.flows import FlowSettings, NeuralPosterior
from inference.implicit.linear_gaussian import random_problem
from inference.implicit.prior import box_prior
from inference.implicit.sequential import truncated_prior_draws

SMALL = FlowSettings(ensemble=2, max_epochs=60, patience=10)


@pytest.fixture(scope="module")
def trained():
    problem = random_problem(num_params=2, num_data=4, seed=3, noise=0.5)
    rng = np.random.default_rng(0)
    theta = problem.prior.sample(rng, 2000)
    posterior = NeuralPosterior(problem.prior, SMALL, progress=False)
    posterior.fit(theta, problem.simulate(theta, rng))
    return problem, posterior, rng


def test_npe_matches_the_analytic_posterior(trained):
    problem, posterior, rng = trained
    theta = problem.prior.sample(rng, 5)
    for x in problem.simulate(theta, rng):
        mean, cov = problem.posterior(x)
        draws = posterior.sample(x, 2000, seed=1)
        std = np.sqrt(np.diag(cov))
        assert np.all(np.abs(draws.mean(0) - mean) < 0.35 * std)
        assert np.all(np.abs(draws.std(0) / std - 1) < 0.3)
    # The density integrates to one and its mean is the draws' (Jacobians and mixture right).
    axes = [np.linspace(m - 7 * s, m + 7 * s, 150) for m, s in zip(mean, std, strict=True)]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 2)
    density = np.exp(posterior.log_prob(grid, x))
    cell = np.prod([a[1] - a[0] for a in axes])
    assert abs(density.sum() * cell - 1) < 0.01
    grid_mean = (density[:, None] * grid).sum(0) / density.sum()
    assert np.all(np.abs(grid_mean - draws.mean(0)) < 0.1 * std)


def test_npe_covers_held_out_truths(trained):
    problem, posterior, rng = trained
    truth = problem.prior.sample(rng, 300)
    draws = posterior.sample_many(problem.simulate(truth, rng), 300, seed=2)
    assert tarp_coverage(draws, truth)["error"] < 0.12  # noise alone ~ 0.9 / sqrt(300)
    assert np.all(sbc_ranks(draws, truth)["pvalues"] > 1e-3)
    inside = np.abs(truth - draws.mean(1)) < draws.std(1)
    assert np.all(np.abs(inside.mean(0) - 0.683) < 0.09)


def test_saved_posterior_gives_the_same_draws(trained, tmp_path):
    problem, posterior, _ = trained
    posterior.save(tmp_path)
    loaded = NeuralPosterior.load(tmp_path, progress=False)
    x = problem.offset
    np.testing.assert_allclose(
        loaded.sample(x, 2000, seed=4), posterior.sample(x, 2000, seed=4), rtol=1e-5
    )


def test_box_prior_keeps_draws_inside_and_refuses_bad_input():
    prior = box_prior({"Omega_m": (0.2, 0.4), "sigma8": (0.6, 1.0)})
    rng = np.random.default_rng(1)
    theta = prior.sample(rng, 2000)  # the fixture's shapes: its compiled steps are reused
    x = np.column_stack([theta * 10 + rng.normal(0, 0.5, (2000, 2)), theta**2])
    post = NeuralPosterior(prior, dataclasses.replace(SMALL, max_epochs=2), progress=False)
    post.fit(theta, x)
    draws = post.sample(x[0], 2000)
    assert np.all((draws >= prior.low) & (draws <= prior.high))
    assert np.all(np.isneginf(post.log_prob(np.array([[0.1, 0.8]]), x[0])))
    with pytest.raises(ValueError, match="theta of shape"):
        post.fit(theta[:, :1], x)
    with pytest.raises(ValueError, match="flow='real-nvp'"):
        FlowSettings(flow="real-nvp")
    with pytest.raises(ValueError, match=r"prior sigma8=\[1.0, 0.5\]"):
        box_prior({"sigma8": (1.0, 0.5)})


def test_truncated_prior_holds_the_exact_posterior(trained):
    problem, posterior, rng = trained
    x = problem.simulate(problem.prior.sample(rng, 1), rng)[0]
    draws, mass, threshold = truncated_prior_draws(posterior, x, 2000, rng)
    assert 0 < mass < 1  # a part of the prior (most of it: the flows' tails are wide)
    assert np.all(posterior.log_prob(draws, x) >= threshold)
    exact = problem.posterior_sample(x, 2000, rng)
    assert np.mean(posterior.log_prob(exact, x) >= threshold) > 0.99
