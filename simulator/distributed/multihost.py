"""Multi-host start-up: ``jax.distributed`` across the ranks of an MPI launch.

Launched as ``mpiexec -n P python ...`` (or ``srun``), each rank is one JAX process; after
:func:`initialize`, ``jax.devices()`` lists the devices of every process and a
``simulator.distributed.mesh.device_mesh()`` spans them all. The coordinator address is
agreed over MPI (mpi4py): rank 0 picks a free port on its host and broadcasts
``host:port``; rank and size come from ``MPI.COMM_WORLD``. CPU processes exchange data
through JAX's CPU collectives (gloo), so the same code is tested on one machine.
"""

from __future__ import annotations

import shutil
import socket
import sys
import sysconfig
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import jax

T = TypeVar("T")


def find_mpiexec() -> str:
    """Path of ``mpiexec``: the one the pip ``mpich`` wheel installed beside this Python
    (found even where a version manager's shims were not refreshed), else the one on PATH.

    Raises:
        FileNotFoundError: when neither exists (``pip install mpich`` provides it).
    """
    beside = Path(sysconfig.get_path("scripts")) / "mpiexec"
    found = str(beside) if beside.exists() else shutil.which("mpiexec")
    if not found:
        raise FileNotFoundError("mpiexec not found: install the MPI wheel with `pip install mpich`")
    return found


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def mpi_rank_and_size() -> tuple[int, int]:
    """``(rank, size)`` of ``MPI.COMM_WORLD`` (``(0, 1)`` outside an MPI launch)."""
    from mpi4py import MPI

    return MPI.COMM_WORLD.Get_rank(), MPI.COMM_WORLD.Get_size()


def coordinator_address(host: str | None = None) -> str:
    """``host:port`` of rank 0, broadcast to every rank (collective over ``COMM_WORLD``).

    Args:
        host: address other ranks reach rank 0 at; default ``socket.gethostname()`` (on one
            machine ``127.0.0.1`` also works).
    """
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    address = None
    if comm.Get_rank() == 0:
        host = socket.gethostname() if host is None else host
        address = f"{host}:{_free_port(host)}"
    return comm.bcast(address, root=0)


def initialize(
    host: str | None = None, local_device_ids: Sequence[int] | None = None
) -> tuple[int, int]:
    """Start ``jax.distributed`` with one JAX process per MPI rank.

    Call before any other JAX operation. A single rank (no ``mpiexec``, or ``-n 1``) and an
    already initialised runtime are left as they are.

    Args:
        host: address of rank 0 (see :func:`coordinator_address`).
        local_device_ids: devices this process drives (e.g. ``[local_rank]`` for one
            process per GPU when every process sees all GPUs); default all visible ones.

    Returns:
        ``(process_index, process_count)``.
    """
    rank, size = mpi_rank_and_size()
    if size > 1 and not jax.distributed.is_initialized():
        jax.distributed.initialize(
            coordinator_address=coordinator_address(host),
            num_processes=size,
            process_id=rank,
            local_device_ids=local_device_ids,
        )
    return jax.process_index(), jax.process_count()


def local_rank() -> int:
    """Rank of this process among the MPI ranks on the same node (for GPU selection)."""
    from mpi4py import MPI

    return MPI.COMM_WORLD.Split_type(MPI.COMM_TYPE_SHARED).Get_rank()


def shared_then_merged(comm: Any, work: Callable[[], None], merge: Callable[[], T]) -> T | None:
    """Every rank runs ``work`` (its share); after a barrier rank 0 runs ``merge``.

    Collective over ``comm``. An exception in ``work`` aborts every rank (printing it), since
    the others would otherwise wait at the barrier forever; in a one-rank run it propagates.

    Returns:
        ``merge()`` on rank 0, ``None`` on the other ranks (after a second barrier).
    """
    rank, size = comm.Get_rank(), comm.Get_size()
    try:
        work()
    except Exception as err:
        if size == 1:
            raise
        print(f"rank {rank}: {type(err).__name__}: {err}", file=sys.stderr, flush=True)
        comm.Abort(1)
    comm.Barrier()
    result = merge() if rank == 0 else None
    comm.Barrier()
    return result
