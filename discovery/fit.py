"""Constant fitting in JAX for many expressions at once, and their description length.

All fits run in float64 (inside ``jax.enable_x64``) so that exact constants can be told
apart from nearly exact ones; programs are grouped by padded length and parameter
count so that a few compilations serve every candidate of a search.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp

from discovery import programs as P
from discovery.expressions import complexity, parametrize


@dataclass(frozen=True)
class Fit:
    """Fitted parameters of one tree: ``params`` ``(P,)``, mean squared error, ``J^T J``."""

    params: np.ndarray
    mse: float
    jtj: np.ndarray


def fit_nodes(
    nodes: Sequence[P.Node],
    X: np.ndarray,
    y: np.ndarray,
    p0: Sequence[np.ndarray] | None = None,
    *,
    scale: bool = False,
    restarts: int = 1,
    iterations: int = 30,
    seed: int = 0,
    chunk: int = 1024,
    min_length: int = 8,
    min_params: int = 1,
    deadline: float | None = None,
) -> list[Fit]:
    """Fit the parameters of every tree to ``y`` (shape ``(n,)``) given ``X`` ``(n, d)``.

    ``p0`` gives starting values (default: random); ``restarts`` > 1 adds random
    starting points and keeps the best. With ``scale`` each tree ``g`` is fitted as
    ``s * g`` and ``s`` is appended to its parameters. The kernel is compiled for every
    operator, so that all searches and refits of a session share it. Past ``deadline``
    (``time.monotonic()``), the remaining trees get ``mse = inf`` without being fitted.

    Shapes are padded (program length to a power of two >= ``min_length``, parameters
    to ``min_params`` or ``4 * min_params``, every batch to ``chunk`` programs) so that
    few kernels are ever compiled.
    """
    if not nodes:
        return []
    rng = np.random.default_rng(seed)
    ops_t = P.OPCODES[len(P.LEAVES) :]
    counts = [P.n_params(n) for n in nodes]
    groups: dict[tuple[int, int, bool], list[int]] = {}
    for i, node in enumerate(nodes):
        length = P.bucket(P.program_length(node), min_length)
        n_par = P.bucket(max(counts[i], 1), min_params)
        key = (length, n_par if n_par <= min_params else 4 * min_params, counts[i] > 0)
        groups.setdefault(key, []).append(i)
    results: list[Fit | None] = [None] * len(nodes)
    X = np.asarray(X, float)  # pad columns so that problems of 1..8 variables share kernels
    X = np.concatenate([X, np.zeros((len(X), P.bucket(X.shape[1], 8) - X.shape[1]))], axis=1)
    with jax.enable_x64(True):
        Xj = jnp.asarray(X, jnp.float64)
        yj = jnp.asarray(y, jnp.float64)
        for (length, n_par, free), members in groups.items():
            tries = restarts if free else 1
            step = max(chunk // tries, 1)
            for start in range(0, len(members), step):
                part = members[start : start + step]
                if deadline is not None and time.monotonic() > deadline:
                    for i in part:
                        results[i] = Fit(np.zeros(counts[i] + scale), np.inf, np.eye(counts[i]))
                    continue
                batch = [nodes[i] for i in part] * tries
                init = np.zeros((len(batch), n_par))
                for r in range(tries):
                    for j, i in enumerate(part):
                        row = r * len(part) + j
                        given = p0[i] if p0 is not None else None
                        if given is not None and r == 0:
                            init[row, : len(given)] = given
                        elif given is not None and len(given):
                            noise = rng.normal(size=len(given))
                            init[row, : len(given)] = (
                                given
                                * np.exp(noise)
                                * rng.choice([-1, 1], size=len(given), p=[0.2, 0.8])
                            )
                        else:
                            init[row] = rng.normal(size=n_par) * 2.0
                size = chunk
                prog = P.compile_programs(batch + [batch[0]] * (size - len(batch)), length)
                init = np.concatenate([init, np.zeros((size - len(batch), n_par))])
                params, mse, jtj = jax.device_get(
                    P.fit_batch(prog, init, Xj, yj, ops_t, iterations if free else 0, scale)
                )
                mse = np.where(np.isfinite(mse), mse, np.inf)
                for j, i in enumerate(part):
                    rows = [r * len(part) + j for r in range(tries)]
                    best = min(rows, key=lambda q: mse[q])
                    keep = list(range(counts[i])) + ([n_par] if scale else [])
                    results[i] = Fit(
                        params=np.asarray(params[best][keep]),
                        mse=float(mse[best]),
                        jtj=np.asarray(jtj[best][np.ix_(keep[: counts[i]], keep[: counts[i]])]),
                    )
    return results  # type: ignore[return-value]


def refit(
    exprs: Sequence[sp.Expr],
    variables: Sequence[sp.Symbol],
    X: np.ndarray,
    y: np.ndarray,
    *,
    restarts: int = 2,
    seed: int = 0,
) -> list[tuple[sp.Expr, Fit] | None]:
    """Refit the floating constants of sympy expressions; ``None`` where one cannot be.

    Laws with more than 16 float constants or 64 nodes are not refitted (``None``).

    Returns, for each expression, the expression with refitted constants and its fit.
    Refits share the compiled kernels of :func:`fit_nodes` (same iterations, all operators).
    """
    trees, params, starts, keep = [], [], [], []
    for i, expr in enumerate(exprs):
        pexpr, syms, values = parametrize(expr)
        try:
            tree = P.from_sympy(pexpr, variables, syms)
        except ValueError:
            continue
        if len(syms) > 16 or P.program_length(tree) > 64:  # beyond the refit kernels
            continue
        trees.append(tree)
        params.append((pexpr, syms))
        starts.append(values)
        keep.append(i)
    fits = fit_nodes(
        trees, X, y, starts, restarts=restarts, seed=seed, chunk=64, min_length=32, min_params=4
    )
    out: list[tuple[sp.Expr, Fit] | None] = [None] * len(exprs)
    for i, (pexpr, syms), fit in zip(keep, params, fits, strict=True):
        if np.isfinite(fit.mse):
            values = {s: sp.Float(v, 15) for s, v in zip(syms, fit.params, strict=True)}
            out[i] = (pexpr.xreplace(values), fit)
    return out


def stderr(fit: Fit, n_rows: int) -> np.ndarray:
    """One-sigma uncertainties of the parameters from ``J^T J`` and the residual variance."""
    k = fit.jtj.shape[0]
    if k == 0:
        return np.zeros(0)
    sigma2 = fit.mse * n_rows / max(n_rows - k, 1)
    try:
        cov = np.linalg.pinv(fit.jtj) * sigma2
    except np.linalg.LinAlgError:
        return np.full(k, np.inf)
    return np.sqrt(np.abs(np.diag(cov)))


def _number_cost(number: sp.Number) -> float:
    """Nats to write an exact number: integers and rationals by their digits, pi and e as 2."""
    if number.is_NumberSymbol:
        return math.log(2.0)
    if number.is_Rational:
        p, q = abs(int(number.p)), int(number.q)
        return math.log(max(p, 1)) + math.log(q)
    return 0.0


def description_length(
    expr: sp.Expr, mse: float, n_rows: int, sigma: float, jtj_diag: Mapping[float, float] = {}
) -> float:
    """Minimum description length of a law in nats (Bartlett et al.'s ESR form).

    Gaussian negative log-likelihood with noise ``sigma`` plus the cost of the structure
    (``k log n`` for ``k`` nodes over ``n`` distinct node types), of each float parameter
    (``log|theta| + log(I)/2 - log(3)/2``, floored at 0) and of each exact number.
    """
    nll = 0.5 * n_rows * (mse / sigma**2 + math.log(2 * math.pi * sigma**2))
    k = complexity(expr)
    kinds = {type(a).__name__ for a in sp.preorder_traversal(expr) if not a.is_Number}
    kinds |= {str(a) for a in expr.free_symbols}
    structure = k * math.log(max(len(kinds), 2))
    floats = sorted(expr.atoms(sp.Float), key=sp.default_sort_key)
    param_cost = 0.0
    for value in floats:
        info = jtj_diag.get(float(value), n_rows) / sigma**2
        term = math.log(abs(float(value)) + 1e-300) + 0.5 * math.log(info + 1e-300)
        param_cost += max(0.0, term - 0.5 * math.log(3.0))
    exact = sum(_number_cost(a) for a in expr.atoms(sp.Number, sp.NumberSymbol) if a not in floats)
    return float(nll + structure + param_cost + exact)
