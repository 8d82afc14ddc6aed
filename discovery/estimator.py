"""An estimator facade in the style of PySR and pyoperon: configure, ``fit``, ``predict``."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import sympy as sp

from discovery.front import Candidate, ParetoFront
from discovery.search import discover


class LawRegressor:
    """Symbolic regression with the cosmolaw pipeline.

    The constructor takes :func:`discovery.search.discover`'s options plus the selection
    ``criterion``; after :meth:`fit`, ``pareto_front_`` holds the front, ``equations_``
    its CSV table, and :meth:`sympy`, :meth:`latex`, :meth:`jax` export the selected law.
    """

    def __init__(
        self,
        *,
        operators: str | Sequence[str] | None = None,
        max_complexity: int = 30,
        budget_s: float = 60.0,
        seed: int = 0,
        backend: str = "auto",
        units: Mapping[str, str] | str | None = None,
        criterion: str = "best",
        clock: str = "wall",
    ):
        self.operators = operators
        self.max_complexity = max_complexity
        self.budget_s = budget_s
        self.seed = seed
        self.backend = backend
        self.units = units
        self.criterion = criterion
        self.clock = clock

    def fit(self, X: np.ndarray, y: np.ndarray, variables: Sequence[str] | None = None):
        """Search laws ``y = f(X)`` (``X`` of shape ``(n, d)``); returns ``self``."""
        self.pareto_front_: ParetoFront = discover(
            X,
            y,
            variables=variables,
            units=self.units,
            operators=self.operators,
            max_complexity=self.max_complexity,
            budget_s=self.budget_s,
            seed=self.seed,
            backend=self.backend,
            clock=self.clock,
        )
        self.equations_ = self.pareto_front_.table()
        return self

    def _chosen(self, index: int | None) -> Candidate:
        if not hasattr(self, "pareto_front_"):
            raise ValueError("this LawRegressor is not fitted; call fit(X, y) first")
        if index is None:
            return self.pareto_front_.best(self.criterion)
        return self.pareto_front_.candidates[index]

    def predict(self, X: np.ndarray, index: int | None = None) -> np.ndarray:
        """Predictions of the selected law (or front member ``index``) for ``X`` ``(n, d)``."""
        X = np.asarray(X, float)
        return self._chosen(index).numpy(self.pareto_front_.variables)(X.reshape(len(X), -1))

    def sympy(self, index: int | None = None) -> sp.Expr:
        """The selected law as a sympy expression."""
        return self._chosen(index).expression

    def latex(self, index: int | None = None) -> str:
        """The selected law in LaTeX."""
        return self._chosen(index).latex()

    def jax(self, index: int | None = None) -> Callable:
        """The selected law as a jit-able JAX function ``f(X)``."""
        return self._chosen(index).jax(self.pareto_front_.variables)
