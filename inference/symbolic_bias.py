"""Bias laws built from sympy expressions: how a discovered law returns to the forward model.

A law found by symbolic regression is a sympy expression ``F(x; c0, c1, ...)`` of the matter
density in units of the mean, ``x = 1 + delta``, and of named constants.
:func:`symbolic_bias_law` turns it into a :class:`simulator.observe.bias.BiasLaw` evaluated in
JAX (``sympy.lambdify`` with the ``jax`` module), whose parameters are a pytree dataclass with
one field per constant and the fitted values as defaults. The constants are then differentiable
parameters: give them priors in :func:`inference.models.counts_posterior` (``bias_law=...,
bias_priors=...``) to sample them with the field, or an empty prior table to keep them at their
values.

As in the built-in power laws, ``x`` is floored at
:data:`simulator.observe.bias.DENSITY_FLOOR`, so powers and logarithms of empty cells stay
finite.
"""

from __future__ import annotations

import keyword
import math
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp

from cosmolaw.pytree import pytree_dataclass
from simulator.observe.bias import DENSITY_FLOOR, REAL, BiasLaw

#: Densities ``x = 1 + delta`` at which a new law must be finite (dimensionless).
PROBE_DENSITIES = (0.05, 0.3, 1.0, 3.0, 10.0)


def _params_type(values: Mapping[str, float]) -> type:
    """A pytree dataclass with one float field per constant, defaulting to its value."""
    namespace = {
        "__annotations__": dict.fromkeys(values, float),
        "__doc__": "Constants of a symbolic bias law (dimensionless).",
        "DOMAIN": dict.fromkeys(values, REAL),
        **{name: float(v) for name, v in values.items()},
    }
    return pytree_dataclass(type("SymbolicBiasParams", (), namespace))


def _validate(expression: sp.Expr, variable: str, constants: Mapping[str, float]) -> sp.Expr:
    """The expression with its symbols replaced by assumption-free ones; ValueError if bad."""
    if not isinstance(expression, sp.Expr):
        raise ValueError(f"expression={expression!r} must be a sympy expression")
    for name in [variable, *constants]:
        if not (name.isidentifier() and not keyword.iskeyword(name)):
            raise ValueError(f"symbol name {name!r} is not allowed: use a Python identifier")
    if variable in constants:
        raise ValueError(f"constants={sorted(constants)} must not contain variable={variable!r}")
    for name, value in constants.items():
        if not (isinstance(value, int | float | np.floating) and math.isfinite(value)):
            raise ValueError(f"constant {name}={value!r} must be a finite number")
    known = {variable, *constants}
    unknown = sorted(s.name for s in expression.free_symbols if s.name not in known)
    if unknown:
        raise ValueError(
            f"expression {expression} has symbols {unknown} that are neither "
            f"variable={variable!r} nor constants {sorted(constants)}"
        )
    return expression.xreplace({s: sp.Symbol(s.name) for s in expression.free_symbols})


def symbolic_bias_law(
    expression: sp.Expr,
    variable: str = "x",
    constants: Mapping[str, float] | None = None,
    name: str = "symbolic",
) -> BiasLaw:
    """A bias law ``F(delta) = expression(x = 1 + delta)`` evaluated in JAX.

    Args:
        expression: ``F`` as a sympy expression of the symbol named ``variable`` (the matter
            density in units of the mean, ``x = 1 + delta``) and of the symbols named in
            ``constants``; symbols are matched by name, whatever their assumptions.
        variable: name of the density symbol in ``expression``.
        constants: ``{name: value}``, the law's parameters and their default values (e.g. the
            fitted constants of a discovered law); ``None`` for a law without parameters.
        name: name of the law (shown in posterior names and outputs).

    Returns:
        A ``BiasLaw`` whose ``fn(delta, params)`` maps a mesh ``delta`` of any shape to
        ``F`` (dimensionless, same shape and dtype) and whose ``params_type`` is a pytree
        dataclass with one float field per constant, defaulting to its value.

    Raises:
        ValueError: a symbol that is neither the variable nor a constant, a bad name, a
            non-finite constant, or a law that is not finite at :data:`PROBE_DENSITIES`.
    """
    constants = {str(k): v for k, v in (constants or {}).items()}
    expr = _validate(expression, variable, constants)
    names = list(constants)
    symbols = [sp.Symbol(variable), *(sp.Symbol(n) for n in names)]
    probe = sp.lambdify(symbols, expr, modules="numpy")
    with np.errstate(all="ignore"):
        values = np.asarray(probe(np.asarray(PROBE_DENSITIES), *constants.values()), complex)
    if not np.all(np.isfinite(values)) or np.any(np.abs(values.imag) > 0):
        raise ValueError(
            f"expression {expression} with constants {constants} is not finite and real at "
            f"x = {list(PROBE_DENSITIES)}; a bias law must be"
        )
    jax_fn = sp.lambdify(symbols, expr, modules="jax")
    params_type = _params_type(constants)

    def fn(delta: jax.Array, params) -> jax.Array:
        x = jnp.maximum(1.0 + delta, DENSITY_FLOOR)
        out = jax_fn(x, *(getattr(params, n) for n in names))
        return jnp.broadcast_to(jnp.asarray(out, delta.dtype), delta.shape)

    fn.__doc__ = f"Bias law F(x = 1 + delta) = {expr} (constants {names})."
    return BiasLaw(name, fn, params_type)
