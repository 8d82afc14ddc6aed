"""``chain.h5``: samples, per-step diagnostics, thinned fields and the resumable checkpoint.

The whole file is rewritten atomically at every checkpoint (temporary file + rename through
:mod:`cosmolaw.io`), so an interruption at any moment, ``kill -9`` included, leaves the last
complete checkpoint. Layout (``C`` chains, ``n`` steps done, ``f`` stored fields):

- ``samples/scalars`` ``(C, n, p)`` (attribute ``names``), ``samples/logdensity`` ``(C, n)``,
  ``samples/pk_linear`` ``(C, n, nbins)`` P(k) of delta_L [(Mpc/h)^3];
- ``info/<name>`` ``(C, n)`` per-step acceptance, energy error, gradients, divergences,
  tree depth, step size;
- ``fields/s``, ``fields/delta_L``, ``fields/delta`` ``(C, f, m, m, m)``, ``fields/step`` ``(f,)``;
- ``k`` ``(nbins,)`` [h/Mpc], ``prior/pk_linear`` ``(nbins,)``, ``init/pk_linear`` ``(C, nbins)``,
  ``warmup/num_grads`` ``(C,)``, optional ``truth/*`` fields;
- ``checkpoint/<tree>/<i>``: flattened sampler state, tuning and preconditioner.

File attributes: ``steps_done``, ``complete``, ``config`` and ``posterior`` (JSON).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import h5py
import jax
import numpy as np

from cosmolaw.io import atomic_h5

UNITS = {
    "samples/pk_linear": "(Mpc/h)^3",
    "prior/pk_linear": "(Mpc/h)^3",
    "init/pk_linear": "(Mpc/h)^3",
    "k": "h/Mpc",
}


def write_chain_file(
    path: str | Path,
    arrays: dict[str, np.ndarray],
    trees: dict[str, Any],
    attrs: dict[str, Any],
) -> None:
    """Write ``chain.h5`` atomically: named arrays, flattened pytrees and JSON-able attributes."""
    with atomic_h5(path) as f:
        for name, value in arrays.items():
            dset = f.create_dataset(name, data=np.asarray(value))
            if name in UNITS:
                dset.attrs["units"] = UNITS[name]
        for tree_name, tree in trees.items():
            for i, leaf in enumerate(jax.tree.leaves(tree)):
                f.create_dataset(f"checkpoint/{tree_name}/{i:04d}", data=np.asarray(leaf))
        for key, value in attrs.items():
            f.attrs[key] = json.dumps(value) if isinstance(value, dict | list) else value


def read_arrays(path: str | Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """All datasets outside ``checkpoint/`` as NumPy arrays, and the file attributes."""
    arrays: dict[str, np.ndarray] = {}
    with h5py.File(path, "r") as f:

        def visit(name: str, obj: Any) -> None:
            if isinstance(obj, h5py.Dataset) and not name.startswith("checkpoint/"):
                arrays[name] = obj[()]

        f.visititems(visit)
        attrs = {k: _maybe_json(v) for k, v in f.attrs.items()}
    return arrays, attrs


def read_tree(path: str | Path, tree_name: str, template: Any) -> Any:
    """The pytree ``tree_name`` saved by :func:`write_chain_file`, shaped like ``template``."""
    leaves, treedef = jax.tree.flatten(template)
    with h5py.File(path, "r") as f:
        group = f[f"checkpoint/{tree_name}"]
        if len(group) != len(leaves):
            raise ValueError(
                f"checkpoint {tree_name!r} in {path} has {len(group)} arrays, expected "
                f"{len(leaves)}: it was written by a different sampler or model"
            )
        stored = [group[f"{i:04d}"][()] for i in range(len(leaves))]
    for new, old in zip(stored, leaves, strict=True):
        if tuple(np.shape(new)) != tuple(old.shape):
            raise ValueError(
                f"checkpoint {tree_name!r} in {path} holds shape {np.shape(new)} where "
                f"{tuple(old.shape)} is expected: it was written by a different configuration"
            )
    return jax.tree.unflatten(
        treedef, [np.asarray(v, dtype=t.dtype) for v, t in zip(stored, leaves, strict=True)]
    )


def _maybe_json(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    if isinstance(value, np.generic):
        return value.item()
    return value
