"""Microcanonical Langevin Monte Carlo, unadjusted (MCLMC) and Metropolis-adjusted (MAMS),
with automatic tuning of the step size and momentum decoherence length L.

Unadjusted MCLMC integrates with :mod:`inference.samplers.isokinetic` (leaf by leaf, so a
sharded field is never gathered), is tuned by :func:`pooled_warmup` (ours: ``L`` pooled over
the chains, a step size per chain, robust to the rare huge energy errors of a Poisson
likelihood) and rejects the steps whose energy error is beyond a cutoff (:func:`sampler`);
the adjusted form uses BlackJAX's kernel and ``adjusted_mclmc_find_L_and_step_size``.
Preconditioning comes from the latent reparametrisation (:mod:`inference.precondition`); for
the adjusted form BlackJAX's own diagonal preconditioning can be switched on on top of it.
Both integrators are McLachlan's minimal-norm scheme: two gradients per step.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import blackjax
import jax
import jax.numpy as jnp
from blackjax.adaptation.mclmc_adaptation import MCLMCAdaptationState
from blackjax.adaptation.step_size import dual_averaging_adaptation
from blackjax.mcmc.adjusted_mclmc_dynamic import make_random_trajectory_length_fn
from blackjax.mcmc.integrators import IntegratorState
from blackjax.util import pytree_size
from jax import Array

from inference.samplers import isokinetic
from inference.samplers.base import Sampler, StepInfo, chain_mean

#: Gradient evaluations per McLachlan integrator step.
GRADS_PER_STEP = 2
#: ``L`` of the tuned unadjusted MCLMC in units of ``sqrt(sum of the latent variances)``: on
#: unit widths, a coordinate moves about this many widths between velocity refreshes.
#: Chosen on the masked field-level posterior of ``benchmarks/mask_mixing.py`` (32^3, mock 0,
#: 4 x 1000 steps): of 1, 2.5, 6 and 15, 6 mixed the low-k P(k) best (ESS per 1000 gradients
#: of bins 1-3 8.5/3.6/14.1 against 5.1/5.3/4.4 at 2.5); 15 lost the cosmology (ESS 49/38
#: against 239/198) and 1 mixed both worse. Checked on posteriors not used to choose it (P(k)
#: bins 1-3, 6 against 2.5): mask_mixing's mock 1, 11.6/9.6/18.2 against 3.7/9.8/7.8; its
#: unmasked mock 0, 19.3/29.7/32.7 against 14.1/19.2/28.1; ``sampler_efficiency.py``'s 16^3
#: ``default``, ``nbar5`` and ``b1_sampled``, 1-16% higher, 1.6-2.0x in the two lowest bins of
#: ``b1_sampled`` (b1 itself 11.9 against 7.2). On ``default``, 2.5 had mixed 1.5-1.7x better
#: than BlackJAX's ESS-based ``L`` (about 1).
L_PER_WIDTH = 6.0
#: Default target variance of unadjusted MCLMC's energy error per dimension.
DESIRED_ENERGY_VAR = 1e-4
#: Default rejection threshold of unadjusted MCLMC's energy error, in units of its tuned
#: typical size ``sqrt(desired_energy_var * d)``.
ENERGY_CUTOFF = 30.0


def sampler(
    logdensity_fn: Callable,
    desired_energy_var: float = DESIRED_ENERGY_VAR,
    energy_cutoff: float = ENERGY_CUTOFF,
) -> Sampler:
    """Unadjusted MCLMC; ``warmup(key, x, n)`` runs :func:`pooled_warmup` for ``n`` steps.

    A step whose energy error exceeds ``energy_cutoff`` times its tuned typical size
    ``sqrt(desired_energy_var * d)`` (or is NaN) is rejected: the position stays and the
    velocity is redrawn (``acceptance`` 0; ``energy_error`` still reports the error). Such
    steps are integration failures, e.g. a trajectory thrown back by a Poisson likelihood's wall
    where an occupied cell's expected count goes to zero; kept, they throw the chain far out
    (measured on the benchmark's posterior: the spread of the low-k P(k) 1.4-1.8x too wide, its
    mean 1-2% high), while a Gaussian energy error passes a 30-sigma cutoff. A 10-sigma cutoff
    can freeze a chain for a thousand steps in a narrow valley where every step overshoots
    (measured on the benchmark's posterior at ``desired_energy_var = 3e-4``); at 30 sigma the
    rejections are the wall's (about 1% of steps there).

    Args:
        logdensity_fn: latent log density (a latent space of roughly unit widths).
        desired_energy_var: target variance of the energy error per dimension (sets the bias).
        energy_cutoff: rejection threshold in units of ``sqrt(desired_energy_var * d)``.
    """

    def step(key: Array, state: IntegratorState, tuning: MCLMCAdaptationState):
        key_step, key_velocity = jax.random.split(key)
        new_state, energy_error, finite = isokinetic.mclmc_kernel(
            key_step, state, logdensity_fn, tuning.L, tuning.step_size
        )
        cutoff = energy_cutoff * jnp.sqrt(desired_energy_var * pytree_size(state.position))
        accept = finite & (jnp.abs(energy_error) <= cutoff)
        stay = state._replace(momentum=isokinetic.unit_vector(key_velocity, state.position))
        new_state = jax.tree.map(lambda a, b: jnp.where(accept, a, b), new_state, stay)
        return new_state, StepInfo(
            acceptance=accept.astype(jnp.float32),
            energy_error=energy_error,
            num_grads=jnp.asarray(GRADS_PER_STEP, jnp.int32),
            divergent=jnp.logical_not(finite),
            tree_depth=jnp.zeros((), jnp.int32),
            step_size=jnp.asarray(tuning.step_size, jnp.float32),
        )

    def warmup(key: Array, position, num_steps: int):
        return pooled_warmup(
            logdensity_fn, key, position, num_steps, desired_energy_var, energy_cutoff
        )

    return Sampler(
        "mclmc", warmup, step, lambda state: state.position, warmup_forward_runs=_warmup_runs
    )


def _warmup_runs(num_steps: int) -> int:
    """Forward-model runs of one chain's :func:`pooled_warmup`: the starting point's
    gradient, then :data:`GRADS_PER_STEP` per step."""
    return 1 + GRADS_PER_STEP * num_steps


def pooled_warmup(
    logdensity_fn: Callable,
    key: Array,
    position,
    num_steps: int,
    desired_energy_var: float,
    energy_cutoff: float = ENERGY_CUTOFF,
) -> tuple[IntegratorState, MCLMCAdaptationState, Array]:
    """MCLMC tuning: ``L`` pooled over the chains, a step size per chain, robust to rare large
    energy errors.

    Each chain's step size is found by dual averaging of its own ``exp(-dE^2 / (2 v d))``
    (``dE`` the energy error of its step, ``v = desired_energy_var``, ``d`` the dimension)
    towards ``1/sqrt(2)``, the statistic's mean when ``dE`` is Gaussian with variance ``v d``.
    The statistic is bounded, so the rare steps whose energy error is thousands of times the
    typical one (a Poisson likelihood's wall where an occupied cell's expected count goes to
    zero) move the step size by a bounded amount; BlackJAX's tuner averages ``dE^2`` and such a
    step shrinks it several-fold. A step that returns NaN, or whose energy error exceeds
    ``energy_cutoff`` times ``sqrt(v d)`` (as in :func:`sampler`), is undone.

    Why a step size per chain, measured on the 64^3 fli-vs-ili posterior (2LPT, Neyrinck bias,
    262,146 dimensions, 4 chains started at the MAP plus a latent normal draw, 500 warm-up
    steps): the chains first climb towards the joint mode (log density up to 23,000 above the
    typical set, latent sigma8 up to 70 units from it), where the curvature is higher, then
    relax into the typical set. With one step size for all chains (the mean of their
    statistics), a chain still near the mode once that step had grown to suit the others met
    energy errors of about 300 (the others' about 1) and stayed there for the whole run (two
    runs out of two; split-Rhat of the low-k P(k) 1.5-2.0). With its own, that chain's step
    went down to 18 while the others' were 43-48, and all four reached the typical set
    (final steps 35-38). Why the cutoff: without it, a chain with its own step size was thrown
    where the log density is -2e8 and every later step is NaN. On issue 15's hard 16^3
    posterior (4 x 3000 steps) both tunings give the same ESS per gradient of the low-k P(k)
    (10.6, 12.0, 14.7 per 1000 with a step per chain; 10.7, 12.6, 12.8 pooled).

    ``L`` starts at ``sqrt(d)`` (unit latent widths) and ends at :data:`L_PER_WIDTH` times
    ``sqrt(sum of the position variances)`` measured over the second half; when the chains are
    vmapped with ``axis_name=CHAIN_AXIS`` the variances are averaged over them, so every chain
    gets the same ``L``.

    Returns:
        ``(state, tuning, num_grads)``.
    """
    key_init, key_run = jax.random.split(key)
    state = isokinetic.init(position, logdensity_fn, key_init)
    dim = pytree_size(position)
    da_init, da_update, da_final = dual_averaging_adaptation(2**-0.5)
    half = num_steps // 2
    L0 = jnp.sqrt(jnp.float32(dim))
    cutoff = energy_cutoff * jnp.sqrt(desired_energy_var * dim)

    def body(carry, xs):
        state, da_state, total, square = carry
        key, i = xs
        step_size = jnp.exp(da_state.log_step_size)
        new, energy_error, finite = isokinetic.mclmc_kernel(
            key, state, logdensity_fn, L0, step_size
        )
        stat = jnp.where(finite, jnp.exp(-(energy_error**2) / (2 * desired_energy_var * dim)), 0)
        da_state = da_update(da_state, stat)
        ok = finite & (jnp.abs(energy_error) <= cutoff)
        state = jax.tree.map(lambda a, b: jnp.where(ok, a, b), new, state)
        weight = (i >= half).astype(jnp.float32)
        total = jax.tree.map(lambda t, x: t + weight * x, total, state.position)
        square = jax.tree.map(lambda t, x: t + weight * x**2, square, state.position)
        return (state, da_state, total, square), None

    zero = jax.tree.map(jnp.zeros_like, position)
    carry = (state, da_init(0.25 * L0), zero, zero)
    steps = (jax.random.split(key_run, num_steps), jnp.arange(num_steps))
    (state, da_state, total, square), _ = jax.lax.scan(body, carry, steps)
    count = num_steps - half
    variance = jax.tree.map(
        lambda t, q: jnp.sum(chain_mean(q / count) - chain_mean(t / count) ** 2), total, square
    )
    tuning = MCLMCAdaptationState(
        L=L_PER_WIDTH * jnp.sqrt(sum(jax.tree.leaves(variance))),
        step_size=da_final(da_state),
        inverse_mass_matrix=jnp.ones((), jnp.float32),
    )
    return state, tuning, jnp.asarray(GRADS_PER_STEP * num_steps, jnp.int32)


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
