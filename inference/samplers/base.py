"""The interface every sampler offers the driver: warm-up, one step, and a per-step summary.

Samplers work on a latent pytree (see :mod:`inference.precondition`); their states are
BlackJAX-style NamedTuples. All functions are pure and compose with ``jit``, ``vmap`` and
``lax.scan``: the driver vmaps them over chains.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
from jax import Array

#: Axis name under which the driver vmaps its chains: a sampler's warm-up may average its
#: adaptation statistics over it (:func:`chain_mean`), so that all chains share one tuning.
CHAIN_AXIS = "chain"


class StepInfo(NamedTuple):
    """What one transition reports, common to all samplers (scalars per chain).

    acceptance: Metropolis acceptance probability (unadjusted MCLMC: 0 for a step rejected by
        its energy-error cutoff, else 1).
    energy_error: Delta H of the trajectory (MCLMC: its energy change).
    num_grads: gradient evaluations spent in this step.
    divergent: whether the trajectory diverged (or, for MCLMC, returned NaN).
    tree_depth: NUTS tree depth (0 for fixed-length samplers).
    step_size: integrator step size used.
    scalar_acceptance: mean acceptance probability of the scalar block's random walk in a
        Gibbs sweep (NaN for joint samplers, which have no scalar block).
    """

    acceptance: Array
    energy_error: Array
    num_grads: Array
    divergent: Array
    tree_depth: Array
    step_size: Array
    scalar_acceptance: Array | float = float("nan")


class Sampler(NamedTuple):
    """A tuned-sampler recipe.

    warmup: ``(key, position, num_steps) -> (state, tuning, num_grads)``: initialise at
        ``position`` and adapt the tuning parameters in ``num_steps`` steps.
    step: ``(key, state, tuning) -> (state, StepInfo)``.
    position: ``state -> position``.
    warmup_forward_runs: ``num_steps -> forward-model runs`` of one chain's warm-up when the
        sampler fixes that number (the warm-up's progress then shows a total and a time
        left), ``None`` when it varies (NUTS trees, Gibbs sweeps).
    """

    name: str
    warmup: Callable[[Array, Any, int], tuple[Any, Any, Array]]
    step: Callable[[Array, Any, Any], tuple[Any, StepInfo]]
    position: Callable[[Any], Any]
    warmup_forward_runs: Callable[[int], int] | None = None


def chain_mean(x: Array) -> Array:
    """Mean of ``x`` over the chains vmapped with ``axis_name=CHAIN_AXIS``; ``x`` itself when
    no such axis is bound (one chain, or independent posteriors vmapped as in SBC)."""
    try:
        return jax.lax.pmean(x, CHAIN_AXIS)
    except NameError:
        return x
