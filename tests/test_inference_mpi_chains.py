"""Chains over MPI ranks: ``mpiexec -n 2`` runs 2 chains, one per rank, interrupted and
resumed; the merged ``chain.h5`` has the driver's layout and equals a one-process run."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from mpi_chain_checks import CONFIG, MESH, linear_posterior

from inference.chain_file import read_arrays
from inference.parallel import chain_dir, chain_seed, rank_chains, run_chains_mpi
from inference.report import summarize
from simulator.distributed.multihost import find_mpiexec

SCRIPT = Path(__file__).with_name("mpi_chain_checks.py")
pytestmark = pytest.mark.mpi


def _mpiexec(*args: str) -> None:
    cmd = [find_mpiexec(), "-n", "2", sys.executable, str(SCRIPT), *args]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    assert out.returncode == 0, out.stderr[-3000:]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    """Merged files of the 2-rank run (stopped after 10 steps, then resumed) and of one
    uninterrupted single-process run of the same configuration."""
    mpi_dir = tmp_path_factory.mktemp("mpi")
    _mpiexec(str(mpi_dir), "10")
    partial = read_arrays(mpi_dir / "chain.h5")
    _mpiexec(str(mpi_dir))
    single = run_chains_mpi(linear_posterior(), CONFIG, tmp_path_factory.mktemp("one"))
    return {
        "partial": partial,
        "mpi": read_arrays(mpi_dir / "chain.h5"),
        "single": read_arrays(single),
        "parts": [read_arrays(chain_dir(mpi_dir, j) / "chain.h5") for j in range(2)],
        "path": mpi_dir / "chain.h5",
    }


def test_merged_file_has_both_chains_in_driver_layout(runs):
    partial, partial_attrs = runs["partial"]
    assert partial_attrs["steps_done"] == 10 and not partial_attrs["complete"]
    assert partial["samples/logdensity"].shape == (2, 10)
    arrays, attrs = runs["mpi"]
    assert attrs["complete"] and attrs["steps_done"] == CONFIG.num_samples
    assert attrs["ranks"] == 2 and attrs["config"]["num_chains"] == 2
    assert attrs["config"]["seed"] == CONFIG.seed
    assert arrays["samples/logdensity"].shape == (2, CONFIG.num_samples)
    assert arrays["fields/s"].shape == (2, 2, MESH, MESH, MESH)
    assert arrays["warmup/num_grads"].shape == (2,) and arrays["init/pk_linear"].shape[0] == 2
    np.testing.assert_array_equal(arrays["fields/step"], [10, 20])
    # chain j of the merged file is the file of chain j, whichever rank ran it
    for j, (part, part_attrs) in enumerate(runs["parts"]):
        assert part_attrs["config"]["seed"] == chain_seed(CONFIG.seed, j)
        for name in ("samples/pk_linear", "info/acceptance", "fields/delta", "init/pk_linear"):
            np.testing.assert_array_equal(arrays[name][j], part[name][0])
    # distinct seeds: the chains are not copies of each other
    assert not np.allclose(arrays["fields/s"][0], arrays["fields/s"][1])
    # the diagnostics read the merged file as a single-process one
    summary, _ = summarize(runs["path"])
    assert summary["chains"] == 2 and summary["steps"] == CONFIG.num_samples


def test_two_ranks_with_resume_equal_one_uninterrupted_process(runs):
    arrays, _ = runs["mpi"]
    single, _ = runs["single"]
    assert set(arrays) == set(single)
    for name, value in single.items():
        np.testing.assert_allclose(arrays[name], value, rtol=1e-5, atol=1e-6, err_msg=name)


def test_rank_chains_partition_and_seeds_are_distinct():
    chains = [list(rank_chains(7, r, 3)) for r in range(3)]
    assert sorted(sum(chains, [])) == list(range(7))
    seeds = {chain_seed(s, j) for s in range(4) for j in range(16)}
    assert len(seeds) == 64 and all(0 <= x < 2**31 for x in seeds)
    with pytest.raises(ValueError, match="chain=-1"):
        chain_seed(0, -1)


def test_single_process_run_directory_is_not_overwritten(tmp_path):
    (tmp_path / "chain.h5").write_bytes(b"a single-process run")
    with pytest.raises(ValueError, match="single-process"):
        run_chains_mpi(linear_posterior(), CONFIG, tmp_path)
    assert not (tmp_path / "chains").exists()
    assert (tmp_path / "chain.h5").read_bytes() == b"a single-process run"


def test_cosmolaw_infer_under_mpiexec_shares_the_chains(tmp_path):
    """``mpiexec -n 2 cosmolaw infer`` gives each rank one of the 2 chains and writes one
    merged ``chain.h5`` and the report, as a one-process run would."""
    cli = [sys.executable, "-m", "cosmolaw.cli"]
    mock = [*cli, "mock", "--mesh", "8", "--box", "64", "--model", "lpt1", "--bias", "linear"]
    subprocess.run([*mock, "--no-progress", "--out", str(tmp_path / "mock")], check=True)
    infer = [
        *("infer", "--data", str(tmp_path / "mock" / "mock.h5"), "--sampler", "borg_hmc"),
        *("--samples", "10", "--warmup", "10", "--chains", "2", "--thin", "5"),
        *("--map-steps", "5", "--no-progress", "--out", str(tmp_path / "run")),
    ]
    out = subprocess.run(
        [find_mpiexec(), "-n", "2", *cli, *infer], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr[-3000:]
    arrays, attrs = read_arrays(tmp_path / "run" / "chain.h5")
    assert attrs["ranks"] == 2 and attrs["complete"]
    assert arrays["samples/logdensity"].shape == (2, 10)
    assert all((chain_dir(tmp_path / "run", j) / "chain.h5").exists() for j in range(2))
    assert summarize(tmp_path / "run" / "chain.h5")[0]["chains"] == 2
