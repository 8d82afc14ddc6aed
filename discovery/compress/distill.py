"""Symbolic distillation: closed-form laws for what a trained compressor computes.

Each summary of a network is fitted by the symbolic engine (``discovery.discover``) as a function
of a few interpretable inputs (coarse band powers, field moments, ...). The selected laws form a
``SymbolicSummaries`` compressor, a JAX function that can be differentiated like the network, so
its Fisher information is measured on the same simulations (``datasets.summary_derivatives``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np


@dataclasses.dataclass(frozen=True)
class SymbolicSummaries:
    """Summaries ``t_j = law_j(inputs)``; ``fronts[j]`` is the Pareto front of summary j."""

    fronts: tuple  #: one ``discovery.ParetoFront`` per summary
    laws: tuple  #: the selected ``discovery.Candidate`` of each front

    def __call__(self, inputs: jax.Array) -> jax.Array:
        """Summaries of a batch of inputs (n, n_inputs) -> (n, n_summaries); differentiable."""
        columns = [
            law.jax(front.variables)(inputs)
            for front, law in zip(self.fronts, self.laws, strict=True)
        ]
        return jnp.stack([jnp.broadcast_to(c, inputs.shape[:-1]) for c in columns], axis=-1)

    def expressions(self) -> list[str]:
        """Readable form of each law."""
        return [str(law.expression) for law in self.laws]


def distill(
    inputs: np.ndarray,
    summaries: np.ndarray,
    variables: Sequence[str],
    operators: str = "add,sub,mul,div,log",
    max_complexity: int = 15,
    budget_s: float = 30.0,
    criterion: str = "best",
    seed: int = 0,
    backend: str = "auto",
) -> SymbolicSummaries:
    """Fit each column of ``summaries`` (n, p) as a law of ``inputs`` (n, n_inputs) named
    ``variables``; ``budget_s`` is the search time per summary, ``backend`` and ``criterion``
    are those of ``discovery.discover`` and ``ParetoFront.best``."""
    from discovery import discover

    inputs = np.asarray(inputs, float)
    summaries = np.asarray(summaries, float)
    if summaries.ndim != 2 or summaries.shape[0] != inputs.shape[0]:
        raise ValueError(
            f"summaries.shape={summaries.shape}: expected ({inputs.shape[0]}, n_summaries)"
        )
    fronts = tuple(
        discover(
            inputs,
            summaries[:, j],
            variables=list(variables),
            operators=operators,
            max_complexity=max_complexity,
            budget_s=budget_s,
            seed=seed,
            backend=backend,
            target=f"t{j}",
        )
        for j in range(summaries.shape[1])
    )
    return SymbolicSummaries(fronts, tuple(front.best(criterion) for front in fronts))
