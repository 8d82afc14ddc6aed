"""Post-processing shared by all backends: snapping, simplification, equivalence.

Snapping replaces a fitted float by a simple exact number (small-denominator rationals,
optionally times pi, sqrt(pi), sqrt(2), pi**2 or their inverses; or zero), refits the
remaining floats, and keeps the change only when the description length drops, i.e.
when the loss stays within the noise. Equivalence follows SRBench: two laws are the same
when their difference or their ratio is a constant.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from fractions import Fraction

import numpy as np
import sympy as sp

from discovery.expressions import parametrize
from discovery.fit import description_length, least_squares, numpy_model

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
) -> tuple[sp.Expr, float, float]:
    """Greedily snap float constants while the description length decreases.

    Returns ``(expression, mse, description_length)`` of the result. Each round compiles
    the law once to NumPy with its floats as parameters, then tries every (constant,
    exact value) pair, zero included (a term or offset that should not be there): that
    parameter is held at the exact value and the others are refitted by least squares;
    the pair with the lowest description length is kept.
    Stops early once ``time.monotonic()`` passes ``deadline``.
    """
    n = len(y)
    current = expr
    current_mse = float(np.mean((_evaluate(expr, variables, X) - y) ** 2))
    current_dl = description_length(current, current_mse, n, sigma)
    for _ in range(max_rounds):
        pexpr, syms, values = parametrize(current)
        model = numpy_model(pexpr, variables, syms)
        if model is None or not syms:
            break
        best = None
        for j, sym in enumerate(syms):
            for exact in dict.fromkeys([*snap_values(float(values[j])), sp.Integer(0)]):
                if deadline is not None and time.monotonic() > deadline:
                    break
                p0 = values.copy()
                p0[j] = float(exact)
                free = np.arange(len(syms)) != j
                fit = least_squares(model, p0, X, y, free=free)
                if not np.isfinite(fit.mse):
                    continue
                floats = {s: sp.Float(v, 15) for s, v in zip(syms, fit.params, strict=True)}
                trial = pexpr.xreplace({**floats, sym: exact})
                dl = description_length(trial, fit.mse, n, sigma)
                if dl < current_dl and (best is None or dl < best[2]):
                    best = (trial, fit.mse, dl)
        if best is None:
            break
        current, current_mse, current_dl = best
    return current, current_mse, current_dl


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
