"""Run the symbolic engine (``discovery.discover``) and turn its Pareto front into report inputs."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sympy as sp

from experiments.core.laws import FrontPoint, Law


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

    def law(self, **fields: Any) -> Law:
        """The report's ``Law`` of this search: its expression, constants, front, choice and
        details, with the other ``Law`` fields (title, target, variables, held-out data,
        ...) from ``fields``, which may also replace any of those."""
        found = {
            "expression": self.expression,
            "constants": self.constants,
            "front": self.front,
            "chosen": self.chosen,
            "details": dict(self.details),
        }
        return Law(**{**found, **fields})


def plain(expr: sp.Expr, variables: Sequence[str]) -> sp.Expr:
    """``expr`` with each variable symbol replaced by an assumption-free ``Symbol(name)``."""
    names = set(variables)
    return expr.xreplace({s: sp.Symbol(s.name) for s in expr.free_symbols if s.name in names})


def search(
    X: np.ndarray,
    y: np.ndarray,
    variables: Sequence[str],
    *,
    operators: str | None,
    max_complexity: int,
    budget_s: float,
    seed: int,
    criterion: str = "mdl",
    backend: str = "auto",
    target: str = "y",
    noise: float | None = None,
    admissible: Callable[[sp.Expr], bool] | None = None,
    sigma: float | np.ndarray | None = None,
    clock: str = "wall",
) -> Search:
    """Search a law ``y = g(X)`` with ``discovery.discover`` and pick one by ``criterion``.

    Args:
        X: inputs ``(n, d)``; y: target ``(n,)``; variables: the ``d`` column names.
        operators: comma-separated operator names (see ``discovery.operators``); None for
            the engine's default basis (``discovery.operators.DEFAULT_OPERATORS``).
        max_complexity, budget_s, seed, backend, clock: passed to ``discover`` (``clock``
            ``"work"``: the same law on any machine, :mod:`discovery.budget`).
        criterion: ``"accuracy"``, ``"score"``, ``"best"`` or ``"mdl"`` (``ParetoFront.best``).
        target: name of ``y`` (must differ from the variable names).
        noise: standard deviation of ``y`` (the accuracy asked of the law), one number for
            all rows, which sets the description length; None lets the engine estimate it.
        sigma: the standard deviation of each row of ``y`` ``(n,)`` (e.g. the standard
            error of a bin), or one number: the engine then searches, refits and selects
            with the chi-square likelihood. Give ``noise`` or ``sigma``, not both.
        admissible: the physics a law must obey, as a predicate on ``g`` (in plain symbols
            of ``variables``); the choice is the best admissible law of the front, or the
            best law when none is (``details["admissible"]`` says which).
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
        sigma=sigma,
        clock=clock,
    )
    candidates = list(pareto.candidates)
    passed = [
        c for c in candidates if admissible is None or admissible(plain(c.expression, variables))
    ]
    best = pareto.best(criterion, (lambda c: c in passed) if passed else None)
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
        "clock": clock,
        "operators": operators,
        "noise": noise,
        "chi2": best.chi2,
        "fixed_constants": [
            {"exact": exact, "fitted": fitted, "uncertainty": u, "status": how}
            for exact, fitted, u, how in best.fixed
        ],
    }
    if admissible is not None:
        details["admissible"] = bool(passed)
    return Search(plain(best.expression, variables), front, chosen, constants, details)


#: The configuration entries of an experiment that are passed on to ``search``.
SEARCH_SETTINGS = ("operators", "max_complexity", "budget_s", "criterion", "backend", "clock")


def search_with_config(
    X: np.ndarray,
    y: np.ndarray,
    variables: Sequence[str],
    config: Mapping[str, Any],
    *,
    target: str,
    noise: float | None,
    sigma: float | np.ndarray | None = None,
) -> Search:
    """``search`` with the ``SEARCH_SETTINGS`` and ``seed`` of an experiment's configuration
    (``noise`` or the per-row ``sigma`` as in ``search``)."""
    settings = {k: config[k] for k in SEARCH_SETTINGS}
    return search(
        X,
        y,
        variables,
        seed=int(config["seed"]),
        target=target,
        noise=noise,
        sigma=sigma,
        **settings,
    )


def univariate(expr: sp.Expr, variable: str) -> Callable[[np.ndarray], np.ndarray]:
    """NumPy function ``(n, 1) -> (n,)`` of a law of one variable (constant laws included)."""
    fn = sp.lambdify(sp.Symbol(variable), expr, "numpy")

    def predict(X: np.ndarray) -> np.ndarray:
        return np.broadcast_to(np.asarray(fn(X[:, 0]), float), (X.shape[0],))

    return predict


def train_test_bins(
    sims: Mapping[int, Mapping[str, np.ndarray]],
    config: Mapping[str, Any],
    x_key: str,
    shift: float,
) -> tuple[np.ndarray, np.ndarray, float, np.ndarray, np.ndarray]:
    """Binned data of the training and held-out simulations, each stacked over its seeds.

    Args:
        sims: per seed, arrays ``x_key``, ``y_bin`` and ``y_err`` (the bins' standard errors).
        config: with the seed lists ``train_seeds`` and ``test_seeds``.
        x_key: the binned input; the law's variable is ``shift + sims[seed][x_key]``.

    Returns:
        ``X (n, 1)``, ``y (n,)``, the rms error of the training bins (the accuracy asked of a
        law), ``X_test (m, 1)`` and ``y_test (m,)``.
    """

    def stack(seeds: Sequence[int]) -> tuple[np.ndarray, ...]:
        X = shift + np.concatenate([sims[s][x_key] for s in seeds])[:, None]
        return X, *(np.concatenate([sims[s][k] for s in seeds]) for k in ("y_bin", "y_err"))

    X, y, err = stack(config["train_seeds"])
    X_test, y_test, _ = stack(config["test_seeds"])
    return X, y, float(np.sqrt(np.mean(err**2))), X_test, y_test


def training_errors(
    sims: Mapping[int, Mapping[str, np.ndarray]], config: Mapping[str, Any]
) -> np.ndarray:
    """The standard errors ``y_err`` of the training bins, ``(n,)`` in the row order of
    ``train_test_bins``: the per-row ``sigma`` of ``search`` (the chi-square likelihood)."""
    return np.concatenate([sims[s]["y_err"] for s in config["train_seeds"]])
