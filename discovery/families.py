"""Building blocks of cosmological laws in one input, fitted directly: shifted and broken
power laws.

Laws of one variable in cosmology are often a power of a shifted argument (``(1 + z)``,
``1 + r/r_s``, ``log(1/sigma) + 0.61``) or a power law that breaks into another one
(star-formation histories, halo profiles, bias). A tree search meets them late: each
needs three to six constants in a fixed arrangement. Here two families are fitted to a
single input ``u`` ``(n,)`` by least squares from a handful of starting points, and
the winners go to the shared post-processing (refit, pruning, snapping) like any other
candidate:

- shifted power law ``T(z) = a + b |h + c|**p`` with ``h`` = ``u`` or ``log u`` and ``T``
  the identity, the logarithm or the inverse, scanned on a grid of ``(c, p)`` with
  ``(a, b)`` solved in closed form;
- broken power law ``z = A s**q (1 + B s**p)**r`` in the shifted variable ``s = u + c``,
  fitted on ``log z``;
- power law with an exponential cut-off ``z = A u**p exp(B u**q)`` (Schechter's luminosity
  function, Press-Schechter and Einasto profiles, Neyrinck et al.'s bias law): ``log z`` is
  linear in ``(log A, p, B)`` for each ``q``, so ``q`` is scanned on a grid and the rest
  solved in closed form.
"""

from __future__ import annotations

import time

import numpy as np
import sympy as sp

from discovery.exhaustive import _lines

#: Exponents and shifts scanned by the shifted power law (the refit polishes them).
_POWERS = np.arange(-3.0, 4.01, 0.25)
_SHIFTS = 13


def shifted_power_laws(
    u: np.ndarray,
    z: np.ndarray,
    sym: sp.Expr,
    *,
    weights: np.ndarray | None = None,
    keep: int = 2,
) -> list[sp.Expr]:
    """Laws ``z = T^-1(a + b |h + c|**p)`` of the input ``u`` ``(n,)`` (sympy ``sym``).

    ``weights`` ``(n,)`` (``1/sigma`` of ``z``) weight the residuals, carried to ``log z``
    and ``1/z`` by their derivatives. Returns the ``keep`` best laws of each ``(h, T)``
    with float constants; ``Abs`` appears only where ``h + c`` changes sign on the rows.
    """
    sign = 1.0 if np.median(z) > 0 else -1.0
    transforms = [(z, lambda e: e, np.ones_like(z))]
    if np.all(sign * z > 0):
        transforms += [
            (np.log(sign * z), lambda e: sign * sp.exp(e), 1 / np.abs(z)),
            (1 / z, lambda e: 1 / e, z**-2),
        ]
    inputs = [(u, sym)]
    if np.all(u > 0):
        inputs.append((np.log(u), sp.log(sym)))
    out = []
    for h, hsym in inputs:
        lo, hi = float(np.min(h)), float(np.max(h))
        shifts = np.unique(np.concatenate([[0.0, 1.0, -1.0], -np.linspace(lo, hi, _SHIFTS)]))
        with np.errstate(all="ignore"):
            base = np.abs(h[None, :] + shifts[:, None])  # (shifts, n)
            F = (base[:, None, :] ** _POWERS[None, :, None]).reshape(-1, len(h))
        grid = [(c, p) for c in shifts for p in _POWERS]
        for t, inverse, slope in transforms:
            w = None if weights is None else weights / slope
            a, b, mse = _lines(F, t, w)
            for i in np.argsort(mse)[:keep]:
                if not np.isfinite(mse[i]):
                    continue
                c, p = grid[i]
                arg = hsym + sp.Float(c, 15)
                crosses = np.min(h + c) < 0 < np.max(h + c)
                power = (sp.Abs(arg) if crosses else arg) ** sp.Float(p, 15)
                out.append(inverse(sp.Float(a[i], 15) + sp.Float(b[i], 15) * power))
    return out


