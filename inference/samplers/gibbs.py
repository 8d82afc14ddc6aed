"""Block (Metropolis-within-Gibbs) updates: the field with the scalars held fixed, then the
scalars with the field held fixed, as BORG alternates its density and bias samplers.

One transition is

1. a step of a field kernel (BORG-HMC, MCLMC, NUTS...) on the conditional ``p(s | scalars)``;
2. ``scalar_steps`` random-walk Metropolis proposals of the scalar block (bias, noise,
   cosmology) on ``p(scalars | s)``, in latent units where the conditional width is ~1,
   with an isotropic Gaussian proposal whose scale is adapted in warm-up;
3. the field kernel's cached log density and gradient refreshed at the new scalars.

Each block kernel leaves its conditional invariant, so the sweep leaves the joint posterior
invariant (exactly for Metropolis-adjusted field kernels). The scalar block's log density comes
from a :class:`ScalarConditional`: by default the full log density (one forward-model run per
proposal); a posterior can instead run the forward model once per sweep and reuse its fields
for every proposal (:func:`inference.precondition.latent_scalar_conditional`), which makes the
scalar block nearly free when no cosmological parameter is sampled.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import Array
from jax.flatten_util import ravel_pytree

from inference.samplers.base import Sampler, StepInfo

#: Name of the field leaf of a latent position; every other top-level entry is a scalar group.
FIELD = "s"


class GibbsState(NamedTuple):
    """State of a sweep: the field kernel's state (its position is the latent ``s``), the
    latent scalar groups ``{group: {name: value}}``, and the joint latent log density."""

    field: Any
    scalars: dict
    logdensity: Array


class GibbsTuning(NamedTuple):
    """The field kernel's tuning and the scalar random walk's proposal scale (latent units)."""

    field: Any
    scalar_scale: Array


class ScalarConditional(NamedTuple):
    """How to evaluate the scalar block's log density given the field.

    build: ``position -> (scalars -> log density)`` at the field of the latent ``position``;
        the returned function may differ from the joint log density by a function of ``s``.
    build_grads: gradient-equivalents charged once per sweep for ``build`` (a forward run).
    eval_grads: gradient-equivalents charged per evaluation of the built function.
    """

    build: Callable[[dict], Callable[[dict], Array]]
    build_grads: int
    eval_grads: int


def generic_conditional(logdensity_fn: Callable[[dict], Array]) -> ScalarConditional:
    """The scalar block's log density as the joint one at fixed ``s`` (a forward run each)."""

    def build(position: dict) -> Callable[[dict], Array]:
        return lambda scalars: logdensity_fn({**position, **scalars})

    return ScalarConditional(build, 0, 1)


def scalar_kernel(
    key: Array,
    scalars: dict,
    logdensity_fn: Callable[[dict], Array],
    scale: Array,
    num_steps: int,
) -> tuple[dict, Array]:
    """``num_steps`` random-walk Metropolis steps of a pytree of scalars.

    Args:
        key: PRNG key.
        scalars: pytree of scalar arrays (the latent scalar groups).
        logdensity_fn: log density of that pytree (the conditional given the field).
        scale: standard deviation of the isotropic Gaussian proposal (latent units).
        num_steps: proposals made (>= 1).

    Returns:
        ``(scalars, mean acceptance probability)``.
    """
    flat, unravel = ravel_pytree(scalars)

    def one(carry, k):
        x, lp = carry
        key_prop, key_acc = jax.random.split(k)
        y = x + scale * jax.random.normal(key_prop, x.shape, x.dtype)
        lq = logdensity_fn(unravel(y))
        log_ratio = jnp.where(jnp.isfinite(lq), lq - lp, -jnp.inf)
        accept = jnp.log(jax.random.uniform(key_acc)) < log_ratio
        prob = jnp.exp(jnp.minimum(log_ratio, 0.0))
        return (jnp.where(accept, y, x), jnp.where(accept, lq, lp)), prob

    (x, _), probs = jax.lax.scan(
        one, (flat, logdensity_fn(unravel(flat))), jax.random.split(key, num_steps)
    )
    return unravel(x), jnp.mean(probs)


def refresh(state: Any, logdensity_fn: Callable[[Array], Array]) -> Any:
    """A field kernel's state with its cached log density and gradient recomputed for a new
    target (momenta and other entries kept); works for BlackJAX's HMC, MCLMC and MAMS states."""
    value, grad = jax.value_and_grad(logdensity_fn)(state.position)
    return state._replace(logdensity=value, logdensity_grad=grad)


