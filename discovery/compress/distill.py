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


def neighbour_noise(inputs: np.ndarray, summaries: np.ndarray, k: int | None = None) -> np.ndarray:
    """The scatter of each summary that no smooth function of ``inputs`` explains, ``(p,)``.

    A local-linear difference estimate, independent of any global law: each row's summaries
    are predicted by a linear fit to its ``k`` nearest other rows in the standardised inputs
    ``(n, d)`` (default ``k = 4 d + 4``), and ``sigma_j**2`` is the mean of the squared
    prediction errors divided by ``1 + h`` (``h`` the fit's variance at the row in units of
    ``sigma**2``), for ``summaries`` ``(n, p)``. Curvature of the law within a neighbourhood
    is the only bias; it is second order in the neighbourhood's size.
    """
    x = np.asarray(inputs, float)
    x = (x - x.mean(axis=0)) / np.maximum(x.std(axis=0), 1e-300)
    t = np.asarray(summaries, float)
    n, d = x.shape
    k = min(4 * d + 4 if k is None else int(k), n - 1)
    if k < d + 2:
        raise ValueError(f"inputs has {n} rows: at least {d + 3} are needed for {d} inputs")
    d2 = np.sum((x[:, None, :] - x[None, :, :]) ** 2, axis=-1)
    np.fill_diagonal(d2, np.inf)
    near = np.argsort(d2, axis=1)[:, :k]  # (n, k)
    design = np.concatenate([np.ones((n, k, 1)), x[near] - x[:, None, :]], axis=-1)
    gram_inv = np.linalg.inv(np.einsum("nki,nkj->nij", design, design))  # (n, d+1, d+1)
    coef = np.einsum("nij,nkj,nkp->nip", gram_inv, design, t[near])  # (n, d+1, p)
    leverage = gram_inv[:, 0, 0]  # prediction at the row itself: the intercept
    error = t - coef[:, 0, :]
    return np.sqrt(np.mean(error**2 / (1.0 + leverage[:, None]), axis=0))


def distill(
    inputs: np.ndarray,
    summaries: np.ndarray,
    variables: Sequence[str],
    operators: str | None = "add,sub,mul,div,log",
    max_complexity: int = 15,
    budget_s: float = 30.0,
    criterion: str = "best",
    seed: int = 0,
    backend: str = "auto",
    sigma: np.ndarray | None = None,
    clock: str = "wall",
) -> SymbolicSummaries:
    """Fit each column of ``summaries`` (n, p) as a law of ``inputs`` (n, n_inputs) named
    ``variables``; ``budget_s`` is the search time per summary (on the clock ``clock``),
    ``backend``, ``clock`` and ``criterion`` are those of ``discovery.discover`` and
    ``ParetoFront.best``. ``sigma`` ``(p,)``: the
    scatter of each summary at fixed inputs (e.g. :func:`neighbour_noise`), which the
    search's chi-square and description length then use; None lets the engine estimate it
    from its most accurate law."""
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
            sigma=None if sigma is None else float(sigma[j]),
            clock=clock,
        )
        for j in range(summaries.shape[1])
    )
    return SymbolicSummaries(fronts, tuple(front.best(criterion) for front in fronts))
