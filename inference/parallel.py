"""Chains over MPI ranks (mpi4py): each rank runs its share, rank 0 merges one ``chain.h5``.

Launched as ``mpiexec -n P python ...``, :func:`run_chains_mpi` gives global chain ``j`` of
``config.num_chains`` to rank ``j mod P``. Every chain is an independent one-chain run of
:func:`inference.driver.run_chains` in ``DIR/chains/chain-JJJJ/`` with the seed
:func:`chain_seed` ``(config.seed, j)``, so its own ``chain.h5`` is checkpointed and resumed by
the driver exactly as a single-process run, and chain ``j`` is the same whatever the number of
ranks (one process included), so a run may be resumed with another number of ranks. After a
barrier rank 0 concatenates the chain files, in chain order, along the chain axis into
``DIR/chain.h5`` with the layout of :mod:`inference.chain_file` (without the ``checkpoint/``
group, which stays in the per-chain files), so that :mod:`inference.report` reads it
unchanged. A rerun (after an interruption, or with ``stop_after`` lifted) resumes every
per-chain file and merges again.

The driver derives all chains of one run from one seed through ``jax.random.split(key,
num_chains)`` and one shared preconditioner/MAP; a rank cannot run chain ``j`` of that run
alone, hence the per-chain seeds: each chain has its own MAP and preconditioner.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from cosmolaw.pytree import to_dict
from inference.chain_file import read_arrays, write_chain_file
from inference.driver import RunConfig, run_chains
from inference.posterior import FieldPosterior
from simulator.distributed.multihost import shared_then_merged

CHAINS_DIR = "chains"
#: Datasets whose leading axis is the chain axis (``fields/step`` is shared).
CHAIN_AXIS_PREFIXES = ("samples/", "info/", "fields/", "init/", "warmup/")
_SHARED = ("fields/step",)


def chain_seed(seed: int, chain: int) -> int:
    """Seed in ``[0, 2^31)`` of global chain ``chain`` of a run with seed ``seed``.

    Distinct chains get independent seeds (NumPy ``SeedSequence`` of ``(seed, chain)``).
    """
    if seed < 0 or chain < 0:
        raise ValueError(f"seed={seed}, chain={chain} are invalid: both must be integers >= 0")
    return int(np.random.SeedSequence([seed, chain]).generate_state(1, np.uint32)[0] >> 1)


def rank_chains(num_chains: int, rank: int, size: int) -> range:
    """Global chain indices run by ``rank`` of ``size`` ranks (round robin)."""
    return range(rank, num_chains, size)


def chain_dir(out_dir: str | Path, chain: int) -> Path:
    """Run directory of global chain ``chain``: ``out_dir/chains/chain-JJJJ``."""
    return Path(out_dir) / CHAINS_DIR / f"chain-{chain:04d}"


def chain_config(config: RunConfig, chain: int) -> RunConfig:
    """The one-chain configuration of global chain ``chain`` of ``config``."""
    return dataclasses.replace(config, num_chains=1, seed=chain_seed(config.seed, chain))


def run_chains_mpi(
    posterior: FieldPosterior,
    config: RunConfig,
    out_dir: str | Path,
    truth: dict[str, np.ndarray] | None = None,
    posterior_attrs: dict[str, Any] | None = None,
    progress: bool = True,
    stop_after: int | None = None,
    comm: Any = None,
) -> Path | None:
    """Run ``config.num_chains`` chains over the MPI ranks and merge them into ``chain.h5``.

    Collective: every rank of ``comm`` calls it with the same arguments (e.g. under
    ``mpiexec -n P``); a plain ``python`` run is one rank running every chain. Arguments as
    :func:`inference.driver.run_chains`; on resume ``config`` must be the original one.

    Args:
        posterior: the posterior (built identically on every rank).
        config: run configuration; ``num_chains`` is the total over all ranks.
        out_dir: run directory for ``chain.h5`` and the per-chain runs in ``chains/``.
        truth: optional true fields, stored for the report.
        posterior_attrs: JSON-able description of the data/model.
        progress: tqdm bars on rank 0.
        stop_after: stop every chain once this many steps are done (an interruption).
        comm: mpi4py communicator; default ``MPI.COMM_WORLD``.

    Returns:
        Path of the merged ``chain.h5`` (arrays ``(num_chains, ...)``) on rank 0, ``None`` on
        the other ranks.

    Raises:
        ValueError: when ``out_dir`` holds a single-process run (a ``chain.h5`` without
            ``chains/``), which this would overwrite.
    """
    out = Path(out_dir)
    if (out / "chain.h5").exists() and not (out / CHAINS_DIR).is_dir():
        raise ValueError(
            f"out_dir={str(out)!r} holds a single-process chain.h5 (no {CHAINS_DIR}/): "
            "resume it with inference.driver.run_chains, or use a new directory"
        )
    if comm is None:
        from mpi4py import MPI

        comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()

    def work() -> None:
        for j in rank_chains(config.num_chains, rank, size):
            run_chains(
                posterior,
                chain_config(config, j),
                chain_dir(out_dir, j),
                truth=truth,
                posterior_attrs=posterior_attrs,
                progress=progress and rank == 0,
                stop_after=stop_after,
            )

    return shared_then_merged(comm, work, lambda: merge_chains(out_dir, config, size))


def merge_chains(out_dir: str | Path, config: RunConfig, ranks: int = 1) -> Path:
    """Concatenate the per-chain files of ``config`` into ``out_dir/chain.h5`` (atomic).

    Per-chain datasets (:data:`CHAIN_AXIS_PREFIXES`) are joined along the chain axis in chain
    order; the others (``k``, ``prior/*``, ``map/*``, ``truth/*``, ``fields/step``) are chain
    0's. Attributes: chain 0's, with the run's ``config``, ``steps_done`` and ``complete``
    over all chains, ``ranks`` and ``chain_seeds``.

    Raises:
        ValueError: when the chains have not all done the same number of steps.
    """
    parts = [read_arrays(chain_dir(out_dir, j) / "chain.h5") for j in range(config.num_chains)]
    steps = [int(attrs["steps_done"]) for _, attrs in parts]
    if len(set(steps)) != 1:
        raise ValueError(f"steps_done={steps} differ between chains: resume the run first")
    first, attrs = parts[0]
    merged = {
        name: np.concatenate([arrays[name] for arrays, _ in parts], axis=0)
        if name.startswith(CHAIN_AXIS_PREFIXES) and name not in _SHARED
        else value
        for name, value in first.items()
    }
    attrs = {
        **attrs,
        "config": to_dict(config),
        "complete": all(bool(a["complete"]) for _, a in parts),
        "ranks": ranks,
        "chain_seeds": [chain_seed(config.seed, j) for j in range(config.num_chains)],
    }
    path = Path(out_dir) / "chain.h5"
    write_chain_file(path, merged, {}, attrs)
    return path
