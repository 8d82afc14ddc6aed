"""Atomic file output: nothing half-written is ever left under the final name.

Every writer writes to a temporary file in the destination directory and
renames it into place only when the write completed, so an interrupted run
leaves either the previous file or nothing.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` on success.

    On any exception the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_current_umask())
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_h5(path: str | os.PathLike) -> Iterator[Any]:
    """Open an HDF5 file for writing that appears under ``path`` only when closed cleanly."""
    import h5py

    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        yield f


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON atomically (NumPy scalars and arrays allowed)."""
    write_text(path, json.dumps(obj, indent=2, default=_json_default) + "\n")


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"cannot serialise {type(obj).__name__} to JSON")


def write_toml(path: str | os.PathLike, table: Mapping[str, Any]) -> None:
    """Write a (nested) mapping of scalars, strings and lists as TOML, atomically."""
    import tomli_w

    write_text(path, tomli_w.dumps(_toml_clean(table)))


def _toml_clean(obj: Any) -> Any:
    """TOML has no null: drop None values; convert NumPy types to Python ones."""
    if isinstance(obj, Mapping):
        return {str(k): _toml_clean(v) for k, v in obj.items() if v is not None}
    if isinstance(obj, list | tuple):
        return [_toml_clean(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return obj


def set_attrs(h5obj: Any, attrs: Mapping[str, Any], prefix: str = "") -> None:
    """Store a nested mapping as flat HDF5 attributes ``prefix/key/subkey``; None is skipped."""
    for key, value in attrs.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            set_attrs(h5obj, value, prefix=f"{name}/")
        elif value is not None:
            h5obj.attrs[name] = value
