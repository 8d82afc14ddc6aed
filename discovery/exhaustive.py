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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from discovery import budget
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
    one: bool = False,
) -> list[Item]:
    """All distinct trees with at most ``max_complexity`` nodes and ``max_consts`` constants.

    ``probe`` (shape ``(m, n_vars)``) are rows used to merge numerically equal
    constant-free trees; ``var_dims`` switches on the dimensional pruning. With ``one``
    the exact number 1 is a leaf too, so that constant-free trees hold the shifted
    arguments physics is full of (``1 + z``, ``1 - x**2``, ``log(1 + x)``). Stops early
    (returning what it has) when :func:`discovery.budget.now` passes ``deadline``.
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
    if one:
        add(Item(("lit", 1.0), 1, 0, np.ones(len(probe)), DIMENSIONLESS if units else None))

    charged = 0  # trees charged to the work clock
    for size in range(2, max_complexity + 1):
        by_size.setdefault(size, [])
        if budget.past(deadline, "tree", len(items) - charged):
            break
        charged = len(items)
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
    budget.charge("tree", len(items) - charged)
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
    weights: np.ndarray | None = None,
) -> ExhaustiveResult:
    """Enumerate and fit every distinct tree up to ``max_complexity`` nodes (scale not counted).

    ``X`` has shape ``(n, d)`` and ``y`` ``(n,)``; ``weights`` ``(n,)`` multiply the
    residuals (``1/sigma``, :func:`discovery.fit.noise_weights`). Constants are fitted on at most
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
        weights=None if weights is None else weights[rows],
    )
    return ExhaustiveResult(
        nodes=nodes,
        params=[f.params for f in fits],
        mse=np.array([f.mse for f in fits]),
        jtj=[f.jtj for f in fits],
        n_enumerated=len(items),
        n_fitted=len(nodes),
    )


