"""``discover``: the one entry point of the symbolic search, and its pipeline.

The ``auto`` pipeline spends the budget where laws are found, not fits:

1. power-law reduction (:mod:`discovery.reduce`): split ``y = prod x_i**a_i * g(x_S)``
   so the search sees only the variables ``S`` of the unknown factor ``g``, or only one
   monomial input ``u = prod x_j**(+-1)`` of which ``g`` is a function;
2. the affine stage: ``T(g) = a + b h`` solved in closed form for every small
   constant-free tree ``h`` and the transforms ``T`` of :data:`_TRANSFORMS` (with one
   input, also ``h(k u)`` on a grid of ``k`` and ``g u**p``; the number 1 is a leaf of
   ``h``), and a leading term plus a correction ``T(g) = a + b h1 + c h2``, on the
   reduced problem and the full one; then shifted and broken
   power laws of that input when there is one (:mod:`discovery.families`:
   ``T(g) = a + b |u + c|**p``, ``g = A u**p exp(B u**q)``,
   ``g = A (u + c)**q (1 + B (u + c)**p)**r``, ``g v**p = a + b h1(v) + c h2(v)``
   with ``v = sqrt(1 +- u)`` and ``g = L(u) P(u)**p`` with ``P`` a polynomial and ``L``
   a power of ``u`` or ``log(1 + a u)/(a u)``), or, with more inputs, log-linear laws with a power
   ``u**(e a)`` whose exponent is an input ``a`` and power laws times powers of two
   shifted monomials ``(1 + k m)**a``;
3. exhaustive enumeration (:mod:`discovery.exhaustive`) of every distinct small
   expression, on the reduced problem and on the full one, complete below its bound;
4. Operon (:mod:`discovery.operon_backend`) with the remaining time, for larger laws;
5. shared post-processing of every candidate from any backend: merging of products of
   fitted constants, refit of the constants on all rows (Levenberg-Marquardt on the law
   compiled to NumPy, :func:`fit.refit`; chi-square when ``sigma`` is given), pruning of
   the constants the data do not determine, snapping of constants to exact numbers
   while the description length drops, simplification, and the dimensional-analysis
   filter when units are given; the Pareto front then offers the four selection criteria.

Every stage runs against the deadlines of ``budget_s`` (:class:`discovery.budget.Budget`):
the search stages share ``SEARCH_SHARE`` of it, the post-processing the rest; the front
records the seconds spent per stage and what the budget cut short.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping, Sequence
from fractions import Fraction

import numpy as np
import sympy as sp

from discovery import budget, exhaustive, families, fit, postprocess, programs
from discovery import units as unitlib
from discovery.budget import CLOCKS, Budget
from discovery.expressions import check_names, complexity, make_symbols
from discovery.front import Candidate, ParetoFront
from discovery.operators import parse_operators
from discovery.reduce import power_law_reduction

BACKENDS = ("auto", "operon", "pysr", "exhaustive")
#: Laws snapped, by description length, before the final ranking (plus the most accurate).
SNAP_BEST = 4
#: Seconds the enumeration of the leading-term-plus-correction search gets at least.
PAIR_MIN_S = 2.0


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


def _validate_clock(clock, backend) -> None:
    if clock not in CLOCKS:
        raise ValueError(f"clock={clock!r}; allowed: {', '.join(CLOCKS)}")
    if clock == "work" and backend == "pysr":
        raise ValueError(
            "clock='work' with backend='pysr'; allowed: clock='wall' (PySR's budget is its "
            "own time limit), or another backend"
        )


def validate_sigma(sigma, noise, n: int) -> np.ndarray | None:
    """Per-row standard deviations ``(n,)`` from ``sigma`` (or the older scalar ``noise``).

    Raises ``ValueError`` naming the parameter, the value and what is allowed: a positive
    finite number, or an array of ``n`` positive finite numbers.
    """
    if sigma is not None and noise is not None:
        raise ValueError(f"sigma={sigma!r} and noise={noise!r}; allowed: one of them, not both")
    name, value = ("sigma", sigma) if sigma is not None else ("noise", noise)
    if value is None:
        return None
    allowed = f"allowed: a positive finite number, or an array of {n} positive finite numbers"
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{name}={value!r} is not numeric; {allowed}") from None
    if arr.ndim == 0:
        if not (math.isfinite(float(arr)) and float(arr) > 0):
            raise ValueError(f"{name}={value!r}; {allowed}")
        return np.full(n, float(arr))
    if arr.shape != (n,):
        raise ValueError(f"{name} has shape {arr.shape}; {allowed} (one per row of y)")
    bad = ~np.isfinite(arr) | (arr <= 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{name} has {int(bad.sum())} non-positive or non-finite values "
            f"(first: {name}[{i}]={arr[i]!r}); {allowed}"
        )
    return arr


def _exhaustive_bound(n_vars: int) -> int:
    """Enumeration bound (nodes, scale not counted) that a search completes on 2 cores
    within the share of a one-minute budget (a few thousand trees)."""
    return {1: 5, 2: 5}.get(n_vars, 4)


def _exhaustive_candidates(
    X, y, symbols, operators, bound, var_dims, target_dims, seed, deadline, clock, w, keep=15
) -> tuple[list[sp.Expr], float]:
    """Best trees of an exhaustive search (per size and overall) as sympy with float constants.

    Also returns the lowest mean squared (weighted by ``w`` ``(n,)`` or None) error relative
    to ``mean(y**2)``. A search that reached ``deadline`` is recorded as cut short on ``clock``.
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
        weights=w,
    )
    if budget.past(deadline):
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
    ww = 1.0 if w is None else w * w
    best = float(np.min(res.mse, initial=np.inf)) / max(float(np.mean(ww * y**2)), 1e-300)
    return out, best


