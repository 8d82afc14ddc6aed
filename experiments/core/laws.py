"""What an experiment hands to the report: discovered laws, their fronts and literature laws.

Everything here is generic: a front-like table of (complexity, loss, expression), the
chosen law as a sympy expression of named variables, a predict function, held-out data
and the literature laws to compare with. Every experiment fills these in, and the same
code writes ``discoveries.json``, the exports and ``report.html`` from them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sympy as sp

Predict = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class FrontPoint:
    """One candidate of a Pareto front: complexity, loss and the expression as text."""

    complexity: int
    loss: float
    expression: str


@dataclass(frozen=True)
class Literature:
    """A published law to compare a discovery with.

    Attributes:
        name: short label, e.g. "Linder (2005)".
        reference: citation (authors, journal or arXiv id).
        expression: the law as a sympy expression of the same variables (or None).
        predict: the law as a function of ``X`` ``(n, d) -> (n,)`` (or None).
        numbers: rows ``(quantity, discovered value, literature value)``.
    """

    name: str
    reference: str
    expression: sp.Expr | None = None
    predict: Predict | None = None
    numbers: Sequence[tuple[str, float, float]] = ()


@dataclass(frozen=True)
class Law:
    r"""A discovered law with everything the report shows about it.

    Attributes:
        title: one line saying what the law relates.
        target: name of the predicted quantity.
        variables: names of the inputs, in the column order of ``X_test``.
        expression: the chosen law, a sympy expression in ``sympy.Symbol(name)`` of the
            variables, with its fitted constants as numbers.
        X_test: held-out inputs ``(n, d)``; y_test: held-out target ``(n,)``.
        predict: the law as a function ``(n, d) -> (n,)``; default: ``expression``
            through ``sympy.lambdify``.
        constants: fitted constants ``name -> (value, one-sigma uncertainty)``.
        front: the Pareto front the law was chosen from (may be empty).
        chosen: index of the law in ``front`` (None when it is not on it).
        literature: literature laws to compare with.
        loss_name: what the front's loss measures.
        units: optional units of the target and variables, by name.
        template: the law's form with named constants (symbols matching ``constants``),
            shown beside the numeric expression (None: show only ``expression``).
        latex_names: LaTeX for the target and variable names, e.g. ``{"Omega_m_a":
            r"\Omega_m(a)"}`` (default: sympy's rendering of the names).
        details: further facts (backend, seed, description length, ...) for the JSON.
    """

    title: str
    target: str
    variables: tuple[str, ...]
    expression: sp.Expr
    X_test: np.ndarray
    y_test: np.ndarray
    predict: Predict | None = None
    constants: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    front: Sequence[FrontPoint] = ()
    chosen: int | None = None
    literature: Sequence[Literature] = ()
    loss_name: str = "mean squared error"
    units: Mapping[str, str] = field(default_factory=dict)
    template: sp.Expr | None = None
    latex_names: Mapping[str, str] = field(default_factory=dict)
    details: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        X, y = np.asarray(self.X_test), np.asarray(self.y_test)
        if X.ndim != 2 or X.shape[1] != len(self.variables):
            raise ValueError(
                f"X_test shape {X.shape}: must be (n, {len(self.variables)}) for variables "
                f"{list(self.variables)}"
            )
        if y.shape != (X.shape[0],):
            raise ValueError(f"y_test shape {y.shape}: must be ({X.shape[0]},) like X_test rows")
        if self.chosen is not None and not 0 <= self.chosen < len(self.front):
            raise ValueError(f"chosen={self.chosen}: must index the front (0..{len(self.front)})")

    @property
    def symbols(self) -> tuple[sp.Symbol, ...]:
        """The variables as the sympy symbols of ``expression`` (matched by name)."""
        by_name = {s.name: s for s in self.expression.free_symbols}
        return tuple(by_name.get(v, sp.Symbol(v)) for v in self.variables)

    def latex(self, expr: sp.Expr | None = None) -> str:
        """``target = expr`` (default: the law) in LaTeX, with ``latex_names`` applied."""
        expr = self.expression if expr is None else expr
        names = {
            s: self.latex_names[s.name] for s in expr.free_symbols if s.name in self.latex_names
        }
        lhs = self.latex_names.get(self.target, sp.latex(sp.Symbol(self.target)))
        return f"{lhs} = {sp.latex(expr, symbol_names=names)}"

    def evaluate(self, X: np.ndarray) -> np.ndarray:
        """The law's prediction for inputs ``X`` ``(n, d)``, shape ``(n,)``."""
        X = np.asarray(X, dtype=float)
        if self.predict is not None:
            return np.asarray(self.predict(X), dtype=float).reshape(X.shape[0])
        fn = sp.lambdify(self.symbols, self.expression, "numpy")
        return np.broadcast_to(np.asarray(fn(*X.T), dtype=float), (X.shape[0],)).copy()


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """Held-out accuracy: R^2, RMS error, and max / RMS relative error (where y != 0)."""
    y_true, y_pred = np.asarray(y_true, float), np.asarray(y_pred, float)
    resid = y_pred - y_true
    ss_tot = float(np.sum((y_true - y_true.mean()) ** 2))
    nonzero = y_true != 0
    rel = resid[nonzero] / y_true[nonzero]
    return {
        "r2": 1.0 - float(np.sum(resid**2)) / ss_tot if ss_tot > 0 else float("nan"),
        "rmse": float(np.sqrt(np.mean(resid**2))),
        "max_rel_error": float(np.max(np.abs(rel))) if rel.size else float("nan"),
        "rms_rel_error": float(np.sqrt(np.mean(rel**2))) if rel.size else float("nan"),
    }


def law_record(law: Law) -> dict[str, Any]:
    """JSON-ready record of a law: readable expression, srepr, LaTeX, constants, front, scores."""
    held_out = accuracy(law.y_test, law.evaluate(law.X_test))
    record: dict[str, Any] = {
        "title": law.title,
        "target": law.target,
        "expression": str(law.expression),
        "srepr": sp.srepr(law.expression),
        "latex": law.latex(),
        "template": None if law.template is None else str(law.template),
        "variables": [{"name": v, "units": law.units.get(v, "")} for v in law.variables],
        "target_units": law.units.get(law.target, ""),
        "constants": {
            name: {"value": float(v), "sigma": float(s), "status": "fitted"}
            for name, (v, s) in law.constants.items()
        },
        "held_out": {"n": int(law.y_test.shape[0]), **held_out},
        "front": [
            {"complexity": int(p.complexity), "loss": float(p.loss), "expression": p.expression}
            for p in law.front
        ],
        "chosen": law.chosen,
        "loss_name": law.loss_name,
        "literature": [],
        **{k: v for k, v in law.details.items()},
    }
    for lit in law.literature:
        entry: dict[str, Any] = {
            "name": lit.name,
            "reference": lit.reference,
            "expression": None if lit.expression is None else str(lit.expression),
            "numbers": [
                {"quantity": q, "discovered": float(d), "literature": float(r)}
                for q, d, r in lit.numbers
            ],
        }
        if lit.predict is not None:
            entry["held_out"] = accuracy(law.y_test, lit.predict(np.asarray(law.X_test, float)))
        record["literature"].append(entry)
    return record
