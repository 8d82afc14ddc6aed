"""The lean force path of big meshes (``simulator.gravity``: the density's modes kept for
the VJP instead of the force mesh, one component at a time) against the force-mesh path it
replaces above ``FORCE_MESH_MAX_CELLS``, forced here on a 16^3 mesh: the same acceleration
and the same position cotangent."""

from __future__ import annotations

import jax
import numpy as np

from simulator import gravity
from simulator.config import SimConfig


def _force_and_vjp(conf: SimConfig, disp, ct):
    acc, kept = gravity.acceleration_and_mesh(disp, conf)
    return np.asarray(acc), np.asarray(gravity.acceleration_vjp(disp, kept, ct, conf))


def test_lean_path_equals_the_force_mesh_path(monkeypatch):
    conf = SimConfig(mesh=16, box=64.0)
    keys = jax.random.split(jax.random.PRNGKey(0), 2)
    disp = 3.0 * jax.random.normal(keys[0], (conf.num_particles, 3))
    ct = jax.random.normal(keys[1], (conf.num_particles, 3))
    assert gravity.keeps_force_mesh(conf)
    acc, vjp = _force_and_vjp(conf, disp, ct)
    monkeypatch.setattr(gravity, "FORCE_MESH_MAX_CELLS", 8**3)
    assert not gravity.keeps_force_mesh(conf)
    lean_acc, lean_vjp = _force_and_vjp(conf, disp, ct)
    rms = lambda a: np.sqrt(np.mean(a**2))
    assert rms(lean_acc - acc) < 1e-5 * rms(acc)
    assert rms(lean_vjp - vjp) < 1e-5 * rms(vjp)
