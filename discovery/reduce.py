"""Problem reduction: split off a power-law factor so the search sees fewer variables.

Many physical laws are ``y = C * prod_i x_i**a_i * g(x_S)`` with ``g`` a function of a
small subset ``S`` of the variables. Taking logarithms, ``log|y|`` is linear in the
``log x_i`` outside ``S`` plus an unknown smooth function of ``x_S``; fitting that
function by a polynomial in ``x_S`` for every subset of at most ``max_subset`` variables
(one least-squares solve each) finds the smallest ``S`` that explains the data. The
exponents are snapped to small-denominator rationals, and the search then only has to
find ``g(x_S) = y / prod_i x_i**a_i`` (``S`` empty: a pure power law).

When no single variable explains the rest, ``g`` may still be a function of one
dimensionless-looking combination ``u = prod_j x_j**b_j`` (``b_j = +-1``), as in
``m0 / sqrt(1 - v**2/c**2)`` (``u = v/c``) or ``1/(exp(h w/(k T)) - 1)``: the same
least-squares test with a polynomial in ``u`` tries every such monomial of up to
``max_monomial`` variables, and the search then sees one input ``u`` instead of many.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import sympy as sp

#: Fraction of the rows on which ``y`` must have one sign for a reduction to be tried.
MIN_ONE_SIGN = 0.95


@dataclass(frozen=True)
class Reduction:
    """``y = prod_i X[:, i]**exponents[i] * g(X[:, subset])``.

    Exponents are Fractions, or floats where no small-denominator rational fits.
    """

    subset: tuple[int, ...]
    exponents: dict[int, Fraction | float]
    rms: float  # RMS residual of log|y| with the fitted smooth g
    #: ``((j, b_j), ...)``: when set, ``g`` is a function of ``u = prod_j x_j**b_j`` only
    monomial: tuple[tuple[int, int], ...] = ()

    def factor(self, X: np.ndarray) -> np.ndarray:
        """The power-law factor ``prod_i x_i**a_i`` on the rows ``X`` ``(n, d)``, shape ``(n,)``."""
        out = np.ones(len(X))
        for i, a in self.exponents.items():
            out = out * X[:, i] ** float(a)
        return out

    def inputs(self, X: np.ndarray) -> np.ndarray:
        """The inputs of ``g`` on the rows ``X`` ``(n, d)``: shape ``(n, m)``."""
        if self.monomial:
            return np.prod([X[:, j] ** float(b) for j, b in self.monomial], axis=0)[:, None]
        return X[:, list(self.subset)]

    def input_symbols(self, symbols) -> list[sp.Expr]:
        """The inputs of ``g`` as sympy expressions of the variables ``symbols``."""
        if self.monomial:
            return [sp.Mul(*[symbols[j] ** b for j, b in self.monomial])]
        return [symbols[i] for i in self.subset]

    def input_dims(self, var_dims):
        """Dimension vectors of the inputs of ``g`` given those of the variables."""
        if self.monomial:
            return [tuple(sum(b * var_dims[j][k] for j, b in self.monomial) for k in range(7))]
        return [var_dims[i] for i in self.subset]


def _features(Z: np.ndarray, degree: int) -> np.ndarray:
    """Polynomial features of the standardised columns of ``Z`` (no constant column)."""
    if Z.shape[1] == 0:
        return np.zeros((len(Z), 0))
    Z = (Z - Z.mean(0)) / (Z.std(0) + 1e-300)
    cols = []
    for total in range(1, degree + 1):
        for powers in itertools.product(range(total + 1), repeat=Z.shape[1]):
            if sum(powers) == total:
                cols.append(np.prod(Z ** np.array(powers), axis=1))
    return np.stack(cols, axis=1)


def _residual(
    ly: np.ndarray, lx: np.ndarray, feats: np.ndarray, w: np.ndarray
) -> tuple[float, np.ndarray]:
    """Weighted least squares of ``ly`` on a constant, ``lx`` and ``feats``: (RMS, slopes)."""
    A = np.concatenate([np.ones((len(ly), 1)), lx, feats], axis=1)
    coef, *_ = np.linalg.lstsq(A * w[:, None], ly * w, rcond=None)
    return float(np.sqrt(np.mean((w * (ly - A @ coef)) ** 2))), coef[1 : 1 + lx.shape[1]]


def _monomials(positive: list[int], max_vars: int):
    """Every ``((j, b_j), ...)`` with ``b_j = +-1`` over 2..``max_vars`` positive variables."""
    for size in range(2, max_vars + 1):
        for idx in itertools.combinations(positive, size):
            for signs in itertools.product((1, -1), repeat=size):
                yield tuple(zip(idx, signs, strict=True))


def power_law_reduction(
    X: np.ndarray,
    y: np.ndarray,
    max_subset: int = 2,
    max_denominator: int = 4,
    tol: float = 0.03,
    max_monomial: int = 4,
    weights: np.ndarray | None = None,
) -> Reduction | None:
    """The simplest inputs ``g`` needs once ``y / prod x_i**a_i`` is divided out.

    In order of preference: a subset ``S`` of at most one variable, one monomial ``u``
    of up to ``max_monomial`` variables, a subset of up to ``max_subset`` variables.
    Needs ``y`` of one sign on at least ``MIN_ONE_SIGN`` of the rows (the others, small
    values that noise flipped, are left out) and positive columns outside ``S`` (and
    inside ``u``). Residuals of ``log|y|`` are weighted by ``|y| / rms(y)``, so that
    they measure the error of ``y`` relative to its scale whatever the noise does to
    the logarithm of small values. Returns ``None`` when nothing explains ``y`` to
    ``tol`` (weighted RMS), or when every variable would stay in ``S``.
    """
    sign = 1.0 if np.median(y) > 0 else -1.0
    rows = sign * y > 0
    if np.mean(rows) < MIN_ONE_SIGN:
        return None
    d = X.shape[1]
    positive = [i for i in range(d) if np.all(X[:, i] > 0)]
    X, y = X[rows], y[rows]
    n = len(y)
    w = np.abs(y) * (1.0 if weights is None else np.asarray(weights, float)[rows])
    w = w / np.sqrt(np.mean(w**2))
    ly = np.log(np.abs(y))
    with np.errstate(all="ignore"):
        logs = np.where(X > 0, np.log(np.abs(X)), 0.0)
    fits = []  # (rank, rms, subset, monomial, outside, exponents, features of g)
    for size in range(0, min(max_subset, d - 1) + 1):
        for subset in itertools.combinations(range(d), size):
            outside = [i for i in range(d) if i not in subset]
            if any(i not in positive for i in outside):
                continue
            feats = _features(X[:, subset], 8 if size == 1 else 6)
            if all(i in positive for i in subset):  # g may hold powers of its variables
                feats = np.concatenate([feats, logs[:, list(subset)]], axis=1)
            rms, exps = _residual(ly, logs[:, outside], feats, w)
            fits.append((size, rms, subset, (), outside, exps, feats))
    if d >= 2:
        for mono in _monomials(positive, min(max_monomial, d)):
            u = np.sum([b * logs[:, j] for j, b in mono], axis=0)
            feats = _features(np.exp(u)[:, None], 8)
            rms, exps = _residual(ly, logs[:, positive], feats, w)
            # y = prod x**a g(u) = prod x**(a - t b) (u**t g(u)): the exponents along b are
            # g's to take; t, the a_j b_j of u's variables closest to all others, zeroes them
            b = np.zeros(len(positive))
            for j, bj in mono:
                b[positive.index(j)] = bj
            ab = np.array([exps[positive.index(j)] * bj for j, bj in mono])
            t = min(ab, key=lambda v: (np.sum(np.abs(ab - v)), abs(v)))
            exps = exps - t * b
            g_feats = np.concatenate([feats, u[:, None]], axis=1)  # g may hold a power of u
            fits.append((1.5, rms, (), mono, positive, exps, g_feats))
    if not fits:
        return None
    best_rms = min(f[1] for f in fits)
    for _, rms, subset, mono, outside, exps, feats in sorted(fits, key=lambda f: (f[0], f[1])):
        if rms > tol or rms > 1.5 * best_rms + 1e-9:
            continue
        snapped = {
            i: Fraction(float(a)).limit_denominator(max_denominator)
            for i, a in zip(outside, exps, strict=True)
        }
        fixed = sum((float(snapped[i]) * logs[:, i] for i in outside), np.zeros(n))
        rms_snapped, _ = _residual(ly - fixed, np.zeros((n, 0)), feats, w)
        if rms_snapped > 2 * rms + 1e-5:  # keep the fitted exponents as they are
            snapped, rms_snapped = dict(zip(outside, map(float, exps), strict=True)), rms
        exponents = {i: a for i, a in snapped.items() if a != 0}
        return Reduction(tuple(subset), exponents, rms_snapped, mono)
    return None
