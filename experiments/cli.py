"""Command-line sub-commands of ``experiments``: ``cosmolaw list`` and ``cosmolaw run``."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``list`` and ``run`` to the ``cosmolaw`` parser."""
    lister = subparsers.add_parser("list", help="list the registered experiments")
    lister.set_defaults(func=_list)

    runner = subparsers.add_parser(
        "run",
        help="run an experiment and write its run directory and report",
        description="Run one experiment; writes config.toml, the data (HDF5), discoveries.json, "
        "the law exports (law.tex, law.py, law.txt) and report.html into the run directory.",
    )
    runner.add_argument("name", help="experiment name (see `cosmolaw list`)")
    runner.add_argument(
        "--quick", action="store_true", help="small configuration (minutes on 2 CPU cores)"
    )
    runner.add_argument(
        "--out", default=None, help="run directory (default runs/NAME or runs/NAME-quick)"
    )
    runner.set_defaults(func=_run)


def _list(args: argparse.Namespace) -> int:
    from experiments.core.registry import experiments

    for exp in experiments().values():
        print(f"{exp.name}\n    {exp.question}")
    return 0


def _run(args: argparse.Namespace) -> int:
    from experiments.core.registry import get_experiment, run_experiment

    get_experiment(args.name)  # unknown names fail before any work
    outcome = run_experiment(args.name, quick=args.quick, out_dir=args.out)
    checks = outcome.result.checks
    for check in checks:
        status = "pass" if check.passed else "FAIL"
        print(f"{status}  {check.name} = {check.value:.4g}  ({check.criterion})")
    passed = sum(c.passed for c in checks)
    print(f"checks: {passed}/{len(checks)} passed; run time {outcome.run_time_s:.1f} s")
    print(f"report: {outcome.report.resolve()}")
    return 0
