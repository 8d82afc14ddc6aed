"""Candidates and the Pareto front: model selection, exports and JSON that round-trips.

A :class:`Candidate` is one law: a sympy expression in the variables with its fitted
constants written in as floats (exact numbers stay exact), its complexity, mean squared
error (``loss``; weighted by ``1/sigma`` when the rows have their own, see
:class:`discovery.fit.Noise`), chi-square when the noise was given, description length in
nats, the one-sigma uncertainties of its float constants and the constants that were
snapped or pruned to exact numbers. A :class:`ParetoFront` keeps, for each complexity,
the most accurate candidate that beats every simpler one, and selects among them.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import jax.numpy as jnp
import numpy as np
import sympy as sp

from discovery.expressions import jax_function, parametrize

CRITERIA = ("accuracy", "score", "best", "mdl")


@dataclass(frozen=True)
class Candidate:
    """One law ``target = expression(variables)`` with its fit statistics."""

    expression: sp.Expr
    complexity: int
    loss: float
    description_length: float
    constants: tuple[tuple[float, float], ...] = ()  # (value, one-sigma uncertainty)
    backend: str = ""
    score: float = 0.0
    #: constants replaced by exact numbers: (exact number, fitted value, its one-sigma
    #: uncertainty then, "snapped" or "pruned")
    fixed: tuple[tuple[str, float, float, str], ...] = ()
    #: chi-square of the law when the noise of ``y`` was given (``sigma``), else None
    chi2: float | None = None

    def latex(self) -> str:
        """LaTeX of the expression."""
        return sp.latex(self.expression)

    def jax(self, variables: Sequence[sp.Symbol]) -> Callable[[jnp.ndarray], jnp.ndarray]:
        """A pure JAX function ``f(X) -> y`` for ``X`` of shape ``(..., len(variables))``."""
        f = jax_function(self.expression, variables)
        empty = jnp.zeros(0)
        return lambda X: f(empty, X)

    def jax_with_params(self, variables: Sequence[sp.Symbol]) -> tuple[Callable, np.ndarray]:
        """``(f(params, X), params)``: the float constants as a differentiable argument."""
        pexpr, syms, values = parametrize(self.expression)
        return jax_function(pexpr, variables, syms), values

    def numpy(self, variables: Sequence[sp.Symbol]) -> Callable[[np.ndarray], np.ndarray]:
        """A NumPy function ``f(X) -> y`` (through ``sympy.lambdify``)."""
        f = sp.lambdify(list(variables), self.expression, "numpy")
        return lambda X: np.broadcast_to(
            f(*np.moveaxis(np.asarray(X, float), -1, 0)), np.shape(X)[:-1]
        )

    def c_code(self, target: str = "y") -> str:
        """C99 assignment ``target = ...;`` (sympy's C printer)."""
        return sp.ccode(self.expression, assign_to=target, standard="c99")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: readable string, ``srepr``, LaTeX and statistics."""
        return {
            "expression": str(self.expression),
            "srepr": sp.srepr(self.expression),
            "latex": self.latex(),
            "complexity": self.complexity,
            "loss": _finite(self.loss),
            "description_length": _finite(self.description_length),
            "score": _finite(self.score),
            "chi2": None if self.chi2 is None else _finite(self.chi2),
            "constants": [
                {"value": v, "uncertainty": _finite(u), "status": "fitted"}
                for v, u in self.constants
            ]
            + [
                {
                    "value": float(sp.sympify(exact)),
                    "exact": exact,
                    "fitted": fitted,
                    "uncertainty": _finite(u),
                    "status": how,
                }
                for exact, fitted, u, how in self.fixed
            ],
            "backend": self.backend,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Candidate:
        """Inverse of :meth:`to_dict` (the expression is rebuilt from ``srepr``)."""
        return cls(
            expression=sp.sympify(_eval_srepr(data["srepr"])),
            complexity=int(data["complexity"]),
            loss=_unfinite(data["loss"]),
            description_length=_unfinite(data["description_length"]),
            constants=tuple(
                (float(c["value"]), _unfinite(c["uncertainty"]))
                for c in data["constants"]
                if c.get("status", "fitted") == "fitted"
            ),
            backend=data.get("backend", ""),
            score=_unfinite(data.get("score", 0.0)),
            fixed=tuple(
                (c["exact"], float(c["fitted"]), _unfinite(c["uncertainty"]), c["status"])
                for c in data["constants"]
                if c.get("status", "fitted") != "fitted"
            ),
            chi2=None if data.get("chi2") is None else _unfinite(data["chi2"]),
        )


def _finite(x: float) -> float | str:
    return float(x) if math.isfinite(x) else str(x)


def _unfinite(x: float | str) -> float:
    return float(x)


def _eval_srepr(text: str) -> sp.Expr:
    namespace = {name: getattr(sp, name) for name in dir(sp) if not name.startswith("_")}
    namespace.update({"Symbol": sp.Symbol, "Integer": sp.Integer, "Float": sp.Float})
    return eval(text, {"__builtins__": {}}, namespace)  # srepr output of our own files only


@dataclass(frozen=True)
class ParetoFront:
    """Non-dominated candidates by (complexity, loss), simplest first.

    ``variables`` are the sympy symbols (in the column order of ``X``), ``units`` the
    unit strings given for variables and target, ``target`` the target's name.
    ``timings`` holds the wall-clock seconds :func:`discovery.discover` spent per stage
    (``"total"`` included), ``budget_s`` the budget it was given and ``clock`` what the
    budget counted (:data:`discovery.budget.CLOCKS`); ``truncated`` says,
    one sentence per item, what the budget cut short (empty when nothing was skipped).
    """

    candidates: tuple[Candidate, ...]
    variables: tuple[sp.Symbol, ...]
    target: str = "y"
    units: dict[str, str] = field(default_factory=dict)
    backend: str = ""
    seed: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    budget_s: float | None = None
    truncated: tuple[str, ...] = ()
    clock: str = "wall"

    @classmethod
    def build(cls, candidates: Sequence[Candidate], variables, **meta: Any) -> ParetoFront:
        """The front of ``candidates``: per complexity the lowest loss, then only improvements.

        Scores follow PySR: ``-d log(loss) / d complexity`` between neighbours on the front.
        """
        by_c: dict[int, list[Candidate]] = {}
        for c in candidates:
            if math.isfinite(c.loss):
                by_c.setdefault(c.complexity, []).append(c)
        for k, group in by_c.items():  # equal loss to round-off: the shorter description wins
            floor = min(c.loss for c in group) * (1 + 1e-6) + 1e-300
            by_c[k] = min((c for c in group if c.loss <= floor), key=lambda c: c.description_length)
        front: list[Candidate] = []
        for k in sorted(by_c):
            c = by_c[k]
            if front and c.loss >= front[-1].loss * (1 - 1e-6):
                continue
            score = 0.0
            if front:
                prev = front[-1]
                score = -(_log(c.loss) - _log(prev.loss)) / (c.complexity - prev.complexity)
            front.append(replace(c, score=score))
        return cls(tuple(front), tuple(variables), **meta)

    def best(
        self, criterion: str = "best", admissible: Callable[[Candidate], bool] | None = None
    ) -> Candidate:
        """Select a candidate by ``criterion``.

        ``"accuracy"``: lowest loss; ``"score"``: highest score; ``"best"`` (PySR's
        rule): highest score among candidates with loss at most 1.5 times the lowest;
        ``"mdl"``: lowest description length. With ``admissible`` (e.g. a check of known
        physical limits), only the candidates it accepts are considered; a ValueError
        when it accepts none.
        """
        if criterion not in CRITERIA:
            raise ValueError(f"criterion={criterion!r}; allowed: {', '.join(CRITERIA)}")
        if not self.candidates:
            raise ValueError("the Pareto front is empty: no candidate could be fitted")
        cands = [c for c in self.candidates if admissible is None or admissible(c)]
        if not cands:
            raise ValueError("no candidate of the Pareto front is admissible")
        if criterion == "accuracy":
            return min(cands, key=lambda c: c.loss)
        if criterion == "score":
            return max(cands, key=lambda c: c.score)
        if criterion == "mdl":
            return min(cands, key=lambda c: c.description_length)
        floor = 1.5 * min(c.loss for c in cands)
        return max((c for c in cands if c.loss <= floor), key=lambda c: c.score)

    def signature(self, digits: int = 9) -> tuple[tuple[int, str, str], ...]:
        """The front up to round-off: for each candidate its complexity, its loss to
        ``digits`` significant digits and its expression with every float written ``c``
        (constants that trade off along a flat direction of the fit take values that
        depend on the last bits of the arithmetic)."""
        c = sp.Symbol("c")
        return tuple(
            (
                cand.complexity,
                f"{cand.loss:.{digits}g}",
                str(cand.expression.xreplace(dict.fromkeys(cand.expression.atoms(sp.Float), c))),
            )
            for cand in self.candidates
        )

    def table(self) -> str:
        """The front as CSV text: complexity, loss, score, description_length, equation."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["complexity", "loss", "score", "description_length", "equation"])
        for c in self.candidates:
            writer.writerow([c.complexity, c.loss, c.score, c.description_length, c.expression])
        return out.getvalue()

    def to_dict(self, criterion: str = "best") -> dict[str, Any]:
        """JSON-ready dict with the selected law under ``best`` and the whole front."""
        chosen = self.best(criterion) if self.candidates else None
        return {
            "target": self.target,
            "variables": [
                {"name": str(s), "positive": bool(s.is_positive), "units": self.units.get(str(s))}
                for s in self.variables
            ],
            "target_units": self.units.get(self.target),
            "backend": self.backend,
            "seed": self.seed,
            "criterion": criterion,
            "best": chosen.to_dict() if chosen else None,
            "pareto_front": [c.to_dict() for c in self.candidates],
            "budget": {
                "budget_s": self.budget_s,
                "clock": self.clock,
                "timings_s": dict(self.timings),
                "truncated": list(self.truncated),
            },
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ParetoFront:
        """Inverse of :meth:`to_dict`."""
        variables = tuple(
            sp.Symbol(v["name"], positive=True)
            if v["positive"]
            else sp.Symbol(v["name"], real=True)
            for v in data["variables"]
        )
        units = {v["name"]: v["units"] for v in data["variables"] if v.get("units")}
        if data.get("target_units"):
            units[data["target"]] = data["target_units"]
        budget = data.get("budget", {})
        return cls(
            candidates=tuple(Candidate.from_dict(c) for c in data["pareto_front"]),
            variables=variables,
            target=data["target"],
            units=units,
            backend=data.get("backend", ""),
            seed=int(data.get("seed", 0)),
            timings={k: float(v) for k, v in budget.get("timings_s", {}).items()},
            budget_s=budget.get("budget_s"),
            truncated=tuple(budget.get("truncated", ())),
            clock=budget.get("clock", "wall"),
        )


def _log(x: float) -> float:
    return math.log(max(x, 1e-300))
