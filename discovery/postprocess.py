"""Post-processing shared by all backends: snapping, simplification, equivalence.

Snapping replaces a fitted float by a simple exact number (small-denominator rationals,
optionally times pi, sqrt(pi), sqrt(2), pi**2 or their inverses; or zero or one), refits
the remaining floats, and keeps the change only when the description length drops, i.e.
when the loss stays within the noise. Pruning goes further for a constant the data do
not determine (one-sigma uncertainty above :data:`UNDETERMINED` of its value): it is
replaced by 0, 1, -1 or the nearest simple number, whichever gives the shortest
description, even when the description grows, and the law is refitted. Both report what
they fixed as :class:`Fixed` records. Equivalence follows SRBench: two laws are the same
when their difference or their ratio is a constant.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import sympy as sp

from discovery import budget
from discovery.expressions import parametrize
from discovery.fit import Fit, description_length, least_squares, numpy_model, refit, stderr

#: A constant whose one-sigma uncertainty exceeds this fraction of its value is undetermined.
UNDETERMINED = 0.3


@dataclass(frozen=True)
class Fixed:
    """A fitted constant replaced by an exact number: ``exact`` (sympy), the ``fitted``
    value and its one-sigma ``uncertainty`` at that moment, and ``how`` (``"snapped"``:
    the description got shorter; ``"pruned"``: the data did not determine it)."""

    exact: sp.Expr
    fitted: float
    uncertainty: float
    how: str


_SYMBOLIC_OPS = 40  # above this many operations, equivalence is checked numerically only

_BASES = (
    sp.Integer(1),
    sp.pi,
    1 / sp.pi,
    sp.sqrt(sp.pi),
    1 / sp.sqrt(sp.pi),
    sp.sqrt(2),
    1 / sp.sqrt(2),
    sp.pi**2,
    1 / sp.pi**2,
    sp.sqrt(2 * sp.pi),
    1 / sp.sqrt(2 * sp.pi),
)


def snap_values(value: float, max_denominator: int = 20, rel: float = 0.05) -> list[sp.Expr]:
    """Simple exact numbers within ``rel`` of ``value``, simplest first."""
    out: list[sp.Expr] = []
    if value == 0 or not np.isfinite(value):
        return [sp.Integer(0)] if value == 0 else []
    for base in _BASES:
        frac = Fraction(value / float(base)).limit_denominator(max_denominator)
        if frac == 0:
            continue
        candidate = sp.Rational(frac.numerator, frac.denominator) * base
        if abs(float(candidate) - value) <= rel * abs(value) and candidate not in out:
            out.append(candidate)
    return sorted(out, key=lambda e: (sp.count_ops(e), abs(float(sp.fraction(e)[1]))))


def round_off(expr: sp.Expr, rtol: float = 1e-10) -> sp.Expr:
    """``expr`` with every float that is a small-denominator rational to within ``rtol``
    (a fit that landed on 1 or 1/2 up to round-off) written as that exact number.

    No data are needed: the law changes by round-off only. Unlike :func:`snap`, this is
    instant, so an exact law stays exact even when the budget leaves no time to snap.
    """
    exact = {}
    for f in expr.atoms(sp.Float):
        frac = Fraction(float(f)).limit_denominator(12)
        if abs(float(frac) - float(f)) <= rtol * max(abs(float(f)), 1e-300):
            exact[f] = sp.Rational(frac.numerator, frac.denominator)
    return expr.xreplace(exact) if exact else expr


def merge_constants(expr: sp.Expr) -> sp.Expr:
    """Pull numeric factors out of sums and products (``sympy.factor_terms``), so that
    ``0.42*x*(2.38*a - 2.38*b)`` becomes one constant times ``(a - b)``; unchanged when
    that is not shorter or the law is too large for symbolic work."""
    if sp.count_ops(expr) > _SYMBOLIC_OPS:
        return expr
    try:
        out = sp.factor_terms(expr)
    except (TypeError, ValueError, RecursionError):
        return expr
    return out if len(out.atoms(sp.Float)) < len(expr.atoms(sp.Float)) else expr


def tidy(expr: sp.Expr) -> sp.Expr:
    """Cheap simplification (cancel, combine powers); kept only when it is not longer."""
    if sp.count_ops(expr) > _SYMBOLIC_OPS:
        return expr
    try:
        out = sp.powsimp(sp.cancel(sp.together(expr)), force=False)
        return out if sp.count_ops(out) <= sp.count_ops(expr) else expr
    except (sp.PolynomialError, TypeError, ValueError, RecursionError):
        return expr


def snap(
    expr: sp.Expr,
    variables: Sequence[sp.Symbol],
    X: np.ndarray,
    y: np.ndarray,
    sigma: float,
    *,
    max_rounds: int = 3,
    deadline: float | None = None,
    weights: np.ndarray | None = None,
    known: float | None = None,
    log_norm: float = 0.0,
) -> tuple[sp.Expr, float, float, list[Fixed]]:
    """Greedily snap float constants while the description length decreases.

    Returns ``(expression, mse, description_length, fixed)`` of the result, ``fixed`` the
    constants it replaced. Each round compiles the law once to NumPy with its floats as
    parameters, then tries every (constant, exact value) pair, zero and one included (a
    term, offset or factor that should not be there): that parameter is held at the exact
    value and the others are refitted by least squares (residuals times ``weights``
    ``(n,)``; ``sigma`` the noise of the weighted residuals, ``known`` the same when it is
    given rather than estimated, ``log_norm`` as in
    :func:`discovery.fit.description_length`); the pair with the lowest description
    length is kept. Stops early once :func:`discovery.budget.now` passes ``deadline``.
    """
    n = len(y)
    w = np.ones(n) if weights is None else weights
    current = expr
    current_mse = float(np.mean((w * (_evaluate(expr, variables, X) - y)) ** 2))
    current_dl = description_length(current, current_mse, n, sigma, log_norm=log_norm)
    fixed: list[Fixed] = []
    for _ in range(max_rounds):
        pexpr, syms, values = parametrize(current)
        model = numpy_model(pexpr, variables, syms)
        if model is None or not syms:
            break
        errs = stderr(least_squares(model, values, X, y, weights=weights), n, known)
        best = None
        for j in range(len(syms)):
            options = [*snap_values(float(values[j])), sp.Integer(0), sp.Integer(1)]
            for exact in dict.fromkeys(options):
                if budget.past(deadline, "least squares"):
                    break
                trial = _hold(pexpr, syms, values, j, exact, model, X, y, weights)
                if trial is None:
                    continue
                dl = description_length(trial[0], trial[1], n, sigma, log_norm=log_norm)
                if dl < current_dl and (best is None or dl < best[2]):
                    best = (*trial, dl, Fixed(exact, float(values[j]), float(errs[j]), "snapped"))
        if best is None:
            break
        current, current_mse, current_dl, event = best
        fixed.append(event)
    return current, current_mse, current_dl, fixed


def _hold(pexpr, syms, values, j, exact, model, X, y, weights) -> tuple[sp.Expr, float] | None:
    """``pexpr`` with parameter ``j`` held at ``exact`` and the others refitted:
    ``(law, mse)``, or ``None`` when the fit is not finite."""
    p0 = values.copy()
    p0[j] = float(exact)
    free = np.arange(len(syms)) != j
    fit = least_squares(model, p0, X, y, free=free, weights=weights)
    if not np.isfinite(fit.mse):
        return None
    floats = {s: sp.Float(v, 15) for s, v in zip(syms, fit.params, strict=True)}
    return pexpr.xreplace({**floats, syms[j]: exact}), fit.mse


def prune(
    expr: sp.Expr,
    fit: Fit,
    variables: Sequence[sp.Symbol],
    X: np.ndarray,
    y: np.ndarray,
    sigma: float,
    *,
    weights: np.ndarray | None = None,
    known: float | None = None,
    log_norm: float = 0.0,
    fraction: float = UNDETERMINED,
    deadline: float | None = None,
) -> tuple[sp.Expr, Fit, list[Fixed]]:
    """Replace the constants the data do not determine by exact numbers, and refit.

    ``fit`` is the refit of ``expr`` (parameters in the order of
    :func:`discovery.expressions.parametrize`). While some float has a one-sigma
    uncertainty (:func:`discovery.fit.stderr` with the ``known`` noise, or the law's own
    residuals) above ``fraction`` of its value, the least determined one is held at 0,
    1, -1, its nearest integer or a simple number near it, whichever gives the lowest
    description length (``sigma``, ``weights``, ``log_norm`` as in :func:`snap`), and the
    law is refitted. Returns the law, its fit and what was pruned; the law unchanged when
    no replacement can be fitted, or once :func:`discovery.budget.now` passes ``deadline``.
    """
    n = len(y)
    fixed: list[Fixed] = []
    for _ in range(len(expr.atoms(sp.Float))):
        if budget.past(deadline, "least squares"):
            break
        pexpr, syms, values = parametrize(expr)
        if len(values) != len(fit.params):  # fitted constants that came out equal are one
            model = numpy_model(pexpr, variables, syms)
            if model is None:
                break
            fit = least_squares(model, values, X, y, weights=weights)
        errs = stderr(fit, n, known)
        rel = errs / np.maximum(np.abs(values), 1e-300)
        j = int(np.argmax(rel)) if len(rel) else 0
        if not len(rel) or not rel[j] > fraction:
            break
        model = numpy_model(pexpr, variables, syms)
        if model is None:
            break
        v = float(values[j])
        options = [sp.Integer(0), sp.Integer(1), sp.Integer(-1), sp.Integer(round(v))]
        options += snap_values(v, max_denominator=4, rel=0.5)[:2]
        trials = []
        for exact in dict.fromkeys(options):
            trial = _hold(pexpr, syms, values, j, exact, model, X, y, weights)
            if trial is not None:
                dl = description_length(trial[0], trial[1], n, sigma, log_norm=log_norm)
                trials.append((dl, trial[0], exact))
        if not trials:
            break
        _, law, exact = min(trials, key=lambda t: t[0])
        (again,) = refit([law], variables, X, y, weights) if law.atoms(sp.Float) else [None]
        if again is None:
            model0 = numpy_model(law, variables)
            if model0 is None:
                break
            again = (law, least_squares(model0, np.zeros(0), X, y, weights=weights))
        fixed.append(Fixed(exact, v, float(errs[j]), "pruned"))
        expr, fit = again
    return expr, fit, fixed


def _evaluate(expr: sp.Expr, variables: Sequence[sp.Symbol], X: np.ndarray) -> np.ndarray:
    f = sp.lambdify(list(variables), expr, "numpy")
    with np.errstate(all="ignore"):
        return np.broadcast_to(np.asarray(f(*X.T), dtype=complex).real, (len(X),))


def _numerically_constant(values: np.ndarray, rtol: float, scale: float | None = None) -> bool:
    values = values[np.isfinite(values)]
    if values.size < 3:
        return False
    if scale is None:
        scale = float(np.median(np.abs(values)))
    scale = max(scale, 1e-12)
    return float(np.max(values) - np.min(values)) <= rtol * scale


def equivalent(
    a: sp.Expr,
    b: sp.Expr,
    variables: Sequence[sp.Symbol],
    X: np.ndarray,
    rtol: float = 1e-6,
) -> bool:
    """SRBench's exact recovery: ``a - b`` or ``a / b`` is a constant.

    Numerically first, on the rows ``X``: the difference or the ratio is constant to
    ``rtol``. When it is not, but is to within ``1e-3`` (round-off in a long expression),
    ``sympy.simplify`` of the difference and of the ratio decides; laws that differ
    clearly never reach sympy, whose simplification of an unrelated difference can take
    minutes.
    """
    with np.errstate(all="ignore"):
        va, vb = _evaluate(a, variables, X), _evaluate(b, variables, X)
        diff, ratio = va - vb, va / vb
    scale = float(np.median(np.abs(vb)))
    if _numerically_constant(diff, rtol, scale) or _numerically_constant(ratio, rtol):
        return True
    close = _numerically_constant(diff, 1e-3, scale) or _numerically_constant(ratio, 1e-3)
    if not close or sp.count_ops(a) > _SYMBOLIC_OPS:
        return False
    for combo in (a - b, a / b):
        try:
            if not sp.simplify(combo).free_symbols:
                return True
        except (TypeError, ValueError, RecursionError):
            pass
    return False


def identical(a: sp.Expr, b: sp.Expr) -> bool:
    """``a`` has exact constants only (no floats) and ``a - b`` simplifies to zero."""
    if a.atoms(sp.Float) or sp.count_ops(a) > _SYMBOLIC_OPS:
        return False
    try:
        return sp.simplify(a - b) == 0
    except (TypeError, ValueError, RecursionError):
        return False
