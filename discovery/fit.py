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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp

from discovery import budget
from discovery import programs as P
from discovery.expressions import complexity, parametrize

_PENALTY = 1e8  # residual (in units of max|y|) standing in for a non-finite model value
#: Irrational numbers (pi, sqrt(2), their powers ...) snapping chooses among; naming one
#: costs ``log(IRRATIONALS)`` nats in a description length.
IRRATIONALS = 11


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
    weights: np.ndarray | None = None,
) -> list[Fit]:
    """Fit the parameters of every tree to ``y`` (shape ``(n,)``) given ``X`` ``(n, d)``.

    ``weights`` ``(n,)`` (default ones) multiply the residuals: ``1/sigma`` of each row,
    scaled to a mean square of 1, makes ``mse`` a chi-square per row times ``sigma**2``.

    ``operators`` is the basis the trees use (only those branches are compiled).
    Starting points are random; ``restarts`` > 1 adds more and keeps the best. With
    ``scale`` each tree ``g`` is fitted as ``s * g`` and ``s`` is appended to its
    parameters. Past ``deadline`` (:func:`discovery.budget.now`), the remaining trees get
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
        wj = jnp.asarray(np.ones(len(y)) if weights is None else weights, jnp.float64)
        for (length, free), members in groups.items():
            tries = restarts if free else 1
            step = max(chunk // tries, 1)
            for start in range(0, len(members), step):
                part = members[start : start + step]
                if fitted and budget.past(deadline):
                    for i in part:
                        results[i] = Fit(np.zeros(counts[i] + scale), np.inf, np.eye(counts[i]))
                    continue
                batch = [nodes[i] for i in part] * tries
                init = np.zeros((chunk, n_par))
                init[: len(batch)] = rng.normal(size=(len(batch), n_par)) * 2.0
                prog = P.compile_programs(batch + [batch[0]] * (chunk - len(batch)), length)
                steps = jnp.asarray(iterations if free else 0, jnp.int32)
                params, mse, jtj = jax.device_get(
                    P.fit_batch(prog, init, Xj, yj, wj, steps, ops=ops_t, scale=scale)
                )
                mse = np.where(np.isfinite(mse), mse, np.inf)
                budget.charge_seconds(
                    budget.batch_seconds(len(y), ops_t, iterations if free else 0)
                )
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
    weights: np.ndarray | None = None,
) -> Fit:
    """Levenberg-Marquardt fit (MINPACK through scipy) of ``model(p, X)`` to ``y`` ``(n,)``.

    Starts at ``p0`` ``(P,)``; ``free`` (bool, shape ``(P,)``, default all) selects the
    parameters to fit, the others keep their value in ``p0``. ``weights`` ``(n,)`` multiply
    the residuals (chi-square: ``1/sigma``, see :func:`noise_weights`). ``jtj`` is ``J^T J``
    of the free parameters and the weighted residuals at the solution; ``mse`` (the mean
    squared weighted residual) is ``inf`` where the model is not finite.
    """
    from scipy.optimize import least_squares as lsq

    p0 = np.asarray(p0, float)
    free = np.ones(p0.shape, bool) if free is None else np.asarray(free, bool)
    idx = np.flatnonzero(free)

    def full(q: np.ndarray) -> np.ndarray:
        p = p0.copy()
        p[idx] = q
        return p

    w = np.ones(len(y)) if weights is None else np.asarray(weights, float)
    penalty = _PENALTY * (1.0 + float(np.max(np.abs(w * y))))

    def residual(q: np.ndarray) -> np.ndarray:
        r = w * (model(full(q), X) - y)
        return np.where(np.isfinite(r), r, penalty)

    def mse_of(q: np.ndarray) -> float:
        r = w * (model(full(q), X) - y)
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
    exprs: Sequence[sp.Expr],
    variables: Sequence[sp.Symbol],
    X: np.ndarray,
    y: np.ndarray,
    weights: np.ndarray | None = None,
) -> list[tuple[sp.Expr, Fit] | None]:
    """Refit the floating constants of sympy expressions on all rows (``X`` ``(n, d)``),
    with the residuals multiplied by ``weights`` ``(n,)`` when given.

    Each expression is compiled to NumPy and fitted by :func:`least_squares` from its
    own constants (no JAX compilation, so the cost grows with the size of each law, not
    with a padded kernel). Returns, for each expression, the expression with refitted
    constants and its fit (``params`` in the order of
    :func:`discovery.expressions.parametrize`); ``None`` where it cannot be evaluated or
    fitted.
    """
    X = np.asarray(X, float)
    y = np.asarray(y, float)
    return [Law.of(expr, variables).refit(X, y, weights) for expr in exprs]


@dataclass(frozen=True)
class Law:
    """A law compiled once for fitting: ``template`` (floats replaced by ``params``), their
    ``values`` ``(P,)`` and the NumPy ``model(p, X)`` (None when it cannot be compiled)."""

    template: sp.Expr
    params: tuple[sp.Symbol, ...]
    values: np.ndarray
    model: Callable[[np.ndarray, np.ndarray], np.ndarray] | None

    @classmethod
    def of(cls, expr: sp.Expr, variables: Sequence[sp.Symbol]) -> Law:
        """Compile ``expr`` in ``variables`` (:func:`numpy_model` of its parametrisation)."""
        template, params, values = parametrize(expr)
        return cls(template, params, values, numpy_model(template, variables, params))

    def mse(self, X: np.ndarray, y: np.ndarray, weights: np.ndarray | None = None) -> float:
        """Mean squared (weighted) residual with the constants as they are; inf if not finite."""
        if self.model is None:
            return np.inf
        r = (self.model(self.values, X) - y) * (1.0 if weights is None else weights)
        value = float(np.mean(r * r))
        return value if math.isfinite(value) else np.inf

    def refit(
        self, X: np.ndarray, y: np.ndarray, weights: np.ndarray | None = None
    ) -> tuple[sp.Expr, Fit] | None:
        """The law with its constants refitted by :func:`least_squares`, and the fit; None
        where it cannot be evaluated or fitted."""
        if self.model is None:
            return None
        fit = least_squares(self.model, self.values, X, y, weights=weights)
        if not np.isfinite(fit.mse):
            return None
        fitted = {s: sp.Float(v, 15) for s, v in zip(self.params, fit.params, strict=True)}
        return self.template.xreplace(fitted), fit


def stderr(fit: Fit, n_rows: int, noise: float | None = None) -> np.ndarray:
    """One-sigma uncertainties ``(P,)`` of the parameters from ``J^T J``.

    ``noise`` is the known standard deviation of the (weighted) residuals, in the units of
    ``y``; without it, the residual variance of the fit stands in (``mse n / (n - P)``).
    A direction of the parameters that the data do not constrain at all (an eigenvalue of
    ``J^T J`` below ``1e-13`` of the largest) gives the parameters along it an infinite
    uncertainty, instead of the finite one a pseudo-inverse would pretend.
    """
    k = fit.jtj.shape[0]
    if k == 0:
        return np.zeros(0)
    sigma2 = noise**2 if noise is not None else fit.mse * n_rows / max(n_rows - k, 1)
    try:
        lam, vec = np.linalg.eigh(0.5 * (fit.jtj + fit.jtj.T))
    except np.linalg.LinAlgError:
        return np.full(k, np.inf)
    flat = lam <= 1e-13 * max(float(np.max(lam, initial=0.0)), 1e-300)
    with np.errstate(divide="ignore", invalid="ignore"):
        var = (vec**2 / np.where(flat, 1.0, lam)) @ np.ones(k) * sigma2
    var = np.where((vec[:, flat] ** 2).sum(axis=1) > 1e-6, np.inf, var)
    return np.sqrt(np.abs(var))


@dataclass(frozen=True)
class Noise:
    """The noise model of a search, from per-row standard deviations ``sigma`` ``(n,)``.

    ``scale`` is ``s = mean(sigma**-2)**-1/2`` in the units of ``y`` (``None``: unknown,
    to be estimated from the most accurate law); ``weights`` ``(n,)`` are ``s / sigma``
    (``mean(w**2) = 1``; ``None`` when every row has the same sigma), so that fitting the
    residuals times ``weights`` is the chi-square fit and ``chi2 = n * mse_w / s**2`` with
    ``mse_w`` the mean squared weighted residual; ``log_norm`` is ``sum log(sigma / s)``,
    the rest of the Gaussian normalisation (a constant of the data).
    """

    weights: np.ndarray | None = None
    scale: float | None = None
    log_norm: float = 0.0

    @classmethod
    def of(cls, sigma: np.ndarray | None) -> Noise:
        """The noise model of ``sigma`` ``(n,)``, or of unknown noise for ``None``."""
        if sigma is None:
            return cls()
        sigma = np.asarray(sigma, float)
        scale = float(np.mean(sigma**-2.0) ** -0.5)
        w = scale / sigma
        if np.allclose(w, 1.0, rtol=1e-12, atol=0.0):
            return cls(None, scale, 0.0)
        return cls(w, scale, float(np.sum(np.log(sigma / scale))))


def _number_nodes(number: sp.Expr) -> int:
    """Nodes of an exact number written as a tree: a rational or a named constant is one,
    ``sqrt``, squares and reciprocals are unary operations (as :func:`complexity` counts)."""
    if number.is_Rational or number.is_NumberSymbol or number.is_Atom:
        return 1
    if number.is_Pow and number.exp in (2, 3, sp.Rational(1, 2), -1):
        return 1 + _number_nodes(number.base)
    if number.is_Pow and number.exp in (-2, -3, sp.Rational(-1, 2)):
        return 2 + _number_nodes(number.base)
    return len(number.args) - 1 + sum(_number_nodes(a) for a in number.args)


def number_cost(number: sp.Expr, n_kinds: int) -> float:
    """Nats to write an exact number in a law whose structure has ``n_kinds`` node types.

    ESR's cost of the integers ``log|p| + log q`` of every rational, ``log(IRRATIONALS)``
    per named constant (pi, E) or surd (the choice among the irrational numbers snapping
    tries), plus ``log(n_kinds)`` for each node beyond the first of the number's own tree:
    ``8/pi**2`` (5 nodes) costs ``log 8 + log 11 + 4 log(n_kinds)``, so a composite number
    only replaces a float where the data determine that float to about one part in
    ``10**5`` (with ``n_kinds = 5``).
    """
    cost = 0.0
    for atom in number.atoms(sp.Rational, sp.NumberSymbol):
        if atom.is_NumberSymbol:
            cost += math.log(IRRATIONALS)
        elif atom not in (sp.Rational(1, 2), sp.Integer(-1), sp.Integer(2), sp.Integer(-2)):
            cost += math.log(max(abs(int(atom.p)), 1)) + math.log(int(atom.q))
    surds = [p for p in sp.preorder_traversal(number) if p.is_Pow and p.base.is_Integer]
    cost += math.log(IRRATIONALS) * sum(1 for p in surds if not p.exp.is_Integer)
    return cost + (_number_nodes(number) - 1) * math.log(max(n_kinds, 2))


def _exact_numbers(expr: sp.Expr) -> list[sp.Expr]:
    """The maximal numeric subexpressions of ``expr`` without floats (``8/pi**2``, ``3``)."""
    if expr.is_number:
        return [] if expr.atoms(sp.Float) or expr in (1, -1) else [expr]
    if expr.is_Pow and expr.exp.is_number:  # exponents are part of the structure
        return _exact_numbers(expr.base) + (
            [expr.exp] if expr.exp not in (2, 3, -1, sp.Rational(1, 2), -2, -3) else []
        )
    if isinstance(expr, sp.Mul | sp.Add):
        numeric = [a for a in expr.args if a.is_number and not a.atoms(sp.Float)]
        rest = [a for a in expr.args if a not in numeric]
        head = [expr.func(*numeric)] if numeric and expr.func(*numeric) not in (1, -1) else []
        return head + [n for a in rest for n in _exact_numbers(a)]
    return [n for a in expr.args for n in _exact_numbers(a)]


def description_length(
    expr: sp.Expr,
    mse: float,
    n_rows: int,
    sigma: float,
    jtj_diag: Mapping[float, float] = {},
    *,
    log_norm: float = 0.0,
) -> float:
    """Minimum description length of a law in nats (Bartlett et al.'s ESR form).

    Gaussian negative log-likelihood ``chi2/2 + n log(sigma sqrt(2 pi))`` with
    ``chi2 = n mse / sigma**2`` (``mse`` the mean squared residual, weighted by
    :func:`noise_weights` when the rows have their own sigma; ``log_norm`` then adds
    ``sum_i log(sigma_i / sigma)``, a constant of the data), plus the cost of the structure
    (``k log n`` for ``k`` nodes over ``n`` distinct node types), of each float parameter
    (``log|theta| + log(I)/2 - log(3)/2`` with ``I`` the Fisher information
    ``jtj_diag[theta] / sigma**2``, default ``n / sigma**2``, floored at 0) and of each
    exact number (:func:`number_cost`).
    """
    nll = 0.5 * n_rows * (mse / sigma**2 + math.log(2 * math.pi * sigma**2)) + log_norm
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
    exact = sum(number_cost(a, len(kinds)) for a in _exact_numbers(expr))
    return float(nll + structure + param_cost + exact)


def fitted_description_length(
    expr: sp.Expr, fitres: Fit, n_rows: int, sigma: float, log_norm: float = 0.0
) -> float:
    """:func:`description_length` of a law whose float constants ``fitres`` fitted (in the
    order of ``sorted(expr.atoms(Float))``): each constant's Fisher information is the
    diagonal of the fit's ``J^T J``."""
    floats = sorted(expr.atoms(sp.Float), key=sp.default_sort_key)
    info = {float(f): float(v) for f, v in zip(floats, np.diag(fitres.jtj), strict=False)}
    return description_length(expr, fitres.mse, n_rows, sigma, info, log_norm=log_norm)
