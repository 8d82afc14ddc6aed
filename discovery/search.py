"""``discover``: the one entry point of the symbolic search, and its pipeline.

The ``auto`` pipeline spends the budget where laws are found, not fits:

1. power-law reduction (:mod:`discovery.reduce`): split ``y = prod x_i**a_i * g(x_S)``
   so the search sees only the variables ``S`` of the unknown factor ``g``, or only one
   monomial input ``u = prod x_j**(+-1)`` of which ``g`` is a function;
2. the affine stage: ``T(g) = a + b h`` solved in closed form for every small
   constant-free tree ``h`` and the transforms ``T`` of :data:`_TRANSFORMS` (with one
   input, also ``h(k u)`` on a grid of ``k`` and ``g u**p``), on the reduced problem
   (or on the full one when there is none);
3. exhaustive enumeration (:mod:`discovery.exhaustive`) of every distinct small
   expression, on the reduced problem and on the full one, complete below its bound;
4. Operon (:mod:`discovery.operon_backend`) with the remaining time, for larger laws;
5. shared post-processing of every candidate from any backend: merging of products of
   fitted constants, refit of the constants
   on all rows (Levenberg-Marquardt on the law compiled to NumPy, :func:`fit.refit`),
   snapping of constants to exact numbers while the description length drops,
   simplification, and the dimensional-analysis filter when units are given; the
   Pareto front then offers the four selection criteria.

Every stage runs against the deadlines of ``budget_s`` (:class:`discovery.budget.Budget`):
the search stages share ``SEARCH_SHARE`` of it, the post-processing the rest; the front
records the seconds spent per stage and what the budget cut short.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Mapping, Sequence
from fractions import Fraction

import numpy as np
import sympy as sp

from discovery import exhaustive, fit, postprocess, programs
from discovery import units as unitlib
from discovery.budget import Budget
from discovery.expressions import check_names, complexity, make_symbols
from discovery.front import Candidate, ParetoFront
from discovery.operators import parse_operators
from discovery.reduce import power_law_reduction

BACKENDS = ("auto", "operon", "pysr", "exhaustive")
#: Laws snapped, by description length, before the final ranking (plus the most accurate).
SNAP_BEST = 4


def _validate(X, y, variables, max_complexity, budget_s, backend, target):
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim != 2:
        raise ValueError(f"X has shape {X.shape}; expected (n_rows, n_variables)")
    if y.ndim != 1 or len(y) != len(X):
        raise ValueError(f"y has shape {y.shape}; expected ({len(X)},) to match X {X.shape}")
    if not np.all(np.isfinite(X)):
        raise ValueError(
            f"X contains {int(np.sum(~np.isfinite(X)))} NaN/inf values; all must be finite"
        )
    if not np.all(np.isfinite(y)):
        raise ValueError(
            f"y contains {int(np.sum(~np.isfinite(y)))} NaN/inf values; all must be finite"
        )
    if variables is None:
        variables = [f"x{i}" for i in range(X.shape[1])]
    variables = [str(v) for v in variables]
    if len(variables) != X.shape[1]:
        raise ValueError(
            f"variables={variables!r} has {len(variables)} names; X has {X.shape[1]} columns"
        )
    check_names([*variables, target], "variables")
    if not isinstance(max_complexity, int) or not 3 <= max_complexity <= 200:
        raise ValueError(f"max_complexity={max_complexity!r}; allowed: an integer in [3, 200]")
    max_constants = (max_complexity + 1) // 2
    if len(y) <= max_constants:
        raise ValueError(
            f"y has {len(y)} rows, not more than the {max_constants} free constants a law of "
            f"max_complexity={max_complexity} may have; give more rows or a lower max_complexity"
        )
    if not (isinstance(budget_s, int | float) and math.isfinite(budget_s) and budget_s > 0):
        raise ValueError(f"budget_s={budget_s!r}; allowed: a positive number of seconds")
    if backend not in BACKENDS:
        raise ValueError(f"backend={backend!r}; allowed: {', '.join(BACKENDS)}")
    return X, y, variables


def _exhaustive_bound(n_vars: int) -> int:
    """Enumeration bound (nodes, scale not counted) that a search completes on 2 cores
    within the share of a one-minute budget (a few thousand trees)."""
    return {1: 5, 2: 5}.get(n_vars, 4)


def _exhaustive_candidates(
    X, y, symbols, operators, bound, var_dims, target_dims, seed, deadline, clock, keep=15
) -> tuple[list[sp.Expr], float]:
    """Best trees of an exhaustive search (per size and overall) as sympy with float constants.

    Also returns the lowest mean squared error relative to ``mean(y**2)``. A search that
    reached ``deadline`` is recorded as cut short on ``clock``.
    """
    res = exhaustive.search(
        X,
        y,
        [o for o in operators if o in programs.OPCODES],
        bound,
        var_dims=var_dims,
        target_dims=target_dims,
        seed=seed,
        deadline=deadline,
    )
    if time.monotonic() > deadline:
        clock.cut(
            f"exhaustive search over {X.shape[1]} variable(s) up to {bound} nodes: "
            f"stopped at its deadline ({int(np.sum(np.isfinite(res.mse)))} of "
            f"{res.n_fitted} trees fitted)"
        )
    order = np.argsort(res.mse)
    chosen = list(order[:keep])
    sizes: dict[int, int] = {}
    for i in order:
        size = programs.program_length(res.nodes[i])
        if sizes.get(size, 0) < 2 and np.isfinite(res.mse[i]):
            sizes[size] = sizes.get(size, 0) + 1
            chosen.append(i)
    out = []
    for i in dict.fromkeys(chosen):
        if not np.isfinite(res.mse[i]):
            continue
        *consts, scale = res.params[i]
        params = [sp.Float(c, 15) for c in consts]
        out.append(sp.Float(scale, 15) * programs.to_sympy(res.nodes[i], symbols, params))
    best = float(np.min(res.mse, initial=np.inf)) / max(float(np.mean(y**2)), 1e-300)
    return out, best


#: Transformed targets ``T(z)`` for small exhaustive searches, and the law ``z = T^-1(e)``
#: (``sign`` is that of ``z``): the law is often simpler on one of them, as in
#: ``z = 1/sqrt(1 - u**2)``, which is ``1/z**2 = 1 - u**2``.
_TRANSFORMS = {
    "inverse": (lambda z: 1 / z, lambda e, sign: 1 / e),
    "square": (lambda z: z**2, lambda e, sign: sign * sp.sqrt(e)),
    "inverse square": (lambda z: 1 / z**2, lambda e, sign: sign / sp.sqrt(e)),
    "log": (lambda z: np.log(np.abs(z)), lambda e, sign: sign * sp.exp(e)),
}


def _affine_candidates(Z, z, syms, ops, deadline) -> list[sp.Expr]:
    """Laws ``z = T^-1(a + b h(Z))`` for constant-free trees ``h`` and each transform ``T``.

    :func:`exhaustive.affine_search` fits the line in closed form on the identity and on
    each target of :data:`_TRANSFORMS` (those needing one sign only when ``z`` has one);
    ``Z`` has shape ``(n, m)``, ``z`` ``(n,)``. With one input ``u``, small trees of a
    scaled input ``h(k u)`` are tried too, on the targets ``z u**p`` for ``|p| <= 2``:
    ``u/(exp(k u) - 1)`` is ``1/(z/u) = -1 + exp(k u)``.
    """
    one_sign = bool(np.all(z > 0) or np.all(z < 0))
    sign = 1 if z[0] > 0 else -1
    transforms = {"identity": (lambda v: v, lambda e, s: e)}
    transforms |= {k: v for k, v in _TRANSFORMS.items() if one_sign or k == "inverse"}
    # (power p, tree size, scales k, laws kept per target); trees of 3 nodes always run
    runs = [(0, _affine_bound(Z.shape[1]), (1.0,), 3)]
    if Z.shape[1] == 1 and np.all(Z > 0):
        runs += [(p, 3, tuple(np.geomspace(0.01, 100, 61)), 1) for p in (0, -1, 1, -2, 2)]
    out = []
    start, slot = time.monotonic(), max(deadline - time.monotonic(), 0) / len(runs)
    for r, (power, bound, scales, keep) in enumerate(runs):
        with np.errstate(all="ignore"):
            zp = z * Z[:, 0] ** power if power else z
            targets = [(forward(zp), inverse) for forward, inverse in transforms.values()]
        targets = [(t, inv) for t, inv in targets if np.all(np.isfinite(t))]
        results = exhaustive.affine_search(
            Z,
            [t for t, _ in targets],
            ops,
            bound,
            scales=scales,
            keep=keep,
            deadline=start + (r + 1) * slot,
        )
        for (t, inverse), best in zip(targets, results, strict=True):
            for node, k, a, b, mse in best:
                if power and mse > 1e-3 * float(np.var(t)):  # scaled trees: near-exact only
                    continue
                inputs = [sym * sp.Float(k, 15) if k != 1 else sym for sym in syms]
                law = inverse(
                    sp.Float(a, 15) + sp.Float(b, 15) * programs.to_sympy(node, inputs, []), sign
                )
                if power:
                    out.append(law * syms[0] ** -power)
                else:  # cancel the fractions that larger trees leave (not past the deadline)
                    out.append(postprocess.tidy(law) if time.monotonic() < deadline else law)
    return out


def _affine_bound(n_vars: int) -> int:
    """Size of the constant-free trees of the affine stage (about a second of enumeration)."""
    return {1: 5, 2: 5}.get(n_vars, 4)


def discover(
    X: np.ndarray,
    y: np.ndarray,
    variables: Sequence[str] | None = None,
    units: Mapping[str, str] | str | None = None,
    operators: str | Sequence[str] | None = None,
    max_complexity: int = 30,
    budget_s: float = 60.0,
    seed: int = 0,
    backend: str = "auto",
    *,
    target: str = "y",
    noise: float | None = None,
    progress: bool = False,
) -> ParetoFront:
    """Find closed-form laws ``y = f(X)``; returns their Pareto front.

    Parameters
    ----------
    X, y : arrays of shape ``(n_rows, n_variables)`` and ``(n_rows,)``, finite.
    variables : column names (identifiers), default ``x0, x1, ...``.
    units : unit strings for variables and the target (key ``target``), as a mapping
        or ``"name=unit,..."``; enables the dimensional filter (constants dimensionless).
    operators : operator basis (see :data:`discovery.operators.OPERATORS`).
    max_complexity : largest law (nodes) the genetic backends may return.
    budget_s : wall-clock budget in seconds of the whole call (:mod:`discovery.budget`):
        the search stages get ``SEARCH_SHARE`` of it, refitting, snapping and selection
        the rest, and what does not fit is skipped and listed in
        ``ParetoFront.truncated``. Beyond it come only the ``"warm-up"`` stage, one-off
        costs of a process done before the budget starts (importing pyoperon; the JAX
        compilation of the exhaustive kernel, once per operator basis and row count),
        Operon's whole-second time limit, and a post-processing of at least
        ``POST_MIN_SHARE`` of the budget when the search stages ran over theirs.
    seed : random seed of every backend.
    backend : ``"auto"`` (the whole pipeline), ``"operon"``, ``"pysr"`` (falls back to
        ``"auto"`` with one line on stderr when PySR/Julia cannot start) or ``"exhaustive"``.
    noise : the noise standard deviation of ``y`` if known (else estimated).

    The front records the seconds spent per stage (``timings``) and what was cut short.
    """
    X, y, names = _validate(X, y, variables, max_complexity, budget_s, backend, target)
    ops = parse_operators(operators)
    unit_map = unitlib.parse_unit_map(units, [*names, target])
    if noise is not None and not (math.isfinite(noise) and noise > 0):
        raise ValueError(f"noise={noise!r}; allowed: a positive standard deviation or None")
    symbols = make_symbols(names, X)
    var_dims = exhaustive.dims_of_variables(names, unit_map)
    target_dims = unit_map.get(target) if var_dims is not None else None
    clock = Budget(budget_s, progress)
    clock.stage("warm-up")  # one-off costs of a process, outside the budget
    if backend in ("auto", "operon", "pysr"):
        import pyoperon.sklearn  # noqa: F401
    if backend in ("auto", "pysr", "exhaustive"):
        exhaustive.warm_up(X, y, [o for o in ops if o in programs.OPCODES])
    clock.begin_budget()
    deadline = clock.search_end

    raw: list[sp.Expr] = [sp.Float(float(np.mean(y)), 15)]  # the constant law, always
    used = backend
    if backend == "pysr":
        from discovery import pysr_backend

        clock.stage("pysr")
        try:
            raw += pysr_backend.search(
                X,
                y,
                symbols,
                ops,
                budget_s=max(clock.left(deadline), 1),
                max_complexity=max_complexity,
                seed=seed,
            )
        except pysr_backend.PySRUnavailable as err:
            print(
                f"discover: pysr backend unavailable ({err}); using the offline engine",
                file=sys.stderr,
            )
            used = "auto"
    if used == "exhaustive":
        clock.stage("exhaustive")
        bound = min(max_complexity, _exhaustive_bound(X.shape[1]) + 1)
        raw += _exhaustive_candidates(
            X, y, symbols, ops, bound, var_dims, target_dims, seed, deadline, clock
        )[0]
    if used == "auto":
        raw += _pipeline(X, y, symbols, ops, max_complexity, var_dims, target_dims, seed, clock)
    if used == "operon":
        raw += _operon(X, y, symbols, ops, max_complexity, seed, clock, "operon", deadline)
    cands = _postprocess(raw, X, y, symbols, noise, unit_map, var_dims, target, used, clock)
    clock.stage(None)
    return ParetoFront.build(
        cands,
        symbols,
        target=target,
        units=_unit_strings(units, [*names, target]),
        backend=used,
        seed=seed,
        timings=clock.timings,
        budget_s=float(budget_s),
        truncated=tuple(clock.truncated),
    )


def _unit_strings(units_arg, names) -> dict[str, str]:
    if units_arg is None:
        return {}
    if isinstance(units_arg, str):
        return {
            k.strip(): v.strip()
            for k, v in (p.split("=", 1) for p in units_arg.split(",") if p.strip())
        }
    return {str(k): str(v) for k, v in units_arg.items()}


def _exact_or_float(a) -> sp.Expr:
    return sp.Rational(a.numerator, a.denominator) if isinstance(a, Fraction) else sp.Float(a, 15)


def _operon(X, y, symbols, ops, max_complexity, seed, clock, stage, until) -> list[sp.Expr]:
    """Operon until ``until`` in whole seconds; skipped (and recorded) under one second."""
    from discovery import operon_backend

    left = clock.left(until)
    if left < 1:
        clock.cut(f"{stage}: skipped, {max(left, 0):.1f} s of the search budget left")
        return []
    clock.stage(stage)
    return operon_backend.search(
        X, y, symbols, ops, budget_s=math.floor(left), max_length=max_complexity, seed=seed
    )


def _pipeline(
    X, y, symbols, ops, max_complexity, var_dims, target_dims, seed, clock
) -> list[sp.Expr]:
    out: list[sp.Expr] = []
    d = X.shape[1]
    exact = 1e-20  # relative mean squared error of a law reproducing y to round-off
    best = np.inf
    deadline = clock.search_end
    clock.stage("power-law reduction")
    red = power_law_reduction(X, y)
    factor = sp.Integer(1)
    reduced = red is not None and bool(red.subset or red.monomial)
    if red is not None:
        factor = sp.Mul(*[symbols[i] ** _exact_or_float(a) for i, a in red.exponents.items()])
        z = y / red.factor(X)
        Z, zsyms = red.inputs(X), red.input_symbols(symbols)
        if not reduced:  # a power law: its constant, and the exact numbers near it
            scale = float(np.sum(z * red.factor(X) ** 2) / np.sum(red.factor(X) ** 2))
            out += [
                c * factor for c in [sp.Float(scale, 15), *postprocess.snap_values(scale, rel=0.02)]
            ]
            best = red.rms**2
        else:
            clock.stage("affine (reduced)")
            share = time.monotonic() + 0.2 * clock.left(deadline)
            out += [e * factor for e in _affine_candidates(Z, z, zsyms, ops, share)]
            clock.stage("exhaustive (reduced)")
            sub_dims = red.input_dims(var_dims) if var_dims is not None else None
            sub_target = None
            if sub_dims is not None and target_dims is not None:
                fdims = unitlib.expression_dims(factor, dict(zip(symbols, var_dims, strict=True)))
                sub_target = tuple(t - f for t, f in zip(target_dims, fdims, strict=True))
            share = time.monotonic() + 0.4 * clock.left(deadline)
            bound = _exhaustive_bound(Z.shape[1])
            g, best = _exhaustive_candidates(
                Z, z, zsyms, ops, bound, sub_dims, sub_target, seed, share, clock
            )
            out += [e * factor for e in g]
    if best > exact and not reduced:
        clock.stage("affine")
        share = time.monotonic() + 0.1 * clock.left(deadline)
        out += _affine_candidates(X, y, symbols, ops, share)
    if best > exact:
        clock.stage("exhaustive")
        share = time.monotonic() + (0.3 if reduced else 0.5) * clock.left(deadline)
        g, rel = _exhaustive_candidates(
            X, y, symbols, ops, _exhaustive_bound(d), var_dims, target_dims, seed, share, clock
        )
        out += g
        best = min(best, rel)
    if best <= exact:
        return out
    if reduced:
        half = time.monotonic() + 0.5 * clock.left(deadline)
        g = _operon(Z, z, zsyms, ops, max_complexity, seed, clock, "operon (reduced)", half)
        out += [e * factor for e in g]
    out += _operon(X, y, symbols, ops, max_complexity, seed, clock, "operon", deadline)
    return out


def _round_off(expr, fitres, symbols, X, y):
    """``(expr, fit)`` with constants that are exact up to round-off written exactly
    (:func:`discovery.postprocess.round_off`), refitted when any changed."""
    exact = postprocess.round_off(expr)
    if exact == expr:
        return expr, fitres
    (refitted,) = fit.refit([exact], symbols, X, y)
    return refitted if refitted is not None else (expr, fitres)


def _postprocess(
    raw, X, y, symbols, noise, unit_map, var_dims, target, backend, clock
) -> list[Candidate]:
    """Refit, estimate the noise, snap, simplify, filter by units; candidates with statistics.

    Refitting may use 60% of the time left (see ``Budget.post_end``), snapping 75% of
    what remains after it; what does not fit is recorded with ``clock.cut``.
    """
    n = len(y)
    unique = list(dict.fromkeys(postprocess.merge_constants(e) for e in raw))
    clock.stage("refit")
    end = clock.post_end()
    refit_end = time.monotonic() + 0.6 * clock.left(end)
    refitted = []
    for k, expr in enumerate(unique):
        if time.monotonic() > refit_end:
            clock.cut(f"refit: {len(unique) - k} of {len(unique)} candidates not refitted")
            break
        refitted += fit.refit([expr], symbols, X, y)
    fitted = [_round_off(e, f, symbols, X, y) for e, f in (r for r in refitted if r is not None)]
    if not fitted:
        return []
    best_mse = min(f.mse for _, f in fitted)
    sigma = (
        noise
        if noise is not None
        else math.sqrt(max(best_mse, 1e-16 * float(np.mean(y**2)), 1e-300))
    )

    def stats(expr, fitres):
        info = {}
        if fitres is not None:
            floats = sorted(expr.atoms(sp.Float), key=sp.default_sort_key)
            info = {float(f): float(v) for f, v in zip(floats, np.diag(fitres.jtj), strict=False)}
        return fit.description_length(expr, fitres.mse, n, sigma, info)

    clock.stage("snapping")
    scored = sorted(((stats(e, f), e, f) for e, f in fitted), key=lambda t: t[0])
    # snap the most promising laws: the best by description length and the most accurate
    # (with noise, several forms fit within it; only snapped can the exact one win)
    by_loss = sorted(scored, key=lambda t: t[2].mse)[:1]
    todo = list(dict.fromkeys([t[1] for t in scored[:SNAP_BEST]] + [t[1] for t in by_loss]))
    results = {e: (f, dl) for dl, e, f in scored}
    snap_end = time.monotonic() + 0.75 * max(clock.left(end), 0)
    for k, expr in enumerate(todo):
        if time.monotonic() > snap_end:
            clock.cut(f"snapping: {len(todo) - k} of {len(todo)} laws not snapped in the budget")
            break
        snapped, mse, dl = postprocess.snap(expr, symbols, X, y, sigma, deadline=snap_end)
        if snapped != expr:
            tidy, plain = fit.refit([postprocess.tidy(snapped), snapped], symbols, X, y)
            if tidy is not None and (plain is None or tidy[1].mse <= plain[1].mse * (1 + 1e-6)):
                plain = tidy
            if plain is not None:
                results[plain[0]] = (plain[1], stats(*plain))
        if time.monotonic() > snap_end:
            clock.cut(f"snapping: law {k + 1} of {len(todo)} cut short by the budget")
    clock.stage("units and statistics")
    target_dims = unit_map.get(target) if var_dims is not None else None
    dims = dict(zip(symbols, var_dims, strict=True)) if var_dims is not None else None
    ok = {e: dims is None or unitlib.consistent(e, dims, target_dims) for e in results}
    if not any(ok.values()):
        print("discover: no candidate has the target's units; keeping them all", file=sys.stderr)
        ok = dict.fromkeys(ok, True)
    # per complexity only the shortest description competes: the front keeps the most
    # accurate law of each complexity, which would otherwise be a fitted twin (0.0796)
    # of an exact law (1/(4 pi)) that the noise cannot tell apart
    shortest: dict[int, float] = {}
    for expr, (_, dl) in results.items():
        if ok[expr]:
            shortest[complexity(expr)] = min(dl, shortest.get(complexity(expr), np.inf))
    cands = []
    for expr, (fitres, dl) in results.items():
        if not ok[expr] or dl > shortest[complexity(expr)]:
            continue
        errs = fit.stderr(fitres, n)
        values = [float(f) for f in sorted(expr.atoms(sp.Float), key=sp.default_sort_key)]
        cands.append(
            Candidate(
                expression=expr,
                complexity=complexity(expr),
                loss=float(fitres.mse),
                description_length=float(dl),
                constants=tuple(zip(values, [float(e) for e in errs[: len(values)]], strict=False)),
                backend=backend,
            )
        )
    return cands
