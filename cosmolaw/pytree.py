"""Frozen dataclasses registered as JAX pytrees.

Fields declared with ``static_field()`` are pytree metadata (shapes, integer
sizes, strings, flags): they are hashed into the compiled function and never
traced. All other fields are leaves and can be traced, differentiated, batched
with ``vmap`` and sharded.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

import jax

T = TypeVar("T")


def static_field(default: Any = dataclasses.MISSING, **kwargs: Any) -> Any:
    """A dataclass field that is pytree metadata (static under ``jit``)."""
    metadata = dict(kwargs.pop("metadata", {}), static=True)
    return dataclasses.field(default=default, metadata=metadata, **kwargs)


def pytree_dataclass(cls: type[T]) -> type[T]:
    """Make ``cls`` a frozen dataclass and register it as a JAX pytree."""
    cls = dataclasses.dataclass(frozen=True)(cls)
    fields = dataclasses.fields(cls)
    data = [f.name for f in fields if not f.metadata.get("static", False)]
    meta = [f.name for f in fields if f.metadata.get("static", False)]
    return jax.tree_util.register_dataclass(cls, data_fields=data, meta_fields=meta)


def to_dict(obj: Any) -> dict[str, Any]:
    """Plain-Python dict of a dataclass: arrays become floats or lists, for TOML/JSON/HDF5 attrs."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            value = to_dict(value)
        elif hasattr(value, "tolist"):
            value = value.tolist()
        elif isinstance(value, tuple):
            value = list(value)
        out[f.name] = value
    return out
