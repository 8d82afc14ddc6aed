"""HMC as BORG runs it: identity mass in whitened (preconditioned) space, with the step size
drawn uniformly in ``[(1 - jitter) eps, eps]`` and the number of leapfrog steps uniformly in
``1..max_num_steps`` at every transition (Jasche & Kitaura 2010; Jasche & Wandelt 2013).

The randomisation avoids resonant trajectories of the quasi-harmonic field modes. The mass
matrix is applied by the latent reparametrisation (:mod:`inference.precondition`), so the
kernel itself uses a unit metric. Built on BlackJAX's HMC kernel; adaptation of ``eps`` (dual
averaging) and ``max_num_steps`` (trajectory length) lives in :func:`warmup`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import blackjax
import jax
import jax.numpy as jnp
from blackjax.adaptation.step_size import dual_averaging_adaptation
from blackjax.base import SamplingAlgorithm
from blackjax.mcmc.hmc import HMCInfo, HMCState
from blackjax.util import pytree_size
from jax import Array

from inference.samplers.base import Sampler, StepInfo

init = blackjax.hmc.init


class BorgHMCTuning(NamedTuple):
    """Tuning parameters: maximum step size, maximum number of leapfrog steps, jitter."""

    step_size: Array
    max_num_steps: Array
    step_jitter: Array


def build_kernel(divergence_threshold: float = 1000.0) -> Callable:
    """Kernel ``(key, state, logdensity_fn, step_size, max_num_steps, step_jitter)``."""
    hmc_kernel = blackjax.hmc.build_kernel(divergence_threshold=divergence_threshold)

    def kernel(
        rng_key: Array,
        state: HMCState,
        logdensity_fn: Callable,
        step_size: Array,
        max_num_steps: Array,
        step_jitter: Array,
    ) -> tuple[HMCState, HMCInfo]:
        key_eps, key_n, key_hmc = jax.random.split(rng_key, 3)
        eps = step_size * (1.0 - step_jitter * jax.random.uniform(key_eps))
        num_steps = jax.random.randint(key_n, (), 1, jnp.maximum(max_num_steps, 1) + 1)
        unit_metric = jnp.ones(pytree_size(state.position))
        return hmc_kernel(key_hmc, state, logdensity_fn, eps, unit_metric, num_steps)

    return kernel


def as_top_level_api(
    logdensity_fn: Callable,
    step_size: float,
    max_num_steps: int,
    step_jitter: float = 0.5,
    divergence_threshold: float = 1000.0,
) -> SamplingAlgorithm:
    """``(init, step)`` of BORG-style HMC with fixed tuning parameters."""
    kernel = build_kernel(divergence_threshold)

    def init_fn(position, rng_key=None):
        return init(position, logdensity_fn)

    def step_fn(rng_key, state):
        return kernel(rng_key, state, logdensity_fn, step_size, max_num_steps, step_jitter)

    return SamplingAlgorithm(init_fn, step_fn)


def sampler(
    logdensity_fn: Callable,
    target_acceptance: float = 0.8,
    trajectory_length: float = 1.6,
    step_jitter: float = 0.5,
) -> Sampler:
    """BORG HMC with dual-averaging warm-up of the step size.

    Args:
        logdensity_fn: latent log density (whitened, so posterior scales are ~1).
        target_acceptance: mean Metropolis acceptance aimed at in warm-up.
        trajectory_length: mean trajectory length in latent units; ``max_num_steps`` is set
            so that ``step_size * max_num_steps / 2`` matches it (pi/2 is a quarter period).
        step_jitter: relative width of the step-size randomisation, in [0, 1).
    """
    if not 0.0 < target_acceptance < 1.0:
        raise ValueError(f"target_acceptance={target_acceptance} must be in (0, 1)")
    if not 0.0 <= step_jitter < 1.0:
        raise ValueError(f"step_jitter={step_jitter} must be in [0, 1)")
    kernel = build_kernel()
    da_init, da_update, da_final = dual_averaging_adaptation(target_acceptance)

    def tuning_for(step_size: Array) -> BorgHMCTuning:
        n = jnp.clip(jnp.round(2.0 * trajectory_length / step_size), 1, 1000).astype(jnp.int32)
        return BorgHMCTuning(step_size, n, jnp.asarray(step_jitter, jnp.float32))

    def step(key: Array, state: HMCState, tuning: BorgHMCTuning) -> tuple[HMCState, StepInfo]:
        new_state, info = kernel(key, state, logdensity_fn, *tuning)
        return new_state, summarize(info, state, tuning.step_size)

    def warmup(key: Array, position, num_steps: int):
        state = init(position, logdensity_fn)
        dim = pytree_size(position)
        da_state = da_init(jnp.asarray(1.0 * dim**-0.25, jnp.float32))

        def one(carry, k):
            state, da_state = carry
            tuning = tuning_for(jnp.exp(da_state.log_step_size))
            state, info = step(k, state, tuning)
            acc = jnp.where(jnp.isfinite(info.acceptance), info.acceptance, 0.0)
            return (state, da_update(da_state, acc)), info.num_grads

        (state, da_state), grads = jax.lax.scan(
            one, (state, da_state), jax.random.split(key, num_steps)
        )
        return state, tuning_for(da_final(da_state)), jnp.sum(grads)

    return Sampler("borg_hmc", warmup, step, lambda state: state.position)


def summarize(info: HMCInfo, previous: HMCState, step_size: Array) -> StepInfo:
    """Common per-step summary of an HMC transition from ``previous`` (unit metric)."""
    kinetic = 0.5 * sum(jnp.sum(jnp.square(p)) for p in jax.tree.leaves(info.momentum))
    return StepInfo(
        acceptance=info.acceptance_rate,
        energy_error=info.energy - (kinetic - previous.logdensity),
        num_grads=jnp.asarray(info.num_integration_steps, jnp.int32),
        divergent=info.is_divergent,
        tree_depth=jnp.zeros((), jnp.int32),
        step_size=jnp.asarray(step_size, jnp.float32),
    )
