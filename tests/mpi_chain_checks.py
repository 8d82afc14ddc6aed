"""Chains over MPI ranks, launched by ``tests/test_inference_mpi_chains.py`` as
``mpiexec -n 2 python tests/mpi_chain_checks.py OUT_DIR [STOP_AFTER]``.

Each rank is an independent JAX process; :func:`inference.parallel.run_chains_mpi` runs the
chains of :data:`CONFIG` on the linear Gaussian posterior of :func:`linear_posterior` and rank 0
merges them into ``OUT_DIR/chain.h5``. ``STOP_AFTER`` interrupts every chain after that many
steps (its checkpoint written), as a killed job would.
"""

import sys

from field_helpers import linear_test_posterior

from inference.driver import RunConfig
from inference.parallel import run_chains_mpi

MESH, BOX = 8, 100.0
CONFIG = RunConfig(
    sampler="borg_hmc",
    num_samples=20,
    num_warmup=10,
    num_chains=2,
    thin=10,
    checkpoint_every=10,
    map_steps=10,
    fisher_probes=2,
)


def linear_posterior():
    """Linear Gaussian posterior at ``MESH^3`` (see ``field_helpers.linear_test_posterior``)."""
    return linear_test_posterior(MESH, BOX)


if __name__ == "__main__":
    stop = int(sys.argv[2]) if len(sys.argv) > 2 else None
    run_chains_mpi(linear_posterior(), CONFIG, sys.argv[1], progress=False, stop_after=stop)
