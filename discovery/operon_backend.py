"""Operon backend (pyoperon): NSGA-II over (R^2, length), its Pareto front read into sympy."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import sympy as sp

from discovery.expressions import parse_expression

#: Operon's time limit when the number of evaluations bounds the run instead (a year).
UNBOUNDED_S = 365 * 86400

#: Our operator names to Operon's symbols (operators Operon lacks are left out).
OPERON_SYMBOLS = {
    "add": "add",
    "sub": "sub",
    "mul": "mul",
    "div": "div",
    "pow": "pow",
    "exp": "exp",
    "log": "log",
    "sqrt": "sqrt",
    "square": "square",
    "sin": "sin",
    "cos": "cos",
    "tan": "tan",
    "asin": "asin",
    "acos": "acos",
    "atan": "atan",
    "sinh": "sinh",
    "cosh": "cosh",
    "tanh": "tanh",
    "abs": "abs",
}


def search(
    X: np.ndarray,
    y: np.ndarray,
    variables: Sequence[sp.Symbol],
    operators: Sequence[str],
    *,
    budget_s: float,
    max_length: int = 40,
    seed: int = 0,
    n_threads: int = 1,
    max_evaluations: int | None = None,
) -> list[sp.Expr]:
    """Run Operon for ``budget_s`` seconds and return its Pareto front as sympy expressions.

    With ``max_evaluations`` Operon stops after that many fitness evaluations instead, and
    the run (one thread) is the same on any machine. ``X`` has shape ``(n, d)``, ``y``
    ``(n,)``; constants come back as floats.
    """
    from pyoperon.sklearn import SymbolicRegressor

    symbols = [OPERON_SYMBOLS[o] for o in operators if o in OPERON_SYMBOLS]
    regressor = SymbolicRegressor(
        allowed_symbols=",".join([*symbols, "constant", "variable"]),
        objectives=["r2", "length"],
        max_length=max_length,
        max_depth=12,
        population_size=500,
        generations=10**6,
        max_evaluations=10**9 if max_evaluations is None else max(int(max_evaluations), 1),
        optimizer_iterations=10,
        max_time=max(1, int(budget_s)) if max_evaluations is None else UNBOUNDED_S,
        n_threads=n_threads,
        random_state=seed,
    )
    # fresh writeable copies: pyoperon's bindings reject read-only arrays (e.g. broadcasts)
    regressor.fit(np.array(X, float), np.array(y, float))
    tmp = [sp.Symbol(f"v{i}") for i in range(len(variables))]
    out = []
    for model in regressor.pareto_front_:
        text = regressor.get_model_string(model["tree"], 12, names=[str(s) for s in tmp])
        try:
            expr = parse_expression(text, tmp)
        except ValueError:
            continue
        out.append(expr.xreplace(dict(zip(tmp, variables, strict=True))))
    return out
