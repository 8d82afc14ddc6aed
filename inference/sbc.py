"""Simulation-based calibration (SBC; Talts, Betancourt, Simpson, Vehtari & Gelman 2018) of the
scalar parameters of a field-level posterior.

For each of many mocks: draw the truth (white noise and scalars) from the prior, simulate data
through the forward and observation models, sample the posterior of that data, and take the
rank of each true scalar among ``num_draws`` thinned posterior draws. If the posterior and the
sampler are right, each rank is uniform on ``0..num_draws``. All mocks run as one compiled
program: the data enter the likelihood as an argument, and the per-mock chains (warm-up
included) are vmapped. One preconditioner, found on a fiducial mock, serves every mock.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from scipy import stats

from inference.driver import prior_draw
from inference.posterior import FieldPosterior, LoglikFn, Params
from inference.precondition import (
    Preconditioner,
    fisher_preconditioner,
    latent_logdensity,
    latent_scalar_conditional,
)
from inference.samplers import BLOCKS, SAMPLERS, make_sampler


@dataclasses.dataclass(frozen=True)
class SBCConfig:
    """How to calibrate.

    Attributes:
        num_mocks: mocks (truth + data + chain), vmapped (>= 2).
        num_draws: thinned posterior draws per mock; ranks lie in ``0..num_draws`` (>= 2).
        thin: sampler steps between kept draws (>= 1), enough for near-independent draws.
        num_warmup: warm-up steps of each mock's chain (>= 10).
        sampler: one of :data:`inference.samplers.SAMPLERS`.
        blocks: one of :data:`inference.samplers.BLOCKS`.
        seed: integer seed of every random choice.
    """

    num_mocks: int = 64
    num_draws: int = 20
    thin: int = 10
    num_warmup: int = 200
    sampler: str = "borg_hmc"
    blocks: str = "gibbs"
    seed: int = 0

    def __post_init__(self) -> None:
        checks = [
            ("num_mocks", self.num_mocks >= 2, "an integer >= 2"),
            ("num_draws", self.num_draws >= 2, "an integer >= 2"),
            ("thin", self.thin >= 1, "an integer >= 1"),
            ("num_warmup", self.num_warmup >= 10, "an integer >= 10"),
            ("sampler", self.sampler in SAMPLERS, f"one of {SAMPLERS}"),
            ("blocks", self.blocks in BLOCKS, f"one of {BLOCKS}"),
        ]
        for name, ok, allowed in checks:
            if not ok:
                raise ValueError(f"{name}={getattr(self, name)!r} is not allowed: use {allowed}")


@dataclasses.dataclass(frozen=True, eq=False)
class MockFamily:
    """A forward and observation model whose data can be traced (one posterior per mock).

    Attributes:
        posterior: the model's posterior; its ``loglik`` is replaced per mock.
        loglik_for: ``data (m, m, m) -> loglik`` of that data (a :data:`LoglikFn`).
        simulate: ``(key, params) -> data (m, m, m)`` drawn from the likelihood at ``params``.
    """

    posterior: FieldPosterior
    loglik_for: Callable[[Array], LoglikFn]
    simulate: Callable[[Array, Params], Array]

    def posterior_for(self, data: Array) -> FieldPosterior:
        """The posterior given ``data`` (which may be a tracer)."""
        return dataclasses.replace(self.posterior, loglik=self.loglik_for(data))


def counts_family(
    conf, cosmo, obs, model: str = "lpt1", bias_priors: dict | None = None
) -> MockFamily:
    """Galaxy counts of a complete survey, as :func:`inference.models.counts_posterior` models
    them (same forward model, bias law, ``nbar`` and noise), with the bias sampled.

    Args:
        conf, cosmo, obs: ``SimConfig``, ``Cosmology`` and ``Observation`` of the mocks.
        model: forward model, one of :data:`inference.models.FORWARD_MODELS`.
        bias_priors: ``{name: (mean, std)}`` of the sampled bias parameters (the truths are
            drawn from them); ``None``: broad defaults around the law's values.
    """
    from inference.models import counts_posterior
    from simulator.observe.mock import counts_log_likelihood, expected_counts

    shape = (conf.mesh,) * 3
    base = counts_posterior(
        np.zeros(shape), np.ones(shape), conf, cosmo, obs, model, bias_priors=bias_priors
    )
    law, noise, fixed = obs.law, obs.noise_model(), dict(obs.bias_params)
    selection = jnp.ones(shape, jnp.float32)

    def bias_params(bias: Params):
        values = {**fixed, **bias}
        return law.params_type(**values) if law.params_type else values

    def loglik_for(counts: Array) -> LoglikFn:
        def loglik(fields, bias, noise_values):
            return counts_log_likelihood(
                counts, fields["delta"], law, bias_params(bias), obs.nbar_cell, noise, selection
            )

        return loglik

    def simulate(key: Array, params: Params) -> Array:
        delta = base.fields(params)["delta"]
        lam = expected_counts(delta, law, bias_params(params.get("bias", {})), obs.nbar_cell)
        return noise.sample(key, lam).astype(jnp.float32)

    return MockFamily(base, loglik_for, simulate)


def fiducial_preconditioner(family: MockFamily, seed: int = 0) -> Preconditioner:
    """Prior + data Fisher preconditioner of one mock drawn at the scalars' prior means.

    Taken at ``s = 0`` (no MAP search), so the scalars keep their prior scales; the Gibbs
    block's random walk adapts its own proposal scale in warm-up.
    """
    key_s, key_data, key_fisher = jax.random.split(jax.random.PRNGKey(seed), 3)
    posterior = family.posterior
    params = posterior.initial_params(jax.random.normal(key_s, (posterior.mesh,) * 3))
    fiducial = family.posterior_for(family.simulate(key_data, params))
    return fisher_preconditioner(fiducial, posterior.initial_params(), key_fisher)


@dataclasses.dataclass(frozen=True)
class SBCResult:
    """Ranks and draws of an SBC run (``p`` scalars, ``M`` mocks, ``L`` draws per mock).

    Attributes:
        names: scalar names ``group/param``, length ``p``.
        ranks: ``(M, p)`` number of draws below the truth, in ``0..L``.
        truth: ``(M, p)`` true values.
        draws: ``(M, L, p)`` thinned posterior draws.
        acceptance: ``(M,)`` mean acceptance of each mock's chain while sampling.
    """

    names: list[str]
    ranks: np.ndarray
    truth: np.ndarray
    draws: np.ndarray
    acceptance: np.ndarray

    def pvalues(self, seed: int = 0) -> dict[str, float]:
        """KS p-value per scalar of ``(rank + U) / (L + 1)``, uniform on [0, 1] if calibrated.

        ``U ~ U(0, 1)`` (from ``seed``) spreads the discrete ranks so the KS test is exact.
        """
        num_draws = self.draws.shape[1]
        jitter = np.random.default_rng(seed).uniform(size=self.ranks.shape)
        u = (self.ranks + jitter) / (num_draws + 1)
        return {n: float(stats.kstest(u[:, i], "uniform").pvalue) for i, n in enumerate(self.names)}


def run_sbc(
    family: MockFamily, config: SBCConfig, precond: Preconditioner | None = None
) -> SBCResult:
    """Calibrate the scalars of ``family``'s posterior over ``config.num_mocks`` mocks.

    Chains start at a latent standard-normal field and the scalars' prior means, warm up for
    ``num_warmup`` steps and keep a draw every ``thin`` steps. ``precond`` defaults to
    :func:`fiducial_preconditioner`.

    Returns:
        :class:`SBCResult`.
    """
    posterior = family.posterior
    if not posterior.scalar_names:
        raise ValueError("the posterior samples no scalar parameter: nothing to calibrate")
    precond = fiducial_preconditioner(family, config.seed + 1) if precond is None else precond
    ranks, truth, draws, acceptance = _sbc_fn(family, config)(
        precond, jax.random.split(jax.random.PRNGKey(config.seed), config.num_mocks)
    )
    return SBCResult(
        posterior.scalar_names,
        np.asarray(ranks),
        np.asarray(truth),
        np.asarray(draws),
        np.asarray(acceptance),
    )


def _sbc_fn(family: MockFamily, config: SBCConfig) -> Callable:
    """Compiled ``(precond, keys (M, 2)) -> (ranks, truth, draws, acceptance)``."""
    prior = family.posterior

    def one(precond, key):
        key_truth, key_data, key_start, key_warm, key_run = jax.random.split(key, 5)
        truth = prior_draw(key_truth, prior)
        posterior = family.posterior_for(family.simulate(key_data, truth))
        conditional = latent_scalar_conditional(posterior, precond)
        sampler = make_sampler(
            config.sampler, latent_logdensity(posterior, precond), config.blocks, conditional
        )
        start = precond.to_latent(prior.initial_params())
        start["s"] = jax.random.normal(key_start, start["s"].shape, jnp.float32)
        state, tuning, _ = sampler.warmup(key_warm, start, config.num_warmup)

        def chunk(state, k):
            def body(state, kk):
                state, info = sampler.step(kk, state, tuning)
                return state, info.acceptance

            state, acc = jax.lax.scan(body, state, jax.random.split(k, config.thin))
            params = precond.to_params(sampler.position(state))
            return state, (prior.scalar_vector(params), jnp.mean(acc))

        _, (draws, acc) = jax.lax.scan(chunk, state, jax.random.split(key_run, config.num_draws))
        truth_vec = prior.scalar_vector(truth)
        ranks = jnp.sum(draws < truth_vec, axis=0)
        return ranks, truth_vec, draws, jnp.mean(acc)

    return jax.jit(jax.vmap(one, in_axes=(None, 0)))