#: Transformed targets ``T(z)`` for small exhaustive searches, the law ``z = T^-1(e)``
#: (``sign`` is that of ``z``) and ``|dT/dz|`` (which carries the noise of ``z`` to ``T``):
#: the law is often simpler on one of them, as in ``z = 1/sqrt(1 - u**2)``, which is
#: ``1/z**2 = 1 - u**2``.
_TRANSFORMS = {
    "inverse": (lambda z: 1 / z, lambda e, sign: 1 / e, lambda z: z**-2),
    "square": (lambda z: z**2, lambda e, sign: sign * sp.sqrt(e), lambda z: 2 * np.abs(z)),
    "inverse square": (
        lambda z: 1 / z**2,
        lambda e, sign: sign / sp.sqrt(e),
        lambda z: 2 * np.abs(z) ** -3,
    ),
    "log": (lambda z: np.log(np.abs(z)), lambda e, sign: sign * sp.exp(e), lambda z: 1 / np.abs(z)),
}


def _affine_candidates(Z, z, syms, ops, deadline, weights=None) -> list[sp.Expr]:
    """Laws ``z = T^-1(a + b h(Z))`` for constant-free trees ``h`` and each transform ``T``.

    :func:`exhaustive.affine_search` fits the line in closed form on the identity and on
    each target of :data:`_TRANSFORMS` (those needing one sign only when ``z`` has one);
    ``Z`` has shape ``(n, m)``, ``z`` ``(n,)``; ``weights`` ``(n,)`` (``1/sigma`` of ``z``)
    weight the residuals, carried to each transformed target by ``|dT/dz|``. With one input
    ``u``, small trees of a scaled input ``h(k u)`` are tried too, on the targets
    ``z u**p`` for ``|p| <= 2``: ``u/(exp(k u) - 1)`` is ``1/(z/u) = -1 + exp(k u)``.
    Last, a leading term and a correction ``T(z) = a + b h1 + c h2``
    (:func:`exhaustive.affine_pair_search`), as in ``log z = log(x) (0.6 + 0.05 w)``.
    """
    one_sign = bool(np.all(z > 0) or np.all(z < 0))
    sign = 1 if z[0] > 0 else -1
    transforms = {"identity": (lambda v: v, lambda e, s: e, np.ones_like)}
    transforms |= {k: v for k, v in _TRANSFORMS.items() if one_sign or k == "inverse"}
    # (power p, tree size, scales k, laws kept per target); trees of 3 nodes always run
    runs = [(0, _affine_bound(Z.shape[1]), (1.0,), 3)]
    if Z.shape[1] == 1 and np.all(Z > 0):
        runs += [(p, 3, tuple(np.geomspace(0.01, 100, 61)), 1) for p in (0, -1, 1, -2, 2)]
    out = []
    start, slot = budget.now(), max(deadline - budget.now(), 0) / (len(runs) + 1)
    for r, (power, bound, scales, keep) in enumerate(runs):
        targets = _targets(z, Z, power, transforms, weights)
        results = exhaustive.affine_search(
            Z,
            [t for t, _, _ in targets],
            ops,
            bound,
            scales=scales,
            keep=keep,
            deadline=start + (r + 1) * slot,
            weights=[w for _, _, w in targets],
        )
        for (t, inverse, _), best in zip(targets, results, strict=True):
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
                    out.append(postprocess.tidy(law) if budget.now() < deadline else law)
    targets = _targets(z, Z, 0, transforms, weights)
    pairs = exhaustive.affine_pair_search(
        Z,
        [t for t, _, _ in targets],
        ops,
        _affine_bound(Z.shape[1]),
        deadline=max(deadline, budget.now() + PAIR_MIN_S),
        weights=[w for _, _, w in targets],
    )
    for (_, inverse, _), best in zip(targets, pairs, strict=True):
        for h1, h2, coef, _ in best:
            a, b, c = (sp.Float(v, 15) for v in coef)
            terms = [programs.to_sympy(h, syms, []) for h in (h1, h2)]
            out.append(inverse(a + b * terms[0] + c * terms[1], sign))
    return out


