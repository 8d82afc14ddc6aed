"""HMC as BORG runs it: identity mass in whitened (preconditioned) space, with the step size
drawn uniformly in ``[(1 - jitter) eps, eps]`` and the number of leapfrog steps uniformly in
``1..max_num_steps`` at every transition (Jasche & Kitaura 2010; Jasche & Wandelt 2013).

The randomisation avoids resonant trajectories of the quasi-harmonic field modes. The mass
matrix is applied by the latent reparametrisation (:mod:`inference.precondition`), so the
kernel itself uses a unit metric. Built on BlackJAX's HMC kernel; adaptation of ``eps`` (dual
averaging) and ``max_num_steps`` (trajectory length) lives in :func:`warmup`.

:func:`quarter_period_sampler` is the same kernel with a fixed number of steps and only the
step size jittered: with a mass matrix that whitens the posterior (the observed Hessian at the
MAP, :func:`inference.precondition.hessian_preconditioner`) every mode oscillates with a
period close to ``2 pi``, and a trajectory of length ``pi / 2`` maps ``(x, p)`` to about
``(p, -x)``: each accepted transition is then close to an independent draw.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import blackjax
import jax
import jax.numpy as jnp
import numpy as np
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


def build_kernel(divergence_threshold: float = 1000.0, uniform_steps: bool = True) -> Callable:
    """Kernel ``(key, state, logdensity_fn, step_size, max_num_steps, step_jitter)``.

    ``uniform_steps``: draw the number of leapfrog steps uniformly in ``1..max_num_steps``
    (BORG); otherwise always make ``max_num_steps``.
    """
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
        num_steps = jnp.maximum(max_num_steps, 1)
        if uniform_steps:
            num_steps = jax.random.randint(key_n, (), 1, num_steps + 1)
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
    uniform_steps: bool = True,
) -> Sampler:
    """BORG HMC with dual-averaging warm-up of the step size.

    Args:
        logdensity_fn: latent log density (whitened, so posterior scales are ~1).
        target_acceptance: mean Metropolis acceptance aimed at in warm-up.
        trajectory_length: trajectory length in latent units at the mean number of steps
            and the maximum step size (pi/2 is a quarter period of a whitened mode).
        step_jitter: relative width of the step-size randomisation, in [0, 1).
        uniform_steps: number of steps uniform in ``1..max_num_steps`` (BORG), or fixed.
    """
    if not 0.0 < target_acceptance < 1.0:
        raise ValueError(f"target_acceptance={target_acceptance} must be in (0, 1)")
    if not 0.0 <= step_jitter < 1.0:
        raise ValueError(f"step_jitter={step_jitter} must be in [0, 1)")
    if not trajectory_length > 0.0:
        raise ValueError(f"trajectory_length={trajectory_length} must be positive")
    kernel = build_kernel(uniform_steps=uniform_steps)
    da_init, da_update, da_final = dual_averaging_adaptation(target_acceptance)
    # Mean number of steps per transition, per unit of max_num_steps.
    mean_steps = 0.5 if uniform_steps else 1.0

    def tuning_for(step_size: Array) -> BorgHMCTuning:
        n = trajectory_length / (mean_steps * step_size)
        n = jnp.clip(jnp.round(n), 1, 1000).astype(jnp.int32)
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

    name = "borg_hmc" if uniform_steps else "quarter_hmc"
    return Sampler(name, warmup, step, lambda state: state.position)


def quarter_period_sampler(
    logdensity_fn: Callable,
    target_acceptance: float = 0.8,
    step_jitter: float = 0.2,
) -> Sampler:
    """HMC with trajectories of a quarter period (``pi / 2``) of a whitened mode.

    A fixed number of leapfrog steps with the step size jittered by ``step_jitter`` (so the
    length varies by about that fraction around ``pi / 2``, which avoids resonances); the step
    size is tuned by dual averaging. Best with a mass matrix that whitens the posterior.
    """
    length = 0.5 * np.pi / (1.0 - 0.5 * step_jitter)  # at the maximum step size
    return sampler(logdensity_fn, target_acceptance, length, step_jitter, uniform_steps=False)


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
