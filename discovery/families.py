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
  solved in closed form;
- laws of a square root of a shifted input ``v = sqrt(1 + u)``, ``sqrt(1 - u)`` or
  ``sqrt(u - 1)`` (:func:`root_shift_laws`): ``z v**p = a + b h1(v) + c h2(v)`` for small
  constant-free trees, as ``atanh(v)/v`` (``LambdaCDM``'s age, ``asinh`` of
  ``sqrt(1/Om - 1)``) is ``(log(1 + v) - log(1 - v)) / (2 v)``.

Laws of several inputs get one family here: a power whose exponent is an input, ``u**(e a)``
or ``u**(e/a)`` with ``u`` a variable or a ratio or product of two and ``a`` another variable
(Einasto and Sersic profiles, Weibull distributions), log-linear with the power laws of the
variables (:func:`variable_exponent_laws`).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import numpy as np
import sympy as sp

from discovery import budget, exhaustive
from discovery.exhaustive import _lines
from discovery.programs import to_sympy

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
    once :func:`discovery.budget.now` passes ``deadline``.
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
                if budget.past(deadline, "family fit"):
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


#: Size of the constant-free trees of :func:`root_shift_laws` (``log(1 + v)`` has four).
_ROOT_TREE_SIZE = 4


def root_shift_laws(
    u: np.ndarray,
    z: np.ndarray,
    sym: sp.Expr,
    operators: tuple[str, ...],
    *,
    weights: np.ndarray | None = None,
    deadline: float | None = None,
    keep: int = 3,
) -> list[sp.Expr]:
    """Laws ``z = v**-p T^-1(a + b h1(v) + c h2(v))`` of ``v = sqrt(s)``, ``s`` = ``1 + u``,
    ``1 - u`` or ``u - 1`` where positive on every row, ``p`` in ``{-1, 0, 1}`` and ``T``
    the identity or the logarithm (:func:`discovery.exhaustive.affine_pair_search` over
    trees of ``operators`` of up to :data:`_ROOT_TREE_SIZE` nodes).

    ``u``, ``z`` and ``weights`` (``1/sigma`` of ``z``, or None) have shape ``(n,)``;
    returns the ``keep`` laws of lowest weighted mean squared error relative to the
    variance of their target, as sympy expressions of ``sym`` with float constants.
    """
    found = []
    for s, ssym in ((1 + u, 1 + sym), (1 - u, 1 - sym), (u - 1, sym - 1)):
        if np.min(s) <= 0:
            continue
        v, vsym = np.sqrt(s), sp.sqrt(ssym)
        targets = _prefactor_targets(z, v, vsym, weights)
        pairs = exhaustive.affine_pair_search(
            v[:, None],
            [t for t, _, _ in targets],
            operators,
            _ROOT_TREE_SIZE,
            deadline=deadline,
            weights=[w for _, _, w in targets],
        )
        for (t, inverse, w), best in zip(targets, pairs, strict=True):
            q = np.ones_like(t) if w is None else w * w
            scale = float(np.mean(q * (t - np.mean(t)) ** 2))
            for h1, h2, (a, b, c), mse in best:
                f = sp.Float
                terms = [to_sympy(h, [vsym], []) for h in (h1, h2)]
                law = inverse(f(a, 15) + f(b, 15) * terms[0] + f(c, 15) * terms[1])
                found.append((mse * np.mean(q) / max(scale, 1e-300), law))
    return [law for _, law in sorted(found, key=lambda f: f[0])[:keep]]


def _prefactor_targets(z, v, vsym, weights) -> list[tuple[np.ndarray, object, np.ndarray | None]]:
    """``(t, T^-1, weights of t)`` for ``t = T(z v**p)``, ``p`` in ``{-1, 0, 1}``, ``T`` the
    identity and (``z`` of one sign) the logarithm; ``T^-1`` divides the prefactor out."""
    out = []
    for p in (-1, 0, 1):
        zp = z * v**p
        wp = None if weights is None else weights / v**p
        out.append((zp, lambda e, p=p: e * vsym**-p, wp))
        if np.all(zp > 0) or np.all(zp < 0):
            sign = float(np.sign(zp[0]))
            wl = None if wp is None else wp * np.abs(zp)
            out.append((np.log(sign * zp), lambda e, p=p, s=sign: s * sp.exp(e) * vsym**-p, wl))
    return out