def _targets(z, Z, power, transforms, weights) -> list[tuple[np.ndarray, object, object]]:
    """``(T(z u**power), T^-1, weights of T)`` for each transform ``T`` of ``transforms``
    (``u = Z[:, 0]``; weights None when ``weights`` is), the non-finite targets left out."""
    with np.errstate(all="ignore"):
        zp = z * Z[:, 0] ** power if power else z
        wp = None if weights is None else weights / Z[:, 0] ** power
        targets = [
            (forward(zp), inverse, None if wp is None else wp / slope(zp))
            for forward, inverse, slope in transforms.values()
        ]
    return [t for t in targets if np.all(np.isfinite(t[0]))]


def _affine_bound(n_vars: int) -> int:
    """Size of the constant-free trees of the affine stage (about a second of enumeration)."""
    return {1: 6, 2: 5}.get(n_vars, 4)


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
    sigma: float | Sequence[float] | np.ndarray | None = None,
    progress: bool = False,
    clock: str = "wall",
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
    budget_s : budget in seconds of the whole call on the clock ``clock``
        (:mod:`discovery.budget`): the search stages get ``SEARCH_SHARE`` of it,
        refitting, snapping and selection the rest, and what does not fit is skipped and
        listed in ``ParetoFront.truncated``. Beyond it come only the ``"warm-up"`` stage, one-off
        costs of a process done before the budget starts (importing pyoperon; the JAX
        compilation of the exhaustive kernel, once per operator basis and row count),
        Operon's whole-second time limit, and a post-processing of at least
        ``POST_MIN_SHARE`` of the budget when the search stages ran over theirs.
    clock : what the budget counts (:data:`discovery.budget.CLOCKS`): ``"wall"``, elapsed
        seconds; ``"work"``, the seconds the work done takes on the reference machine
        (:mod:`discovery.budget`; Operon gets a number of evaluations), so that
        the same call returns the same front on any machine and under any load. Not with
        ``backend="pysr"``, whose budget is PySR's own time limit.
    seed : random seed of every backend.
    backend : ``"auto"`` (the whole pipeline), ``"operon"``, ``"pysr"`` (falls back to
        ``"auto"`` with one line on stderr when PySR/Julia cannot start) or ``"exhaustive"``.
    sigma : the standard deviation of ``y`` (units of ``y``), one per row ``(n_rows,)`` or
        one for all; the likelihood becomes the chi-square ``sum((f(X) - y)**2 / sigma**2)``
        in the fits (Operon's excepted), refits, uncertainties, description lengths and
        selection, and ``loss`` is then ``chi2 / n_rows`` times ``mean(sigma**-2)**-1``.
        Without it the noise is estimated from the most accurate law.
    noise : the older name of a scalar ``sigma`` (give one of them).

    The front records the seconds spent per stage (``timings``) and what was cut short.
    """
    X, y, names = _validate(X, y, variables, max_complexity, budget_s, backend, target)
    _validate_clock(clock, backend)
    ops = parse_operators(operators)
    unit_map = unitlib.parse_unit_map(units, [*names, target])
    noise_model = fit.Noise.of(validate_sigma(sigma, noise, len(y)))
    w = noise_model.weights
    symbols = make_symbols(names, X)
    var_dims = exhaustive.dims_of_variables(names, unit_map)
    target_dims = unit_map.get(target) if var_dims is not None else None
    with budget.clock(clock):
        plan = Budget(budget_s, progress)
        plan.stage("warm-up")  # one-off costs of a process, outside the budget
        if backend in ("auto", "operon", "pysr"):
            import pyoperon.sklearn  # noqa: F401
        if backend in ("auto", "pysr", "exhaustive"):
            exhaustive.warm_up(X, y, [o for o in ops if o in programs.OPCODES])
        plan.begin_budget()
        deadline = plan.search_end

        raw: list[sp.Expr] = [sp.Float(float(np.mean(y)), 15)]  # the constant law, always
        used = backend
        if backend == "pysr":
            from discovery import pysr_backend

            plan.stage("pysr")
            try:
                raw += pysr_backend.search(
                    X,
                    y,
                    symbols,
                    ops,
                    budget_s=max(plan.left(deadline), 1),
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
            plan.stage("exhaustive")
            bound = min(max_complexity, _exhaustive_bound(X.shape[1]) + 1)
            raw += _exhaustive_candidates(
                X, y, symbols, ops, bound, var_dims, target_dims, seed, deadline, plan, w
            )[0]
        if used == "auto":
            raw += _pipeline(
                X, y, symbols, ops, max_complexity, var_dims, target_dims, seed, plan, w
            )
        if used == "operon":
            raw += _operon(X, y, symbols, ops, max_complexity, seed, plan, "operon", deadline)
        cands = _postprocess(
            raw, X, y, symbols, noise_model, unit_map, var_dims, target, used, plan
        )
        plan.stage(None)
        return ParetoFront.build(
            cands,
            symbols,
            target=target,
            units=_unit_strings(units, [*names, target]),
            backend=used,
            seed=seed,
            timings=plan.timings,
            budget_s=float(budget_s),
            truncated=tuple(plan.truncated),
            clock=clock,
        )


def assess(
    expr: sp.Expr | str,
    X: np.ndarray,
    y: np.ndarray,
    variables: Sequence[str],
    sigma: float | Sequence[float] | np.ndarray,
) -> Candidate:
    """A law of one's own (a hand-written form, a law from the literature) on the same
    footing as the search's candidates: its float constants refitted with the chi-square
    likelihood of ``sigma`` (per row ``(n,)`` or one for all, units of ``y``), its
    complexity, loss, chi-square, description length and constants with uncertainties.

    ``expr`` is a sympy expression (or string) in ``variables`` with float starting values
    for the constants; ``X`` ``(n, d)``, ``y`` ``(n,)``. ValueError when it cannot be
    evaluated or fitted.
    """
    X, y, names = _validate(X, y, variables, 3, 1.0, "auto", "y")
    noise = fit.Noise.of(validate_sigma(sigma, None, len(y)))
    symbols = make_symbols(names, X)
    law = sp.sympify(expr, locals=dict(zip(names, symbols, strict=True)))
    refitted = fit.Law.of(law, symbols).refit(X, y, noise.weights)
    if refitted is None:
        raise ValueError(f"expr={str(expr)!r} cannot be evaluated or fitted on these rows")
    fitted, fitres = refitted
    n = len(y)
    values = [float(f) for f in sorted(fitted.atoms(sp.Float), key=sp.default_sort_key)]
    errs = fit.stderr(fitres, n, noise.scale)
    return Candidate(
        expression=fitted,
        complexity=complexity(fitted),
        loss=float(fitres.mse),
        description_length=fit.fitted_description_length(
            fitted, fitres, n, noise.scale, noise.log_norm
        ),
        constants=tuple(zip(values, [float(e) for e in errs[: len(values)]], strict=False)),
        backend="assess",
        chi2=float(n * fitres.mse / noise.scale**2),
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
    """Operon until ``until``: whole seconds, or under the work clock the evaluations that
    fit; skipped (and recorded) under one second."""
    from discovery import operon_backend

    left = clock.left(until)
    if left < 1:
        clock.cut(f"{stage}: skipped, {max(left, 0):.1f} s of the search budget left")
        return []
    clock.stage(stage)
    evaluations = None
    if budget.counts_work():
        evaluations = int(math.floor(left) / budget.COST_S["operon evaluation"])
        budget.charge("operon evaluation", evaluations)
    return operon_backend.search(
        X,
        y,
        symbols,
        ops,
        budget_s=math.floor(left),
        max_length=max_complexity,
        seed=seed,
        max_evaluations=evaluations,
    )


def _pipeline(
    X, y, symbols, ops, max_complexity, var_dims, target_dims, seed, clock, w
) -> list[sp.Expr]:
    """Candidates of the ``auto`` backend (module docstring); ``w`` ``(n,)`` or None weights
    the residuals (``1/sigma`` of each row, :class:`discovery.fit.Noise`)."""
    out: list[sp.Expr] = []
    d = X.shape[1]
    exact = 1e-20  # relative mean squared error of a law reproducing y to round-off
    best = np.inf
    deadline = clock.search_end
    clock.stage("power-law reduction")
    red = power_law_reduction(X, y, weights=w)
    factor = sp.Integer(1)
    reduced = red is not None and bool(red.subset or red.monomial)
    if red is not None:
        factor = sp.Mul(*[symbols[i] ** _exact_or_float(a) for i, a in red.exponents.items()])
        z = y / red.factor(X)
        wz = None if w is None else w * np.abs(red.factor(X))  # sigma of z: sigma / factor
        Z, zsyms = red.inputs(X), red.input_symbols(symbols)
        if not reduced:  # a power law: its constant, and the exact numbers near it
            scale = float(np.sum(z * red.factor(X) ** 2) / np.sum(red.factor(X) ** 2))
            out += [
                c * factor for c in [sp.Float(scale, 15), *postprocess.snap_values(scale, rel=0.02)]
            ]
            best = red.rms**2
        else:
            clock.stage("affine (reduced)")
            share = budget.now() + 0.2 * clock.left(deadline)
            out += [e * factor for e in _affine_candidates(Z, z, zsyms, ops, share, wz)]
            out += [e * factor for e in _families(Z, z, zsyms, ops, wz, deadline, clock)]
            clock.stage("exhaustive (reduced)")
            sub_dims = red.input_dims(var_dims) if var_dims is not None else None
            sub_target = None
            if sub_dims is not None and target_dims is not None:
                fdims = unitlib.expression_dims(factor, dict(zip(symbols, var_dims, strict=True)))
                sub_target = tuple(t - f for t, f in zip(target_dims, fdims, strict=True))
            share = budget.now() + 0.4 * clock.left(deadline)
            bound = _exhaustive_bound(Z.shape[1])
            g, best = _exhaustive_candidates(
                Z, z, zsyms, ops, bound, sub_dims, sub_target, seed, share, clock, wz
            )
            out += [e * factor for e in g]
    if best > exact:  # also when reduced: the reduction may only be close (0.55 vs 0.6)
        clock.stage("affine")
        share = budget.now() + 0.1 * clock.left(deadline)
        out += _affine_candidates(X, y, symbols, ops, share, w)
        out += _families(X, y, symbols, ops, w, deadline, clock)
    if best > exact:
        clock.stage("exhaustive")
        share = budget.now() + (0.3 if reduced else 0.5) * clock.left(deadline)
        g, rel = _exhaustive_candidates(
            X, y, symbols, ops, _exhaustive_bound(d), var_dims, target_dims, seed, share, clock, w
        )
        out += g
        best = min(best, rel)
    if best <= exact:
        return out
    if reduced:
        half = budget.now() + 0.5 * clock.left(deadline)
        g = _operon(Z, z, zsyms, ops, max_complexity, seed, clock, "operon (reduced)", half)
        out += [e * factor for e in g]
    out += _operon(X, y, symbols, ops, max_complexity, seed, clock, "operon", deadline)
    return out


def _families(Z, z, syms, ops, w, deadline, clock) -> list[sp.Expr]:
    """The laws of :mod:`discovery.families`: with one input in ``Z`` ``(n, m)``, shifted,
    cut-off and broken power laws, laws of a square root of the shifted input (trees
    of ``ops``) and powers of a polynomial (transfer functions); with more, powers
    whose exponent is an input and power laws times powers of shifted monomials
    ``(1 + k m)**a`` (half the time each). ``z`` ``(n,)``, ``w`` its residual weights or
    None. Up to 10% of the search time left."""
    clock.stage("families")
    share = budget.now() + 0.1 * clock.left(deadline)
    if Z.shape[1] != 1:
        half = (budget.now() + share) / 2
        out = families.variable_exponent_laws(Z, z, syms, weights=w, deadline=half)
        return out + families.shifted_monomial_laws(Z, z, syms, weights=w, deadline=share)
    u, sym = Z[:, 0], syms[0]
    out = families.shifted_power_laws(u, z, sym, weights=w)
    out += families.cutoff_power_laws(u, z, sym, weights=w)
    out += families.root_shift_laws(u, z, sym, ops, weights=w, deadline=share)
    out += families.polynomial_power_laws(u, z, sym, weights=w, deadline=share)
    return out + families.broken_power_laws(u, z, sym, weights=w, deadline=share)


def _round_off(expr, fitres, symbols, X, y, w):
    """``(expr, fit, fixed)`` with constants that are exact up to round-off written exactly
    (:func:`discovery.postprocess.round_off`), refitted when any changed."""
    exact = postprocess.round_off(expr)
    if exact == expr:
        return expr, fitres, []
    (refitted,) = fit.refit([exact], symbols, X, y, w)
    if refitted is None:
        return expr, fitres, []
    fixed = [postprocess.Fixed(new, old, 0.0, "snapped") for old, new in _replaced(expr, exact)]
    return (*refitted, fixed)


def _replaced(expr: sp.Expr, exact: sp.Expr) -> list[tuple[float, sp.Expr]]:
    """``(fitted value, exact number)`` of the floats of ``expr`` that ``exact`` lacks."""
    kept = {float(f) for f in exact.atoms(sp.Float)}
    out = []
    for f in sorted(expr.atoms(sp.Float), key=sp.default_sort_key):
        if float(f) not in kept:
            frac = Fraction(float(f)).limit_denominator(12)
            out.append((float(f), sp.Rational(frac.numerator, frac.denominator)))
    return out


def _postprocess(
    raw, X, y, symbols, noise, unit_map, var_dims, target, backend, clock
) -> list[Candidate]:
    """Refit, estimate the noise, prune, snap, simplify, filter by units; candidates with
    statistics. ``noise`` is the :class:`discovery.fit.Noise` of the rows.

    Refitting may use 60% of the time left (see ``Budget.post_end``), pruning and snapping
    75% of what remains after it; what does not fit is recorded with ``clock.cut``.
    """
    n = len(y)
    w = noise.weights
    unique = list(dict.fromkeys(postprocess.merge_constants(e) for e in raw))
    clock.stage("refit")
    # the most accurate of each complexity first, simplest first, then the second of each
    # ...: when the budget cuts the refits short, it cuts the worst of each size and the
    # largest laws, never a simple law that a complex overfit merely out-fits
    laws = {e: fit.Law.of(e, symbols) for e in unique}
    prior = {e: laws[e].mse(X, y, w) for e in unique}
    rank: dict[sp.Expr, int] = {}
    for e in sorted(unique, key=prior.__getitem__):
        rank[e] = sum(1 for o in rank if complexity(o) == complexity(e))
    unique.sort(key=lambda e: (rank[e], complexity(e), prior[e]))
    end = clock.post_end()
    refit_end = budget.now() + 0.6 * clock.left(end)
    refitted = []
    for k, expr in enumerate(unique):
        if budget.past(refit_end, "refit"):
            clock.cut(f"refit: {len(unique) - k} of {len(unique)} candidates not refitted")
            break
        refitted.append(laws[expr].refit(X, y, w))
    fitted = [_round_off(e, f, symbols, X, y, w) for e, f in (r for r in refitted if r is not None)]
    if not fitted:
        return []
    best_mse = min(f.mse for _, f, _ in fitted)
    ww = 1.0 if w is None else w * w
    sigma = (
        noise.scale
        if noise.scale is not None
        else math.sqrt(max(best_mse, 1e-16 * float(np.mean(ww * y**2)), 1e-300))
    )
    known = noise.scale
    common = {"weights": w, "known": known, "log_norm": noise.log_norm}

    def stats(expr, fitres):
        return fit.fitted_description_length(expr, fitres, n, sigma, noise.log_norm)

    clock.stage("pruning")
    prune_end = budget.now() + 0.3 * max(clock.left(end), 0)
    pruned = []
    for k, (e, f, fixed) in enumerate(fitted):
        if budget.past(prune_end):
            clock.cut(f"pruning: {len(fitted) - k} of {len(fitted)} laws not checked")
            pruned += fitted[k:]
            break
        e2, f2, more = postprocess.prune(e, f, symbols, X, y, sigma, deadline=prune_end, **common)
        pruned.append((e2, f2, fixed + more))
    clock.stage("snapping")
    scored = sorted(((stats(e, f), e, f) for e, f, _ in pruned), key=lambda t: t[0])
    history = {e: fixed for e, _, fixed in pruned}
    # snap the most promising laws: the best by description length and the most accurate
    # (with noise, several forms fit within it; only snapped can the exact one win)
    by_loss = sorted(scored, key=lambda t: t[2].mse)[:1]
    todo = list(dict.fromkeys([t[1] for t in scored[:SNAP_BEST]] + [t[1] for t in by_loss]))
    results = {e: (f, dl) for dl, e, f in scored}
    snap_end = budget.now() + 0.75 * max(clock.left(end), 0)
    for k, expr in enumerate(todo):
        if budget.past(snap_end):
            clock.cut(f"snapping: {len(todo) - k} of {len(todo)} laws not snapped in the budget")
            break
        snapped, _, _, fixed = postprocess.snap(
            expr, symbols, X, y, sigma, deadline=snap_end, **common
        )
        if snapped != expr:
            tidy, plain = fit.refit([postprocess.tidy(snapped), snapped], symbols, X, y, w)
            budget.charge("refit", 2)
            if tidy is not None and (plain is None or tidy[1].mse <= plain[1].mse * (1 + 1e-6)):
                plain = tidy
            if plain is not None:
                results[plain[0]] = (plain[1], stats(*plain))
                history[plain[0]] = history.get(expr, []) + fixed
        if budget.past(snap_end):
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
        errs = fit.stderr(fitres, n, known)
        values = [float(f) for f in sorted(expr.atoms(sp.Float), key=sp.default_sort_key)]
        cands.append(
            Candidate(
                expression=expr,
                complexity=complexity(expr),
                loss=float(fitres.mse),
                description_length=float(dl),
                constants=tuple(zip(values, [float(e) for e in errs[: len(values)]], strict=False)),
                backend=backend,
                fixed=tuple(
                    (str(f.exact), f.fitted, f.uncertainty, f.how) for f in history.get(expr, [])
                ),
                chi2=None if known is None else float(n * fitres.mse / known**2),
            )
        )
    return cands
