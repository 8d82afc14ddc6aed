"""FastPM kick-drift-kick N-body integration with an adjoint (reverse-time) gradient.

Equations of motion (H0 = 1, comoving x in Mpc/h): with ``vel = dx/dlna`` and
``G(a) = a^2 E(a)`` the canonical momentum is ``p = a^2 dx/dt = G vel`` and

    dp/dlna = (3/2) Omega_m / (a E) * acc,    acc = -grad(phi),  laplacian(phi) = delta.

FastPM (Feng et al. 2016) replaces the time integrals of kick and drift by ratios of growth
functions, so that the linear growing mode is integrated exactly for any step size. With
``Gp(a) = a^2 E D1 f1`` (the momentum of the growing mode per unit Psi1, whose derivative is
``dGp/dlna = (3/2) Omega_m D1 / (a E)``) a step a0 -> a1 with midpoint ah reads

    vel_h = c1 vel_0 + k1 acc_0,      c1 = G(a0)/G(ah),  k1 = [Gp(ah) - Gp(a0)] / (D1(a0) G(ah))
    disp_1 = disp_0 + d vel_h,         d = [D1(a1) - D1(a0)] / (D1(ah) f1(ah))
    acc_1 = acc(disp_1)
    vel_1 = c2 vel_h + k2 acc_1,      c2 = G(ah)/G(a1),  k2 = [Gp(a1) - Gp(ah)] / (D1(a1) G(a1))

The midpoint is arithmetic in a (``step_spacing="a"``) or geometric (``"loga"``). All
cosmology dependence is in the five factors per step, so the adjoint only needs their
cotangents, which autodiff then carries back to the cosmology and the growth table.

Adjoint: the step is time-reversible (solve the three updates backwards), so the backward
pass re-integrates the particles from the final state to the initial one, applying the
transposed step to the cotangents on the way; memory does not depend on the number of
steps. Per backward step: one force evaluation (reversal) and one force VJP.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from simulator import gravity
from simulator.config import SimConfig
from simulator.cosmology import Cosmology, E
from simulator.growth import GrowthTable, growth_at


class State(NamedTuple):
    """Particle state; leading axis of ``disp``/``vel`` is the particle index.

    Attributes:
        disp: displacement from the lattice in Mpc/h, ``(N, 3)``.
        vel: ``dx/dlna`` in Mpc/h, ``(N, 3)``.
        a: scale factor, scalar.
    """

    disp: Array
    vel: Array
    a: Array


def step_factors(
    cosmo: Cosmology, table: GrowthTable, a0: Array, a1: Array, spacing: str = "a"
) -> Array:
    """FastPM factors ``(c1, k1, d, c2, k2)`` of kick-drift-kick steps ``a0 -> a1``.

    Args:
        cosmo: cosmology; table: its ``growth_table``.
        a0, a1: step start and end scale factors, same shape ``S``.
        spacing: ``"a"`` (arithmetic midpoint) or ``"loga"`` (geometric midpoint).

    Returns:
        Array of shape ``S + (5,)``; ``d`` and the ``k``s are dimensionless.
    """
    ah = 0.5 * (a0 + a1) if spacing == "a" else jnp.sqrt(a0 * a1)
    g0, gh, g1 = (growth_at(table, a) for a in (a0, ah, a1))

    def big_g(a):
        return a**2 * E(a, cosmo)

    def gp(a, g):
        return big_g(a) * g.D1 * g.f1

    c1 = big_g(a0) / big_g(ah)
    k1 = (gp(ah, gh) - gp(a0, g0)) / (g0.D1 * big_g(ah))
    d = (g1.D1 - g0.D1) / (gh.D1 * gh.f1)
    c2 = big_g(ah) / big_g(a1)
    k2 = (gp(a1, g1) - gp(ah, gh)) / (g1.D1 * big_g(a1))
    return jnp.stack([c1, k1, d, c2, k2], axis=-1)


def time_step_factors(cosmo: Cosmology, table: GrowthTable, conf: SimConfig, dtype) -> Array:
    """FastPM factors of every step of ``conf.time_grid()``, shape ``(n_steps, 5)``."""
    grid = conf.time_grid()
    a0, a1 = jnp.asarray(grid[:-1], dtype), jnp.asarray(grid[1:], dtype)
    return step_factors(cosmo, table, a0, a1, conf.step_spacing).astype(dtype)


class Forces(NamedTuple):
    """PM force functions of the integrator, as a static (hashable) argument.

    ``None`` in place of a ``Forces`` means the single-device ``simulator.gravity``
    functions for the configuration; ``simulator.distributed.pm.sharded_forces`` gives the
    sharded ones. Hashing is by identity of the callables, so build each ``Forces`` once
    and reuse it (each new one is a new static argument and compiles again).

    Attributes:
        acceleration: ``disp (N, 3) -> acc (N, 3)``, both in Mpc/h.
        acceleration_and_mesh: ``disp -> (acc, mesh)`` with the force mesh
            ``(n, n, n, 3)`` that ``acceleration_vjp`` reuses.
        acceleration_vjp: ``(disp, mesh, acc_ct) -> disp_ct`` ``(N, 3)``, the cotangent of
            ``disp`` for ``acceleration(disp)``.
    """

    acceleration: Callable[[Array], Array]
    acceleration_and_mesh: Callable[[Array], tuple[Array, Array]]
    acceleration_vjp: Callable[[Array, Array, Array], Array]


def _forces(forces: Forces | None, conf: SimConfig) -> Forces:
    """``forces``, or the single-device gravity functions of ``conf`` for ``None``."""
    if forces is not None:
        return forces
    return Forces(
        partial(gravity.acceleration, conf=conf),
        partial(gravity.acceleration_and_mesh, conf=conf),
        partial(gravity.acceleration_vjp, conf=conf),
    )


def _kdk(carry, fac: Array, accel: Callable[[Array], Array]):
    """One kick-drift-kick step of ``(disp, vel, acc)`` with factors ``fac`` (5,)."""
    disp, vel, acc = carry
    c1, k1, d, c2, k2 = fac
    vel_h = c1 * vel + k1 * acc
    disp = disp + d * vel_h
    acc = accel(disp)
    return disp, c2 * vel_h + k2 * acc, acc


def kdk_step(
    state: State,
    acc: Array,
    cosmo: Cosmology,
    table: GrowthTable,
    conf: SimConfig,
    a1: float,
    forces: Forces | None = None,
) -> tuple[State, Array]:
    """One FastPM step from ``state.a`` to ``a1``.

    Args:
        state: particles at ``state.a``; acc: their acceleration ``(N, 3)`` (Mpc/h).
        cosmo, table: cosmology and its growth table.
        conf: configuration; a1: end scale factor.
        forces: force functions (``None``: single-device ``simulator.gravity``).

    Returns:
        ``(state at a1, acceleration at a1)``.
    """
    a1 = jnp.asarray(a1, state.disp.dtype)
    fac = step_factors(cosmo, table, state.a, a1, conf.step_spacing).astype(state.disp.dtype)
    accel = _forces(forces, conf).acceleration
    disp, vel, acc = _kdk((state.disp, state.vel, acc), fac, accel)
    return State(disp, vel, a1), acc


def _integrate_plain(disp, vel, factors, conf, progress, offset, forces):
    accel = _forces(forces, conf).acceleration

    def body(carry, x):
        fac, i = x
        if progress is not None:
            jax.debug.callback(progress, i)
        return _kdk(carry, fac, accel), None

    carry = (disp, vel, accel(disp))
    steps = jnp.arange(factors.shape[0]) + offset
    carry, _ = jax.lax.scan(body, carry, (factors, steps))
    return carry


@partial(jax.custom_vjp, nondiff_argnums=(3, 4, 5, 6))
def _integrate_adjoint(disp, vel, factors, conf, progress, offset, forces):
    return _integrate_plain(disp, vel, factors, conf, progress, offset, forces)[:2]


def _adjoint_fwd(disp, vel, factors, conf, progress, offset, forces):
    disp, vel, acc = _integrate_plain(disp, vel, factors, conf, progress, offset, forces)
    return (disp, vel), (disp, vel, acc, factors)


def _unkdk(x: Array, v: Array, acc: Array, fac: Array, forces: Forces):
    """Invert one step: from the end state ``(x, v, acc)`` back to its start.

    Returns:
        ``(x0, v_h, v0, acc0, mesh0)``: start displacement, mid-step velocity, start
        velocity, start acceleration and its force mesh.
    """
    c1, k1, d, c2, k2 = fac
    v_h = (v - k2 * acc) / c2
    x0 = x - d * v_h
    acc0, mesh0 = forces.acceleration_and_mesh(x0)
    return x0, v_h, (v_h - k1 * acc0) / c1, acc0, mesh0


def integrate_backward(
    disp: Array, vel: Array, factors: Array, conf: SimConfig, forces: Forces | None = None
) -> tuple[Array, Array]:
    """Undo ``integrate``: run the steps with factors ``factors`` ``(steps, 5)`` backwards from
    the final ``(disp, vel)`` ``(N, 3)`` and return the initial ones (up to round-off).
    ``forces`` as for ``integrate``."""
    forces = _forces(forces, conf)

    def body(carry, fac):
        x0, _, v0, acc0, _ = _unkdk(*carry, fac, forces)
        return (x0, v0, acc0), None

    carry = (disp, vel, forces.acceleration(disp))
    (disp, vel, _), _ = jax.lax.scan(body, carry, factors, reverse=True)
    return disp, vel


def _adjoint_bwd(conf, progress, offset, forces, res, cts):
    forces = _forces(forces, conf)
    disp, vel, acc, factors = res
    disp_ct, vel_ct = cts
    mesh = forces.acceleration_and_mesh(disp)[1]

    def body(carry, fac):
        x, v, a, g, x_ct, v_ct, a_ct = carry
        c1, k1, d, c2, k2 = fac
        x0, v_h, v0, a0, g0 = _unkdk(x, v, a, fac, forces)
        # transpose of the second kick and of the force at x
        a_ct = a_ct + k2 * v_ct
        c2_ct, k2_ct = jnp.vdot(v_ct, v_h), jnp.vdot(v_ct, a)
        v_h_ct = c2 * v_ct
        x_ct = x_ct + forces.acceleration_vjp(x, g, a_ct)
        # transpose of the drift
        d_ct = jnp.vdot(x_ct, v_h)
        v_h_ct = v_h_ct + d * x_ct
        # transpose of the first kick
        c1_ct, k1_ct = jnp.vdot(v_h_ct, v0), jnp.vdot(v_h_ct, a0)
        fac_ct = jnp.stack([c1_ct, k1_ct, d_ct, c2_ct, k2_ct]).astype(fac.dtype)
        return (x0, v0, a0, g0, x_ct, c1 * v_h_ct, k1 * v_h_ct), fac_ct

    zeros = jnp.zeros_like(acc)
    carry = (disp, vel, acc, mesh, disp_ct, vel_ct, zeros)
    carry, fac_cts = jax.lax.scan(body, carry, factors, reverse=True)
    x0, _, _, g0, x_ct, v_ct, a_ct = carry
    x_ct = x_ct + forces.acceleration_vjp(x0, g0, a_ct)
    return x_ct, v_ct, fac_cts


_integrate_adjoint.defvjp(_adjoint_fwd, _adjoint_bwd)


def integrate(
    disp: Array,
    vel: Array,
    factors: Array,
    conf: SimConfig,
    progress: Callable[[Array], None] | None = None,
    offset: int = 0,
    forces: Forces | None = None,
) -> tuple[Array, Array]:
    """Run ``factors.shape[0]`` FastPM steps from ``(disp, vel)``.

    Differentiable by the adjoint method (``conf.gradient == "adjoint"``) or by plain
    autodiff (``"autodiff"``, which also supports forward mode).

    Args:
        disp, vel: initial displacement and ``dx/dlna`` in Mpc/h, ``(N, 3)``.
        factors: per-step FastPM factors, ``(steps, 5)`` (see ``step_factors``).
        conf: configuration.
        progress: optional host callback called with the global step index.
        offset: index of the first step (for ``progress``).
        forces: force functions, a static argument (``None``: single-device
            ``simulator.gravity``; see ``Forces``).

    Returns:
        Final ``(disp, vel)``.
    """
    if conf.gradient == "adjoint":
        return _integrate_adjoint(disp, vel, factors, conf, progress, offset, forces)
    return _integrate_plain(disp, vel, factors, conf, progress, offset, forces)[:2]


def nbody(
    state: State,
    cosmo: Cosmology,
    table: GrowthTable,
    conf: SimConfig,
    progress: Callable[[Array], None] | None = None,
    forces: Forces | None = None,
) -> tuple[State, tuple[State, ...]]:
    """Integrate LPT initial conditions from ``conf.a_start`` to ``conf.a_stop``.

    Args:
        state: initial particles at ``conf.a_start`` (e.g. from ``lpt``).
        cosmo: cosmology; table: ``growth_table(cosmo)``.
        conf: configuration (time grid ``conf.time_grid()``, snapshots, gradient method).
        progress: optional host callback ``progress(step_index)`` after each step.
        forces: force functions (``None``: single-device ``simulator.gravity``; see
            ``Forces``).

    Returns:
        ``(final_state, snapshots)`` where ``snapshots`` holds one ``State`` per
        ``conf.snapshots`` entry, in increasing ``a``.
    """
    dtype = state.disp.dtype
    grid = conf.time_grid()
    factors = time_step_factors(cosmo, table, conf, dtype)
    cuts = [int(np.argmin(np.abs(grid - a))) for a in conf.snapshots]
    bounds = sorted(set(cuts) | {len(grid) - 1})
    disp, vel, start = state.disp, state.vel, 0
    states = {}
    for stop in bounds:
        disp, vel = integrate(disp, vel, factors[start:stop], conf, progress, start, forces)
        states[stop] = State(disp, vel, jnp.asarray(grid[stop], dtype))
        start = stop
    return states[len(grid) - 1], tuple(states[c] for c in cuts)
