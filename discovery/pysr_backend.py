"""PySR interoperability: a Julia-free reader of its hall-of-fame files, and the live backend.

``import pysr`` starts Julia and may try to download packages, so it happens only
inside :func:`search`, and any failure there becomes one line of explanation (the
caller then falls back to the offline engine). Reading PySR's output needs no Julia:
:func:`read_hall_of_fame` parses ``hall_of_fame.csv`` / ``.bak`` files (columns
``Complexity,Loss,Equation``) and :func:`from_pysr` a fitted ``PySRRegressor``.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence

import numpy as np
import sympy as sp

from discovery.expressions import parse_expression


class PySRUnavailable(RuntimeError):
    """PySR or Julia cannot be used here; the message says why in one line."""


def read_hall_of_fame(path: str | os.PathLike, variables: Sequence[sp.Symbol]) -> list[dict]:
    """Rows of a PySR hall-of-fame CSV as ``{"complexity", "loss", "expression"}`` dicts.

    ``variables`` are the symbols the equations use (PySR writes ``x0, x1, ...`` unless
    given names). Julia floats (``1.0f-5``) and PySR operator names are understood.
    """
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        needed = {"Complexity", "Loss", "Equation"}
        if not reader.fieldnames or not needed <= {f.strip() for f in reader.fieldnames}:
            raise ValueError(f"path={str(path)!r}: expected columns {sorted(needed)}")
        rows = []
        for row in reader:
            row = {k.strip(): v for k, v in row.items()}
            rows.append(
                {
                    "complexity": int(row["Complexity"]),
                    "loss": float(row["Loss"].replace("f", "e")),
                    "expression": parse_expression(row["Equation"], variables),
                }
            )
    return rows


def from_pysr(model, variables: Sequence[sp.Symbol]) -> list[dict]:
    """The Pareto front of a fitted ``PySRRegressor`` (its ``equations_`` table) as dicts."""
    table = model.equations_
    return [
        {
            "complexity": int(row["complexity"]),
            "loss": float(row["loss"]),
            "expression": parse_expression(str(row["equation"]), variables),
        }
        for _, row in table.iterrows()
    ]


def search(
    X: np.ndarray,
    y: np.ndarray,
    variables: Sequence[sp.Symbol],
    operators: Sequence[str],
    *,
    budget_s: float,
    max_complexity: int,
    seed: int = 0,
) -> list[sp.Expr]:
    """Run PySR for ``budget_s`` seconds; raises :class:`PySRUnavailable` when it cannot."""
    import importlib.util

    if importlib.util.find_spec("pysr") is None:
        raise PySRUnavailable("PySR is not installed (pip install 'cosmolaw[pysr]')")
    try:
        from pysr import PySRRegressor
    except Exception as err:  # Julia missing, no network for its packages, ...
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise PySRUnavailable(f"PySR could not start Julia: {first}") from err
    binary = [o for o in operators if o in ("add", "sub", "mul", "div", "pow")]
    names = {"add": "+", "sub": "-", "mul": "*", "div": "/", "pow": "^"}
    unary = [o for o in operators if o not in names]
    model = PySRRegressor(
        binary_operators=[names[o] for o in binary],
        unary_operators=unary,
        maxsize=max(max_complexity, 7),
        timeout_in_seconds=budget_s,
        random_state=seed,
        deterministic=True,
        parallelism="serial",
        progress=False,
        verbosity=0,
    )
    model.fit(X, y, variable_names=[str(s) for s in variables])
    return [row["expression"] for row in from_pysr(model, variables)]