def sampler(
    logdensity_fn: Callable[[dict], Array],
    field_factory: Callable[[Callable[[Array], Array]], Sampler],
    conditional: ScalarConditional | None = None,
    scalar_steps: int = 8,
    target_acceptance: float = 0.4,
) -> Sampler:
    """Gibbs sweeps of a field kernel and a random walk on the scalars.

    Args:
        logdensity_fn: joint latent log density of ``{"s": (m, m, m), group: {name: ()}}``.
        field_factory: ``field log density -> Sampler`` (e.g. ``borg_hmc.sampler``); it is
            called on the conditional of ``s`` at the current scalars.
        conditional: the scalar block's log density; default :func:`generic_conditional`.
        scalar_steps: random-walk proposals of the scalars per sweep (>= 1).
        target_acceptance: acceptance rate the proposal scale is adapted to, in (0, 1).

    Warm-up of ``n`` steps: the field kernel's own warm-up for ``n // 2`` steps at the starting
    scalars, ``n // 4`` scalar-only sweeps at the warmed-up field (cheap; the proposal scale
    adapts), then the remaining sweeps of both blocks with the scale still adapting.
    """
    if scalar_steps < 1:
        raise ValueError(f"scalar_steps={scalar_steps} is not allowed: need at least 1")
    if not 0.0 < target_acceptance < 1.0:
        raise ValueError(f"target_acceptance={target_acceptance} must be in (0, 1)")
    conditional = conditional or generic_conditional(logdensity_fn)
    scalar_grads = conditional.build_grads + (scalar_steps + 1) * conditional.eval_grads

    def field_target(scalars: dict) -> Callable[[Array], Array]:
        return lambda s: logdensity_fn({**scalars, FIELD: s})

    def position(state: GibbsState) -> dict:
        return {**state.scalars, FIELD: state.field.position}

    def update_scalars(key, field_state, scalars, scale):
        if not jax.tree.leaves(scalars):
            return field_state, scalars, jnp.ones((), jnp.float32), 0
        target = conditional.build({**scalars, FIELD: field_state.position})
        scalars, acc = scalar_kernel(key, scalars, target, scale, scalar_steps)
        return refresh(field_state, field_target(scalars)), scalars, acc, scalar_grads + 1

    def sweep(key, state: GibbsState, tuning: GibbsTuning):
        key_field, key_scalar = jax.random.split(key)
        field = field_factory(field_target(state.scalars))
        field_state, info = field.step(key_field, state.field, tuning.field)
        field_state, scalars, acc, grads = update_scalars(
            key_scalar, field_state, state.scalars, tuning.scalar_scale
        )
        info = info._replace(num_grads=info.num_grads + grads, scalar_acceptance=acc)
        return GibbsState(field_state, scalars, field_state.logdensity), info, acc

    def step(key: Array, state: GibbsState, tuning: GibbsTuning) -> tuple[GibbsState, StepInfo]:
        state, info, _ = sweep(key, state, tuning)
        return state, info

    def adapt(log_scale: Array, acc: Array, t: Array) -> Array:
        return log_scale + (acc - target_acceptance) / (1.0 + t) ** 0.6

    def warmup(key: Array, start: dict, num_steps: int):
        key_field, key_scalar, key_sweep = jax.random.split(key, 3)
        scalars = {g: v for g, v in start.items() if g != FIELD}
        dim = max(ravel_pytree(scalars)[0].size, 1)
        log_scale = jnp.log(jnp.asarray(2.4 / dim**0.5, jnp.float32))
        n_field, n_scalar = max(num_steps // 2, 1), max(num_steps // 4, 1)
        n_sweep = max(num_steps - n_scalar - n_field, 1)

        field = field_factory(field_target(scalars))
        field_state, field_tuning, grads = field.warmup(key_field, start[FIELD], n_field)
        if jax.tree.leaves(scalars):
            target = conditional.build({**scalars, FIELD: field_state.position})

            def scalar_only(carry, k):
                scalars, log_scale, t = carry
                scale = jnp.exp(log_scale)
                scalars, acc = scalar_kernel(k, scalars, target, scale, scalar_steps)
                return (scalars, adapt(log_scale, acc, t), t + 1), None

            (scalars, log_scale, _), _ = jax.lax.scan(
                scalar_only,
                (scalars, log_scale, jnp.zeros((), jnp.float32)),
                jax.random.split(key_scalar, n_scalar),
            )
            field_state = refresh(field_state, field_target(scalars))
            evals = n_scalar * (scalar_steps + 1) * conditional.eval_grads
            grads = grads + conditional.build_grads + evals + 1
        state = GibbsState(field_state, scalars, field_state.logdensity)

        def both(carry, k):
            state, log_scale, t = carry
            state, info, acc = sweep(k, state, GibbsTuning(field_tuning, jnp.exp(log_scale)))
            return (state, adapt(log_scale, acc, t), t + 1), info.num_grads

        (state, log_scale, _), sweep_grads = jax.lax.scan(
            both,
            (state, log_scale, jnp.asarray(n_scalar, jnp.float32)),
            jax.random.split(key_sweep, n_sweep),
        )
        total = grads + jnp.sum(sweep_grads)
        return state, GibbsTuning(field_tuning, jnp.exp(log_scale)), total

    return Sampler("gibbs", warmup, step, position)
