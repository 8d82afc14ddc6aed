"""Problem reduction: split off a power-law factor so the search sees fewer variables.

Many physical laws are ``y = C * prod_i x_i**a_i * g(x_S)`` with ``g`` a function of a
small subset ``S`` of the variables. Taking logarithms, ``log|y|`` is linear in the
``log x_i`` outside ``S`` plus an unknown smooth function of ``x_S``; fitting that
function by a polynomial in ``x_S`` for every subset of at most ``max_subset`` variables
(one least-squares solve each) finds the smallest ``S`` that explains the data. The
exponents are snapped to small-denominator rationals, and the search then only has to
find ``g(x_S) = y / prod_i x_i**a_i`` (``S`` empty: a pure power law).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from fractions import Fraction

import numpy as np


@dataclass(frozen=True)
class Reduction:
    """``y = prod_i X[:, i]**exponents[i] * g(X[:, subset])``.

    Exponents are Fractions, or floats where no small-denominator rational fits.
    """

    subset: tuple[int, ...]
    exponents: dict[int, Fraction | float]
    rms: float  # RMS residual of log|y| with the fitted smooth g


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


def _residual(ly: np.ndarray, lx: np.ndarray, feats: np.ndarray) -> tuple[float, np.ndarray]:
    A = np.concatenate([np.ones((len(ly), 1)), lx, feats], axis=1)
    coef, *_ = np.linalg.lstsq(A, ly, rcond=None)
    return float(np.sqrt(np.mean((ly - A @ coef) ** 2))), coef[1 : 1 + lx.shape[1]]


def power_law_reduction(
    X: np.ndarray,
    y: np.ndarray,
    max_subset: int = 2,
    max_denominator: int = 4,
    tol: float = 0.03,
) -> Reduction | None:
    """The smallest subset ``S`` such that ``y / prod x_i**a_i`` depends on ``x_S`` only.

    Needs ``y`` of one sign and positive columns outside ``S``. Returns ``None`` when no
    subset explains ``log|y|`` to ``tol`` (RMS), or when every variable would stay in ``S``.
    """
    if not (np.all(y > 0) or np.all(y < 0)):
        return None
    n, d = X.shape
    positive = [i for i in range(d) if np.all(X[:, i] > 0)]
    ly = np.log(np.abs(y))
    with np.errstate(all="ignore"):
        logs = np.where(X > 0, np.log(np.abs(X)), 0.0)
    fits = []
    for size in range(0, min(max_subset, d - 1) + 1):
        for subset in itertools.combinations(range(d), size):
            outside = [i for i in range(d) if i not in subset]
            if any(i not in positive for i in outside):
                continue
            degree = 8 if size == 1 else 6
            rms, exps = _residual(ly, logs[:, outside], _features(X[:, subset], degree))
            fits.append((size, rms, subset, outside, exps))
    if not fits:
        return None
    best_rms = min(f[1] for f in fits)
    for size, rms, subset, outside, exps in sorted(fits, key=lambda f: (f[0], f[1])):
        if rms > tol or rms > 1.5 * best_rms + 1e-9:
            continue
        degree = 8 if size == 1 else 6
        snapped = {
            i: Fraction(float(a)).limit_denominator(max_denominator)
            for i, a in zip(outside, exps, strict=True)
        }
        fixed = sum((float(snapped[i]) * logs[:, i] for i in outside), np.zeros(n))
        rms_snapped, _ = _residual(ly - fixed, np.zeros((n, 0)), _features(X[:, subset], degree))
        if rms_snapped > 1.5 * rms + 1e-9:  # keep the fitted exponents as they are
            snapped, rms_snapped = dict(zip(outside, map(float, exps), strict=True)), rms
        return Reduction(tuple(subset), {i: a for i, a in snapped.items() if a != 0}, rms_snapped)
    return None
