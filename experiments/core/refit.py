"""Refit the numerical constants of a discovered form, with uncertainties.

A search engine fits constants by its own loss (usually the mean squared error). Some
questions are about relative accuracy (a growth rate to 0.5%), so the experiments refit
the form they were given on the loss the question asks about, with the discovery engine's
Levenberg-Marquardt fit (``discovery.fit.least_squares``), and take one-sigma uncertainties
from its Jacobian (``discovery.fit.stderr``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import sympy as sp

from discovery.fit import least_squares, numpy_model, stderr


@dataclass(frozen=True)
class Refit:
    """A refitted law.

    Attributes:
        expression: the law with the refitted constants as numbers.
        template: the same form with constants as symbols ``names``.
        names: the constant symbols, in order; values, sigmas: their fits, shape ``(P,)``.
        rms: root-mean-square residual of the fit (relative or absolute).
    """

    expression: sp.Expr
    template: sp.Expr
    names: tuple[sp.Symbol, ...]
    values: np.ndarray
    sigmas: np.ndarray
    rms: float


def free_constants(
    expr: sp.Expr, prefix: str = "c", floats_only: bool = False
) -> tuple[sp.Expr, tuple[sp.Symbol, ...], np.ndarray]:
    """Replace every non-integer number of ``expr`` (every float with ``floats_only``: exact
    numbers that snapping or pruning chose stay) by a symbol ``prefix0, prefix1, ...``.

    Returns:
        ``(template, symbols, values)`` with ``values`` the numbers replaced, shape ``(P,)``.
    """
    kind = sp.Float if floats_only else sp.Number
    numbers = sorted(
        {a for a in expr.atoms(kind) if not a.is_Integer}, key=lambda a: sp.default_sort_key(a)
    )
    symbols = tuple(sp.Symbol(f"{prefix}{i}", real=True) for i in range(len(numbers)))
    template = expr.xreplace(dict(zip(numbers, symbols, strict=True)))
    return template, symbols, np.array([float(a) for a in numbers])


def refit(
    expr: sp.Expr,
    variables: Sequence[sp.Symbol],
    X: np.ndarray,
    y: np.ndarray,
    relative: bool = True,
    prefix: str = "c",
    sigma: np.ndarray | float | None = None,
    floats_only: bool = False,
) -> Refit:
    """Refit the non-integer constants of ``expr`` to data.

    Args:
        expr: the law as a sympy expression of ``variables`` with numeric constants.
        variables: the symbols matching the columns of ``X``.
        X: inputs ``(n, d)``; y: target ``(n,)``.
        relative: minimise the relative residuals ``(model - y) / y`` (else absolute ones).
        prefix: name prefix of the constant symbols.
        sigma: standard deviations of ``y`` ``(n,)`` or one for all rows: the fit is then
            the chi-square one (``relative`` is ignored) and the uncertainties are
            ``(J^T C^-1 J)^-1`` of the known noise, not of the residuals.
        floats_only: refit only the float constants; exact numbers stay.

    Returns:
        The ``Refit``; sigmas from ``s^2 (J^T J)^-1`` with ``s^2`` the residual variance
        (without ``sigma``); ``rms`` is then the rms of ``(model - y) / sigma``.
    """
    template, names, p0 = free_constants(expr, prefix, floats_only)
    return fit_template(template, names, p0, variables, X, y, relative, sigma)


def refit_like(
    law: Refit,
    variables: Sequence[sp.Symbol],
    X: np.ndarray,
    y: np.ndarray,
    relative: bool = True,
    sigma: np.ndarray | float | None = None,
) -> Refit:
    """Refit the constants of ``law.template`` to other data, starting from ``law.values``.

    Unlike ``refit(law.expression, ...)``, the constants keep their names and their number
    even when two fitted values print alike or one of them rounds to an integer, so the
    two fits can be compared constant by constant. ``sigma`` as in ``refit``.
    """
    return fit_template(law.template, law.names, law.values, variables, X, y, relative, sigma)


def fit_template(
    template: sp.Expr,
    names: tuple[sp.Symbol, ...],
    p0: np.ndarray,
    variables: Sequence[sp.Symbol],
    X: np.ndarray,
    y: np.ndarray,
    relative: bool = True,
    sigma: np.ndarray | float | None = None,
) -> Refit:
    """Least-squares fit of the constants ``names`` of ``template`` from ``p0`` ``(P,)``: a
    form of one's own with named constants (arguments otherwise as in ``refit``)."""
    X, y = np.asarray(X, float), np.asarray(y, float)
    if sigma is not None:
        scale = np.broadcast_to(np.asarray(sigma, float), y.shape)
        if not np.all(np.isfinite(scale) & (scale > 0)):
            raise ValueError(f"sigma={sigma!r}; allowed: positive finite numbers, one per row")
    elif relative and np.any(y == 0):
        raise ValueError("relative=True needs a target without zeros")
    model = numpy_model(template, variables, names)
    if model is None:
        raise ValueError(f"expr={template}: cannot be evaluated with NumPy")
    if sigma is None:
        scale = y if relative else np.ones_like(y)

    def scaled(p: np.ndarray, rows: np.ndarray) -> np.ndarray:
        return model(p, rows) / scale

    fit = least_squares(scaled, np.asarray(p0, float), X, y / scale)
    values = np.asarray(fit.params, float)
    fitted = template.xreplace({n: sp.Float(v, 8) for n, v in zip(names, values, strict=True)})
    return Refit(
        expression=fitted,
        template=template,
        names=tuple(names),
        values=values,
        sigmas=stderr(fit, len(y), None if sigma is None else 1.0),
        rms=float(np.sqrt(fit.mse)),
    )
