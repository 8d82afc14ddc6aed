"""Sharded particle-mesh model: initial conditions, forces and FastPM steps over devices.

The functions mirror the single-device pipeline ``white_noise -> linear_field -> lpt ->
nbody -> density_contrast`` on global arrays that are sharded over a 1D device mesh
(``simulator.distributed.mesh``): real meshes and particles by slab, Fourier meshes by their
second axis. Elementwise work (Fourier kernels, kick and drift updates) is partitioned by
XLA from those shardings; the two non-local operations are explicit: the 3D FFT
(``simulator.distributed.fft``) and CIC paint/readout with halo exchange
(``simulator.distributed.cic``). The physics is that of the single-device modules, whose
kernels are reused: ``fourier`` (wavenumbers, gradient kernels), ``gravity`` (lattice,
positions, force kernels), ``linear_power``, ``growth`` and ``nbody.step_factors``.

Restrictions: ``mesh`` and ``ptcl_grid`` divisible by the number of devices. Gradients are
plain reverse-mode autodiff through the time steps (memory grows with the number of steps):
the single-device adjoint needs the force functions as an argument of
``simulator.nbody.integrate`` before it can run sharded.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import jax
import jax.numpy as jnp
from jax import Array
from jax.sharding import Mesh

from simulator import gravity, ic
from simulator.config import SimConfig
from simulator.cosmology import Cosmology
from simulator.distributed import cic, fft
from simulator.distributed.mesh import check_divisible, real_sharding
from simulator.fourier import gradient_kernels, k_norm, odd_kernel_mask, wavenumbers
from simulator.growth import GrowthTable, growth_at, growth_table
from simulator.linear_power import linear_power
from simulator.nbody import State, step_factors


def check_config(conf: SimConfig, mesh: Mesh, halo: int) -> None:
    """Raise ``ValueError`` if ``conf`` or ``halo`` cannot run sharded over ``mesh``."""
    check_divisible(conf.mesh, mesh)
    check_divisible(conf.ptcl_grid, mesh, "ptcl_grid")
    cic.check_halo(halo, conf.mesh, mesh)


def white_noise(seed: int | Array, conf: SimConfig, mesh: Mesh) -> Array:
    """``simulator.ic.white_noise`` generated directly in slabs (bit-identical values).

    Returns:
        Unit-variance noise ``(mesh, mesh, mesh)`` sharded along axis 0.
    """
    return jax.lax.with_sharding_constraint(ic.white_noise(seed, conf), real_sharding(mesh))


def linear_modes(noise: Array, cosmo: Cosmology, conf: SimConfig, mesh: Mesh) -> Array:
    """Sharded ``simulator.ic.linear_modes``: ``sqrt(P(k) / V_cell) rfftn(noise)``.

    Returns:
        Complex modes ``(mesh, mesh, mesh // 2 + 1)`` at a = 1, sharded along axis 1.
    """
    k = k_norm(conf.mesh, conf.box, noise.dtype)
    amplitude = jnp.sqrt(linear_power(k, cosmo).astype(noise.dtype) / conf.cell_size**3)
    return fft.rfftn(noise, mesh) * amplitude


def linear_field(noise: Array, cosmo: Cosmology, conf: SimConfig, mesh: Mesh) -> Array:
    """Sharded ``simulator.ic.linear_field``: linear density contrast at a = 1.

    Returns:
        Real mesh ``(mesh, mesh, mesh)`` sharded along axis 0.
    """
    return fft.irfftn(linear_modes(noise, cosmo, conf, mesh), mesh).astype(noise.dtype)


def _inverse_laplacian(n: int, box: float, dtype) -> Array:
    kx, ky, kz = wavenumbers(n, box, dtype)
    k2 = kx**2 + ky**2 + kz**2
    return jnp.where(k2 > 0, 1.0 / jnp.where(k2 > 0, k2, 1.0), 0.0)


def lpt_displacements(delta_lin: Array, conf: SimConfig, mesh: Mesh) -> tuple[Array, Array]:
    """Sharded ``simulator.lpt.lpt_displacements`` (same conventions).

    As on one device, the displacements are computed on the particle lattice's own FFT grid
    from the linear modes it represents (``simulator.lpt.lattice_modes``).

    Args:
        delta_lin: linear density contrast at a = 1, ``(n, n, n)`` sharded along axis 0.

    Returns:
        ``(psi1, psi2)`` in Mpc/h, each ``(N, 3)`` in lattice order, sharded along axis 0.
    """
    n, m, dtype = conf.mesh, conf.ptcl_grid, delta_lin.dtype
    masks = odd_kernel_mask(m, dtype)
    keep = None if m == n else m
    delta_k = fft.rfftn(delta_lin, mesh, keep) * ((m / n) ** 3 * masks[0] * masks[1] * masks[2])
    inv_k2 = _inverse_laplacian(m, conf.box, dtype)
    grads = gradient_kernels(m, conf.box, "exact", dtype)

    def to_real(field_k: Array) -> Array:
        return fft.irfftn(field_k, mesh).astype(dtype)

    def displacement(source_k: Array, sign: float) -> Array:
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
    return psi1, displacement(fft.rfftn(source, mesh), 1.0)


def lpt(
    delta_lin: Array, table: GrowthTable, conf: SimConfig, mesh: Mesh, a: float | None = None
) -> State:
    """Sharded ``simulator.lpt.lpt``: particles at ``a`` (default ``conf.a_start``).

    Returns:
        ``State`` whose ``disp`` and ``vel`` (Mpc/h, ``(N, 3)``) are sharded by slab.
    """
    a = conf.a_start if a is None else a
    psi1, psi2 = lpt_displacements(delta_lin, conf, mesh)
    g = growth_at(table, jnp.asarray(a, delta_lin.dtype))
    disp = (g.D1 * psi1 + g.D2 * psi2).astype(delta_lin.dtype)
    vel = (g.D1 * g.f1 * psi1 + g.D2 * g.f2 * psi2).astype(delta_lin.dtype)
    return State(disp, vel, jnp.asarray(a))


def density_contrast(disp: Array, conf: SimConfig, mesh: Mesh, halo: int) -> Array:
    """Sharded ``simulator.gravity.density_contrast`` of equal-mass particles.

    Args:
        disp: displacements ``(N, 3)`` in Mpc/h, sharded by Lagrangian slab.
        halo: halo width in cells (``simulator.distributed.cic.check_halo``).

    Returns:
        ``rho / mean(rho) - 1`` on ``(mesh, mesh, mesh)``, sharded along axis 0.
    """
    pos = gravity.mesh_positions(disp, conf)
    counts = cic.paint(pos, conf.mesh, mesh, halo, chunk_size=conf.chunk_size)
    return counts * (conf.mesh**3 / conf.num_particles) - 1.0


def force_mesh(delta: Array, conf: SimConfig, mesh: Mesh) -> Array:
    """Sharded ``simulator.gravity.force_mesh``: ``-grad(phi)``, ``laplacian(phi) = delta``.

    Returns:
        Acceleration mesh ``(n, n, n, 3)`` in Mpc/h, sharded along axis 0.
    """
    delta_k = fft.rfftn(delta, mesh)
    comps = [fft.irfftn(1j * kern * delta_k, mesh) for kern in gravity._force_kernels(conf)]
    return jnp.stack(comps, axis=-1).astype(delta.dtype)


def acceleration(disp: Array, conf: SimConfig, mesh: Mesh, halo: int) -> Array:
    """Sharded ``simulator.gravity.acceleration``: PM acceleration ``(N, 3)`` in Mpc/h."""
    pos = gravity.mesh_positions(disp, conf)
    counts = cic.paint(pos, conf.mesh, mesh, halo, chunk_size=conf.chunk_size)
    forces = force_mesh(counts * (conf.mesh**3 / conf.num_particles) - 1.0, conf, mesh)
    return cic.readout(forces, pos, mesh, halo, conf.chunk_size)


def _kdk(carry, fac: Array, accel: Callable[[Array], Array]):
    """One kick-drift-kick step, as ``simulator.nbody._kdk`` with the force ``accel``."""
    disp, vel, acc = carry
    c1, k1, d, c2, k2 = fac
    vel_h = c1 * vel + k1 * acc
    disp = disp + d * vel_h
    acc = accel(disp)
    return disp, c2 * vel_h + k2 * acc, acc


def nbody(
    state: State, cosmo: Cosmology, table: GrowthTable, conf: SimConfig, mesh: Mesh, halo: int
) -> State:
    """Sharded FastPM integration from ``conf.a_start`` to ``conf.a_stop``.

    Same time grid (``conf.time_grid()``) and factors (``simulator.nbody.step_factors``) as
    ``simulator.nbody.nbody``; snapshots are step boundaries but only the final state is
    returned.

    Returns:
        Final ``State`` with ``disp``/``vel`` sharded by slab.
    """
    dtype = state.disp.dtype
    grid = conf.time_grid()
    factors = step_factors(
        cosmo, table, jnp.asarray(grid[:-1], dtype), jnp.asarray(grid[1:], dtype), conf.step_spacing
    ).astype(dtype)
    accel = partial(acceleration, conf=conf, mesh=mesh, halo=halo)

    def body(carry, fac):
        return _kdk(carry, fac, accel), None

    (disp, vel, _), _ = jax.lax.scan(body, (state.disp, state.vel, accel(state.disp)), factors)
    return State(disp, vel, jnp.asarray(grid[-1], dtype))


def forward(
    noise: Array, cosmo: Cosmology, conf: SimConfig, mesh: Mesh, halo: int, pm: bool = True
) -> tuple[State, Array]:
    """Traceable sharded forward model from white noise (for ``jit`` and ``grad``).

    Args:
        noise: white noise ``(mesh, mesh, mesh)`` (resharded by slab).
        cosmo: cosmology; conf: configuration; mesh: device mesh; halo: cells.
        pm: integrate with FastPM to ``conf.a_stop``; ``False`` stops at the LPT state at
            ``conf.a_start``.

    Returns:
        ``(state, delta)``: particles and their CIC density contrast ``(mesh,)*3``.
    """
    noise = jax.lax.with_sharding_constraint(noise, real_sharding(mesh))
    table = growth_table(cosmo)
    state = lpt(linear_field(noise, cosmo, conf, mesh), table, conf, mesh)
    if pm:
        state = nbody(state, cosmo, table, conf, mesh, halo)
    return state, density_contrast(state.disp, conf, mesh, halo)


def simulate(
    cosmo: Cosmology,
    conf: SimConfig,
    mesh: Mesh,
    seed: int = 0,
    *,
    halo: int | None = None,
    pm: bool = True,
) -> tuple[State, Array]:
    """Run the sharded simulation from a seed; the sharded counterpart of one device's
    ``white_noise -> linear_field -> lpt -> nbody -> density_contrast``.

    Arguments follow ``simulator.pipeline.simulate``; everything is validated before
    compiling.

    Args:
        cosmo: cosmology.
        conf: configuration (``mesh`` and ``ptcl_grid`` divisible by the devices).
        mesh: device mesh (``simulator.distributed.mesh.device_mesh``).
        seed: non-negative white-noise seed (same noise as ``simulator.ic.white_noise``).
        halo: halo width in cells; ``None`` gives ``cic.default_halo``. It must exceed the
            largest displacement of a particle out of its slab (``cic.required_halo``).
        pm: run the N-body steps (``False``: LPT only).

    Returns:
        ``(state, delta)`` with particle arrays ``(N, 3)`` and the density contrast
        ``(mesh, mesh, mesh)``, all sharded by slab.
    """
    halo = cic.default_halo(conf.mesh, mesh) if halo is None else halo
    check_config(conf, mesh, halo)
    cosmo.validate()
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed={seed!r} is invalid: must be a non-negative integer")
    return _simulate_jit(seed, cosmo, conf, mesh, halo, pm)


@partial(jax.jit, static_argnums=(2, 3, 4, 5))
def _simulate_jit(seed, cosmo, conf, mesh, halo, pm):
    return forward(white_noise(seed, conf, mesh), cosmo, conf, mesh, halo, pm)