#: Factors ``e`` of the variable exponents ``e a`` and ``e / a`` of :func:`variable_exponent_laws`.
_SHAPE_POWERS = (1.0, -1.0, 2.0, -2.0, 0.5, -0.5)
#: Most variables for which :func:`variable_exponent_laws` tries products and ratios as ``u``.
_MAX_PAIR_VARIABLES = 5
#: Rows on which :func:`variable_exponent_laws` screens its combinations.
_SCREEN_ROWS = 128


def variable_exponent_laws(
    X: np.ndarray,
    y: np.ndarray,
    symbols: list[sp.Expr],
    *,
    weights: np.ndarray | None = None,
    deadline: float | None = None,
    keep: int = 2,
) -> list[sp.Expr]:
    """Laws with a power ``E = u**(e a)`` or ``u**(e / a)`` whose exponent is an input ``a``:

        log|y| = c0 + sum_i c_i log x_i + b1 a + b2 / a + (d0 + d1 a + d2 / a) E + f a log u

    with ``u`` a positive variable, or the product or ratio of two, ``a`` another variable
    and ``e`` in :data:`_SHAPE_POWERS` (the refit polishes it). Every combination is
    screened by linear least squares on ``log|y|`` (weights ``|y| / sigma`` from
    ``weights`` = ``1/sigma``); the ``keep`` best lose, one by one, the terms whose removal
    costs less than the noise (:func:`_drop_terms`). ``X`` ``(n, d)`` with ``d >= 2``,
    ``y`` of one sign; returns sympy expressions of ``symbols`` with float constants.
    """
    sign = 1.0 if np.median(y) > 0 else -1.0
    if X.shape[1] < 2 or not np.all(sign * y > 0):
        return []
    t = np.log(sign * y)
    w = np.abs(y) * (1.0 if weights is None else weights)
    w = w / np.sqrt(np.mean(w * w))
    rows = exhaustive._scan_rows(len(y), _SCREEN_ROWS)
    screened = []
    for combo in _shape_combinations(X):
        if budget.past(deadline, "family fit"):
            break
        cols = _shape_features(X[rows], combo)
        if cols is not None:
            screened.append((_lstsq_cost(cols, t[rows], w[rows]), combo))
    out = []
    for _, combo in sorted(screened, key=lambda c: c[0])[:keep]:
        cols = _shape_features(X, combo)
        if cols is None:
            continue
        syms = _shape_symbols(combo, symbols, _positive(X))
        kept, coef = _drop_terms(cols, t, w)
        log_law = sum((sp.Float(c, 15) * syms[k] for k, c in zip(kept, coef, strict=True)), 0)
        out.append(sign * sp.powsimp(sp.exp(sp.expand_log(log_law))))
    return out


def _shape_combinations(X: np.ndarray) -> Iterator[tuple]:
    """``(u, a, e, inverse)``: ``u`` a tuple ``((j, b_j), ...)`` of one positive column, or
    two (``b_j = +-1``; with at most :data:`_MAX_PAIR_VARIABLES` columns), ``a`` another
    column, nonzero on every row."""
    d = X.shape[1]
    positive = _positive(X)
    bases = [((j, 1),) for j in positive]
    pairs = positive if d <= _MAX_PAIR_VARIABLES else []
    bases += [
        ((i, 1), (j, b)) for k, i in enumerate(pairs) for j in pairs[k + 1 :] for b in (1, -1)
    ]
    for a in range(d):
        if not np.all(X[:, a] != 0):
            continue
        for u in bases:
            if any(j == a for j, _ in u):
                continue
            for e in _SHAPE_POWERS:
                for inverse in (False, True):
                    yield u, a, e, inverse


