"""Command-line options of the scale-out: ``cosmolaw simulate --ensemble M``.

``simulator.cli`` adds them to its ``simulate`` parser with :func:`add_ensemble_arguments`
and hands over to :func:`run_ensemble_command` when ``--ensemble`` is given. Launched as
``mpiexec -n P cosmolaw simulate --ensemble M ...``, the members are shared among the ranks
(``simulator.ensemble``). Nothing heavy is imported at module level.
"""

from __future__ import annotations

import argparse
from typing import Any


def add_ensemble_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--ensemble M`` and ``--no-fields`` to the ``simulate`` parser."""
    parser.add_argument(
        "--ensemble",
        type=int,
        default=None,
        metavar="M",
        help="run M simulations with seeds SEED..SEED+M-1, shared among the MPI ranks "
        "(mpiexec -n P cosmolaw simulate ...), and write DIR/ensemble.h5",
    )
    parser.add_argument(
        "--no-fields",
        action="store_true",
        help="with --ensemble: store only the power spectra, not the M density meshes",
    )


def run_ensemble_command(args: argparse.Namespace, cosmo: Any, conf: Any) -> int:
    """Run the ensemble of ``args.ensemble`` members for the validated ``cosmo`` and ``conf``.

    Raises:
        ValueError: ``--ensemble`` below 1 or a negative ``--seed`` (before any compilation).
    """
    count = args.ensemble
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"ensemble={count!r} is invalid: must be an integer >= 1")
    from simulator.ensemble import run_ensemble

    path = run_ensemble(
        args.ensemble,
        cosmo,
        conf,
        args.out,
        first_seed=args.seed,
        keep_fields=not args.no_fields,
        progress=not args.no_progress,
    )
    if path is not None:
        print(f"wrote {path}")
    return 0
