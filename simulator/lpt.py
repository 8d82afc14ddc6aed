"""Lagrangian perturbation theory (1LPT and 2LPT) initial conditions on the particle lattice.

Convention (shared with ``simulator.growth``): the displacement is

    Psi(q, a) = D1(a) Psi1(q) + D2(a) Psi2(q),
    div Psi1 = -delta_L,   div Psi2 = sum_{i<j} [phi_ii phi_jj - phi_ij^2],

with ``laplacian(phi) = delta_L`` the linear field at a = 1 and ``D2 ~ -(3/7) D1^2`` (the sign
of the second-order term lives in D2). The velocity is ``vel = dx/dlna
= D1 f1 Psi1 + D2 f2 Psi2``.

When the mesh is finer than the particle grid, the displacement is computed from the
linear field's Fourier modes that the particle lattice can represent (|k_i| below the
lattice Nyquist frequency), on the lattice's own FFT grid. Sampling the mesh-resolution
displacement at the lattice points instead would alias the modes above the lattice
Nyquist frequency onto large scales.
"""

from __future__ import annotations

from collections.abc import Callable

import jax.numpy as jnp
from jax import Array

from simulator import fft
from simulator.config import SimConfig
from simulator.fourier import gradient_kernels, wavenumbers
from simulator.growth import GrowthTable, growth_at
from simulator.nbody import State


def lattice_modes(
    delta_lin: Array, conf: SimConfig, *, rfftn: Callable[..., Array] = fft.rfftn
) -> Array:
    """Fourier modes of the linear field restricted to the particle lattice.

    Args:
        delta_lin: linear density contrast on the mesh, shape ``(mesh, mesh, mesh)``.
        conf: configuration (mesh and particle grid sizes).
        rfftn: real FFT ``rfftn(field, keep=m)`` returning only the modes of an ``m^3``
            mesh (``simulator.fft.rfftn`` or the sharded ``simulator.distributed.fft``).

    Returns:
        ``rfftn`` modes on the lattice, shape ``(m, m, m // 2 + 1)`` with ``m = ptcl_grid``,
        normalised so that ``irfftn`` gives the field sampled on the lattice. The lattice
        Nyquist planes are zero.
    """
    n, m = conf.mesh, conf.ptcl_grid
    modes = rfftn(delta_lin, keep=m)
    if m != n:
        modes = modes * (m / n) ** 3
    mask = jnp.ones(m).at[m // 2].set(0.0)
    return modes * mask[:, None, None] * mask[None, :, None] * mask[None, None, : m // 2 + 1]


def lpt_displacements(
    delta_lin: Array,
    conf: SimConfig,
    *,
    rfftn: Callable[..., Array] = fft.rfftn,
    irfftn: Callable[[Array], Array] = fft.irfftn,
) -> tuple[Array, Array]:
    """First- and second-order displacement fields ``Psi1`` and ``Psi2`` on the lattice.

    Args:
        delta_lin: linear density contrast at a = 1 on the mesh, ``(mesh, mesh, mesh)``.
        conf: configuration (``lpt_order = 1`` gives ``Psi2 = 0``).
        rfftn, irfftn: real FFT pair (see ``lattice_modes``); the sharded ones of
            ``simulator.distributed.fft`` give the same fields sharded by slab.

    Returns:
        ``(psi1, psi2)`` in Mpc/h, each of shape ``(N, 3)`` in lattice order.
    """
    m = conf.ptcl_grid
    dtype = delta_lin.dtype
    delta_k = lattice_modes(delta_lin, conf, rfftn=rfftn)
    kx, ky, kz = wavenumbers(m, conf.box, dtype)
    k2 = kx**2 + ky**2 + kz**2
    inv_k2 = jnp.where(k2 > 0, 1.0 / jnp.where(k2 > 0, k2, 1.0), 0.0)
    grads = gradient_kernels(m, conf.box, "exact", dtype)

    def to_real(field_k: Array) -> Array:
        return irfftn(field_k).astype(dtype)

    def displacement(source_k: Array, sign: float) -> Array:
        # Psi = sign * grad(laplacian^-1 source): Psi_k = -sign * i k source_k / k^2
        comps = [to_real(-sign * 1j * g * inv_k2 * source_k) for g in grads]
        return jnp.stack(comps, axis=-1).reshape(-1, 3)

    psi1 = displacement(delta_k, -1.0)
    if conf.lpt_order == 1:
        return psi1, jnp.zeros_like(psi1)
    phi_k = -delta_k * inv_k2
    hess = {(i, j): to_real(-grads[i] * grads[j] * phi_k) for i in range(3) for j in range(i, 3)}
    source = (
        hess[0, 0] * hess[1, 1]
        + hess[1, 1] * hess[2, 2]
        + hess[2, 2] * hess[0, 0]
        - hess[0, 1] ** 2
        - hess[1, 2] ** 2
        - hess[0, 2] ** 2
    )
    psi2 = displacement(rfftn(source), 1.0)
    return psi1, psi2


def lpt(
    delta_lin: Array,
    table: GrowthTable,
    conf: SimConfig,
    a: float | None = None,
    *,
    rfftn: Callable[..., Array] = fft.rfftn,
    irfftn: Callable[[Array], Array] = fft.irfftn,
) -> State:
    """LPT particle state at scale factor ``a`` (default ``conf.a_start``).

    Args:
        delta_lin: linear density contrast at a = 1 on the mesh, ``(mesh, mesh, mesh)``.
        table: ``growth_table(cosmo)``.
        conf: configuration (``lpt_order``, particle grid).
        a: scale factor.
        rfftn, irfftn: real FFT pair (see ``lpt_displacements``).

    Returns:
        ``State`` with ``disp`` (Mpc/h) and ``vel = dx/dlna`` (Mpc/h), each ``(N, 3)``.
    """
    a = conf.a_start if a is None else a
    psi1, psi2 = lpt_displacements(delta_lin, conf, rfftn=rfftn, irfftn=irfftn)
    g = growth_at(table, jnp.asarray(a, delta_lin.dtype))
    disp = g.D1 * psi1 + g.D2 * psi2
    vel = g.D1 * g.f1 * psi1 + g.D2 * g.f2 * psi2
    return State(disp.astype(delta_lin.dtype), vel.astype(delta_lin.dtype), jnp.asarray(a))