def _shape_features(X: np.ndarray, combo) -> np.ndarray | None:
    """Columns ``(n, k)`` of the terms of :func:`variable_exponent_laws` for ``combo`` on the
    rows ``X`` (in the order of :func:`_shape_symbols`); ``None`` when one is not finite."""
    u_cols, a, e, inverse = combo
    av = X[:, a]
    with np.errstate(all="ignore"):
        log_u = np.sum([b * np.log(X[:, j]) for j, b in u_cols], axis=0)
        E = np.exp((e / av if inverse else e * av) * log_u)
        cols = [np.ones(len(X)), *(np.log(X[:, j]) for j in _positive(X)), av, 1 / av]
        A = np.stack([*cols, E, av * E, E / av, av * log_u], axis=1)
    return A if np.all(np.isfinite(A)) else None


def _shape_symbols(combo, symbols: list[sp.Expr], positive: list[int]) -> list[sp.Expr]:
    """The sympy forms of the columns of :func:`_shape_features` (``positive``: the indices
    of the positive variables, whose logarithms are terms)."""
    u_cols, a, e, inverse = combo
    u_sym = sp.Mul(*[symbols[j] ** b for j, b in u_cols])
    asym = symbols[a]
    E = u_sym ** (sp.Float(e, 15) / asym if inverse else sp.Float(e, 15) * asym)
    syms = [sp.Integer(1), *(sp.log(symbols[j]) for j in positive), asym, 1 / asym]
    return [*syms, E, asym * E, E / asym, asym * sp.log(u_sym)]


def _positive(X: np.ndarray) -> list[int]:
    """Indices of the columns of ``X`` positive on every row."""
    return [j for j in range(X.shape[1]) if np.all(X[:, j] > 0)]


def _lstsq_cost(A: np.ndarray, t: np.ndarray, w: np.ndarray) -> float:
    """Weighted least-squares cost ``sum(w**2 (A c - t)**2)`` of the best ``c``."""
    coef, *_ = np.linalg.lstsq(A * w[:, None], t * w, rcond=None)
    return float(np.sum((w * (A @ coef - t)) ** 2))


def _drop_terms(A: np.ndarray, t: np.ndarray, w: np.ndarray) -> tuple[list[int], np.ndarray]:
    """Backward elimination of the columns of ``A`` ``(n, k)``: the column whose removal
    raises the weighted cost least goes while that rise is below ``log(n)`` times the
    noise variance the full fit leaves (or round-off, ``1e-18`` of the total). Returns the
    kept column indices and their coefficients."""
    n, k = A.shape
    full = _lstsq_cost(A, t, w)
    total = float(np.sum((w * (t - np.mean(t))) ** 2))
    allowed = max(full / max(n - k, 1) * np.log(n), 1e-18 * total)
    kept = list(range(k))
    cost = full
    while len(kept) > 1:
        trials = [(_lstsq_cost(A[:, [j for j in kept if j != i]], t, w), i) for i in kept]
        best, drop = min(trials)
        if best - cost > allowed:
            break
        kept.remove(drop)
        cost = best
    coef, *_ = np.linalg.lstsq(A[:, kept] * w[:, None], t * w, rcond=None)
    return kept, coef


#: Exponents of a variable in the monomials ``m`` of :func:`shifted_monomial_laws`.
_MONOMIAL_POWERS = (1, -1, 2, -2)
#: Scales ``k`` of ``1 +- k m``, in units of ``1 / median(m)`` (the refit polishes them).
_MONOMIAL_SCALES = np.geomspace(0.01, 100.0, 13)
#: Leading factors tried by :func:`shifted_monomial_laws` before the second is chosen.
_LEADS = 12
#: Pairs of factors whose scales :func:`shifted_monomial_laws` refits before ranking them.
_POLISHED = 8


