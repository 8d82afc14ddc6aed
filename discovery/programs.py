"""Expressions as register programs, evaluated and fitted in batch with one compiled JAX kernel.

A tree is written as a list of registers in post-order: register ``i`` holds
``op_i(R[a_i], R[b_i])`` or a leaf (variable ``X[:, k]``, parameter ``p[k]`` or literal).
Many programs of one padded length share a single compiled function, ``vmap``-ed over
programs, so fitting ten thousand candidate laws costs one compilation, and the same
code runs on a GPU when one is present. Constants are fitted by Levenberg-Marquardt
with forward-mode Jacobians (``jacfwd``), which stay finite under the ``select`` that
``vmap`` makes of ``lax.switch``.

Trees use a small tuple language shared with :mod:`discovery.exhaustive`:
``("x", k)`` variable, ``("c", k)`` parameter, ``("lit", value)`` exact number,
``(op, child)`` or ``(op, left, right)`` for operators of :data:`UNARY` / :data:`BINARY`.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp
from jax import lax

Node = tuple

LEAVES = ("x", "c", "lit")
BINARY = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
    "pow": lambda a, b: jnp.power(a, b),
}
UNARY = {
    "neg": lambda a: -a,
    "exp": lambda a: jnp.exp(jnp.minimum(a, 700.0)),
    "log": jnp.log,
    "sqrt": jnp.sqrt,
    "square": lambda a: a * a,
    "cube": lambda a: a * a * a,
    "inv": lambda a: 1.0 / a,
    "sin": jnp.sin,
    "cos": jnp.cos,
    "tan": jnp.tan,
    "asin": jnp.arcsin,
    "acos": jnp.arccos,
    "atan": jnp.arctan,
    "sinh": jnp.sinh,
    "cosh": jnp.cosh,
    "tanh": jnp.tanh,
    "abs": jnp.abs,
}
#: Every opcode, in a fixed order: leaves, binary, unary.
OPCODES: tuple[str, ...] = (*LEAVES, *BINARY, *UNARY)

_SYMPY_UNARY = {
    sp.exp: "exp",
    sp.log: "log",
    sp.sin: "sin",
    sp.cos: "cos",
    sp.tan: "tan",
    sp.asin: "asin",
    sp.acos: "acos",
    sp.atan: "atan",
    sp.sinh: "sinh",
    sp.cosh: "cosh",
    sp.tanh: "tanh",
    sp.Abs: "abs",
}
_POW_UNARY = {2: "square", 3: "cube", -1: "inv", sp.Rational(1, 2): "sqrt"}


def to_sympy(node: Node, variables: Sequence[sp.Symbol], params: Sequence) -> sp.Expr:
    """The sympy expression of a tree; ``params`` gives the value or symbol of each ``c``."""
    head = node[0]
    if head == "x":
        return variables[node[1]]
    if head == "c":
        return params[node[1]]
    if head == "lit":
        return sp.nsimplify(node[1])
    args = [to_sympy(n, variables, params) for n in node[1:]]
    if head in BINARY:
        a, b = args
        return {"add": a + b, "sub": a - b, "mul": a * b, "div": a / b, "pow": a**b}[head]
    a = args[0]
    special = {"neg": -a, "square": a**2, "cube": a**3, "inv": 1 / a, "sqrt": sp.sqrt(a)}
    if head in special:
        return special[head]
    return getattr(sp, head)(a)


def from_sympy(
    expr: sp.Expr, variables: Sequence[sp.Symbol], params: Sequence[sp.Symbol] = ()
) -> Node:
    """A tree of a sympy expression whose only symbols are ``variables`` and ``params``.

    Raises ``ValueError`` for functions outside :data:`UNARY`.
    """
    vindex = {s: i for i, s in enumerate(variables)}
    pindex = {s: i for i, s in enumerate(params)}

    def walk(e: sp.Expr) -> Node:
        if e in vindex:
            return ("x", vindex[e])
        if e in pindex:
            return ("c", pindex[e])
        if e.is_Number or e.is_NumberSymbol:
            return ("lit", float(e))
        if isinstance(e, sp.Add | sp.Mul):
            op = "add" if isinstance(e, sp.Add) else "mul"
            args = list(e.args)
            if op == "mul" and args[0] == -1:
                return ("neg", walk(sp.Mul(*args[1:])))
            out = walk(args[0])
            for arg in args[1:]:
                if op == "mul" and arg.is_Pow and arg.exp == -1:
                    out = ("div", out, walk(arg.base))
                else:
                    out = (op, out, walk(arg))
            return out
        if e.is_Pow:
            if e.exp in _POW_UNARY:
                return (_POW_UNARY[e.exp], walk(e.base))
            if e.exp == sp.Rational(-1, 2):
                return ("inv", ("sqrt", walk(e.base)))
            return ("pow", walk(e.base), walk(e.exp))
        name = _SYMPY_UNARY.get(e.func)
        if name is None:
            raise ValueError(f"expression {e} uses {e.func}, outside the program operators")
        return (name, walk(e.args[0]))

    return walk(expr)


def n_params(node: Node) -> int:
    """Number of distinct parameters ``("c", k)`` in a tree (max index + 1)."""
    if node[0] == "c":
        return node[1] + 1
    if node[0] in LEAVES:
        return 0
    return max(n_params(n) for n in node[1:])


class Programs(NamedTuple):
    """A batch of register programs of one padded length ``L`` (arrays of shape ``(B, L)``)."""

    op: np.ndarray
    a: np.ndarray
    b: np.ndarray
    arg: np.ndarray
    lit: np.ndarray


def compile_programs(nodes: Sequence[Node], length: int) -> Programs:
    """Write trees as register programs padded to ``length`` (the result is the last register)."""
    B = len(nodes)
    op = np.zeros((B, length), np.int32)
    a = np.zeros((B, length), np.int32)
    b = np.zeros((B, length), np.int32)
    arg = np.zeros((B, length), np.int32)
    lit = np.zeros((B, length), np.float64)
    add = OPCODES.index("add")
    for row, node in enumerate(nodes):
        regs: list[tuple] = [(OPCODES.index("lit"), 0, 0, 0, 0.0)]  # R[0] = 0, for padding

        def emit(n: Node, regs=regs) -> int:
            if n[0] in ("x", "c"):
                regs.append((OPCODES.index(n[0]), 0, 0, n[1], 0.0))
            elif n[0] == "lit":
                regs.append((OPCODES.index("lit"), 0, 0, 0, float(n[1])))
            else:
                kids = [emit(k) for k in n[1:]]
                regs.append((OPCODES.index(n[0]), kids[0], kids[-1], 0, 0.0))
            return len(regs) - 1

        out = emit(node)
        if len(regs) > length:
            raise ValueError(f"program of {len(regs)} registers exceeds length={length}")
        while len(regs) < length:  # pad: R[i] = R[out] + R[0]
            regs.append((add, out, 0, 0, 0.0))
            out = len(regs) - 1
        for i, (o, ia, ib, k, v) in enumerate(regs):
            op[row, i], a[row, i], b[row, i], arg[row, i], lit[row, i] = o, ia, ib, k, v
    return Programs(op, a, b, arg, lit)


def program_length(node: Node) -> int:
    """Registers a tree needs: its node count plus the zero register."""
    return 1 + _count(node)


def _count(node: Node) -> int:
    return 1 if node[0] in LEAVES else 1 + sum(_count(n) for n in node[1:])


def _evaluate(op, a, b, arg, lit, p, X, ops: tuple[str, ...]):
    """Evaluate one program (arrays of shape ``(L,)``) on ``X`` of shape ``(n, d)``."""
    L = op.shape[0]
    branches = [
        lambda va, vb, k, v: X[:, k],
        lambda va, vb, k, v: jnp.broadcast_to(p[k], va.shape),
        lambda va, vb, k, v: jnp.broadcast_to(v, va.shape),
    ]
    branches += [(lambda f: lambda va, vb, k, v: f(va, vb))(BINARY[o]) for o in ops if o in BINARY]
    branches += [(lambda f: lambda va, vb, k, v: f(va))(UNARY[o]) for o in ops if o in UNARY]
    remap = np.full(len(OPCODES), 0, np.int32)
    for i, o in enumerate(
        (*LEAVES, *[o for o in ops if o in BINARY], *[o for o in ops if o in UNARY])
    ):
        remap[OPCODES.index(o)] = i
    remap = jnp.asarray(remap)

    def step(i, R):
        value = lax.switch(remap[op[i]], branches, R[a[i]], R[b[i]], arg[i], lit[i])
        return R.at[i].set(value)

    R = jnp.zeros((L, X.shape[0]), X.dtype)
    return lax.fori_loop(0, L, step, R)[L - 1]


@functools.partial(jax.jit, static_argnames=("ops", "scale"))
def fit_batch(prog: Programs, p0, X, y, w, iterations, *, ops: tuple[str, ...], scale: bool):
    """Levenberg-Marquardt fit of each program's parameters to ``y``, residuals times ``w``.

    ``p0`` has shape ``(B, P)``; ``y`` and the row weights ``w`` ``(n,)``; ``iterations``
    (a traced integer, so that one compiled kernel serves fits with and without
    iterations) is the number of LM steps; ``ops`` are the operators the programs use,
    in :data:`OPCODES` order. Returns
    ``(params (B, P), mse (B,), jtj (B, P, P))`` where ``mse`` is ``inf`` for programs
    that evaluate to NaN or inf. With ``scale``, each program ``g`` is fitted as
    ``s * g`` with ``s`` projected out in closed form (variable projection); the
    returned params then end with ``s``.
    """

    w2 = w * w

    def scale_of(g):
        gg = jnp.sum(w2 * g * g)
        return jnp.sum(w2 * g * y) / jnp.where(gg > 0, gg, 1.0)

    def predict(p, one):  # weighted: the residual is y w - predict
        g = _evaluate(*one, p, X, ops)
        return w * (scale_of(g) * g if scale else g)

    yw = y * w

    def fit_one(one, p):
        def loss(p):
            r = yw - predict(p, one)
            m = jnp.mean(r * r)
            return jnp.where(jnp.isfinite(m), m, jnp.inf)

        def body(_, state):
            p, lam, cur = state
            r = yw - predict(p, one)
            J = jax.jacfwd(lambda q: predict(q, one))(p)
            J = jnp.where(jnp.isfinite(J), J, 0.0)
            JtJ = J.T @ J
            g = J.T @ jnp.where(jnp.isfinite(r), r, 0.0)
            A = JtJ + lam * (jnp.diag(jnp.diag(JtJ)) + 1e-12 * jnp.eye(p.shape[0]))
            new = p + jnp.linalg.solve(A, g)
            new_loss = loss(new)
            better = new_loss < cur
            return (
                jnp.where(better, new, p),
                jnp.where(better, lam * 0.3, lam * 4.0),
                jnp.where(better, new_loss, cur),
            )

        p, _, cur = lax.fori_loop(0, iterations, body, (p, jnp.asarray(1e-3, X.dtype), loss(p)))
        J = jax.jacfwd(lambda q: predict(q, one))(p)
        J = jnp.where(jnp.isfinite(J), J, 0.0)
        out = p
        if scale:
            out = jnp.concatenate([p, scale_of(_evaluate(*one, p, X, ops))[None]])
        return out, cur, J.T @ J

    return jax.vmap(fit_one)(tuple(prog), p0)


def bucket(n: int, minimum: int = 4) -> int:
    """Next power of two >= ``n`` (>= ``minimum``): padded sizes that bound recompilation."""
    size = minimum
    while size < n:
        size *= 2
    return size