def _lines(
    H: np.ndarray, t: np.ndarray, w: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Least-squares lines ``t = a + b * h`` for every row ``h`` of ``H`` ``(m, n)``:
    ``(a, b, mse)``, each ``(m,)``; ``mse`` is ``inf`` for non-finite or constant rows.
    With row weights ``w`` ``(n,)`` the residuals are multiplied by ``w``."""
    q = np.ones(len(t)) if w is None else w * w / np.mean(w * w)  # weights of the squares
    with np.errstate(all="ignore"):
        mean = H @ q / len(t)
        hc = H - mean[:, None]
        var = (hc * hc) @ q / len(t)
        usable = np.isfinite(var) & (var > 1e-300)
        tc = t - np.mean(q * t)
        b = np.where(usable, hc @ (q * tc) / len(t) / np.where(usable, var, 1.0), 0.0)
        total = np.mean(q * tc * tc)
        mse = np.maximum(total - b * b * var, 0.0)
        # near-exact lines: the difference above cancels; their residuals, computed anew
        exact = np.flatnonzero(usable & (mse < 1e-8 * total))[:64]
        mse[exact] = ((tc[None, :] - b[exact, None] * hc[exact]) ** 2) @ q / len(t)
        a = np.mean(q * t) - b * mean
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
    weights: Sequence[np.ndarray | None] | None = None,
    one: bool = True,
    scan_rows: int = 128,
) -> list[list[tuple[P.Node, float, float, float, float]]]:
    """Best affine laws ``t = a + b * h(k X)`` over every constant-free tree ``h``.

    ``h`` ranges over the distinct trees of at most ``max_complexity`` nodes without
    constants (but with the number 1 as a leaf when ``one``; one of each group of trees that
    are affine maps of each other) and ``k`` over ``scales`` (a grid for the one constant
    inside ``h``; the refit polishes it), evaluated on ``scan_rows`` rows of ``X``
    ``(n, d)`` spread evenly; ``a`` and ``b`` are the closed-form least-squares line for
    each target ``t`` ``(n,)``, so thousands of trees cost one vectorised regression
    instead of nonlinear fits. Returns, per target, the ``keep`` best
    ``(node, k, a, b, mse)``, the line and its mean squared error again on all rows
    (residuals times ``weights[i]`` ``(n,)`` for target ``i`` where given). Past ``deadline`` the
    enumeration stops growing the trees, but trees of up to 3 nodes are always tried.
    """
    ks = np.asarray(scales, float)
    rows = _scan_rows(len(X), scan_rows)
    trees, H = _constant_free_trees(X[rows], operators, max_complexity, ks, deadline, one)
    if not trees:
        return [[] for _ in targets]
    out = []
    for i, t in enumerate(targets):
        w = None if weights is None else weights[i]
        _, _, mse = _lines(H, t[rows], None if w is None else w[rows])
        found = []
        for j in np.argsort(mse)[: 2 * keep]:  # the line again on all rows
            if not np.isfinite(mse[j]):
                continue
            node, k = trees[j // len(ks)].node, float(ks[j % len(ks)])
            with np.errstate(all="ignore"):
                h = evaluate(node, X * k)
            a, b, m = (float(v[0]) for v in _lines(h[None, :], t, w))
            if np.isfinite(m):
                found.append((node, k, a, b, m))
        out.append(sorted(found, key=lambda f: f[4])[:keep])
    return out


def _scan_rows(n: int, most: int) -> np.ndarray:
    """Indices of at most ``most`` rows spread evenly over ``n``."""
    return np.unique(np.linspace(0, n - 1, min(most, n)).astype(int))


def _constant_free_trees(
    X: np.ndarray,
    operators: Sequence[str],
    max_complexity: int,
    scales: np.ndarray,
    deadline: float | None,
    one: bool,
) -> tuple[list[Item], np.ndarray]:
    """The affinely distinct constant-free trees of :func:`affine_search` and their values
    ``H`` of shape ``(len(trees) * len(scales), n)`` on the scaled rows ``k X``."""
    n = len(X)
    probe = (scales[:, None, None] * X[None]).reshape(-1, X.shape[1])
    small = enumerate_trees(
        X.shape[1], operators, min(max_complexity, 3), probe, max_consts=0, one=one
    )
    items = small
    if max_complexity > 3:
        items = enumerate_trees(
            X.shape[1], operators, max_complexity, probe, max_consts=0, deadline=deadline, one=one
        )
        items = items if len(items) > len(small) else small
    trees = _affinely_distinct(
        [it for it in items if it.node[0] != "c" and np.all(np.isfinite(it.fp))]
    )
    if not trees:
        return [], np.zeros((0, n))
    return trees, np.stack([it.fp for it in trees]).reshape(len(trees) * len(scales), n)


def affine_pair_search(
    X: np.ndarray,
    targets: Sequence[np.ndarray],
    operators: Sequence[str],
    max_complexity: int,
    *,
    lead: int = 4,
    keep: int = 2,
    deadline: float | None = None,
    weights: Sequence[np.ndarray | None] | None = None,
    scan_rows: int = 128,
) -> list[list[tuple[P.Node, P.Node, np.ndarray, float]]]:
    """Best laws ``t = a + b h1(X) + c h2(X)``: a leading term and a correction.

    ``h1`` ranges over the ``lead`` best trees of :func:`affine_search` (same trees, the
    number 1 a leaf) and every tree of at most two nodes, ``h2`` over all of them: for
    each ``h1`` the target and every tree are projected orthogonally to ``(1, h1)`` and
    the correction is the best line through the origin of what is left, all trees at once.
    ``X`` ``(n, d)``, targets and ``weights[i]`` (residual weights of target ``i``, or
    None) ``(n,)``. Returns, per target, the ``keep`` best ``(h1, h2, (a, b, c), mse)``
    by weighted mean squared error (on all rows; the pairs are chosen on ``scan_rows``
    evenly spread rows).
    """
    rows = _scan_rows(len(X), scan_rows)
    trees, H = _constant_free_trees(X[rows], operators, max_complexity, np.ones(1), deadline, True)
    moderate = np.max(np.abs(H), axis=1, initial=0.0) < 1e12  # no exp(exp(x)) corrections
    trees, H = [t for t, m in zip(trees, moderate, strict=True) if m], H[moderate]
    if len(trees) < 2:
        return [[] for _ in targets]
    n = len(rows)
    out = []
    for i, t_all in enumerate(targets):
        t = t_all[rows]
        w = None if weights is None or weights[i] is None else weights[i][rows]
        q = np.ones(n) if w is None else w * w / np.mean(w * w)
        _, _, mse1 = _lines(H, t, w)
        with np.errstate(all="ignore"):
            size = (H * H) @ q / n  # a tree in the span of (1, h1) is no correction
            e0 = np.ones(n) / np.sqrt(np.mean(q))
            c0 = H @ (q * e0) / n
        found = []
        small = [k for k, tree in enumerate(trees) if P.program_length(tree.node) <= 3]
        for lead_row in dict.fromkeys([*np.argsort(mse1)[:lead].tolist(), *small]):
            if not np.isfinite(mse1[lead_row]):
                continue
            basis = _weighted_basis([np.ones(n), H[lead_row]], q)
            if len(basis) < 2:
                continue
            t_res = t - sum(np.mean(q * t * e) * e for e in basis)
            with np.errstate(all="ignore"):  # |H - projection|^2 and <H, t_res>, per tree
                c1 = H @ (q * basis[1]) / n
                norm = size - c0 * c0 - c1 * c1
                usable = np.isfinite(norm) & (norm > 1e-10 * size)
                dot = H @ (q * t_res) / n
                c = np.where(usable, dot / np.where(usable, norm, 1.0), 0.0)
                mse = np.where(usable, np.mean(q * t_res * t_res) - c * dot, np.inf)
            mse = np.where(np.isfinite(mse), mse, np.inf)
            j = int(np.argmin(mse))
            if np.isfinite(mse[j]):
                found.append((float(mse[j]), trees[lead_row].node, trees[j].node))
        out.append([])
        for _, h1, h2 in sorted(found, key=lambda f: f[0])[:keep]:  # on all rows
            qa = np.ones(len(X)) if weights is None or weights[i] is None else weights[i] ** 2
            with np.errstate(all="ignore"):
                A = np.stack([np.ones(len(X)), evaluate(h1, X), evaluate(h2, X)], axis=1)
            if not np.all(np.isfinite(A)):  # finite on the scanned rows only
                continue
            try:
                coef = np.linalg.lstsq(A * np.sqrt(qa)[:, None], t_all * np.sqrt(qa), rcond=None)[0]
            except np.linalg.LinAlgError:
                continue
            r = t_all - A @ coef
            if np.all(np.isfinite(r)):
                out[-1].append((h1, h2, coef, float(np.mean(qa * r * r) / np.mean(qa))))
    return out


def evaluate(node: P.Node, X: np.ndarray) -> np.ndarray:
    """Values ``(n,)`` of a constant-free tree (variables and literals) on the rows ``X``."""
    head = node[0]
    if head == "x":
        return X[:, node[1]].astype(float)
    if head == "lit":
        return np.full(len(X), float(node[1]))
    if head in _NUMPY_BINARY:
        return _NUMPY_BINARY[head](evaluate(node[1], X), evaluate(node[2], X))
    return _NUMPY_UNARY[head](evaluate(node[1], X))


def _weighted_basis(columns: Sequence[np.ndarray], q: np.ndarray) -> list[np.ndarray]:
    """Gram-Schmidt of ``columns`` (each ``(n,)``) in the inner product ``mean(q u v)``."""
    basis: list[np.ndarray] = []
    for v in columns:
        for e in basis:
            v = v - np.mean(q * v * e) * e
        norm = float(np.sqrt(np.mean(q * v * v)))
        if norm > 1e-12:
            basis.append(v / norm)
    return basis


def _affinely_distinct(items: list[Item]) -> list[Item]:
    """The first (smallest) of each group of trees that are affine maps of one another
    (``h``, ``1 + h``, ``-h`` fit the same lines), by their standardised probe values."""
    out, seen = [], set()
    for it in items:
        with np.errstate(all="ignore"):
            z = it.fp - it.fp.mean()
            z = z / (np.sqrt(np.mean(z * z)) + 1e-300)
            nonzero = z[np.abs(z) > 1e-6]
            key = np.round(z * (np.sign(nonzero[0]) if nonzero.size else 1.0), 8).tobytes()
        if key not in seen:
            seen.add(key)
            out.append(it)
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
