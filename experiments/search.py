"""Run the symbolic engine (``discovery.discover``) and turn its Pareto front into report inputs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sympy as sp

from experiments.laws import FrontPoint


@dataclass(frozen=True)
class Search:
    """Outcome of one search.

    Attributes:
        expression: the chosen law in plain ``sympy.Symbol(name)`` of the variables.
        front: the Pareto front as report rows; chosen: index of the law in it.
        constants: the engine's fitted constants ``name -> (value, sigma)``.
        details: backend, seed, criterion, loss, complexity, description length.
    """

    expression: sp.Expr
    front: tuple[FrontPoint, ...]
    chosen: int | None
    constants: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    details: Mapping[str, Any] = field(default_factory=dict)


def plain(expr: sp.Expr, variables: Sequence[str]) -> sp.Expr:
    """``expr`` with each variable symbol replaced by an assumption-free ``Symbol(name)``."""
    names = set(variables)
    return expr.xreplace({s: sp.Symbol(s.name) for s in expr.free_symbols if s.name in names})


def search(
    X: np.ndarray,
    y: np.ndarray,
    variables: Sequence[str],
    *,
    operators: str,
    max_complexity: int,
    budget_s: float,
    seed: int,
    criterion: str = "mdl",
    backend: str = "auto",
    target: str = "y",
    noise: float | None = None,
) -> Search:
    """Search a law ``y = g(X)`` with ``discovery.discover`` and pick one by ``criterion``.

    Args:
        X: inputs ``(n, d)``; y: target ``(n,)``; variables: the ``d`` column names.
        operators: comma-separated operator names (see ``discovery.operators``).
        max_complexity, budget_s, seed, backend: passed to ``discover``.
        criterion: ``"accuracy"``, ``"score"``, ``"best"`` or ``"mdl"`` (``ParetoFront.best``).
        target: name of ``y`` (must differ from the variable names).
        noise: standard deviation of ``y`` (the accuracy asked of the law), which sets the
            description length; None lets the engine estimate it.
    """
    from discovery import discover

    pareto = discover(
        np.asarray(X, float),
        np.asarray(y, float),
        variables=list(variables),
        operators=operators,
        max_complexity=max_complexity,
        budget_s=budget_s,
        seed=seed,
        backend=backend,
        target=target,
        noise=noise,
    )
    best = pareto.best(criterion)
    candidates = list(pareto.candidates)
    front = tuple(
        FrontPoint(int(c.complexity), float(c.loss), str(plain(c.expression, variables)))
        for c in candidates
    )
    chosen = next((i for i, c in enumerate(candidates) if c is best), None)
    constants = {f"c{i}": (float(v), float(s)) for i, (v, s) in enumerate(best.constants)}
    details = {
        "backend": best.backend or pareto.backend,
        "seed": seed,
        "criterion": criterion,
        "loss": float(best.loss),
        "complexity": int(best.complexity),
        "description_length": float(best.description_length),
        "budget_s": budget_s,
        "operators": operators,
        "noise": noise,
    }
    return Search(plain(best.expression, variables), front, chosen, constants, details)
