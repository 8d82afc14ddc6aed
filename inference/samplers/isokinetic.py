"""Isokinetic (ESH) dynamics of MCLMC written leaf by leaf on the position's pytree.

BlackJAX's MCLMC kernel concatenates the position's leaves into one vector at every velocity
update and refresh (``ravel_pytree``). When the position holds a field sharded in slabs beside
replicated scalars (a sharded posterior with the bias or the cosmology sampled jointly), that
concatenation gathers the whole field onto every device at each integrator step. Here every
reduction over the dimensions is a sum of per-leaf sums, so each leaf keeps its sharding and
only scalars cross devices.

The dynamics are those of Robnik et al. (2023) with the identity mass (cosmolaw's latent space
has roughly unit widths): the velocity ``u`` is a unit vector over all ``d`` dimensions; a
velocity update by ``eps`` along the unit gradient ``e = g / |g|`` is the exact solution

    u' ~ e (1 - z) (1 + z + u.e (1 - z)) + 2 z u,   z = exp(-eps |g| / (d - 1)),

normalised, and changes the kinetic energy by
``(d - 1) (eps |g| / (d - 1) - ln 2 + ln(1 + u.e + z^2 (1 - u.e)))``. The integrator is
McLachlan's minimal-norm scheme (velocity ``b eps``, position ``eps / 2``, velocity
``(1 - 2 b) eps``, position ``eps / 2``, velocity ``b eps``; two gradients per step), and the
velocity is partially refreshed by ``eps / 2`` before and after it (decoherence length ``L``).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from blackjax.mcmc.integrators import IntegratorState
from blackjax.util import pytree_size
from jax import Array

#: McLachlan's minimal-norm coefficient of the outer velocity updates.
MCLACHLAN_B = 0.1931833275037836
#: Gradient norms below this are treated as zero (the velocity then keeps its direction).
GRADIENT_TOLERANCE = 1e-13


def tree_vdot(a, b) -> Array:
    """``sum_i a_i b_i`` over every entry of two pytrees of the same structure (float32)."""
    parts = jax.tree.map(lambda x, y: jnp.sum(x * y, dtype=jnp.float32), a, b)
    return sum(jax.tree.leaves(parts), jnp.zeros((), jnp.float32))


def tree_all_finite(tree) -> Array:
    """Whether every entry of ``tree`` is finite (a boolean scalar)."""
    flags = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)]
    return jnp.all(jnp.stack(flags))


def _scale(tree, factor: Array):
    return jax.tree.map(lambda x: (x * factor).astype(x.dtype), tree)


def _normalised(tree):
    return _scale(tree, jax.lax.rsqrt(tree_vdot(tree, tree)))


def normal_like(key: Array, like):
    """Independent standard normal entries with the structure, shapes and dtypes of ``like``
    (one key per leaf, so a sharded leaf is drawn where it lives)."""
    leaves, treedef = jax.tree.flatten(like)
    keys = jax.random.split(key, len(leaves))
    draws = [
        jax.random.normal(k, jnp.shape(x), jnp.result_type(x))
        for k, x in zip(keys, leaves, strict=True)
    ]
    return jax.tree.unflatten(treedef, draws)


def unit_vector(key: Array, like):
    """An isotropic random unit vector with the structure, shapes and dtypes of ``like``."""
    return _normalised(normal_like(key, like))


def refresh_velocity(key: Array, velocity, step_size: Array, L: Array):
    """Partial refresh of the unit ``velocity`` over a time ``step_size``: Gaussian noise of
    variance ``(exp(2 step_size / L) - 1) / d`` per entry added, then normalised; unchanged
    when ``L`` is infinite."""
    dim = pytree_size(velocity)
    nu = jnp.sqrt(jnp.expm1(2.0 * step_size / L) / dim)
    kicked = jax.tree.map(lambda u, z: u + nu * z, velocity, normal_like(key, velocity))
    return jax.tree.map(
        lambda new, old: jnp.where(jnp.isinf(L), old, new), _normalised(kicked), velocity
    )


def velocity_update(velocity, gradient, step_size: Array, dim: int) -> tuple[object, Array]:
    """ESH velocity update of the unit ``velocity`` by ``step_size`` along ``gradient`` of the
    log density. Returns the new unit velocity and the kinetic energy change."""
    g_norm = jnp.sqrt(tree_vdot(gradient, gradient))
    e = _scale(gradient, jnp.where(g_norm > GRADIENT_TOLERANCE, 1.0 / g_norm, 1.0))
    ue = tree_vdot(velocity, e)
    delta = step_size * g_norm / (dim - 1)
    z = jnp.exp(-delta)
    a = (1 - z) * (1 + z + ue * (1 - z))
    raw = jax.tree.map(lambda u, ei: a * ei + 2 * z * u, velocity, e)
    kinetic = (dim - 1) * (delta - jnp.log(2.0) + jnp.log(1 + ue + z**2 * (1 - ue)))
    return _normalised(raw), kinetic


def mclachlan_step(
    logdensity_fn: Callable, state: IntegratorState, step_size: Array
) -> tuple[IntegratorState, Array]:
    """One deterministic McLachlan step of the isokinetic dynamics (two gradients).

    Returns the new state (``momentum`` holds the unit velocity) and the kinetic energy
    change; the energy error of the step is that minus the change of the log density.
    """
    dim = pytree_size(state.position)
    value_and_grad = jax.value_and_grad(logdensity_fn)
    x, logdensity, grad = state.position, state.logdensity, state.logdensity_grad
    u, kinetic = velocity_update(state.momentum, grad, MCLACHLAN_B * step_size, dim)
    for b in (1.0 - 2.0 * MCLACHLAN_B, MCLACHLAN_B):
        x = jax.tree.map(lambda xi, ui: xi + 0.5 * step_size * ui, x, u)
        logdensity, grad = value_and_grad(x)
        u, dk = velocity_update(u, grad, b * step_size, dim)
        kinetic = kinetic + dk
    return IntegratorState(x, u, logdensity, grad), kinetic


def mclmc_kernel(
    key: Array, state: IntegratorState, logdensity_fn: Callable, L: Array, step_size: Array
) -> tuple[IntegratorState, Array, Array]:
    """One unadjusted MCLMC step: refresh by ``step_size / 2``, a McLachlan step, refresh by
    ``step_size / 2``.

    Returns ``(new_state, energy_error, finite)``; ``finite`` is False when the new position,
    velocity, log density or energy error is not finite (the caller decides what to keep).
    """
    k_before, k_after = jax.random.split(key)
    state = state._replace(momentum=refresh_velocity(k_before, state.momentum, step_size / 2, L))
    new, kinetic = mclachlan_step(logdensity_fn, state, step_size)
    new = new._replace(momentum=refresh_velocity(k_after, new.momentum, step_size / 2, L))
    energy_error = kinetic - new.logdensity + state.logdensity
    finite = (
        tree_all_finite(new.position)
        & tree_all_finite(new.momentum)
        & jnp.isfinite(new.logdensity)
        & jnp.isfinite(energy_error)
    )
    return new, energy_error, finite


def init(position, logdensity_fn: Callable, key: Array) -> IntegratorState:
    """The MCLMC state at ``position``: its log density and gradient, a random unit velocity."""
    logdensity, grad = jax.value_and_grad(logdensity_fn)(position)
    return IntegratorState(position, unit_vector(key, position), logdensity, grad)
