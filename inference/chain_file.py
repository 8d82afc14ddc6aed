"""``chain.h5``: samples, per-step diagnostics, thinned fields and the resumable checkpoint.

The whole file is rewritten atomically at every checkpoint (temporary file + rename through
:mod:`cosmolaw.io`), so an interruption at any moment, ``kill -9`` included, leaves the last
complete checkpoint. Layout (``C`` chains, ``n`` steps done, ``f`` stored fields):

- ``samples/scalars`` ``(C, n, p)`` (named by the file attribute ``scalar_names``),
  ``samples/logdensity`` ``(C, n)``, ``samples/pk_linear`` ``(C, n, nbins)`` P(k) of
  delta_L [(Mpc/h)^3];
- ``info/<name>`` ``(C, n)`` per-step acceptance, energy error, gradients, divergences,
  tree depth, step size;
- ``fields/s``, ``fields/delta_L``, ``fields/delta`` ``(C, f, m, m, m)``, ``fields/step`` ``(f,)``;
- ``k`` ``(nbins,)`` [h/Mpc], ``prior/pk_linear`` ``(nbins,)``, ``init/pk_linear`` ``(C, nbins)``,
  ``warmup/num_grads`` ``(C,)``, optional ``truth/*`` fields;
- ``checkpoint/<tree>/<i>``: flattened sampler state, tuning and preconditioner; after the
  set-up only (before the warm-up has ended), the preconditioner and the chains' latent starts.

File attributes: ``stage`` (``"set-up"`` or ``"sampling"``), ``steps_done``, ``complete``,
``scalar_names``, ``mesh``, ``box``, ``config`` and ``posterior`` (JSON).

:func:`to_inference_data` exports the draws to an ``arviz.InferenceData``, so that ArviZ's
plots and checks (and netCDF export) work on a run.
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
    return arrays, read_attrs(path)


def read_attrs(path: str | Path) -> dict[str, Any]:
    """The file attributes alone (JSON values decoded), without reading any dataset."""
    with h5py.File(path, "r") as f:
        return {k: _maybe_json(v) for k, v in f.attrs.items()}


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


#: ``info/<name>`` of ``chain.h5`` -> ``sample_stats`` variable (ArviZ's names where one exists).
SAMPLE_STATS = {
    "acceptance": "acceptance_rate",
    "energy_error": "energy_error",
    "num_grads": "num_grads",
    "divergent": "diverging",
    "tree_depth": "tree_depth",
    "step_size": "step_size",
    "scalar_acceptance": "scalar_acceptance",
}


def to_inference_data(path: str | Path, fields: bool = False) -> Any:
    """The draws of ``chain.h5`` as an ``arviz.InferenceData`` (every stored step, burn-in
    included: select with ``idata.sel(draw=slice(burn, None))``).

    Groups (``C`` chains, ``n`` steps, ``nbins`` k-bins, ``f`` stored fields, mesh ``m``):

    - ``posterior``: each sampled scalar ``(C, n)`` under its parameter name (``b1``; the
      stored ``group/name`` in the variable's ``name`` attribute, and ``group_name`` when two
      groups share a name) and ``pk_linear`` ``(C, n, nbins)`` [(Mpc/h)^3], the P(k) of delta_L,
      with coordinate ``k`` [h/Mpc];
    - ``sample_stats``: ``lp`` (log density) and the per-step diagnostics ``(C, n)`` under the
      names of :data:`SAMPLE_STATS`, and ``warmup_num_grads`` ``(C,)``;
    - ``constant_data``: ``pk_linear_prior`` ``(nbins,)`` [(Mpc/h)^3], the prior expectation,
      and ``pk_linear_init`` ``(C, nbins)``, the chains' starts;
    - with ``fields=True``, ``fields``: ``s``, ``delta_L``, ``delta`` ``(C, f, m, m, m)``
      every ``thin`` steps, coordinate ``draw`` the step index of each.

    The file's attributes (configuration and posterior as JSON strings, mesh, box,
    steps_done, complete) are the attributes of every group.
    """
    import arviz as az
    import xarray as xr

    arrays, attrs = read_arrays(path)
    chains, steps = arrays["samples/logdensity"].shape
    coords = {"chain": np.arange(chains), "draw": np.arange(steps), "k": arrays["k"]}
    names = list(attrs.get("scalar_names", []))
    short = [n.split("/", 1)[-1] for n in names]
    posterior = {}
    for i, (full, name) in enumerate(zip(names, short, strict=True)):
        var = name if short.count(name) == 1 else full.replace("/", "_")
        posterior[var] = xr.DataArray(
            arrays["samples/scalars"][..., i], dims=("chain", "draw"), attrs={"name": full}
        )
    posterior["pk_linear"] = xr.DataArray(
        arrays["samples/pk_linear"], dims=("chain", "draw", "k"), attrs={"units": "(Mpc/h)^3"}
    )
    stats = {"lp": xr.DataArray(arrays["samples/logdensity"], dims=("chain", "draw"))}
    for name, var in SAMPLE_STATS.items():
        if f"info/{name}" in arrays:
            stats[var] = xr.DataArray(arrays[f"info/{name}"], dims=("chain", "draw"))
    stats["warmup_num_grads"] = xr.DataArray(arrays["warmup/num_grads"], dims=("chain",))
    constant = {
        "pk_linear_prior": xr.DataArray(arrays["prior/pk_linear"], dims=("k",)),
        "pk_linear_init": xr.DataArray(arrays["init/pk_linear"], dims=("chain", "k")),
    }
    meta = {
        key: json.dumps(value) if isinstance(value, dict | list) else value
        for key, value in attrs.items()
    }
    meta = {k: int(v) if isinstance(v, bool | np.bool_) else v for k, v in meta.items()}
    groups = {
        "posterior": xr.Dataset(posterior, coords=coords, attrs=meta),
        "sample_stats": xr.Dataset(stats, coords=coords, attrs=meta),
        "constant_data": xr.Dataset(
            constant, coords={"chain": coords["chain"], "k": coords["k"]}, attrs=meta
        ),
    }
    if fields:
        steps_of = np.asarray(arrays["fields/step"]) - 1
        dims = ("chain", "draw", "x", "y", "z")
        groups["fields"] = xr.Dataset(
            {n: xr.DataArray(arrays[f"fields/{n}"], dims=dims) for n in ("s", "delta_L", "delta")},
            coords={"chain": coords["chain"], "draw": steps_of},
            attrs=meta,
        )
    return az.InferenceData(**groups)


def _maybe_json(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    if isinstance(value, np.generic):
        return value.item()
    return value
