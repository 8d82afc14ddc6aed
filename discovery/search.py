"""``discover``: the one entry point of the symbolic search, and its pipeline.

The ``auto`` pipeline spends the budget where laws are found, not fits:

1. power-law reduction (:mod:`discovery.reduce`): split ``y = prod x_i**a_i * g(x_S)``
   so the search sees only the variables ``S`` of the unknown factor ``g``;
2. exhaustive enumeration (:mod:`discovery.exhaustive`) of every distinct small
   expression, on the reduced problem and on the full one, complete below its bound;
3. Operon (:mod:`discovery.operon_backend`) with the remaining time, for larger laws;
4. shared post-processing of every candidate from any backend: refit of the constants
   on all rows in JAX, snapping of constants to exact numbers while the description
   length drops, simplification, and the dimensional-analysis filter when units are
   given; the Pareto front then offers the four selection criteria.
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
from discovery.expressions import check_names, complexity, make_symbols
from discovery.front import Candidate, ParetoFront
from discovery.operators import parse_operators
from discovery.reduce import power_law_reduction

BACKENDS = ("auto", "operon", "pysr", "exhaustive")


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
    """Enumeration bound (nodes, scale not counted) that fits a few seconds on 2 cores."""
    return {1: 6, 2: 5, 3: 5}.get(n_vars, 4)


def _exhaustive_candidates(
    X, y, symbols, operators, bound, var_dims, target_dims, seed, deadline, keep=15
) -> tuple[list[sp.Expr], float]:
    """Best trees of an exhaustive search (per size and overall) as sympy with float constants.

    Also returns the lowest mean squared error relative to ``mean(y**2)``.
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
    budget_s : wall-clock budget in seconds (the post-processing comes on top).
    seed : random seed of every backend.
    backend : ``"auto"`` (the whole pipeline), ``"operon"``, ``"pysr"`` (falls back to
        ``"auto"`` with one line on stderr when PySR/Julia cannot start) or ``"exhaustive"``.
    noise : the noise standard deviation of ``y`` if known (else estimated).
    """
    X, y, names = _validate(X, y, variables, max_complexity, budget_s, backend, target)
    ops = parse_operators(operators)
    unit_map = unitlib.parse_unit_map(units, [*names, target])
    if noise is not None and not (math.isfinite(noise) and noise > 0):
        raise ValueError(f"noise={noise!r}; allowed: a positive standard deviation or None")
    symbols = make_symbols(names, X)
    var_dims = exhaustive.dims_of_variables(names, unit_map)
    target_dims = unit_map.get(target) if var_dims is not None else None
    start = time.monotonic()
    deadline = start + 0.75 * budget_s  # the rest is for refitting and snapping
    bar = _progress(progress)

    raw: list[sp.Expr] = []
    used = backend
    if backend == "pysr":
        from discovery import pysr_backend

        try:
            raw += pysr_backend.search(
                X, y, symbols, ops, budget_s=budget_s, max_complexity=max_complexity, seed=seed
            )
        except pysr_backend.PySRUnavailable as err:
            print(
                f"discover: pysr backend unavailable ({err}); using the offline engine",
                file=sys.stderr,
            )
            used = "auto"
    if used == "exhaustive":
        bar("exhaustive search")
        bound = min(max_complexity, _exhaustive_bound(X.shape[1]) + 1)
        raw += _exhaustive_candidates(
            X, y, symbols, ops, bound, var_dims, target_dims, seed, deadline
        )[0]
    if used == "auto":
        raw += _pipeline(
            X, y, symbols, ops, max_complexity, var_dims, target_dims, seed, deadline, budget_s, bar
        )
    if used == "operon":
        bar("operon")
        from discovery import operon_backend

        raw += operon_backend.search(
            X,
            y,
            symbols,
            ops,
            budget_s=max(deadline - time.monotonic(), 1),
            max_length=max_complexity,
            seed=seed,
        )
    bar("refit, snapping, units")
    cands = _postprocess(raw, X, y, symbols, noise, unit_map, var_dims, target, seed, used)
    bar(None)
    return ParetoFront.build(
        cands,
        symbols,
        target=target,
        units=_unit_strings(units, [*names, target]),
        backend=used,
        seed=seed,
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


def _progress(enabled: bool):
    """A callable ``stage(name)`` driving a tqdm bar of the pipeline stages (``None`` closes)."""
    if not enabled:
        return lambda stage: None
    from tqdm.auto import tqdm

    bar = tqdm(total=None, unit="stage", desc="discover", file=sys.stderr)

    def stage(name):
        if name is None:
            bar.close()
        else:
            bar.set_postfix_str(name)
            bar.update(1)

    return stage


def _exact_or_float(a) -> sp.Expr:
    return sp.Rational(a.numerator, a.denominator) if isinstance(a, Fraction) else sp.Float(a, 15)


def _pipeline(
    X, y, symbols, ops, max_complexity, var_dims, target_dims, seed, deadline, budget_s, bar
) -> list[sp.Expr]:
    from discovery import operon_backend

    out: list[sp.Expr] = []
    d = X.shape[1]
    exact = 1e-20  # relative mean squared error of a law reproducing y to round-off
    best = np.inf
    bar("power-law reduction")
    red = power_law_reduction(X, y)
    factor = sp.Integer(1)
    if red is not None:
        factor = sp.Mul(*[symbols[i] ** _exact_or_float(a) for i, a in red.exponents.items()])
        z = y / np.prod([X[:, i] ** float(a) for i, a in red.exponents.items()], axis=0)
        sub = list(red.subset)
        if not sub:
            out.append(sp.Float(float(np.mean(z)), 15) * factor)
            best = red.rms**2
        else:
            bar(f"exhaustive on {len(sub)} of {d} variables")
            sub_dims = [var_dims[i] for i in sub] if var_dims is not None else None
            sub_target = None
            if sub_dims is not None and target_dims is not None:
                fdims = unitlib.expression_dims(factor, dict(zip(symbols, var_dims, strict=True)))
                sub_target = tuple(t - f for t, f in zip(target_dims, fdims, strict=True))
            share = time.monotonic() + 0.4 * (deadline - time.monotonic())
            syms = [symbols[i] for i in sub]
            bound = _exhaustive_bound(len(sub))
            g, best = _exhaustive_candidates(
                X[:, sub], z, syms, ops, bound, sub_dims, sub_target, seed, share
            )
            out += [e * factor for e in g]
    if best > exact:
        bar(f"exhaustive on all {d} variables")
        share = time.monotonic() + 0.3 * (deadline - time.monotonic())
        g, rel = _exhaustive_candidates(
            X, y, symbols, ops, _exhaustive_bound(d), var_dims, target_dims, seed, share
        )
        out += g
        best = min(best, rel)
    if best <= exact:
        return out
    # Operon always gets at least a quarter of the budget, even when enumeration ran late
    left = max(deadline - time.monotonic(), 0.25 * budget_s)
    if red is not None and red.subset:
        bar(f"operon on {len(red.subset)} of {d} variables")
        sub = list(red.subset)
        z = y / np.prod([X[:, i] ** float(a) for i, a in red.exponents.items()], axis=0)
        g = operon_backend.search(
            X[:, sub],
            z,
            [symbols[i] for i in sub],
            ops,
            budget_s=left / 2,
            max_length=max_complexity,
            seed=seed,
        )
        out += [e * factor for e in g]
    left = max(deadline - time.monotonic(), 0.125 * budget_s)
    if left >= 1:
        bar("operon on all variables")
        out += operon_backend.search(
            X, y, symbols, ops, budget_s=left, max_length=max_complexity, seed=seed
        )
    return out


def _postprocess(
    raw, X, y, symbols, noise, unit_map, var_dims, target, seed, backend
) -> list[Candidate]:
    """Refit, estimate the noise, snap, simplify, filter by units; candidates with statistics."""
    n = len(y)
    unique = list(dict.fromkeys(raw))
    fitted = [f for f in fit.refit(unique, symbols, X, y, seed=seed) if f is not None]
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

    scored = sorted(((stats(e, f), e, f) for e, f in fitted), key=lambda t: t[0])
    # snap the most promising laws: the best by description length and the most accurate
    by_loss = sorted(scored, key=lambda t: t[2].mse)[:1]
    todo = list(dict.fromkeys([t[1] for t in scored[:2]] + [t[1] for t in by_loss]))
    results = {e: (f, dl) for dl, e, f in scored}
    for expr in todo:
        snapped, mse, dl = postprocess.snap(expr, symbols, X, y, sigma, seed=seed)
        if snapped != expr:
            tidy, plain = fit.refit(
                [postprocess.tidy(snapped), snapped], symbols, X, y, restarts=1, seed=seed
            )
            if tidy is not None and (plain is None or tidy[1].mse <= plain[1].mse * (1 + 1e-6)):
                plain = tidy
            if plain is not None:
                results[plain[0]] = (plain[1], stats(*plain))
    target_dims = unit_map.get(target) if var_dims is not None else None
    dims = dict(zip(symbols, var_dims, strict=True)) if var_dims is not None else None
    ok = {e: dims is None or unitlib.consistent(e, dims, target_dims) for e in results}
    if not any(ok.values()):
        print("discover: no candidate has the target's units; keeping them all", file=sys.stderr)
        ok = dict.fromkeys(ok, True)
    cands = []
    for expr, (fitres, dl) in results.items():
        if not ok[expr]:
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
