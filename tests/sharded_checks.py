"""Sharded-versus-single-device measurements on 8 host devices, printed as one JSON line.

Run by ``tests/test_simulator_distributed.py`` in a subprocess, because the host device count
must be
set before JAX starts: ``python tests/sharded_checks.py``. Every entry ``*_err`` is
``max |sharded - single| / rms(single)``; the test asserts on them. float64 throughout, so
that the differences measure the decomposition and not float32 round-off amplified by
the N-body dynamics.
"""

import os

os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=8"
os.environ["JAX_ENABLE_X64"] = "1"

import json
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from simulator import cic, gravity, ic
from simulator.config import SimConfig
from simulator.cosmology import Cosmology
from simulator.distributed import cic as dcic
from simulator.distributed import fft, pm
from simulator.distributed.mesh import device_mesh, real_sharding
from simulator.growth import growth_at, growth_table
from simulator.lpt import lpt, lpt_displacements
from simulator.nbody import nbody

N = 16
HALO = 6  # > the 2-plane slabs: exchanges reach 3 devices on each side
MESH = device_mesh(8)
COSMO = Cosmology()
# A small box evolved to a = 1: displacements of several cells, far beyond the slabs. A
# particle lattice half as fine as the mesh (one lattice plane per device) exercises the
# lattice-mode truncation of the sharded LPT; tests/mpi_checks.py covers ptcl_grid == mesh.
CONF = SimConfig(mesh=N, box=32.0, ptcl_grid=N // 2, steps=4, lpt_order=2, dtype="float64")


def rel_err(sharded, single) -> float:
    single = np.asarray(single)
    return float(np.max(np.abs(np.asarray(sharded) - single)) / np.std(single))


def cic_losses(paint, readout):
    """Paint, readout and their gradients through a scalar that uses both."""

    def loss(pos, vec):
        return jnp.sum(paint(pos) ** 2) + jnp.sum(jnp.sin(readout(vec, pos)))

    def run(pos, vec):
        return paint(pos), readout(vec, pos), jax.grad(loss, argnums=(0, 1))(pos, vec)

    return jax.jit(run)


def fft_and_cic() -> dict:
    key = jax.random.split(jax.random.key(1), 3)
    field = jax.random.normal(key[0], (N, N, N), jnp.float64)
    field_s = jax.device_put(field, real_sharding(MESH))
    modes, back = jax.jit(lambda f: (fft.rfftn(f, MESH), fft.irfftn(fft.rfftn(f, MESH), MESH)))(
        field_s
    )
    # particles displaced by up to ~6 cells from their lattice points (beyond their slab)
    q = np.stack(np.meshgrid(*[np.arange(N)] * 3, indexing="ij"), -1).reshape(-1, 3)
    pos = jnp.asarray(q) + 1.2 * jax.random.normal(key[1], (N**3, 3), jnp.float64)
    vec = jax.random.normal(key[2], (N, N, N, 3), jnp.float64)
    single = cic_losses(partial(cic.paint, n=N), cic.readout)(pos, vec)
    pos_s = jax.device_put(pos, real_sharding(MESH))
    vec_s = jax.device_put(vec, real_sharding(MESH))
    sharded = cic_losses(
        partial(dcic.paint, n=N, mesh=MESH, halo=HALO),
        partial(dcic.readout, mesh=MESH, halo=HALO),
    )(pos_s, vec_s)
    # 512 particles per device in chunks of 100: the chunked loops inside shard_map
    chunked = cic_losses(
        partial(dcic.paint, n=N, mesh=MESH, halo=HALO, chunk_size=100),
        partial(dcic.readout, mesh=MESH, halo=HALO, chunk_size=100),
    )(pos_s, vec_s)
    return {
        "chunked_err": max(
            rel_err(a, b)
            for a, b in zip(jax.tree.leaves(chunked), jax.tree.leaves(single), strict=True)
        ),
        "fft_err": rel_err(modes, np.fft.rfftn(np.asarray(field))),
        "ifft_err": rel_err(back, field),
        "paint_err": rel_err(sharded[0], single[0]),
        "readout_err": rel_err(sharded[1], single[1]),
        "cic_grad_pos_err": rel_err(sharded[2][0], single[2][0]),
        "cic_grad_mesh_err": rel_err(sharded[2][1], single[2][1]),
        "cic_required_halo": int(dcic.required_halo(pos_s, N, MESH)),
    }


def single_device(noise, cosmo):
    table = growth_table(cosmo)
    delta_lin = ic.linear_field(noise, cosmo, CONF)
    psi1, psi2 = lpt_displacements(delta_lin, CONF)
    g = growth_at(table, CONF.a_start)
    fields = [gravity.density_contrast(g.D1 * psi1, CONF)]
    state = lpt(delta_lin, table, CONF)
    fields.append(gravity.density_contrast(state.disp, CONF))
    final = nbody(state, cosmo, table, CONF)[0]
    fields.append(gravity.density_contrast(final.disp, CONF))
    return jnp.mean(fields[-1] ** 2), (fields, final.disp)


def sharded(noise, cosmo):
    table = growth_table(cosmo)
    delta_lin = pm.linear_field(noise, cosmo, CONF, MESH)
    psi1, psi2 = pm.lpt_displacements(delta_lin, CONF, MESH)
    g = growth_at(table, CONF.a_start)
    fields = [pm.density_contrast(g.D1 * psi1, CONF, MESH, HALO)]
    state = pm.lpt(delta_lin, table, CONF, MESH)
    fields.append(pm.density_contrast(state.disp, CONF, MESH, HALO))
    final = pm.nbody(state, cosmo, table, CONF, MESH, HALO)
    fields.append(pm.density_contrast(final.disp, CONF, MESH, HALO))
    return jnp.mean(fields[-1] ** 2), (fields, final.disp)


def simulation() -> dict:
    noise = ic.white_noise(0, CONF)
    grad = partial(jax.value_and_grad, argnums=(0, 1), has_aux=True)
    (_, (f1, disp1)), (g1, c1) = jax.jit(grad(single_device))(noise, COSMO)
    noise_s = jax.jit(lambda s: pm.white_noise(s, CONF, MESH))(0)
    (_, (fs, disps)), (gs, cs) = jax.jit(grad(sharded))(noise_s, COSMO)
    # particles whose final mesh plane lies outside their home slab
    width, count = N // 8, CONF.num_particles
    home = np.arange(count) // (count // 8)
    plane = np.floor(np.asarray(gravity.mesh_positions(disp1, CONF))[:, 0]) % N
    pos_s = jax.device_put(gravity.mesh_positions(disps, CONF), real_sharding(MESH))
    return {
        "noise_identical": bool(np.array_equal(noise_s, noise)),
        "noise_sharding": str(noise_s.sharding.spec),
        "lpt1_err": rel_err(fs[0], f1[0]),
        "lpt2_err": rel_err(fs[1], f1[1]),
        "pm_err": rel_err(fs[2], f1[2]),
        "pm_rms": float(np.std(f1[2])),
        "grad_err": rel_err(gs, g1),
        "grad_sharding": str(gs.sharding.spec),
        "grad_omega_m_err": abs(float(cs.Omega_m / c1.Omega_m) - 1.0),
        "grad_sigma8_err": abs(float(cs.sigma8 / c1.sigma8) - 1.0),
        "crossed_fraction": float(np.mean(plane // width != home)),
        "pm_required_halo": int(dcic.required_halo(pos_s, N, MESH)),
        "halo": HALO,
        "devices": len(jax.devices()),
    }


def refused() -> dict:
    """Error messages for decompositions that do not fit 8 devices."""
    cases = {
        "mesh": (SimConfig(mesh=20), 1),
        "ptcl_grid": (SimConfig(mesh=N, ptcl_grid=4), 1),
        "halo": (SimConfig(mesh=N), 8),
    }
    messages = {}
    for name, (conf, halo) in cases.items():
        try:
            pm.check_config(conf, MESH, halo)
        except ValueError as err:
            messages[name] = str(err)
    try:  # valid, but the particles of this PM run move further than one cell out of their slab
        pm.simulate(COSMO, CONF, MESH, seed=0, halo=1)
    except ValueError as err:
        messages["small_halo"] = str(err).split(";")[0]
    return {"refused": messages}


if __name__ == "__main__":
    print(json.dumps({**refused(), **fft_and_cic(), **simulation()}))
