"""NUTS with Stan-style window adaptation (step size and diagonal mass matrix): the generic
baseline, entirely BlackJAX's (``blackjax.nuts``, ``blackjax.window_adaptation``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import blackjax
import jax.numpy as jnp
from blackjax.adaptation.base import get_filter_adapt_info_fn
from blackjax.mcmc.hmc import HMCState
from blackjax.mcmc.nuts import NUTSInfo
from jax import Array
from jax.flatten_util import ravel_pytree

from inference.samplers.base import Sampler, StepInfo


class NUTSTuning(NamedTuple):
    """Adapted step size and diagonal inverse mass matrix (flattened, shape ``(dim,)``)."""

    step_size: Array
    inverse_mass_matrix: Array


def sampler(logdensity_fn: Callable, target_acceptance: float = 0.8) -> Sampler:
    """NUTS whose warm-up is BlackJAX's window adaptation."""
    kernel = blackjax.nuts.build_kernel()

    def step(key: Array, state: HMCState, tuning: NUTSTuning) -> tuple[HMCState, StepInfo]:
        new_state, info = kernel(
            key, state, logdensity_fn, tuning.step_size, tuning.inverse_mass_matrix
        )
        return new_state, summarize(info, state, tuning)

    def warmup(key: Array, position, num_steps: int):
        adaptation = blackjax.window_adaptation(
            blackjax.nuts,
            logdensity_fn,
            target_acceptance_rate=target_acceptance,
            adaptation_info_fn=get_filter_adapt_info_fn(info_keys={"num_integration_steps"}),
        )
        (state, params), info = adaptation.run(key, position, num_steps)
        tuning = NUTSTuning(
            jnp.asarray(params["step_size"], jnp.float32), params["inverse_mass_matrix"]
        )
        return state, tuning, jnp.sum(info.info.num_integration_steps)

    return Sampler("nuts", warmup, step, lambda state: state.position)


def summarize(info: NUTSInfo, previous: HMCState, tuning: NUTSTuning) -> StepInfo:
    """Common per-step summary of a NUTS transition from ``previous``."""
    p0, _ = ravel_pytree(info.momentum)
    initial_energy = 0.5 * jnp.sum(tuning.inverse_mass_matrix * p0**2) - previous.logdensity
    return StepInfo(
        acceptance=info.acceptance_rate,
        energy_error=info.energy - initial_energy,
        num_grads=jnp.asarray(info.num_integration_steps, jnp.int32),
        divergent=info.is_divergent,
        tree_depth=jnp.asarray(info.num_trajectory_expansions, jnp.int32),
        step_size=tuning.step_size,
    )