def shifted_monomial_laws(
    X: np.ndarray,
    y: np.ndarray,
    symbols: list[sp.Expr],
    *,
    weights: np.ndarray | None = None,
    deadline: float | None = None,
    keep: int = 2,
) -> list[sp.Expr]:
    """Power laws times powers of two shifted monomials,

        y = A prod_i x_i**c_i (1 +- k1 m1)**a1 (1 +- k2 m2)**a2,

    with ``m`` a product of powers (:data:`_MONOMIAL_POWERS`) of up to three positive
    variables (two beyond :data:`_MAX_PAIR_VARIABLES` variables) and ``k`` on the grid
    :data:`_MONOMIAL_SCALES`, as in ``(1 + beta mu**2)**2 / (1 + (k mu sigma)**2 / 2)``
    or Burkert's profile. Linear in ``log|y|`` for given factors: the first factor is one
    of the :data:`_LEADS` best alone, the second the best with it (closed form, on
    :data:`_SCREEN_ROWS` rows), weighted by ``|y| / sigma`` (``weights`` = ``1/sigma``);
    the :data:`_POLISHED` best pairs get their scales refitted on all rows
    (:func:`_polish_scales`), and the ``keep`` best of them lose the terms the noise does
    not need (:func:`_drop_terms`).
    ``X`` ``(n, d)``, ``y`` ``(n,)`` of one sign; returns sympy expressions of ``symbols``.
    """
    sign = 1.0 if np.median(y) > 0 else -1.0
    positive = _positive(X)
    if not positive or not np.all(sign * y > 0):
        return []
    t = np.log(sign * y)
    w = np.abs(y) * (1.0 if weights is None else weights)
    w = w / np.sqrt(np.mean(w * w))
    factors = _shifted_factors(X, positive)
    base = np.column_stack([np.ones(len(y)), *(np.log(X[:, j]) for j in positive)])
    base_syms = [sp.Integer(1), *(sp.log(symbols[j]) for j in positive)]
    rows = exhaustive._scan_rows(len(y), _SCREEN_ROWS)
    monos = list(dict.fromkeys(mono for mono, _ in factors))
    values = {mono: _monomial_values(X[rows], mono) for mono in monos}
    with np.errstate(all="ignore"):
        F = np.stack([np.log(1 + k * values[mono]) for mono, k in factors])
    groups = np.array([monos.index(mono) for mono, _ in factors])
    pairs = _best_factor_pairs(base[rows], F, groups, t[rows], w[rows], _POLISHED, deadline)
    polished = []
    for i, j in pairs:
        if budget.past(deadline, "family fit"):
            break
        polished.append(_polish_scales(base, X, (factors[i], factors[j]), t, w))
    out = []
    for _, pair in sorted(polished, key=lambda p: p[0])[:keep]:
        A = np.column_stack([base, *(_factor_column(X, f) for f in pair)])
        if not np.all(np.isfinite(A)):
            continue
        syms = [*base_syms, *(_factor_symbol(f, symbols) for f in pair)]
        kept, coef = _drop_terms(A, t, w)
        log_law = sum((sp.Float(c, 15) * syms[k] for k, c in zip(kept, coef, strict=True)), 0)
        out.append(sign * sp.powsimp(sp.exp(sp.expand_log(log_law))))
    return out


def _monomials(X: np.ndarray, positive: list[int]) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    """``(columns, powers)`` of the monomials ``m`` of :func:`shifted_monomial_laws`."""
    most = 3 if X.shape[1] <= _MAX_PAIR_VARIABLES else 2
    return [
        (idx, powers)
        for size in range(1, most + 1)
        for idx in itertools.combinations(positive, size)
        for powers in itertools.product(_MONOMIAL_POWERS, repeat=size)
        if powers[0] > 0  # 1 + k/m is (1 + m/k) k/m, and the power laws hold k/m
    ]


