"""``mpiexec -n 2``: a 2-process distributed simulation and an ensemble over MPI ranks.

``tests/mpi_checks.py`` runs under the pip MPICH ``mpiexec``; each rank is one JAX process
(``jax.distributed`` with CPU collectives). The tests assert on the JSON line of rank 0 and
on the merged ``ensemble.h5``.
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from simulator.config import SimConfig
from simulator.cosmology import Cosmology
from simulator.distributed.cli import add_ensemble_arguments, run_ensemble_command
from simulator.distributed.multihost import find_mpiexec
from simulator.ensemble import rank_members, run_ensemble

SCRIPT = Path(__file__).with_name("mpi_checks.py")
pytestmark = pytest.mark.mpi


@pytest.fixture(scope="module")
def mpi_run(tmp_path_factory) -> tuple[dict, Path]:
    out_dir = tmp_path_factory.mktemp("ensemble")
    cmd = [find_mpiexec(), "-n", "2", sys.executable, str(SCRIPT), str(out_dir)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    line = next(x for x in out.stdout.splitlines() if x.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :]), out_dir


def test_two_process_simulation_matches_single_device(mpi_run):
    result, _ = mpi_run
    assert result["processes"] == 2
    assert result["mesh_devices"] == 2  # one device per process, one global mesh
    assert result["local_shard_shapes"] == [[8, 16, 16]]
    assert result["sim_err"] < 1e-5
    assert result["rms_err"] < 1e-10


def test_ensemble_over_two_ranks(mpi_run):
    result, out_dir = mpi_run
    assert result["seeds"] == [0, 1, 2, 3]  # members of both ranks, in order
    assert result["sigma8"] == result["sigma8_expected"]
    assert result["ensemble_err"] < 1e-12  # each member is the simulation of its seed
    assert not result["leftover_parts"]
    with h5py.File(out_dir / "ensemble.h5", "r") as f:
        assert f.attrs["ensemble/count"] == 4
        assert f.attrs["ensemble/ranks"] == 2
        assert f["fields/delta"].shape == (4, 16, 16, 16)
        assert f["power/pk"].shape == (4, 8)
        pk_lin, sigma8 = f["power/pk_linear"][()], f["cosmology/sigma8"][()]
        # each member's linear power is its own: it scales as sigma8^2 at fixed shape
        ratio = (sigma8[:, None] / sigma8[0]) ** 2
        np.testing.assert_allclose(pk_lin / pk_lin[:1], np.broadcast_to(ratio, pk_lin.shape), 1e-4)
        assert f["power/pk"].attrs["units"] == "(Mpc/h)^3"
    assert (out_dir / "config.toml").exists()


def test_rank_members_partition_the_ensemble():
    members = [list(rank_members(10, r, 3)) for r in range(3)]
    assert sorted(sum(members, [])) == list(range(10))


@pytest.mark.parametrize(
    ("count", "cosmo", "first_seed", "name"),
    [
        (0, Cosmology(), 0, "count"),
        (2, Cosmology(), -1, "first_seed"),
        (2, [Cosmology()] * 3, 0, "cosmo"),
        (1, [Cosmology(Omega_m=-0.1)], 0, "Omega_m"),
    ],
)
def test_bad_ensemble_input_writes_nothing(tmp_path, count, cosmo, first_seed, name):
    with pytest.raises(ValueError, match=name):
        run_ensemble(count, cosmo, SimConfig(mesh=8), tmp_path / "run", first_seed)
    assert not (tmp_path / "run").exists()


def test_ensemble_option_is_validated(tmp_path):
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(tmp_path / "run"))
    parser.add_argument("--no-progress", action="store_true")
    add_ensemble_arguments(parser)
    args = parser.parse_args(["--ensemble", "0", "--no-fields"])
    with pytest.raises(ValueError, match="ensemble=0"):
        run_ensemble_command(args, Cosmology(), SimConfig(mesh=8))
    assert not (tmp_path / "run").exists()
