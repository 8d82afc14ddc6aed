"""Particle-mesh gravity: density painting, Fourier Poisson solver and forces on particles.

The acceleration is ``acc = -grad(phi)`` with ``laplacian(phi) = delta`` on the mesh, in
Mpc/h (``delta`` the CIC density contrast). Cosmology enters only through the FastPM
kick factors (``simulator.nbody``), so the force is a function of positions alone.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax import Array

from simulator import cic, fft
from simulator.config import SimConfig
from simulator.fourier import cic_window, gradient_kernels, wavenumbers


def lattice(conf: SimConfig) -> Array:
    """Lagrangian lattice ``q = i * box / ptcl_grid`` in Mpc/h, shape ``(N, 3)`` (C order)."""
    m = conf.ptcl_grid
    i = jnp.arange(m, dtype=conf.float_dtype) * (conf.box / m)
    q = jnp.stack(jnp.meshgrid(i, i, i, indexing="ij"), axis=-1)
    return q.reshape(-1, 3)


def mesh_positions(disp: Array, conf: SimConfig) -> Array:
    """Particle positions ``(q + disp)`` in mesh-cell units (unwrapped), shape ``(N, 3)``."""
    return (lattice(conf) + disp) * (conf.mesh / conf.box)


def density_contrast(disp: Array, conf: SimConfig, weights: Array | None = None) -> Array:
    """CIC density contrast ``rho / mean(rho) - 1`` of the particles on the mesh.

    Args:
        disp: displacements in Mpc/h, shape ``(N, 3)``.
        conf: simulation configuration (mesh, box, particle grid).
        weights: optional per-particle masses ``(N,)`` (mean 1); ``None`` for equal masses.

    Returns:
        Density contrast, shape ``(mesh, mesh, mesh)``.
    """
    counts = cic.paint(
        mesh_positions(disp, conf),
        conf.mesh,
        weights,
        conf.chunk_size,
        custom_vjp=conf.gradient == "adjoint",
    )
    return counts * (conf.mesh**3 / conf.num_particles) - 1.0


def _force_kernels(conf: SimConfig) -> tuple[Array, ...]:
    """Real factors ``K_j / k^2`` (Mpc/h) with ``acc_k = i K_j / k^2 delta_k``, ``K`` the gradient
    kernel; optionally divided by the squared CIC window (paint and readout)."""
    dtype = conf.float_dtype
    kx, ky, kz = wavenumbers(conf.mesh, conf.box, dtype)
    k2 = kx**2 + ky**2 + kz**2
    inv_k2 = jnp.where(k2 > 0, 1.0 / jnp.where(k2 > 0, k2, 1.0), 0.0)
    if conf.cic_deconvolve:
        inv_k2 = inv_k2 / cic_window(conf.mesh, dtype) ** 2
    return tuple(
        g * inv_k2 for g in gradient_kernels(conf.mesh, conf.box, conf.gradient_kernel, dtype)
    )


def force_mesh(
    delta: Array,
    conf: SimConfig,
    *,
    rfftn: Callable[[Array], Array] = fft.rfftn,
    irfftn: Callable[[Array], Array] = fft.irfftn,
) -> Array:
    """Acceleration ``-grad(phi)``, ``laplacian(phi) = delta``, on the mesh.

    Args:
        delta: density contrast, shape ``(n, n, n)``.
        conf: configuration (gradient kernel, CIC deconvolution).
        rfftn, irfftn: real FFT pair of ``(n, n, n)`` meshes (``simulator.fft``, or the
            sharded ones of ``simulator.distributed.fft`` bound to a device mesh).

    Returns:
        Acceleration mesh in Mpc/h, shape ``(n, n, n, 3)``.
    """
    delta_k = rfftn(delta)
    comps = [irfftn(1j * kern * delta_k) for kern in _force_kernels(conf)]
    return jnp.stack(comps, axis=-1).astype(delta.dtype)


def acceleration_and_mesh(disp: Array, conf: SimConfig) -> tuple[Array, Array]:
    """PM acceleration on the particles and the force mesh it was read from.

    Args:
        disp: displacements in Mpc/h, shape ``(N, 3)``.

    Returns:
        ``(acc, mesh)``: acceleration ``(N, 3)`` in Mpc/h and force mesh ``(n, n, n, 3)``.
    """
    custom = conf.gradient == "adjoint"
    pos = mesh_positions(disp, conf)
    counts = cic.paint(pos, conf.mesh, None, conf.chunk_size, custom_vjp=custom)
    mesh = force_mesh(counts * (conf.mesh**3 / conf.num_particles) - 1.0, conf)
    return cic.readout(mesh, pos, conf.chunk_size, custom_vjp=custom), mesh


def acceleration(disp: Array, conf: SimConfig) -> Array:
    """PM acceleration ``-grad(phi)`` on the particles in Mpc/h, shape ``(N, 3)``."""
    return acceleration_and_mesh(disp, conf)[0]


def acceleration_vjp(disp: Array, mesh: Array, acc_ct: Array, conf: SimConfig) -> Array:
    """Cotangent of ``disp`` for ``acceleration(disp)`` given the acceleration cotangent.

    Uses the force mesh of the forward evaluation, so it costs one scatter, one set of
    FFTs and two gathers and no forward recomputation.

    Args:
        disp: displacements ``(N, 3)`` in Mpc/h at which the force was evaluated.
        mesh: force mesh ``(n, n, n, 3)`` returned by ``acceleration_and_mesh``.
        acc_ct: cotangent of the acceleration, ``(N, 3)``.

    Returns:
        Cotangent of ``disp``, shape ``(N, 3)``.
    """
    n, chunk = conf.mesh, conf.chunk_size
    pos = mesh_positions(disp, conf)
    direct = cic.readout_position_vjp(mesh, pos, acc_ct, chunk)
    mesh_ct = cic.paint(pos, n, acc_ct, chunk)
    (delta_ct,) = jax.linear_transpose(
        lambda d: force_mesh(d, conf), jax.ShapeDtypeStruct((n, n, n), disp.dtype)
    )(mesh_ct)
    via_density = cic.paint_position_vjp(delta_ct * (n**3 / conf.num_particles), pos, chunk)
    return (direct + via_density) * (n / conf.box)
