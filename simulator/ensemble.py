"""Ensembles of simulations distributed over MPI ranks (mpi4py).

``run_ensemble`` gives member ``i`` (seed ``first_seed + i``) to rank ``i mod size``. Each
rank runs its members with ``simulator.pipeline.simulate`` on its own devices and writes
its own part ``DIR/parts/part-RRRR-of-SSSS.h5`` atomically; after a barrier rank 0 merges
the parts, in member order, into ``DIR/ensemble.h5`` (also atomic) with ``DIR/config.toml``
and removes the parts. A rerun after an interruption reuses the parts that were complete.

Members may share one cosmology (an ensemble for covariances) or each have their own (a
training set for compressors and emulators). ``ensemble.h5`` holds ``seeds`` ``(M,)``,
``cosmology/<parameter>`` ``(M,)`` for every cosmological parameter, ``fields/delta``
``(M, mesh, mesh, mesh)`` (unless ``keep_fields=False``), ``power/k`` ``(nbins,)``,
``power/pk`` and ``power/pk_linear`` ``(M, nbins)``; the configuration and ensemble size
are file attributes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import h5py
import jax
import numpy as np

from cosmolaw.io import atomic_h5, set_attrs, write_toml
from cosmolaw.progress import progress_bar
from cosmolaw.pytree import to_dict
from simulator.config import SimConfig
from simulator.cosmology import Cosmology
from simulator.distributed.multihost import shared_then_merged
from simulator.linear_power import linear_power
from simulator.measure import power_spectrum
from simulator.pipeline import simulate

ENSEMBLE_FILE = "ensemble.h5"
PARTS_DIR = "parts"

_spectrum = jax.jit(power_spectrum, static_argnums=1)
_linear_power = jax.jit(linear_power)


def rank_members(count: int, rank: int, size: int) -> range:
    """Member indices of ``rank`` among ``size`` ranks (round robin)."""
    return range(rank, count, size)


def _check(count: int, first_seed: int) -> None:
    for name, value, low in (("count", count, 1), ("first_seed", first_seed, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name}={value!r} is invalid: must be an integer >= {low}")


def _cosmologies(cosmo: Cosmology | Sequence[Cosmology], count: int) -> list[Cosmology]:
    """One validated cosmology per member."""
    cosmos = [cosmo] * count if isinstance(cosmo, Cosmology) else list(cosmo)
    if len(cosmos) != count:
        raise ValueError(
            f"cosmo={len(cosmos)} cosmologies is invalid: must be one or count={count}"
        )
    for c in cosmos:
        c.validate()
    return cosmos


def _parameters(cosmos: list[Cosmology]) -> dict[str, np.ndarray]:
    """Per-member arrays ``(M,)`` of the numeric cosmological parameters."""
    rows = [to_dict(c) for c in cosmos]
    names = [k for k, v in rows[0].items() if isinstance(v, float) and not isinstance(v, bool)]
    return {k: np.asarray([float(r[k]) for r in rows]) for k in names}


def _metadata(count: int, first_seed: int, conf: SimConfig) -> dict[str, Any]:
    return {"config": to_dict(conf), "ensemble": {"count": count, "first_seed": first_seed}}


def _part_path(out_dir: Path, rank: int, size: int) -> Path:
    return out_dir / PARTS_DIR / f"part-{rank:04d}-of-{size:04d}.h5"


def _part_is_complete(path: Path, signature: str) -> bool:
    if not path.exists():
        return False
    with h5py.File(path, "r") as f:
        return f.attrs.get("signature") == signature


def _run_members(members: range, first_seed: int, cosmos, conf, keep_fields, show) -> dict:
    deltas, pks, pks_lin, k = [], [], [], None
    for i in progress_bar(members, desc="ensemble members", unit="sim", disable=not show):
        delta = simulate(cosmos[i], conf, first_seed + i).delta
        spec = _spectrum(delta, conf.box)
        k = np.asarray(spec.k)
        pks.append(np.asarray(spec.power))
        pks_lin.append(np.asarray(_linear_power(spec.k, cosmos[i], conf.a_stop)))
        if keep_fields:
            deltas.append(np.asarray(delta))
    n, nbins = conf.mesh, conf.mesh // 2
    return {
        "index": np.asarray(members, np.int64),
        "k": np.zeros(nbins) if k is None else k,
        "pk": np.asarray(pks).reshape(-1, nbins),
        "pk_linear": np.asarray(pks_lin).reshape(-1, nbins),
        "delta": np.asarray(deltas, conf.dtype).reshape(-1, n, n, n) if keep_fields else None,
    }


def _write_part(path: Path, data: dict, signature: str) -> None:
    with atomic_h5(path) as f:
        f.attrs["signature"] = signature
        for name, value in data.items():
            if value is not None:
                f.create_dataset(name, data=value)


def _merge(out_dir: Path, size: int, meta: dict, cosmos: list, conf: SimConfig) -> Path:
    parts = [h5py.File(_part_path(out_dir, r, size), "r") for r in range(size)]
    try:
        index = np.concatenate([p["index"][()] for p in parts])
        order = np.argsort(index)
        k = next((p["k"][()] for p in parts if len(p["index"])), parts[0]["k"][()])
        pk, pk_lin = (np.concatenate([p[x][()] for p in parts])[order] for x in ("pk", "pk_linear"))
        has_fields = "delta" in parts[0]
        delta = np.concatenate([p["delta"][()] for p in parts])[order] if has_fields else None
    finally:
        for p in parts:
            p.close()
    first_seed = meta["ensemble"]["first_seed"]
    path = out_dir / ENSEMBLE_FILE
    with atomic_h5(path) as f:
        set_attrs(f, {**meta, "ensemble": {**meta["ensemble"], "ranks": size}})
        _dataset(f, "seeds", index[order] + first_seed, "1", "white-noise seed of each member")
        for name, values in _parameters(cosmos).items():
            _dataset(f, f"cosmology/{name}", values, "1", f"{name} of each member")
        if delta is not None:
            _dataset(f, "fields/delta", delta, "1", f"CIC density contrast at a={conf.a_stop:g}")
        _dataset(f, "power/k", k, "h/Mpc", "mode-weighted mean |k| of each shell")
        _dataset(f, "power/pk", pk, "(Mpc/h)^3", "power spectrum of each member's delta")
        a_stop = f"a={conf.a_stop:g}"
        _dataset(
            f, "power/pk_linear", pk_lin, "(Mpc/h)^3", f"each member's linear P(k) at {a_stop}"
        )
    write_toml(out_dir / "config.toml", meta)
    for r in range(size):
        _part_path(out_dir, r, size).unlink()
    (out_dir / PARTS_DIR).rmdir()
    return path


def _dataset(group, name: str, data, units: str, description: str) -> None:
    ds = group.create_dataset(name, data=np.asarray(data))
    ds.attrs["units"] = units
    ds.attrs["description"] = description


def run_ensemble(
    count: int,
    cosmo: Cosmology | Sequence[Cosmology],
    conf: SimConfig,
    out_dir: str | os.PathLike,
    first_seed: int = 0,
    keep_fields: bool = True,
    progress: bool = True,
    comm: Any = None,
) -> Path | None:
    """Run ``count`` simulations with seeds ``first_seed + i`` over the MPI ranks.

    Collective: every rank of ``comm`` must call it with the same arguments (e.g. under
    ``mpiexec -n P``); a plain ``python`` run is one rank doing everything.

    Args:
        count: ensemble size ``M >= 1``.
        cosmo: one cosmology for every member, or a sequence of ``count`` cosmologies (member
            ``i`` uses ``cosmo[i]``; no recompilation, the parameters are traced).
        conf: simulation configuration (shared by the members).
        out_dir: run directory for ``ensemble.h5``, ``config.toml`` and the parts.
        first_seed: seed of member 0 (``>= 0``).
        keep_fields: store every member's final density contrast (``M mesh^3`` values).
        progress: tqdm bar over rank 0's members.
        comm: mpi4py communicator; default ``MPI.COMM_WORLD``.

    Returns:
        Path of ``ensemble.h5`` on rank 0, ``None`` on the other ranks.
    """
    _check(count, first_seed)
    cosmos = _cosmologies(cosmo, count)
    conf.validate()
    if comm is None:
        from mpi4py import MPI

        comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    out_dir = Path(out_dir)
    meta = _metadata(count, first_seed, conf)
    params = {k: v.tolist() for k, v in _parameters(cosmos).items()}
    signature = json.dumps(
        {**meta, "cosmology": params, "ranks": size, "keep_fields": keep_fields}, sort_keys=True
    )
    part = _part_path(out_dir, rank, size)

    def work() -> None:
        if not _part_is_complete(part, signature):
            members = rank_members(count, rank, size)
            show = progress and rank == 0
            data = _run_members(members, first_seed, cosmos, conf, keep_fields, show)
            _write_part(part, data, signature)

    return shared_then_merged(comm, work, lambda: _merge(out_dir, size, meta, cosmos, conf))
