"""Sharded particle-mesh model: initial conditions, forces and FastPM steps over devices.

The functions mirror the single-device pipeline ``white_noise -> linear_field -> lpt ->
nbody -> density_contrast`` on global arrays that are sharded over a 1D device mesh
(``simulator.distributed.mesh``): real meshes and particles by slab, Fourier meshes by their
second axis. Elementwise work (Fourier kernels, kick and drift updates) is partitioned by
XLA from those shardings; the two non-local operations are explicit: the 3D FFT
(``simulator.distributed.fft``) and CIC paint/readout with halo exchange
(``simulator.distributed.cic``). The physics is that of the single-device modules, which
run unchanged with those two operations plugged in: ``ic`` and ``lpt`` and
``gravity.force_mesh`` take the sharded FFTs as their ``rfftn``/``irfftn``, and
``nbody.nbody`` takes the sharded force functions (``sharded_forces``), so the time steps
and their adjoint gradient (``conf.gradient``) are those of one device.

Restrictions: ``mesh`` and ``ptcl_grid`` divisible by the number of devices. The sharded
force VJP of the adjoint recomputes the force at the point (``jax.vjp`` through paint, FFTs
and readout) rather than reusing the stored force mesh.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache, partial

import jax
from jax import Array
from jax.sharding import Mesh

from simulator import gravity, ic
from simulator.config import SimConfig
from simulator.cosmology import Cosmology
from simulator.distributed import cic, fft
from simulator.distributed.mesh import check_divisible, num_shards, real_sharding
from simulator.growth import GrowthTable, growth_table
from simulator.lpt import lpt as single_lpt
from simulator.lpt import lpt_displacements as single_lpt_displacements
from simulator.nbody import Forces, State
from simulator.nbody import nbody as single_nbody


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


def fft_hooks(mesh: Mesh) -> dict[str, Callable[..., Array]]:
    """The sharded FFT pair as the ``rfftn``/``irfftn`` keyword hooks of the single-device
    kernels (``simulator.ic``, ``simulator.lpt``, ``simulator.gravity``): real meshes
    ``(n, n, n)`` sharded along axis 0 to modes ``(n, n, n // 2 + 1)`` sharded along axis 1
    and back."""
    return {"rfftn": partial(fft.rfftn, mesh=mesh), "irfftn": partial(fft.irfftn, mesh=mesh)}


def linear_modes(noise: Array, cosmo: Cosmology, conf: SimConfig, mesh: Mesh) -> Array:
    """Sharded ``simulator.ic.linear_modes``: ``sqrt(P(k) / V_cell) rfftn(noise)``.

    Returns:
        Complex modes ``(mesh, mesh, mesh // 2 + 1)`` at a = 1, sharded along axis 1.
    """
    return ic.linear_modes(noise, cosmo, conf, rfftn=fft_hooks(mesh)["rfftn"])


def linear_field(noise: Array, cosmo: Cosmology, conf: SimConfig, mesh: Mesh) -> Array:
    """Sharded ``simulator.ic.linear_field``: linear density contrast at a = 1.

    Returns:
        Real mesh ``(mesh, mesh, mesh)`` sharded along axis 0.
    """
    return ic.linear_field(noise, cosmo, conf, **fft_hooks(mesh))


def lpt_displacements(delta_lin: Array, conf: SimConfig, mesh: Mesh) -> tuple[Array, Array]:
    """Sharded ``simulator.lpt.lpt_displacements`` (same conventions).

    As on one device, the displacements are computed on the particle lattice's own FFT grid
    from the linear modes it represents (``simulator.lpt.lattice_modes``).

    Args:
        delta_lin: linear density contrast at a = 1, ``(n, n, n)`` sharded along axis 0.

    Returns:
        ``(psi1, psi2)`` in Mpc/h, each ``(N, 3)`` in lattice order, sharded along axis 0.
    """
    return single_lpt_displacements(delta_lin, conf, **fft_hooks(mesh))


def lpt(
    delta_lin: Array, table: GrowthTable, conf: SimConfig, mesh: Mesh, a: float | None = None
) -> State:
    """Sharded ``simulator.lpt.lpt``: particles at ``a`` (default ``conf.a_start``).

    Returns:
        ``State`` whose ``disp`` and ``vel`` (Mpc/h, ``(N, 3)``) are sharded by slab.
    """
    return single_lpt(delta_lin, table, conf, a, **fft_hooks(mesh))


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
    return gravity.force_mesh(delta, conf, **fft_hooks(mesh))


def acceleration_and_mesh(
    disp: Array, conf: SimConfig, mesh: Mesh, halo: int
) -> tuple[Array, Array]:
    """Sharded ``simulator.gravity.acceleration_and_mesh``.

    Returns:
        ``(acc, forces)``: acceleration ``(N, 3)`` in Mpc/h sharded by Lagrangian slab and
        the force mesh ``(n, n, n, 3)`` sharded along axis 0.
    """
    forces = force_mesh(density_contrast(disp, conf, mesh, halo), conf, mesh)
    pos = gravity.mesh_positions(disp, conf)
    return cic.readout(forces, pos, mesh, halo, conf.chunk_size), forces


def acceleration(disp: Array, conf: SimConfig, mesh: Mesh, halo: int) -> Array:
    """Sharded ``simulator.gravity.acceleration``: PM acceleration ``(N, 3)`` in Mpc/h."""
    return acceleration_and_mesh(disp, conf, mesh, halo)[0]


def acceleration_vjp(
    disp: Array, forces: Array, acc_ct: Array, conf: SimConfig, mesh: Mesh, halo: int
) -> Array:
    """Sharded ``simulator.gravity.acceleration_vjp``: cotangent ``(N, 3)`` of ``disp``.

    Reverse-mode autodiff of :func:`acceleration` at ``disp`` (one more force evaluation);
    the force mesh ``forces`` of the forward evaluation is not needed.
    """
    del forces
    _, vjp = jax.vjp(partial(acceleration, conf=conf, mesh=mesh, halo=halo), disp)
    return vjp(acc_ct)[0]


@lru_cache(maxsize=32)
def sharded_forces(conf: SimConfig, mesh: Mesh, halo: int) -> Forces:
    """The sharded force functions for ``simulator.nbody`` (one object per arguments, so
    that it is the same static argument at every call)."""
    bind = {"conf": conf, "mesh": mesh, "halo": halo}
    return Forces(
        partial(acceleration, **bind),
        partial(acceleration_and_mesh, **bind),
        partial(acceleration_vjp, **bind),
    )


def nbody(
    state: State, cosmo: Cosmology, table: GrowthTable, conf: SimConfig, mesh: Mesh, halo: int
) -> State:
    """Sharded FastPM integration from ``conf.a_start`` to ``conf.a_stop``.

    ``simulator.nbody.nbody`` with the forces of ``sharded_forces``: same time grid, factors
    and gradient method (``conf.gradient``); only the final state is returned.

    Returns:
        Final ``State`` with ``disp``/``vel`` sharded by slab.
    """
    forces = sharded_forces(conf, mesh, halo)
    return single_nbody(state, cosmo, table, conf, forces=forces)[0]


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

    Raises:
        ValueError: for invalid arguments, and after the run when the final particles
            have moved further out of their slabs than ``halo`` allows (their density
            would be wrong).
    """
    halo = cic.default_halo(conf.mesh, mesh) if halo is None else halo
    check_config(conf, mesh, halo)
    cosmo.validate()
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed={seed!r} is invalid: must be a non-negative integer")
    state, delta, need = _simulate_jit(seed, cosmo, conf, mesh, halo, pm)
    if num_shards(mesh) > 1:
        need = int(need)
        if need > halo:
            raise ValueError(
                f"halo={halo} is too small for this run: particles ended up to {need} cells "
                f"beyond their slabs; pass halo >= {need} (or use fewer devices)"
            )
    return state, delta


@partial(jax.jit, static_argnums=(2, 3, 4, 5))
def _simulate_jit(seed, cosmo, conf, mesh, halo, pm):
    """``forward`` from the seed, and the halo the final particles need (0 on one device)."""
    state, delta = forward(white_noise(seed, conf, mesh), cosmo, conf, mesh, halo, pm)
    if num_shards(mesh) == 1:
        return state, delta, 0
    pos = gravity.mesh_positions(state.disp, conf)
    return state, delta, cic.required_halo(pos, conf.mesh, mesh)
