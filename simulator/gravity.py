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


def _force_chunk(conf: SimConfig) -> int:
    """Particles per CIC chunk of the force evaluation (``simulator.cic.CPU_FORCE_CHUNK`` on
    CPUs unless ``conf.chunk_size`` is set)."""
    return cic.chunk_particles(conf.chunk_size, force=True)


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


#: Meshes with more cells than this keep the density's Fourier modes (one complex
#: half-mesh) instead of the ``(n, n, n, 3)`` force mesh between a force and its VJP, and
#: build the three force components one at a time (:func:`_lean_acceleration`), for three
#: more inverse FFTs per backward step: the gradient of 512^3 particles on a 1024^3 mesh
#: then needs 98 GB instead of 110 GB (XLA's memory analysis,
#: ``benchmarks/fieldlevel_scale.py``). Smaller meshes keep the force mesh: faster, and
#: bit-identical to earlier versions (the lean path agrees to float round-off, 2e-6).
FORCE_MESH_MAX_CELLS = 512**3


def keeps_force_mesh(conf: SimConfig) -> bool:
    """Whether the force evaluation keeps the ``(n, n, n, 3)`` force mesh for its VJP."""
    return conf.mesh**3 <= FORCE_MESH_MAX_CELLS


def _component(delta_k: Array, kern: Array) -> Array:
    """One force component ``irfftn(i K_j / k^2 delta_k)`` on the mesh ``(n, n, n)``."""
    return fft.irfftn(1j * kern * delta_k).astype(kern.dtype)


def _lean_acceleration(pos: Array, delta_k: Array, conf: SimConfig) -> Array:
    """Acceleration ``(N, 3)`` read out one force component at a time (one mesh alive)."""
    custom = conf.gradient == "adjoint"
    comps = [
        cic.readout(_component(delta_k, kern), pos, _force_chunk(conf), custom)
        for kern in _force_kernels(conf)
    ]
    return jnp.stack(comps, axis=-1)


def acceleration_and_mesh(disp: Array, conf: SimConfig) -> tuple[Array, Array]:
    """PM acceleration on the particles and what its VJP needs of the force evaluation.

    Args:
        disp: displacements in Mpc/h, shape ``(N, 3)``.

    Returns:
        ``(acc, mesh)``: acceleration ``(N, 3)`` in Mpc/h and the force mesh
        ``(n, n, n, 3)``, or for meshes above ``FORCE_MESH_MAX_CELLS`` the density's
        Fourier modes ``(n, n, n // 2 + 1)`` (see :func:`keeps_force_mesh`).
    """
    custom = conf.gradient == "adjoint"
    pos = mesh_positions(disp, conf)
    counts = cic.paint(pos, conf.mesh, None, _force_chunk(conf), custom_vjp=custom)
    delta = counts * (conf.mesh**3 / conf.num_particles) - 1.0
    if not keeps_force_mesh(conf):
        delta_k = fft.rfftn(delta)
        return _lean_acceleration(pos, delta_k, conf), delta_k
    mesh = force_mesh(delta, conf)
    return cic.readout(mesh, pos, _force_chunk(conf), custom_vjp=custom), mesh


def acceleration(disp: Array, conf: SimConfig) -> Array:
    """PM acceleration ``-grad(phi)`` on the particles in Mpc/h, shape ``(N, 3)``."""
    return acceleration_and_mesh(disp, conf)[0]


def acceleration_vjp(disp: Array, mesh: Array, acc_ct: Array, conf: SimConfig) -> Array:
    """Cotangent of ``disp`` for ``acceleration(disp)`` given the acceleration cotangent.

    Uses the force mesh of the forward evaluation, so it costs one scatter, one set of
    FFTs and two gathers and no forward recomputation.

    Args:
        disp: displacements ``(N, 3)`` in Mpc/h at which the force was evaluated.
        mesh: what ``acceleration_and_mesh`` returned beside the acceleration (the force
            mesh, or the density's modes on meshes above ``FORCE_MESH_MAX_CELLS``).
        acc_ct: cotangent of the acceleration, ``(N, 3)``.

    Returns:
        Cotangent of ``disp``, shape ``(N, 3)``.
    """
    n, chunk = conf.mesh, _force_chunk(conf)
    pos = mesh_positions(disp, conf)
    if not keeps_force_mesh(conf):
        return _lean_acceleration_vjp(pos, mesh, acc_ct, conf) * (n / conf.box)
    direct = cic.readout_position_vjp(mesh, pos, acc_ct, chunk)
    mesh_ct = cic.paint(pos, n, acc_ct, chunk)
    (delta_ct,) = jax.linear_transpose(
        lambda d: force_mesh(d, conf), jax.ShapeDtypeStruct((n, n, n), disp.dtype)
    )(mesh_ct)
    via_density = cic.paint_position_vjp(delta_ct * (n**3 / conf.num_particles), pos, chunk)
    return (direct + via_density) * (n / conf.box)


def _lean_acceleration_vjp(pos: Array, delta_k: Array, acc_ct: Array, conf: SimConfig) -> Array:
    """:func:`acceleration_vjp` from the density's modes ``delta_k``, one force component
    at a time; returns the position cotangent ``(N, 3)`` in 1 / cell units."""
    n, chunk = conf.mesh, _force_chunk(conf)
    direct, delta_ct_k = jnp.zeros_like(pos), jnp.zeros_like(delta_k)
    for j, kern in enumerate(_force_kernels(conf)):
        ct = acc_ct[:, j : j + 1]
        mesh = _component(delta_k, kern)[..., None]
        direct = direct + cic.readout_position_vjp(mesh, pos, ct, chunk)
        (ct_k,) = jax.linear_transpose(
            lambda z, kern=kern: fft.irfftn(1j * kern * z),
            jax.ShapeDtypeStruct(delta_k.shape, delta_k.dtype),
        )(cic.paint(pos, n, ct[:, 0], chunk))
        delta_ct_k = delta_ct_k + ct_k
    (delta_ct,) = jax.linear_transpose(fft.rfftn, jax.ShapeDtypeStruct((n, n, n), pos.dtype))(
        delta_ct_k
    )
    via_density = cic.paint_position_vjp(delta_ct * (n**3 / conf.num_particles), pos, chunk)
    return direct + via_density