def broken_power_laws(
    u: np.ndarray,
    z: np.ndarray,
    sym: sp.Expr,
    *,
    weights: np.ndarray | None = None,
    deadline: float | None = None,
    keep: int = 2,
) -> list[sp.Expr]:
    """Laws ``z = A s**q (1 + B s**p)**r`` with ``s = u + c`` of the input ``u`` ``(n,)``.

    Fitted to ``log|z|`` (weights ``|z| / sigma`` from ``weights`` ``(n,)`` = ``1/sigma``)
    by Levenberg-Marquardt from starts ``c`` in ``{0, 1}``, ``p`` in ``{1, 2, 4}``, ``r``
    in ``{-1, -2, -3}``; needs ``z`` of one sign and ``u + c > 0``. Returns the ``keep``
    best as sympy expressions of ``sym`` with float constants; stops starting new fits
    once ``time.monotonic()`` passes ``deadline``.
    """
    from scipy.optimize import least_squares

    sign = 1.0 if np.median(z) > 0 else -1.0
    if not np.all(sign * z > 0) or np.min(u) <= -1:
        return []
    lz = np.log(sign * z)
    w = np.abs(z) * (1.0 if weights is None else weights)
    w = w / np.sqrt(np.mean(w * w))

    def residual(theta: np.ndarray) -> np.ndarray:
        log_a, q, log_b, p, r, c = theta
        with np.errstate(all="ignore"):
            s = u + c
            model = log_a + q * np.log(s) + r * np.log1p(np.exp(log_b + p * np.log(s)))
        res = w * (model - lz)
        return np.where(np.isfinite(res), res, 1e6)

    fits = []
    for c in (0.0, 1.0):
        if np.min(u) + c <= 0:
            continue
        for p in (1.0, 2.0, 4.0):
            for r in (-1.0, -2.0, -3.0):
                if deadline is not None and time.monotonic() > deadline:
                    break
                s = u + c
                q0 = np.polyfit(np.log(s), lz, 1)[0]
                start = np.array([np.mean(lz), q0, -p * np.median(np.log(s)), p, r, c])
                try:
                    sol = least_squares(residual, start, method="lm", max_nfev=400)
                except (ValueError, np.linalg.LinAlgError):
                    continue
                if np.isfinite(sol.cost) and np.min(u) + sol.x[5] > 0:
                    fits.append((float(sol.cost), sol.x))
    out = []
    for _, (log_a, q, log_b, p, r, c) in sorted(fits, key=lambda f: f[0])[:keep]:
        s = sym + sp.Float(c, 15)
        f = sp.Float
        out.append(
            sign
            * f(np.exp(log_a), 15)
            * s ** f(q, 15)
            * (1 + f(np.exp(log_b), 15) * s ** f(p, 15)) ** f(r, 15)
        )
    return out


#: Exponents ``q`` of the cut-off scanned by :func:`cutoff_power_laws` (0 excluded).
_CUTOFF_POWERS = np.array([q for q in np.arange(-3.0, 3.01, 0.25) if q != 0.0])


def cutoff_power_laws(
    u: np.ndarray,
    z: np.ndarray,
    sym: sp.Expr,
    *,
    weights: np.ndarray | None = None,
    keep: int = 2,
) -> list[sp.Expr]:
    """Laws ``z = A u**p exp(B u**q)`` of the positive input ``u`` ``(n,)`` (sympy ``sym``).

    Weighted least squares on ``log|z|`` (weights ``|z| / sigma`` from ``weights`` ``(n,)``
    = ``1/sigma``, the first-order error of ``log z``) for each ``q`` of
    :data:`_CUTOFF_POWERS`; needs ``u > 0`` and ``z`` of one sign. Returns the ``keep``
    best as sympy expressions with float constants (the refit polishes ``q``).
    """
    sign = 1.0 if np.median(z) > 0 else -1.0
    if not (np.all(sign * z > 0) and np.all(u > 0)) or len(u) < 5:
        return []
    lz, logu = np.log(sign * z), np.log(u)
    w = np.abs(z) * (1.0 if weights is None else weights)
    fits = []
    with np.errstate(all="ignore"):
        for q in _CUTOFF_POWERS:
            design = np.column_stack([np.ones_like(u), logu, u**q]) * w[:, None]
            coef, *_ = np.linalg.lstsq(design, lz * w, rcond=None)
            cost = float(np.sum((design @ coef - lz * w) ** 2))
            if np.isfinite(cost):
                fits.append((cost, q, coef))
    out = []
    for _, q, (log_a, p, b) in sorted(fits, key=lambda f: f[0])[:keep]:
        f = sp.Float
        out.append(
            sign * f(np.exp(log_a), 15) * sym ** f(p, 15) * sp.exp(f(b, 15) * sym ** f(q, 15))
        )
    return out
