"""Exhaustive search: every distinct expression up to a complexity, fitted in batch, ranked by MDL.

In the spirit of ESR (Bartlett et al. 2211.11461): trees over the variables, a free
constant ``c`` and an operator basis are enumerated by increasing node count. Duplicates
are dropped before any fit: sums and products are built in one canonical order, subtrees
without a variable collapse to ``c``, constants absorbed by a neighbouring constant
(``(f + c) + c``) and inverse pairs (``exp(log(f))``) are skipped, and constant-free trees
that agree numerically on probe rows are merged. With units, subtrees that add unlike
quantities or feed a dimensional argument to a transcendental function are dropped too.
Every survivor ``g`` is then fitted as ``s * g`` (the scale ``s`` projected out in closed
form) by :func:`discovery.fit.fit_nodes`, so that below the bound no law, nor any
multiple of one, is missed. :func:`affine_search` covers the laws ``a + b h`` with ``h``
free of constants by one closed-form regression per tree, without nonlinear fits.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from discovery import programs as P
from discovery.units import DIMENSIONLESS, Dims

_NUMPY_BINARY = {
    "add": np.add,
    "sub": np.subtract,
    "mul": np.multiply,
    "div": np.divide,
    "pow": np.power,
}
_NUMPY_UNARY = {
    "neg": np.negative,
    "exp": lambda a: np.exp(np.minimum(a, 700.0)),
    "log": np.log,
    "sqrt": np.sqrt,
    "square": np.square,
    "cube": lambda a: a**3,
    "inv": lambda a: 1.0 / a,
    "sin": np.sin,
    "cos": np.cos,
    "tan": np.tan,
    "asin": np.arcsin,
    "acos": np.arccos,
    "atan": np.arctan,
    "sinh": np.sinh,
    "cosh": np.cosh,
    "tanh": np.tanh,
    "abs": np.abs,
}
_INVERSE = {("exp", "log"), ("log", "exp"), ("sqrt", "square"), ("square", "sqrt")}
_ABSORB = {"add": "add", "sub": "add", "mul": "mul", "div": "mul"}


@dataclass
class Item:
    """One enumerated tree: node, size, number of constants, probe values, dimensions."""

    node: P.Node
    size: int
    consts: int
    fp: np.ndarray | None  # probe values, only for constant-free trees
    dims: Dims | None
    ident: int = field(default=0)


def _combine_dims(op: str, a: Dims | None, b: Dims | None, units: bool) -> tuple[bool, Dims | None]:
    """(allowed, dims) of ``op(a, b)``; without units everything is allowed."""
    if not units:
        return True, None
    if op in ("add", "sub"):
        return a == b, a
    if op == "mul":
        return True, tuple(x + y for x, y in zip(a, b, strict=True))
    if op == "div":
        return True, tuple(x - y for x, y in zip(a, b, strict=True))
    return a == DIMENSIONLESS and b == DIMENSIONLESS, DIMENSIONLESS  # pow


def _unary_dims(op: str, a: Dims | None, units: bool) -> tuple[bool, Dims | None]:
    if not units:
        return True, None
    power = {"square": 2, "cube": 3, "inv": -1, "neg": 1, "abs": 1}.get(op)
    if power is not None:
        return True, tuple(power * x for x in a)
    if op == "sqrt":
        return True, tuple(x / 2 for x in a)
    return a == DIMENSIONLESS, DIMENSIONLESS


def _root_has_const(node: P.Node, ops: set) -> bool:
    return node[0] in ops and any(child[0] == "c" for child in node[1:])


def enumerate_trees(
    n_vars: int,
    operators: Sequence[str],
    max_complexity: int,
    probe: np.ndarray,
    *,
    max_consts: int = 2,
    var_dims: Sequence[Dims] | None = None,
    deadline: float | None = None,
) -> list[Item]:
    """All distinct trees with at most ``max_complexity`` nodes and ``max_consts`` constants.

    ``probe`` (shape ``(m, n_vars)``) are rows used to merge numerically equal
    constant-free trees; ``var_dims`` switches on the dimensional pruning. Stops early
    (returning what it has) when ``time.monotonic()`` passes ``deadline``.
    """
    units = var_dims is not None
    binary = [o for o in operators if o in _NUMPY_BINARY]
    unary = [o for o in operators if o in _NUMPY_UNARY]
    by_size: dict[int, list[Item]] = {1: []}
    seen: set[bytes] = set()
    items: list[Item] = []

    def add(item: Item) -> None:
        if item.fp is not None:
            with np.errstate(all="ignore"):
                finite = np.isfinite(item.fp)
                if not finite.any():
                    return
                key = np.where(finite, np.round(item.fp, 9), np.inf)
                key = np.round(key / (np.max(np.abs(key[finite])) + 1e-300), 10).tobytes()
            unit_key = str(item.dims).encode() if units else b""
            if key + unit_key in seen:
                return
            seen.add(key + unit_key)
        item.ident = len(items)
        items.append(item)
        by_size.setdefault(item.size, []).append(item)

    for k in range(n_vars):
        add(Item(("x", k), 1, 0, probe[:, k].astype(float), var_dims[k] if units else None))
    add(Item(("c",), 1, 1, None, DIMENSIONLESS if units else None))

    for size in range(2, max_complexity + 1):
        by_size.setdefault(size, [])
        if deadline is not None and time.monotonic() > deadline:
            break
        for op in unary:
            for t in by_size[size - 1]:
                if t.node[0] == "c" or (op, t.node[0]) in _INVERSE:
                    continue
                ok, dims = _unary_dims(op, t.dims, units)
                if not ok:
                    continue
                with np.errstate(all="ignore"):
                    fp = None if t.fp is None else _NUMPY_UNARY[op](t.fp)
                add(Item((op, t.node), size, t.consts, fp, dims))
        for op in binary:
            commutative = op in ("add", "mul")
            for left_size in range(1, size - 1):
                right_size = size - 1 - left_size
                if commutative and left_size > right_size:
                    continue
                for a in by_size[left_size]:
                    for b in by_size[right_size]:
                        if commutative and left_size == right_size and a.ident > b.ident:
                            continue
                        if a.consts + b.consts > max_consts:
                            continue
                        if a.node[0] == "c" and b.node[0] == "c":
                            continue
                        if op in ("sub", "div") and a.ident == b.ident:
                            continue
                        if op in _ABSORB and _absorbed(op, a.node, b.node):
                            continue
                        ok, dims = _combine_dims(op, a.dims, b.dims, units)
                        if not ok:
                            continue
                        fp = None
                        if a.fp is not None and b.fp is not None:
                            with np.errstate(all="ignore"):
                                fp = _NUMPY_BINARY[op](a.fp, b.fp)
                        add(Item((op, a.node, b.node), size, a.consts + b.consts, fp, dims))
    return items


def _absorbed(op: str, a: P.Node, b: P.Node) -> bool:
    """Whether a constant child next to a same-kind operation with a constant is redundant."""
    family = {k for k, v in _ABSORB.items() if v == _ABSORB[op]}
    return (a[0] == "c" and _root_has_const(b, family)) or (
        b[0] == "c" and _root_has_const(a, family)
    )


def _scaled(node: P.Node) -> bool:
    """Whether a tree is ``c * g`` or ``g / c``, which the fitted scale makes redundant."""
    return (node[0] == "mul" and _root_has_const(node, {"mul"})) or (
        node[0] == "div" and node[2][0] == "c"
    )


def number_constants(node: P.Node, start: int = 0) -> tuple[P.Node, int]:
    """Number the anonymous constants ``("c",)`` in pre-order; returns (node, next index)."""
    if node[0] == "c":
        return ("c", start), start + 1
    if node[0] in P.LEAVES:
        return node, start
    children = []
    for child in node[1:]:
        child, start = number_constants(child, start)
        children.append(child)
    return (node[0], *children), start


@dataclass(frozen=True)
class ExhaustiveResult:
    """Fitted trees: nodes (constants numbered), params (scale last), mse, J^T J; counts."""

    nodes: list
    params: list
    mse: np.ndarray
    jtj: list
    n_enumerated: int
    n_fitted: int


def search(
    X: np.ndarray,
    y: np.ndarray,
    operators: Sequence[str],
    max_complexity: int,
    *,
    max_consts: int = 2,
    var_dims: Sequence[Dims] | None = None,
    target_dims: Dims | None = None,
    fit_rows: int = 256,
    restarts: int = 3,
    iterations: int = 30,
    seed: int = 0,
    deadline: float | None = None,
) -> ExhaustiveResult:
    """Enumerate and fit every distinct tree up to ``max_complexity`` nodes (scale not counted).

    ``X`` has shape ``(n, d)`` and ``y`` ``(n,)``. Constants are fitted on at most
    ``fit_rows`` rows (a fixed random subset); refit the winners on all rows afterwards.
    Past ``deadline`` the enumeration stops at the current size and unfitted trees get
    ``mse = inf``.
    """
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(y), size=min(fit_rows, len(y)), replace=False)
    probe = X[rng.choice(len(y), size=min(24, len(y)), replace=False)]
    items = enumerate_trees(
        X.shape[1],
        operators,
        max_complexity,
        probe,
        max_consts=max_consts,
        var_dims=var_dims,
        deadline=deadline,
    )
    chosen = [
        it
        for it in items
        if it.node[0] != "c"
        and not _scaled(it.node)
        and (target_dims is None or var_dims is None or it.dims == target_dims)
    ]
    nodes, shapes = [], set()
    for it in chosen:  # trees proportional to one another are one candidate once scaled
        if it.fp is not None:
            with np.errstate(all="ignore"):
                finite = it.fp[np.isfinite(it.fp) & (it.fp != 0)]
                key = np.round(it.fp / (finite[0] if finite.size else 1.0), 9).tobytes()
            if key in shapes:
                continue
            shapes.add(key)
        node = it.node
        if node[0] == "div" and node[1][0] == "c":  # c / g is s / g: the scale fits c
            node = ("div", ("lit", 1.0), node[2])
        nodes.append(number_constants(node)[0])
    from discovery.fit import fit_nodes

    fits = fit_nodes(
        nodes,
        X[rows],
        y[rows],
        operators,
        scale=True,
        restarts=restarts,
        iterations=iterations,
        seed=seed,
        deadline=deadline,
    )
    return ExhaustiveResult(
        nodes=nodes,
        params=[f.params for f in fits],
        mse=np.array([f.mse for f in fits]),
        jtj=[f.jtj for f in fits],
        n_enumerated=len(items),
        n_fitted=len(nodes),
    )


def _lines(H: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Least-squares lines ``t = a + b * h`` for every row ``h`` of ``H`` ``(m, n)``:
    ``(a, b, mse)``, each ``(m,)``; ``mse`` is ``inf`` for non-finite or constant rows."""
    with np.errstate(all="ignore"):
        mean = H.mean(axis=1)
        hc = H - mean[:, None]
        var = np.mean(hc * hc, axis=1)
        usable = np.isfinite(var) & (var > 1e-300)
        tc = t - t.mean()
        b = np.where(usable, hc @ tc / len(t) / np.where(usable, var, 1.0), 0.0)
        mse = np.maximum(np.mean(tc * tc) - b * b * var, 0.0)
        a = t.mean() - b * mean
    return a, b, np.where(usable & np.isfinite(mse), mse, np.inf)