def _monomial_values(X: np.ndarray, monomial) -> np.ndarray:
    """Values ``(n,)`` of the monomial ``(columns, powers)`` on the rows ``X``."""
    idx, powers = monomial
    return np.prod([X[:, j] ** float(p) for j, p in zip(idx, powers, strict=True)], axis=0)


def _shifted_factors(X: np.ndarray, positive: list[int]) -> list[tuple[tuple, float]]:
    """``(monomial, k)`` of every factor ``log(1 + k m)`` of :func:`shifted_monomial_laws`
    (``k`` of either sign) whose argument is positive on the rows ``X``."""
    out = []
    for mono in _monomials(X, positive):
        m = _monomial_values(X, mono)
        lo, hi, mid = float(np.min(m)), float(np.max(m)), float(np.median(m))
        for g in _MONOMIAL_SCALES:
            k = float(g / mid)
            out.append((mono, k))
            if 1 - k * hi > 0 and 1 - k * lo > 0:
                out.append((mono, -k))
    return out


def _factor_column(X: np.ndarray, factor) -> np.ndarray:
    """``log(1 + k m)`` ``(n,)`` of ``factor = (monomial, k)`` on the rows ``X``."""
    mono, k = factor
    with np.errstate(all="ignore"):
        return np.log(1 + k * _monomial_values(X, mono))


def _factor_symbol(factor, symbols: list[sp.Expr]) -> sp.Expr:
    """``log(1 + k m)`` of ``factor = (monomial, k)`` in sympy."""
    (idx, powers), k = factor
    m = sp.Mul(*[symbols[j] ** p for j, p in zip(idx, powers, strict=True)])
    return sp.log(1 + sp.Float(k, 15) * m)


def _best_factor_pairs(
    base: np.ndarray,
    F: np.ndarray,
    groups: np.ndarray,
    t: np.ndarray,
    w: np.ndarray,
    keep: int,
    deadline: float | None,
) -> list[tuple[int, int]]:
    """The ``keep`` best pairs ``(i, j)`` of rows of ``F`` ``(N, n)`` that, with the columns
    of ``base`` ``(n, b)``, fit ``t`` ``(n,)`` by least squares with residual weights ``w``:
    ``i`` the best alone of one of :data:`_LEADS` groups (``groups`` ``(N,)``, a label per
    row: the scales of one monomial), ``j`` one of the two best given ``i``."""
    Bw = base * w[:, None]
    proj = np.linalg.pinv(Bw)  # (b, n): weighted projection onto the span of base
    with np.errstate(all="ignore"):
        Fw = F * w[None, :]
        Fp = Fw - (Fw @ proj.T) @ Bw.T  # (N, n), orthogonal to base
        tp = t * w - Bw @ (proj @ (t * w))
        norm = np.sum(Fp * Fp, axis=1)
        usable = np.isfinite(norm) & (norm > 1e-12 * np.max(norm[np.isfinite(norm)], initial=1))
        dot = Fp @ tp
        gain = np.where(usable, dot * dot / np.where(usable, norm, 1.0), -np.inf)
    found = []
    order = np.argsort(-gain)
    _, first = np.unique(groups[order], return_index=True)  # each group's best row
    leads = order[np.sort(first)[:_LEADS]]
    for i in leads:  # the two best second factors of each
        if not usable[i] or budget.past(deadline, "family fit"):
            continue
        e = Fp[i] / np.sqrt(norm[i])
        with np.errstate(all="ignore"):
            G = Fp - np.outer(Fp @ e, e)
            gnorm = np.sum(G * G, axis=1)
            r = tp - (tp @ e) * e
            ok = usable & (gnorm > 1e-10 * norm)
            gain2 = np.where(ok, (G @ r) ** 2 / np.where(ok, gnorm, 1.0), -np.inf)
        for j in np.argsort(-gain2)[:2]:
            if np.isfinite(gain2[j]):
                found.append((float(r @ r - gain2[j]), int(i), int(j)))
    return [(i, j) for _, i, j in sorted(found)[:keep]]


