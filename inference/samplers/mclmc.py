"""Microcanonical Langevin Monte Carlo, unadjusted (MCLMC) and Metropolis-adjusted (MAMS),
with BlackJAX's kernels and automatic tuning of the step size and momentum decoherence length
L (``mclmc_find_L_and_step_size``, ``adjusted_mclmc_find_L_and_step_size``).

Preconditioning comes from the latent reparametrisation (prior + data Fisher,
:mod:`inference.precondition`); BlackJAX's own diagonal preconditioning estimated during the
tuning can be switched on on top of it (it is what "MCLMC with its default tuning" uses).
Both integrators here are McLachlan's minimal-norm scheme: two gradients per step.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import blackjax
import jax
import jax.numpy as jnp
from blackjax.adaptation.mclmc_adaptation import MCLMCAdaptationState
from blackjax.mcmc.adjusted_mclmc_dynamic import make_random_trajectory_length_fn
from blackjax.mcmc.integrators import IntegratorState
from jax import Array

from inference.samplers.base import Sampler, StepInfo

#: Gradient evaluations per McLachlan integrator step.
GRADS_PER_STEP = 2
#: Fractions of the run BlackJAX's tuners spend in their three stages.
_TUNE_FRACTIONS = (0.1, 0.1, 0.1)


def sampler(
    logdensity_fn: Callable,
    diagonal_preconditioning: bool = False,
    desired_energy_var: float = 5e-4,
) -> Sampler:
    """Unadjusted MCLMC; ``warmup(key, x, n)`` runs BlackJAX's three-stage tuner for ~n steps.

    Args:
        logdensity_fn: latent log density.
        diagonal_preconditioning: let the tuner estimate a diagonal mass matrix too.
        desired_energy_var: target energy-error variance per dimension (sets the bias).
    """
    kernel = blackjax.mclmc.build_kernel()

    def step(key: Array, state: IntegratorState, tuning: MCLMCAdaptationState):
        new_state, info = kernel(
            key, state, logdensity_fn, tuning.inverse_mass_matrix, tuning.L, tuning.step_size
        )
        return new_state, StepInfo(
            acceptance=jnp.ones((), jnp.float32),
            energy_error=info.energy_change,
            num_grads=jnp.asarray(GRADS_PER_STEP, jnp.int32),
            divergent=jnp.logical_not(info.nonans),
            tree_depth=jnp.zeros((), jnp.int32),
            step_size=jnp.asarray(tuning.step_size, jnp.float32),
        )

    def warmup(key: Array, position, num_steps: int):
        key_init, key_tune = jax.random.split(key)
        state = blackjax.mclmc.init(position, logdensity_fn, key_init)
        state, tuning, n_steps = blackjax.mclmc_find_L_and_step_size(
            kernel,
            max(round(num_steps / sum(_TUNE_FRACTIONS)), 10),
            state,
            key_tune,
            logdensity_fn=logdensity_fn,
            frac_tune1=_TUNE_FRACTIONS[0],
            frac_tune2=_TUNE_FRACTIONS[1],
            frac_tune3=_TUNE_FRACTIONS[2],
            desired_energy_var=desired_energy_var,
            diagonal_preconditioning=diagonal_preconditioning,
        )
        return state, tuning, jnp.asarray(GRADS_PER_STEP * n_steps, jnp.int32)

    return Sampler("mclmc", warmup, step, lambda state: state.position)


def adjusted_sampler(
    logdensity_fn: Callable,
    target_acceptance: float = 0.9,
    diagonal_preconditioning: bool = False,
) -> Sampler:
    """Metropolis-adjusted MCLMC with random trajectory lengths of mean ``L / step_size``."""
    kernel = blackjax.adjusted_mclmc_dynamic.build_kernel(
        integration_steps_fn=make_random_trajectory_length_fn(True)
    )
    tuner_kernel = partial(kernel, L_proposal_factor=jnp.inf)

    def step(key: Array, state, tuning: MCLMCAdaptationState):
        new_state, info = tuner_kernel(
            rng_key=key,
            state=state,
            logdensity_fn=logdensity_fn,
            step_size=tuning.step_size,
            inverse_mass_matrix=tuning.inverse_mass_matrix,
            integration_steps_params=(tuning.L / tuning.step_size,),
        )
        accept = jnp.clip(info.acceptance_rate, 1e-30, 1.0)
        return new_state, StepInfo(
            acceptance=info.acceptance_rate,
            energy_error=-jnp.log(accept),
            num_grads=GRADS_PER_STEP * jnp.asarray(info.num_integration_steps, jnp.int32),
            divergent=info.is_divergent,
            tree_depth=jnp.zeros((), jnp.int32),
            step_size=jnp.asarray(tuning.step_size, jnp.float32),
        )

    def warmup(key: Array, position, num_steps: int):
        key_init, key_tune = jax.random.split(key)
        state = blackjax.adjusted_mclmc_dynamic.init(position, logdensity_fn, key_init)
        state, tuning, n_steps = blackjax.adjusted_mclmc_find_L_and_step_size(
            tuner_kernel,
            logdensity_fn,
            max(round(num_steps / 0.2), 10),
            state,
            key_tune,
            target=target_acceptance,
            diagonal_preconditioning=diagonal_preconditioning,
        )
        return state, tuning, jnp.asarray(GRADS_PER_STEP * n_steps, jnp.int32)

    return Sampler("adjusted_mclmc", warmup, step, lambda state: state.position)