def affine_search(
    X: np.ndarray,
    targets: Sequence[np.ndarray],
    operators: Sequence[str],
    max_complexity: int,
    *,
    scales: Sequence[float] = (1.0,),
    keep: int = 3,
    deadline: float | None = None,
) -> list[list[tuple[P.Node, float, float, float, float]]]:
    """Best affine laws ``t = a + b * h(k X)`` over every constant-free tree ``h``.

    ``h`` ranges over the distinct trees of at most ``max_complexity`` nodes without
    constants and ``k`` over ``scales`` (a grid for the one constant inside ``h``; the
    refit polishes it), evaluated on all rows of ``X`` ``(n, d)``; ``a`` and ``b`` are the
    closed-form least-squares line for each target ``t`` ``(n,)``, so thousands of trees
    cost one vectorised regression instead of nonlinear fits. Returns, per target, the
    ``keep`` best ``(node, k, a, b, mse)`` by mean squared error. Past ``deadline`` the
    enumeration stops growing the trees, but trees of up to 3 nodes are always tried.
    """
    n, ks = len(X), np.asarray(scales, float)
    probe = (ks[:, None, None] * X[None]).reshape(-1, X.shape[1])
    small = enumerate_trees(X.shape[1], operators, min(max_complexity, 3), probe, max_consts=0)
    items = small
    if max_complexity > 3:
        items = enumerate_trees(
            X.shape[1], operators, max_complexity, probe, max_consts=0, deadline=deadline
        )
        items = items if len(items) > len(small) else small
    trees = [it for it in items if it.node[0] != "c" and np.all(np.isfinite(it.fp))]
    if not trees:
        return [[] for _ in targets]
    H = np.stack([it.fp for it in trees]).reshape(len(trees) * len(ks), n)
    out = []
    for t in targets:
        a, b, mse = _lines(H, t)
        best = np.argsort(mse)[:keep]
        out.append(
            [
                (trees[i // len(ks)].node, float(ks[i % len(ks)]), float(a[i]), float(b[i]), m)
                for i, m in zip(best, mse[best].tolist(), strict=True)
                if np.isfinite(m)
            ]
        )
    return out


def warm_up(X: np.ndarray, y: np.ndarray, operators: Sequence[str], *, fit_rows: int = 256) -> None:
    """Compile the fitting kernel :func:`search` will use on ``X`` ``(n, d)``, ``y`` ``(n,)``.

    A one-off cost per process, operator basis and row count (seconds on a CPU); it runs
    one batch without iterations, so that a search started afterwards spends its time
    budget on fitting.
    """
    from discovery.fit import fit_nodes

    rows = min(fit_rows, len(y))
    tree = ("mul", ("x", 0), ("add", ("c", 0), ("c", 1)))  # two constants, as in search
    fit_nodes([tree], X[:rows], y[:rows], operators, scale=True, iterations=0)


def dims_of_variables(names: Sequence[str], unit_map: Mapping[str, Dims]) -> list[Dims] | None:
    """Dimension vectors of the variables, or ``None`` unless every variable has units."""
    if not unit_map or any(n not in unit_map for n in names):
        return None
    return [unit_map[n] for n in names]
