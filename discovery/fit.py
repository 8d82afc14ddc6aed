"""Constant fitting: many small trees at once in JAX, single laws with NumPy; description length.

The exhaustive search fits thousands of trees of a few nodes with one compiled, padded,
``vmap``-ed JAX kernel per operator basis (:func:`fit_nodes`), in float64 (inside
``jax.enable_x64``) so that exact constants can be told apart from nearly exact ones.
The post-processing refits a few hundred laws of any size and shape: each is compiled
to NumPy by sympy and fitted by MINPACK's Levenberg-Marquardt (:func:`refit`), which
costs milliseconds per law instead of a compilation per padded shape.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp

from discovery import programs as P
from discovery.expressions import complexity, parametrize

_PENALTY = 1e8  # residual (in units of max|y|) standing in for a non-finite model value


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
    operators: Sequence[str],
    *,
    scale: bool = False,
    restarts: int = 1,
    iterations: int = 30,
    seed: int = 0,
    chunk: int = 128,
    deadline: float | None = None,
) -> list[Fit]:
    """Fit the parameters of every tree to ``y`` (shape ``(n,)``) given ``X`` ``(n, d)``.

    ``operators`` is the basis the trees use (only those branches are compiled).
    Starting points are random; ``restarts`` > 1 adds more and keeps the best. With
    ``scale`` each tree ``g`` is fitted as ``s * g`` and ``s`` is appended to its
    parameters. Past ``deadline`` (``time.monotonic()``), the remaining trees get
    ``mse = inf`` without being fitted (after at least one batch). Constant-free trees,
    which need no iterations, come first.

    Shapes are padded (program length to a power of two >= 8, parameters to the largest
    count of the call, every batch to ``chunk`` programs) and the iteration count is a
    traced argument, so one compilation per operator basis and row count serves a session.
    """
    if not nodes:
        return []
    rng = np.random.default_rng(seed)
    ops_t = tuple(o for o in P.OPCODES[len(P.LEAVES) :] if o in set(operators))
    counts = [P.n_params(n) for n in nodes]
    n_par = P.bucket(max(max(counts), 1), 2)
    groups: dict[tuple[int, bool], list[int]] = {}
    for i in sorted(range(len(nodes)), key=lambda i: counts[i] > 0):
        groups.setdefault((P.bucket(P.program_length(nodes[i]), 8), counts[i] > 0), []).append(i)
    results: list[Fit | None] = [None] * len(nodes)
    fitted = False  # the first batch is fitted whatever the deadline: a search makes progress
    X = np.asarray(X, float)  # pad columns so that problems of 1..8 variables share kernels
    X = np.concatenate([X, np.zeros((len(X), P.bucket(X.shape[1], 8) - X.shape[1]))], axis=1)
    with jax.enable_x64(True):
        Xj = jnp.asarray(X, jnp.float64)
        yj = jnp.asarray(y, jnp.float64)
        for (length, free), members in groups.items():
            tries = restarts if free else 1
            step = max(chunk // tries, 1)
            for start in range(0, len(members), step):
                part = members[start : start + step]
                if fitted and deadline is not None and time.monotonic() > deadline:
                    for i in part:
                        results[i] = Fit(np.zeros(counts[i] + scale), np.inf, np.eye(counts[i]))
                    continue
                batch = [nodes[i] for i in part] * tries
                init = np.zeros((chunk, n_par))
                init[: len(batch)] = rng.normal(size=(len(batch), n_par)) * 2.0
                prog = P.compile_programs(batch + [batch[0]] * (chunk - len(batch)), length)
                steps = jnp.asarray(iterations if free else 0, jnp.int32)
                params, mse, jtj = jax.device_get(
                    P.fit_batch(prog, init, Xj, yj, steps, ops=ops_t, scale=scale)
                )
                mse = np.where(np.isfinite(mse), mse, np.inf)
                fitted = True
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


def numpy_model(
    expr: sp.Expr, variables: Sequence[sp.Symbol], params: Sequence[sp.Symbol] = ()
) -> Callable[[np.ndarray, np.ndarray], np.ndarray] | None:
    """A NumPy function ``f(p, X) -> y`` of ``expr`` (``p`` of shape ``(P,)``, ``X`` ``(n, d)``).

    Returns ``None`` when sympy cannot translate the expression. Values that are not
    finite (or not real) come back as NaN.
    """
    try:
        f = sp.lambdify([*params, *variables], expr, "numpy")
    except (TypeError, ValueError, NameError, SyntaxError, KeyError):
        return None

    def model(p: np.ndarray, X: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            try:
                v = np.asarray(f(*p, *X.T))
            except (TypeError, ValueError, ZeroDivisionError, OverflowError, AttributeError):
                return np.full(len(X), np.nan)
            if np.iscomplexobj(v):
                v = np.where(np.abs(v.imag) <= 1e-12 * np.abs(v.real), v.real, np.nan)
            return np.broadcast_to(v.astype(float), (len(X),))

    return model


def least_squares(
    model: Callable[[np.ndarray, np.ndarray], np.ndarray],
    p0: np.ndarray,
    X: np.ndarray,
    y: np.ndarray,
    *,
    free: np.ndarray | None = None,
) -> Fit:
    """Levenberg-Marquardt fit (MINPACK through scipy) of ``model(p, X)`` to ``y`` ``(n,)``.

    Starts at ``p0`` ``(P,)``; ``free`` (bool, shape ``(P,)``, default all) selects the
    parameters to fit, the others keep their value in ``p0``. ``jtj`` is ``J^T J`` of the
    free parameters at the solution; ``mse`` is ``inf`` where the model is not finite.
    """
    from scipy.optimize import least_squares as lsq

    p0 = np.asarray(p0, float)
    free = np.ones(p0.shape, bool) if free is None else np.asarray(free, bool)
    idx = np.flatnonzero(free)

    def full(q: np.ndarray) -> np.ndarray:
        p = p0.copy()
        p[idx] = q
        return p

    penalty = _PENALTY * (1.0 + float(np.max(np.abs(y))))

    def residual(q: np.ndarray) -> np.ndarray:
        r = model(full(q), X) - y
        return np.where(np.isfinite(r), r, penalty)

    def mse_of(q: np.ndarray) -> float:
        r = model(full(q), X) - y
        return float(np.mean(r * r)) if np.all(np.isfinite(r)) else np.inf

    none = np.zeros((idx.size, idx.size))
    if idx.size == 0 or idx.size >= len(y):
        return Fit(p0, mse_of(p0[idx]), none)
    with np.errstate(all="ignore"):  # overflowing trial steps are rejected by the LM
        try:
            res = lsq(
                residual,
                p0[idx],
                method="lm",
                xtol=1e-15,
                ftol=1e-15,
                gtol=1e-15,
                max_nfev=100 * (idx.size + 1),
            )
        except (ValueError, np.linalg.LinAlgError, FloatingPointError):
            return Fit(p0, np.inf, none)
        jac = np.where(np.isfinite(res.jac), res.jac, 0.0)
        return Fit(full(res.x), mse_of(res.x), jac.T @ jac)


def refit(
    exprs: Sequence[sp.Expr], variables: Sequence[sp.Symbol], X: np.ndarray, y: np.ndarray
) -> list[tuple[sp.Expr, Fit] | None]:
    """Refit the floating constants of sympy expressions on all rows (``X`` ``(n, d)``).

    Each expression is compiled to NumPy and fitted by :func:`least_squares` from its
    own constants (no JAX compilation, so the cost grows with the size of each law, not
    with a padded kernel). Returns, for each expression, the expression with refitted
    constants and its fit (``params`` in the order of
    :func:`discovery.expressions.parametrize`); ``None`` where it cannot be evaluated or
    fitted.
    """
    X = np.asarray(X, float)
    y = np.asarray(y, float)
    out: list[tuple[sp.Expr, Fit] | None] = []
    for expr in exprs:
        pexpr, syms, values = parametrize(expr)
        model = numpy_model(pexpr, variables, syms)
        fit = None if model is None else least_squares(model, values, X, y)
        if fit is None or not np.isfinite(fit.mse):
            out.append(None)
            continue
        fitted = {s: sp.Float(v, 15) for s, v in zip(syms, fit.params, strict=True)}
        out.append((pexpr.xreplace(fitted), fit))
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