def _polish_scales(
    base: np.ndarray, X: np.ndarray, pair: tuple, t: np.ndarray, w: np.ndarray
) -> tuple[float, tuple]:
    """``(cost, pair)``: the factors ``(monomial, k)`` of ``pair`` with ``log|k|`` refitted
    (trust region, the linear coefficients on ``base`` ``(n, b)`` and the factors solved
    in closed form at each step) to ``t`` ``(n,)`` with residual weights ``w``."""
    from scipy.optimize import least_squares

    monos = [_monomial_values(X, mono) for mono, _ in pair]
    signs = [float(np.sign(k)) for _, k in pair]
    tw = t * w

    def residual(theta: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            cols = [
                np.log1p(s * np.exp(th) * m) for s, th, m in zip(signs, theta, monos, strict=True)
            ]
            A = np.column_stack([base, *cols]) * w[:, None]
        if not np.all(np.isfinite(A)):
            return np.full(len(t), 1e3)
        coef, *_ = np.linalg.lstsq(A, tw, rcond=None)
        return A @ coef - tw

    start = np.log([abs(k) for _, k in pair])
    try:
        sol = least_squares(residual, start, method="trf", max_nfev=60)
    except (ValueError, np.linalg.LinAlgError):
        return float(np.sum(residual(start) ** 2)), pair
    ks = [s * float(np.exp(th)) for s, th in zip(signs, sol.x, strict=True)]
    return float(2 * sol.cost), tuple((mono, k) for (mono, _), k in zip(pair, ks, strict=True))


#: Powers ``p`` of the polynomial in :func:`polynomial_power_laws`.
_POLY_POWERS = (-2.0, -1.0, -0.5, -0.25, 0.25, 0.5, 2.0)
#: Degree of that polynomial.
_POLY_DEGREE = 4
#: Powers ``k`` of the prefactor ``u**k`` in :func:`polynomial_power_laws`.
_PREFACTOR_POWERS = (-2, -1, 0, 1, 2)


def polynomial_power_laws(
    u: np.ndarray,
    z: np.ndarray,
    sym: sp.Expr,
    *,
    weights: np.ndarray | None = None,
    deadline: float | None = None,
    keep: int = 2,
) -> list[sp.Expr]:
    """Transfer-function-like laws ``z = L(u) (c0 + c1 u + ... + c4 u**4)**p`` of the
    positive input ``u`` ``(n,)``, with ``p`` in :data:`_POLY_POWERS` and ``L`` a power
    ``u**k`` (:data:`_PREFACTOR_POWERS`) or ``log(1 + a u) / (a u)`` (the logarithmic
    growth of small-scale modes in BBKS-like transfer functions, ``a`` on a grid of
    :data:`_MONOMIAL_SCALES` over ``median(u)`` and then refitted).

    For each ``(L, p)`` the polynomial is linear least squares in ``(z / L)**(1/p)``
    (residuals weighted by ``weights`` = ``1/sigma`` of ``z``, carried by the derivative)
    and loses the terms the noise does not need (:func:`_drop_terms`); the ``keep`` best
    by the weighted error of ``z`` are returned as sympy expressions of ``sym``.
    """
    if not (np.all(u > 0) and (np.all(z > 0) or np.all(z < 0))) or len(u) < 10:
        return []
    sign = float(np.sign(z[0]))
    w = np.ones_like(z) if weights is None else weights
    prefactors = [(u**k, sym**k, None) for k in _PREFACTOR_POWERS]
    logs = [float(g / np.median(u)) for g in _MONOMIAL_SCALES]
    prefactors += [(np.log1p(a * u) / (a * u), _log_prefactor(a, sym), a) for a in logs]
    fits = []  # (cost, L in sympy, a of a logarithmic L or None, p, polynomial)
    for values, lsym, a in prefactors:
        for p in _POLY_POWERS:
            if budget.past(deadline, "family fit"):
                break
            fit = _polynomial_fit(u, sign * z / values, p, w * np.abs(values))
            if fit is not None:
                fits.append((fit[0], lsym, a, p, fit[1]))
    best_log = min((f for f in fits if f[2] is not None), key=lambda f: f[0], default=None)
    if best_log is not None:  # its scale a refitted, off the grid
        _, _, a, p, _ = best_log
        a = _polish_log_scale(u, sign * z, p, w, a)
        values = np.log1p(a * u) / (a * u)
        fit = _polynomial_fit(u, sign * z / values, p, w * np.abs(values))
        if fit is not None:
            fits.append((fit[0], _log_prefactor(a, sym), a, p, fit[1]))
    out = []
    for _, lsym, _, p, poly in sorted(fits, key=lambda f: f[0])[:keep]:
        law = sign * lsym * sum((sp.Float(c, 15) * sym**i for i, c in poly), 0) ** sp.Float(p, 15)
        out.append(law)
    return out


def _log_prefactor(a: float, sym: sp.Expr) -> sp.Expr:
    """``log(1 + a u) / (a u)`` in sympy."""
    k = sp.Float(a, 15)
    return sp.log(1 + k * sym) / (k * sym)


def _polynomial_fit(
    u: np.ndarray, r: np.ndarray, p: float, w: np.ndarray
) -> tuple[float, list[tuple[int, float]]] | None:
    """``(cost, [(i, c_i), ...])``: ``r = (sum c_i u**i)**p`` for the positive ``r`` ``(n,)``,
    the polynomial fitted linearly to ``r**(1/p)`` (its terms pruned by :func:`_drop_terms`),
    ``cost`` the sum of ``(w (model - r))**2``; None when not finite."""
    with np.errstate(all="ignore"):
        t = r ** (1 / p)
        wt = w * np.abs(p * r / t)  # 1 / sigma of t = r**(1/p)
        A = np.column_stack([u**i for i in range(_POLY_DEGREE + 1)])
    if not (np.all(np.isfinite(t)) and np.all(np.isfinite(wt)) and np.all(np.isfinite(A))):
        return None
    scale = np.sqrt(np.mean(wt * wt))
    kept, coef = _drop_terms(A, t, wt / scale)
    with np.errstate(all="ignore"):
        model = (A[:, kept] @ coef) ** p
        cost = float(np.sum((w * (model - r)) ** 2))
    if not np.isfinite(cost):
        return None
    return cost, list(zip(kept, map(float, coef), strict=True))


def _polish_log_scale(u: np.ndarray, r: np.ndarray, p: float, w: np.ndarray, a: float) -> float:
    """The scale ``a`` of ``r = log(1 + a u) / (a u) P(u)**p`` that minimises the weighted
    error of the positive ``r`` ``(n,)`` (``P`` of degree :data:`_POLY_DEGREE` fitted
    linearly at each ``a``), searched within a factor of 3 of the grid's ``a``."""
    from scipy.optimize import minimize_scalar

    A = np.column_stack([u**i for i in range(_POLY_DEGREE + 1)])

    def cost(log_a: float) -> float:
        k = np.exp(log_a)
        values = np.log1p(k * u) / (k * u)
        with np.errstate(all="ignore"):
            t = (r / values) ** (1 / p)
            wt = w * np.abs(values) * np.abs(p * r / values / t)
            coef, *_ = np.linalg.lstsq(A * wt[:, None], t * wt, rcond=None)
            c = float(np.sum((w * (values * (A @ coef) ** p - r)) ** 2))
        return c if np.isfinite(c) else 1e300  # finite: the bounded search does arithmetic

    lo, hi = np.log(a) - np.log(3.0), np.log(a) + np.log(3.0)
    sol = minimize_scalar(cost, bounds=(lo, hi), method="bounded", options={"xatol": 1e-10})
    return float(np.exp(sol.x)) if sol.fun < 1e300 else a
