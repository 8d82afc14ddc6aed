"""Command-line sub-commands of ``discovery``: ``cosmolaw discover``.

Nothing heavy is imported at module level: JAX starts only when the command runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from discovery.budget import CLOCKS

BACKENDS = ("auto", "operon", "pysr", "exhaustive")
CRITERIA = ("accuracy", "score", "best", "mdl")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add this package's sub-commands to the ``cosmolaw`` parser."""
    p = subparsers.add_parser(
        "discover",
        help="find closed-form laws in a table (symbolic regression)",
        description="Search closed-form laws target = f(columns) in a CSV (header row of "
        "column names) or HDF5 table (one 1-D dataset per column); writes "
        "DIR/discoveries.json (the chosen law under 'best') and DIR/pareto_front.csv.",
    )
    p.add_argument("--data", required=True, help="table.csv or table.h5")
    p.add_argument("--target", required=True, help="column to explain")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument(
        "--variables", default=None, help="comma-separated input columns (default: all others)"
    )
    p.add_argument("--budget-s", type=float, default=60.0, help="search budget in seconds")
    p.add_argument(
        "--clock",
        default="wall",
        choices=CLOCKS,
        help="what the budget counts: wall = elapsed seconds; work = seconds of the work done "
        "on the reference machine, so the same command finds the same laws on any machine",
    )
    p.add_argument("--backend", default="auto", help=f"one of {', '.join(BACKENDS)}")
    p.add_argument("--max-complexity", type=int, default=30, help="largest law, in nodes")
    p.add_argument("--operators", default=None, help="comma-separated operator basis")
    p.add_argument(
        "--units",
        default=None,
        help="'name=unit,...' for columns and target, e.g. 'r=m,F=kg m s^-2'",
    )
    p.add_argument(
        "--sigma",
        default=None,
        help="standard deviation of the target: a column of the table (one per row) or a "
        "positive number; the search then uses the chi-square likelihood",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--criterion", default="mdl", help=f"selection: one of {', '.join(CRITERIA)}")
    p.set_defaults(func=run)


def read_table(path: str) -> tuple[dict, dict]:
    """Columns of a CSV (header row) or HDF5 file (1-D datasets) and their units (HDF5 attrs)."""
    import numpy as np

    file = Path(path)
    if not file.is_file():
        raise ValueError(f"--data={path!r}: no such file")
    if file.suffix.lower() in (".h5", ".hdf5"):
        import h5py

        columns, units = {}, {}
        with h5py.File(file, "r") as f:
            for name, dset in f.items():
                if isinstance(dset, h5py.Dataset) and dset.ndim == 1:
                    columns[name] = np.asarray(dset[()], float)
                    if "units" in dset.attrs:
                        units[name] = str(dset.attrs["units"])
        return columns, units
    try:
        table = np.genfromtxt(file, delimiter=",", names=True, dtype=float, encoding="utf-8")
    except ValueError as err:
        raise ValueError(f"--data={path!r}: not a CSV table with a header row ({err})") from err
    if table.dtype.names is None:
        raise ValueError(f"--data={path!r}: no header row of column names")
    return {n: np.atleast_1d(table[n]) for n in table.dtype.names}, {}


def sigma_of(value: str | None, columns: dict) -> object:
    """The ``--sigma`` of :func:`run`: ``None``, a column of ``columns`` or a positive number.

    Raises ``ValueError`` naming ``--sigma``, the value and what is allowed.
    """
    if value is None:
        return None
    if value in columns:
        return columns[value]
    try:
        number = float(value)
    except ValueError:
        raise ValueError(
            f"--sigma={value!r} is neither a column nor a number; allowed: a positive "
            f"number or one of the columns {', '.join(columns)}"
        ) from None
    if not (number > 0 and number < float("inf")):
        raise ValueError(f"--sigma={value!r}; allowed: a positive finite number or a column")
    return number


def run(args: argparse.Namespace) -> int:
    """Run the search and write ``discoveries.json``, ``pareto_front.csv`` and ``config.toml``."""
    import numpy as np

    from cosmolaw import io
    from discovery.search import discover, validate_sigma

    if args.criterion not in CRITERIA:
        raise ValueError(f"--criterion={args.criterion!r}; allowed: {', '.join(CRITERIA)}")
    columns, file_units = read_table(args.data)
    if args.target not in columns:
        raise ValueError(f"--target={args.target!r} is not a column; columns: {', '.join(columns)}")
    if args.variables:
        names = [v.strip() for v in args.variables.split(",") if v.strip()]
        missing = [v for v in names if v not in columns]
        if missing:
            raise ValueError(f"--variables={args.variables!r}: {missing} are not columns")
    else:
        names = [c for c in columns if c not in (args.target, args.sigma)]
    sigma = sigma_of(args.sigma, columns)
    X = np.stack([columns[n] for n in names], axis=1)
    try:
        validate_sigma(sigma, None, len(X))
    except ValueError as err:
        raise ValueError(f"--sigma={args.sigma!r}: {err}") from None
    units = args.units
    if units is None and file_units:
        units = {k: v for k, v in file_units.items() if k in (*names, args.target)}
    front = discover(
        X,
        columns[args.target],
        variables=names,
        units=units,
        operators=args.operators,
        max_complexity=args.max_complexity,
        budget_s=args.budget_s,
        seed=args.seed,
        backend=args.backend,
        target=args.target,
        sigma=sigma,
        progress=True,
        clock=args.clock,
    )
    out = Path(args.out)
    result = front.to_dict(args.criterion)
    if front.candidates:
        best = front.best(args.criterion)
        result["best"]["c_code"] = best.c_code(args.target)
    result["data"] = str(args.data)
    result["n_rows"] = int(len(X))
    io.write_toml(
        out / "config.toml",
        {k: v for k, v in vars(args).items() if k != "func" and v is not None},
    )
    io.write_text(out / "pareto_front.csv", front.table())
    io.write_json(out / "discoveries.json", result)
    for what in front.truncated:
        print(f"discover: budget cut short: {what}", file=sys.stderr)
    if front.candidates:
        print(f"{args.target} = {result['best']['expression']}")
    return 0
