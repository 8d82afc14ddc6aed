"""Save and load trained compressors and simulation sets (HDF5, written atomically).

A network file holds its ``spec`` (JSON, see ``networks.build_network``) and every NNX variable
(parameters and fixed scalings) under ``state/<path>``; loading rebuilds the network from the spec
and fills in the stored values, so it reproduces the summaries exactly.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

import h5py
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from cosmolaw.io import atomic_h5, set_attrs
from discovery.compress.datasets import FisherSet
from discovery.compress.moped import LinearCompressor
from discovery.compress.networks import build_network


def _key_name(path: tuple) -> str:
    return "state/" + "/".join(str(getattr(p, "key", getattr(p, "idx", p))) for p in path)


def save_network(
    path: str | os.PathLike,
    model: nnx.Module,
    spec: Mapping[str, Any],
    attrs: Mapping[str, Any] | None = None,
) -> None:
    """Write ``model`` (built from ``spec``) and optional metadata ``attrs`` to ``path``."""
    pure = nnx.to_pure_dict(nnx.state(model))
    with atomic_h5(path) as f:
        f.attrs["compressor"] = "network"
        f.attrs["spec"] = json.dumps(dict(spec))
        set_attrs(f, attrs or {})
        for key_path, leaf in jax.tree_util.tree_leaves_with_path(pure):
            f.create_dataset(_key_name(key_path), data=np.asarray(leaf))


def load_network(path: str | os.PathLike) -> tuple[nnx.Module, dict[str, Any]]:
    """Read a network written by ``save_network``; returns ``(model, spec)``."""
    with h5py.File(path, "r") as f:
        if f.attrs.get("compressor") != "network":
            raise ValueError(f"path={str(path)!r}: not a network file written by save_network")
        spec = json.loads(f.attrs["spec"])
        model = build_network(spec)
        state = nnx.state(model)
        template = nnx.to_pure_dict(state)
        values = jax.tree_util.tree_map_with_path(
            lambda p, leaf: np.asarray(f[_key_name(p)]).astype(np.asarray(leaf).dtype), template
        )
    nnx.replace_by_pure_dict(state, values)
    nnx.update(model, state)
    return model, spec


def save_linear(path: str | os.PathLike, compressor: LinearCompressor) -> None:
    """Write a linear (score/MOPED) compressor to ``path``."""
    with atomic_h5(path) as f:
        f.attrs["compressor"] = "linear"
        f.create_dataset("mean", data=np.asarray(compressor.mean))
        f.create_dataset("weights", data=np.asarray(compressor.weights))


def load_linear(path: str | os.PathLike) -> LinearCompressor:
    """Read a linear compressor written by ``save_linear``."""
    with h5py.File(path, "r") as f:
        if f.attrs.get("compressor") != "linear":
            raise ValueError(f"path={str(path)!r}: not a linear compressor written by save_linear")
        return LinearCompressor(jnp.asarray(f["mean"]), jnp.asarray(f["weights"]))


def save_fisher_set(
    path: str | os.PathLike,
    dataset: FisherSet,
    theta: np.ndarray,
    attrs: Mapping[str, Any] | None = None,
) -> None:
    """Write a fiducial/derivative simulation set at parameters ``theta`` to ``path``."""
    with atomic_h5(path) as f:
        set_attrs(f, attrs or {})
        f.create_dataset("theta", data=np.asarray(theta))
        fid = f.create_dataset("fiducial", data=np.asarray(dataset.fiducial))
        fid.attrs["description"] = "simulations at the fiducial parameters, (n_s, *data_shape)"
        der = f.create_dataset("derivative", data=np.asarray(dataset.derivative))
        der.attrs["description"] = (
            "d data / d theta for the first n_d fiducial seeds, (n_d, n_theta, *data_shape)"
        )


def load_fisher_set(path: str | os.PathLike) -> tuple[FisherSet, np.ndarray]:
    """Read a set written by ``save_fisher_set``; returns ``(dataset, theta)``."""
    with h5py.File(path, "r") as f:
        for name in ("theta", "fiducial", "derivative"):
            if name not in f:
                raise ValueError(f"path={str(path)!r}: no dataset {name!r}, not a Fisher set")
        return FisherSet(np.asarray(f["fiducial"]), np.asarray(f["derivative"])), np.asarray(
            f["theta"]
        )
