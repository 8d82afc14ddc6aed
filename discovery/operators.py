"""The operator basis of the symbolic search: names, arities and their sympy meaning.

One registry serves every backend. Search operators (``add``, ``exp``, ...) are what a
user may put in ``operators=``; aliases are the spellings other engines print
(PySR's ``square``, ``safe_log``, ``pow_abs``; Operon's ``aq``, ``logabs``, ...), all
mapped to plain sympy so that every backend's output becomes one exchange format.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import sympy as sp


@dataclass(frozen=True)
class Operator:
    """One search operator: ``arity`` 1 or 2, ``build`` maps sympy arguments to sympy."""

    name: str
    arity: int
    build: Callable[..., sp.Expr]


def _div(a: sp.Expr, b: sp.Expr) -> sp.Expr:
    return a / b


#: Operators the exhaustive and Operon backends understand, by canonical name.
OPERATORS: dict[str, Operator] = {
    op.name: op
    for op in (
        Operator("add", 2, lambda a, b: a + b),
        Operator("sub", 2, lambda a, b: a - b),
        Operator("mul", 2, lambda a, b: a * b),
        Operator("div", 2, _div),
        Operator("pow", 2, lambda a, b: a**b),
        Operator("exp", 1, sp.exp),
        Operator("log", 1, sp.log),
        Operator("sqrt", 1, sp.sqrt),
        Operator("square", 1, lambda a: a**2),
        Operator("cube", 1, lambda a: a**3),
        Operator("inv", 1, lambda a: 1 / a),
        Operator("sin", 1, sp.sin),
        Operator("cos", 1, sp.cos),
        Operator("tan", 1, sp.tan),
        Operator("asin", 1, sp.asin),
        Operator("acos", 1, sp.acos),
        Operator("atan", 1, sp.atan),
        Operator("sinh", 1, sp.sinh),
        Operator("cosh", 1, sp.cosh),
        Operator("tanh", 1, sp.tanh),
        Operator("abs", 1, sp.Abs),
    )
}

#: The default basis: arithmetic plus the functions physical laws use most.
DEFAULT_OPERATORS: tuple[str, ...] = (
    "add",
    "sub",
    "mul",
    "div",
    "exp",
    "log",
    "sqrt",
    "square",
    "sin",
    "cos",
)

#: Spellings printed by PySR / SymbolicRegression.jl and Operon, mapped to sympy.
ALIASES: dict[str, Callable[..., sp.Expr]] = {
    # PySR / SymbolicRegression.jl
    "neg": lambda a: -a,
    "square": lambda a: a**2,
    "cube": lambda a: a**3,
    "inv": lambda a: 1 / a,
    "pow_abs": lambda a, b: sp.Abs(a) ** b,
    "safe_pow": lambda a, b: a**b,
    "safe_log": sp.log,
    "safe_log2": lambda a: sp.log(a, 2),
    "safe_log10": lambda a: sp.log(a, 10),
    "log2": lambda a: sp.log(a, 2),
    "log10": lambda a: sp.log(a, 10),
    "safe_log1p": lambda a: sp.log(1 + a),
    "log1p": lambda a: sp.log(1 + a),
    "safe_sqrt": sp.sqrt,
    "safe_acosh": sp.acosh,
    "relu": lambda a: sp.Max(a, 0),
    "mult": lambda a, b: a * b,
    "plus": lambda a, b: a + b,
    "pow": lambda a, b: a**b,
    # Operon
    "aq": lambda a, b: a / sp.sqrt(1 + b**2),
    "powabs": lambda a, b: sp.Abs(a) ** b,
    "logabs": lambda a: sp.log(sp.Abs(a)),
    "sqrtabs": lambda a: sp.sqrt(sp.Abs(a)),
    "cbrt": sp.cbrt,
    "fmin": sp.Min,
    "fmax": sp.Max,
    # common names
    "exp": sp.exp,
    "log": sp.log,
    "sqrt": sp.sqrt,
    "abs": sp.Abs,
    "sin": sp.sin,
    "cos": sp.cos,
    "tan": sp.tan,
    "asin": sp.asin,
    "acos": sp.acos,
    "atan": sp.atan,
    "sinh": sp.sinh,
    "cosh": sp.cosh,
    "tanh": sp.tanh,
}


def parse_operators(operators: str | Sequence[str] | None) -> tuple[str, ...]:
    """Validate an operator list (comma-separated string or sequence) into canonical names.

    ``None`` gives :data:`DEFAULT_OPERATORS`. Unknown names raise ``ValueError`` naming
    the parameter ``operators`` and listing the allowed names.
    """
    if operators is None:
        return DEFAULT_OPERATORS
    names = operators.split(",") if isinstance(operators, str) else list(operators)
    names = [str(n).strip().lower() for n in names if str(n).strip()]
    if not names:
        raise ValueError(f"operators={operators!r} is empty; allowed: {', '.join(OPERATORS)}")
    unknown = [n for n in names if n not in OPERATORS]
    if unknown:
        raise ValueError(
            f"operators={operators!r} contains unknown operator(s) {unknown}; "
            f"allowed: {', '.join(OPERATORS)}"
        )
    return tuple(dict.fromkeys(names))
