"""Two-process checks launched by ``tests/test_simulator_distributed_mpi.py`` as
``mpiexec -n 2 python tests/mpi_checks.py OUT_DIR``.

Each MPI rank is one JAX process with one CPU device, joined by ``jax.distributed``
(``simulator.distributed.multihost``). Rank 0 prints one line ``RESULT {json}`` with:

- the 2-process sharded simulation against the single-device ``pipeline.simulate`` of the
  same seed (``sim_err = max |diff| / rms``);
- a 4-member training set over the 2 ranks, each member with its own sigma8: its seeds and
  parameters, and every member's field against a direct single-device simulation of that
  seed and cosmology (``ensemble_err``).

float64, so that the comparisons measure the decomposition and not round-off.
"""

import os
import sys

os.environ["JAX_ENABLE_X64"] = "1"

from simulator.distributed import multihost

PROCESS, PROCESSES = multihost.initialize(host="127.0.0.1")

import json  # noqa: E402

import h5py  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax.experimental import multihost_utils  # noqa: E402

from simulator.config import SimConfig  # noqa: E402
from simulator.cosmology import Cosmology  # noqa: E402
from simulator.distributed import pm  # noqa: E402
from simulator.distributed.mesh import device_mesh  # noqa: E402
from simulator.ensemble import run_ensemble  # noqa: E402
from simulator.pipeline import simulate  # noqa: E402

COSMO = Cosmology()
COSMOS = [COSMO] + [Cosmology(sigma8=s) for s in (0.7, 0.75, 0.9)]
CONF = SimConfig(mesh=16, box=32.0, steps=2, dtype="float64")
MEMBERS = 4


def main(out_dir: str) -> None:
    mesh = device_mesh()
    _, delta = pm.simulate(COSMO, CONF, mesh, 0, halo=4)
    local_shapes = [s.data.shape for s in delta.addressable_shards]
    rms = float(jax.jit(jnp.std)(delta))  # a reduction over both processes' shards
    delta = np.asarray(multihost_utils.process_allgather(delta, tiled=True))
    reference = {s: np.asarray(simulate(COSMOS[s], CONF, s).delta) for s in range(MEMBERS)}
    path = run_ensemble(MEMBERS, COSMOS, CONF, out_dir, progress=False)
    if PROCESS != 0:
        return
    with h5py.File(path, "r") as f:
        seeds = f["seeds"][()].tolist()
        sigma8 = f["cosmology/sigma8"][()].tolist()
        fields = f["fields/delta"][()]
    ens_err = max(
        float(np.max(np.abs(fields[i] - reference[s])) / np.std(reference[s]))
        for i, s in enumerate(seeds)
    )
    result = {
        "processes": PROCESSES,
        "devices": len(jax.devices()),
        "mesh_devices": mesh.devices.size,
        "local_shard_shapes": local_shapes,
        "sim_err": float(np.max(np.abs(delta - reference[0])) / np.std(reference[0])),
        "rms_err": abs(rms / np.std(reference[0]) - 1.0),
        "seeds": seeds,
        "sigma8": sigma8,
        "sigma8_expected": [c.sigma8 for c in COSMOS],
        "ensemble_err": ens_err,
        "leftover_parts": os.path.exists(os.path.join(out_dir, "parts")),
    }
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
