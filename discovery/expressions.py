"""Sympy expressions as the exchange format: parsing, complexity, constants, JAX callables.

Every backend's output passes through here: text from PySR or Operon is parsed with
:data:`discovery.operators.ALIASES`, floating constants are turned into parameters
``c0, c1, ...`` for refitting, and expressions become pure JAX functions of a data
matrix ``X`` of shape ``(n_rows, n_variables)``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import jax.numpy as jnp
import numpy as np
import sympy as sp
from jax import lax
from sympy.parsing.sympy_parser import parse_expr

from discovery.operators import ALIASES

_JULIA_FLOAT = re.compile(r"(?<![\w.])(\d+\.?\d*|\.\d+)f([+-]?\d+)")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def make_symbols(names: Sequence[str], X: np.ndarray | None = None) -> tuple[sp.Symbol, ...]:
    """Real sympy symbols for the variables; ``positive`` when every value in ``X`` is > 0.

    Positivity lets sympy simplify ``Abs(x)``, ``sqrt(x**2)`` and logarithms of products.
    """
    symbols = []
    for i, name in enumerate(names):
        positive = X is not None and bool(np.all(np.asarray(X)[:, i] > 0))
        symbols.append(sp.Symbol(name, positive=True) if positive else sp.Symbol(name, real=True))
    return tuple(symbols)


def check_names(names: Sequence[str], parameter: str = "variables") -> None:
    """Raise ``ValueError`` unless every name is a distinct Python identifier."""
    bad = [n for n in names if not _IDENTIFIER.match(str(n))]
    if bad:
        raise ValueError(f"{parameter}={list(names)!r}: names {bad} are not identifiers")
    if len(set(names)) != len(names):
        raise ValueError(f"{parameter}={list(names)!r}: names must be distinct")


def parse_expression(text: str, symbols: Sequence[sp.Symbol]) -> sp.Expr:
    """Parse an equation printed by PySR, Operon or sympy into a sympy expression.

    Julia floats (``1.0f-5``), ``^`` for powers and the operator names of
    :data:`discovery.operators.ALIASES` are understood; ``symbols`` name the variables.
    """
    text = _JULIA_FLOAT.sub(r"\1e\2", text.strip()).replace("^", "**")
    local = {**ALIASES, **{str(s): s for s in symbols}, "pi": sp.pi, "E": sp.E}
    try:
        expr = parse_expr(text, local_dict=local)
    except Exception as err:  # sympy raises SyntaxError, TypeError, TokenError ...
        raise ValueError(f"equation {text!r} does not parse: {err}") from err
    unknown = expr.free_symbols - set(symbols)
    if unknown:
        raise ValueError(f"equation {text!r} uses unknown names {sorted(map(str, unknown))}")
    return sp.sympify(expr)


def complexity(expr: sp.Expr) -> int:
    """Number of nodes of the expression as a binary tree (PySR's default complexity).

    Leaves (variables, numbers) count 1, each binary or unary operation 1; an n-ary sum
    or product counts n-1 operations and a factor ``b**-1`` inside a product is a division.
    A numerical subexpression (``2*pi``, ``1/sqrt(2*pi)``) is one constant.
    """
    if expr.is_Atom or expr.is_number:
        return 1
    if isinstance(expr, sp.Mul | sp.Add):
        numeric = [a for a in expr.args if a.is_number]
        rest = [a for a in expr.args if not a.is_number]
        # the numbers are one leaf and one operation; a lone -1 factor is a negation
        total = len(rest) - 1 + (0 if not numeric else 1 if numeric == [-1] else 2)
        for arg in rest:
            if isinstance(expr, sp.Mul) and arg.is_Pow and arg.exp == -1:
                total += complexity(arg.base)
            elif isinstance(expr, sp.Add) and isinstance(arg, sp.Mul) and arg.args[0] == -1:
                total += complexity(-arg)  # a subtraction
            else:
                total += complexity(arg)
        return total
    if expr.is_Pow and expr.exp == -1:
        return 2 + complexity(expr.base)
    if expr.is_Pow and expr.exp in (2, 3, sp.Rational(1, 2)):
        return 1 + complexity(expr.base)  # square, cube, sqrt
    return 1 + sum(complexity(a) for a in expr.args)


def parametrize(
    expr: sp.Expr, prefix: str = "c"
) -> tuple[sp.Expr, tuple[sp.Symbol, ...], np.ndarray]:
    """Replace every floating-point number by a parameter symbol ``c0, c1, ...``.

    Returns the parametrised expression, the parameter symbols and their values.
    Exact integers and rationals stay exact.
    """
    floats = sorted(expr.atoms(sp.Float), key=lambda f: sp.default_sort_key(f))
    params = tuple(sp.Symbol(f"{prefix}{i}", real=True) for i in range(len(floats)))
    return (
        expr.xreplace(dict(zip(floats, params, strict=True))),
        params,
        np.array([float(f) for f in floats], dtype=float),
    )


_FUNCTIONS: dict[type, Callable] = {
    sp.exp: jnp.exp,
    sp.log: jnp.log,
    sp.sin: jnp.sin,
    sp.cos: jnp.cos,
    sp.tan: jnp.tan,
    sp.asin: jnp.arcsin,
    sp.acos: jnp.arccos,
    sp.atan: jnp.arctan,
    sp.sinh: jnp.sinh,
    sp.cosh: jnp.cosh,
    sp.tanh: jnp.tanh,
    sp.acosh: jnp.arccosh,
    sp.Abs: jnp.abs,
    sp.sign: jnp.sign,
}


def _build(expr: sp.Expr, index: dict[sp.Symbol, tuple[str, int]]) -> Callable:
    """Compile a sympy tree into a closure ``f(params, X)`` of jax.numpy operations."""
    if expr in index:
        kind, i = index[expr]
        if kind == "x":
            return lambda p, X: X[..., i]
        return lambda p, X: p[i]
    if expr.is_Number or expr.is_NumberSymbol:
        value = float(expr)
        return lambda p, X: jnp.asarray(value, dtype=X.dtype)
    args = [_build(a, index) for a in expr.args]
    if isinstance(expr, sp.Add):
        return lambda p, X: sum((f(p, X) for f in args[1:]), args[0](p, X))
    if isinstance(expr, sp.Mul):
        return lambda p, X: _product([f(p, X) for f in args])
    if expr.is_Pow:
        base, exponent = args
        if expr.exp.is_Integer:
            k = int(expr.exp)
            return lambda p, X: lax.integer_pow(jnp.asarray(base(p, X), X.dtype), k)
        if expr.exp == sp.Rational(1, 2):
            return lambda p, X: jnp.sqrt(base(p, X))
        return lambda p, X: jnp.power(base(p, X), exponent(p, X))
    if isinstance(expr, sp.Max | sp.Min):
        reduce = jnp.maximum if isinstance(expr, sp.Max) else jnp.minimum
        return lambda p, X: _fold(reduce, [f(p, X) for f in args])
    func = _FUNCTIONS.get(expr.func)
    if func is None:
        raise ValueError(f"expression {expr} uses {expr.func}, which has no JAX translation")
    (arg,) = args
    return lambda p, X: func(arg(p, X))


def _product(values: list) -> jnp.ndarray:
    out = values[0]
    for v in values[1:]:
        out = out * v
    return out


def _fold(reduce: Callable, values: list) -> jnp.ndarray:
    out = values[0]
    for v in values[1:]:
        out = reduce(out, v)
    return out


def jax_function(
    expr: sp.Expr, variables: Sequence[sp.Symbol], params: Sequence[sp.Symbol] = ()
) -> Callable:
    """A pure JAX function ``f(params, X) -> y`` of the expression.

    ``X`` has shape ``(..., n_variables)`` with columns in the order of ``variables``;
    ``params`` is an array of shape ``(len(params),)``. The result broadcasts to
    ``X.shape[:-1]``. The function is jit-, vmap- and grad-able.
    """
    index = {s: ("x", i) for i, s in enumerate(variables)}
    index.update({s: ("p", i) for i, s in enumerate(params)})
    missing = expr.free_symbols - set(index)
    if missing:
        raise ValueError(f"expression {expr} has symbols {sorted(map(str, missing))} not given")
    body = _build(expr, index)

    def f(p, X):
        X = jnp.asarray(X)
        return jnp.broadcast_to(body(jnp.asarray(p, X.dtype), X), X.shape[:-1])

    return f
