"""Dimensional analysis: unit strings to dimension vectors, and the units of an expression.

Units are written as products of powers, e.g. ``"m"``, ``"kg m^-3"``, ``"m/s^2"``,
``"J s"``, ``"Mpc/h"``; an empty string, ``"1"`` or ``"dimensionless"`` means
dimensionless. Fitted constants are dimensionless (the convention of the Feynman
benchmark: physical constants such as G or c enter as variables with units), so a
candidate whose units differ from the target's, or that adds unlike quantities or
takes ``exp``/``log``/``sin`` of a dimensional argument, is inconsistent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import sympy as sp

#: Base dimensions: length, mass, time, current, temperature, amount, luminous intensity.
BASE = ("L", "M", "T", "I", "Theta", "N", "J")

Dims = tuple[sp.Rational, ...]
DIMENSIONLESS: Dims = tuple(sp.Integer(0) for _ in BASE)


def _d(L=0, M=0, T=0, I=0, Theta=0, N=0, J=0) -> Dims:
    return tuple(sp.Rational(v) for v in (L, M, T, I, Theta, N, J))


#: Known unit names (prefixes are not parsed; scale factors do not change dimensions).
UNITS: dict[str, Dims] = {
    "m": _d(L=1),
    "cm": _d(L=1),
    "km": _d(L=1),
    "pc": _d(L=1),
    "kpc": _d(L=1),
    "Mpc": _d(L=1),
    "Gpc": _d(L=1),
    "AU": _d(L=1),
    "h": _d(),  # little h, as in Mpc/h
    "kg": _d(M=1),
    "g": _d(M=1),
    "Msun": _d(M=1),
    "s": _d(T=1),
    "yr": _d(T=1),
    "Gyr": _d(T=1),
    "A": _d(I=1),
    "K": _d(Theta=1),
    "mol": _d(N=1),
    "cd": _d(J=1),
    "Hz": _d(T=-1),
    "N": _d(L=1, M=1, T=-2),
    "J": _d(L=2, M=1, T=-2),
    "eV": _d(L=2, M=1, T=-2),
    "W": _d(L=2, M=1, T=-3),
    "Pa": _d(L=-1, M=1, T=-2),
    "C": _d(T=1, I=1),
    "V": _d(L=2, M=1, T=-3, I=-1),
    "F": _d(L=-2, M=-1, T=4, I=2),
    "ohm": _d(L=2, M=1, T=-3, I=-2),
    "T": _d(M=1, T=-2, I=-1),
    "Wb": _d(L=2, M=1, T=-2, I=-1),
    "H": _d(L=2, M=1, T=-2, I=-2),
    "rad": _d(),
    "sr": _d(),
}

_TOKEN = re.compile(r"^([A-Za-z]+)(?:(?:\^|\*\*)?\(?([+-]?\d+(?:/\d+)?(?:\.\d+)?)\)?)?$")


def parse_units(text: str, parameter: str = "units") -> Dims:
    """Dimension vector of a unit string such as ``"kg m^-3"`` or ``"m/s^2"``.

    Raises ``ValueError`` naming ``parameter`` when a unit is unknown or malformed.
    """
    s = str(text).strip()
    if s in ("", "1", "dimensionless", "-"):
        return DIMENSIONLESS
    dims = list(DIMENSIONLESS)
    sign = 1
    for raw in re.split(r"(\s+|\*(?!\*)|/)", s.replace(" / ", "/")):
        tok = raw.strip()
        if tok in ("", "*"):
            continue
        if tok == "/":
            sign = -1
            continue
        match = _TOKEN.match(tok)
        if not match or match.group(1) not in UNITS:
            raise ValueError(
                f"{parameter}={text!r}: cannot parse {tok!r}; write products of powers of "
                f"known units ({', '.join(UNITS)}), e.g. 'kg m^-3' or 'm/s^2'"
            )
        power = sp.Rational(match.group(2)) if match.group(2) else sp.Integer(1)
        for k, v in enumerate(UNITS[match.group(1)]):
            dims[k] += sign * power * v
        sign = 1
    return tuple(dims)


def parse_unit_map(units: Mapping[str, str] | str | None, names: Sequence[str]) -> dict[str, Dims]:
    """Parse units given as a mapping or as ``"name=unit,name=unit"`` into dimension vectors.

    Every name must be a variable or the target (``names``); raises ``ValueError`` otherwise.
    """
    if units is None:
        return {}
    if isinstance(units, str):
        pairs = {}
        for item in units.split(","):
            if not item.strip():
                continue
            if "=" not in item:
                raise ValueError(f"units={units!r}: expected 'name=unit' pairs, got {item!r}")
            key, value = item.split("=", 1)
            pairs[key.strip()] = value.strip()
        units = pairs
    unknown = [k for k in units if k not in names]
    if unknown:
        raise ValueError(f"units={dict(units)!r}: names {unknown} are not among {list(names)}")
    return {k: parse_units(v, parameter=f"units[{k!r}]") for k, v in units.items()}


def expression_dims(expr: sp.Expr, dims: Mapping[sp.Symbol, Dims]) -> Dims | None:
    """Dimensions of ``expr`` given those of its symbols, or ``None`` if it is inconsistent.

    Numbers and symbols missing from ``dims`` (fitted constants) are dimensionless.
    """
    if expr.is_Symbol:
        return dims.get(expr, DIMENSIONLESS)
    if expr.is_Number or expr.is_NumberSymbol:
        return DIMENSIONLESS
    parts = [expression_dims(a, dims) for a in expr.args]
    if any(p is None for p in parts):
        return None
    if isinstance(expr, sp.Add | sp.Max | sp.Min):
        return parts[0] if all(p == parts[0] for p in parts) else None
    if isinstance(expr, sp.Mul):
        return tuple(sum(col, sp.Integer(0)) for col in zip(*parts, strict=True))
    if expr.is_Pow:
        base, exponent = parts
        if exponent != DIMENSIONLESS:
            return None
        if base == DIMENSIONLESS:
            return DIMENSIONLESS
        if not expr.exp.is_Number:
            return None
        power = sp.nsimplify(expr.exp, rational=True) if expr.exp.is_Float else expr.exp
        return tuple(power * v for v in base)
    if isinstance(expr, sp.Abs):
        return parts[0]
    return DIMENSIONLESS if all(p == DIMENSIONLESS for p in parts) else None


def consistent(expr: sp.Expr, dims: Mapping[sp.Symbol, Dims], target: Dims | None) -> bool:
    """Whether ``expr`` is dimensionally consistent and has the target's dimensions."""
    got = expression_dims(expr, dims)
    return got is not None and (target is None or got == target)
