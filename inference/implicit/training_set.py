"""Training sets: parameters drawn from the prior, simulated through the mocks' observation
model, summarised, stored in ``DIR/training_set.h5``.

Member ``i`` draws its parameters and its initial-conditions seed from
``numpy.random.default_rng([seed, i])``, sets them on the base cosmology and observation
(prior names are :class:`simulator.cosmology.Cosmology` fields, bias parameters of the
observation's law, or ``nbar_cell``) and runs :func:`simulator.observe.mock.make_mock`: the
forward model, bias, selection and noise of ``cosmolaw mock``. Its galaxy counts are stored
(the input of summaries learned from the field, such as the IMNN of ``--summary imnn``) with
their galaxy power spectrum to the Nyquist frequency
(:func:`inference.implicit.summaries.galaxy_power`); cuts and compression are applied when
training.

Work is cut in chunks of ``chunk`` members, shared round robin among MPI ranks as
:mod:`simulator.ensemble` shares members; each chunk is written atomically to
``DIR/parts/chunk-CCCCCC.h5`` as soon as it is done, so an interrupted run continues at the
first missing chunk. When all are done rank 0 merges them into ``training_set.h5`` (atomic)
and ``config.toml`` and removes the parts. The result does not depend on the chunk size or the
number of ranks.

``training_set.h5``: ``theta`` ``(n, p)`` (attribute ``names``), ``seeds`` ``(n,)``,
``power/k`` ``(nbins,)`` [h/Mpc], ``power/pk`` ``(n, nbins)`` [(Mpc/h)^3], ``counts``
``(n, m, m, m)`` [galaxies per cell] (gzip-compressed, one HDF5 chunk per member),
``selection`` ``(m, m, m)``; attributes ``prior`` (JSON), ``count``, ``seed`` and the mock's
``sim/*``, ``cosmology/*``, ``model`` and ``observation/*`` (read back by
:func:`inference.data.model_from_attrs`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
from pathlib import Path
from time import perf_counter
from typing import Any

import numpy as np

from inference.implicit.prior import BoxPrior, prior_from_dict

TRAINING_FILE = "training_set.h5"
PARTS_DIR = "parts"


@dataclasses.dataclass(frozen=True, eq=False)
class TrainingSetSpec:
    """What to simulate.

    Attributes:
        count: number of simulations (>= 1).
        prior: prior of the varied parameters.
        conf: :class:`simulator.config.SimConfig` of every member.
        cosmo: base :class:`simulator.cosmology.Cosmology` (prior parameters override it).
        obs: base :class:`simulator.observe.mock.Observation`.
        model: forward model of :data:`simulator.observe.mock.MODELS`.
        selection: selection grid ``(mesh, mesh, mesh)`` in [0, 1]; ``None`` is complete.
        seed: integer >= 0 of every draw.
        chunk: members per part file (>= 1), the granularity of resuming.
    """

    count: int
    prior: BoxPrior
    conf: Any
    cosmo: Any
    obs: Any
    model: str = "lpt2"
    selection: np.ndarray | None = None
    seed: int = 0
    chunk: int = 50

    def __post_init__(self) -> None:
        from simulator.cosmology import Cosmology
        from simulator.observe.mock import MODELS
        from simulator.observe.selection import validate_selection

        for name, low in (("count", 1), ("seed", 0), ("chunk", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name}={value!r} is invalid: must be an integer >= {low}")
        if self.model not in MODELS:
            raise ValueError(f"model={self.model!r} is not allowed (allowed: {list(MODELS)})")
        allowed = [*self.obs.bias_params, "nbar_cell"] + [
            f.name for f in dataclasses.fields(Cosmology) if f.name not in ("radiation", "A_s")
        ]
        for name in self.prior.names:
            if name not in allowed:
                raise ValueError(f"prior parameter {name!r} is not allowed (allowed: {allowed})")
        shape = (self.conf.mesh,) * 3
        sel = np.ones(shape) if self.selection is None else self.selection
        object.__setattr__(self, "selection", validate_selection(sel, shape))
        self.conf.validate()
        for corner in (self.prior.low, self.prior.high):
            self.member_model(np.asarray(corner))[0].validate()

    def member_model(self, theta: np.ndarray) -> tuple[Any, Any]:
        """``(Cosmology, Observation)`` of parameters ``theta`` ``(p,)``."""
        values = dict(zip(self.prior.names, (float(v) for v in theta), strict=True))
        cosmo = dataclasses.replace(
            self.cosmo, **{k: v for k, v in values.items() if hasattr(self.cosmo, k)}
        )
        bias = {k: v for k, v in values.items() if k in self.obs.bias_params}
        obs = dataclasses.replace(
            self.obs,
            bias_params={**self.obs.bias_params, **bias},
            nbar_cell=values.get("nbar_cell", self.obs.nbar_cell),
        )
        return cosmo, obs

    def draw(self, index: int) -> tuple[np.ndarray, int]:
        """Parameters ``(p,)`` and initial-conditions seed of member ``index``."""
        rng = np.random.default_rng([self.seed, index])
        return self.prior.sample(rng, 1)[0], int(rng.integers(2**31 - 1))

    def attrs(self) -> dict[str, Any]:
        """File attributes (the mock's layout plus the prior, count and seed)."""
        from cosmolaw.pytree import to_dict

        return {
            "prior": json.dumps(self.prior.to_dict()),
            "count": self.count,
            "seed": self.seed,
            "model": self.model,
            "sim": to_dict(self.conf),
            "cosmology": to_dict(self.cosmo),
        }

    def signature(self) -> str:
        """Everything that determines the members (not ``count`` or ``chunk``)."""
        attrs = {k: v for k, v in self.attrs().items() if k != "count"}
        digest = hashlib.sha256(np.ascontiguousarray(self.selection).tobytes()).hexdigest()
        return json.dumps(
            {**attrs, "observation": self.obs.to_dict(), "selection": digest},
            sort_keys=True,
            default=str,
        )


def simulate_counts(spec: TrainingSetSpec, theta: np.ndarray, seed: int) -> np.ndarray:
    """Galaxy counts ``(mesh, mesh, mesh)`` [galaxies per cell] of a mock with parameters
    ``theta`` ``(p,)`` (in the prior's units) and initial-conditions ``seed`` (integer >= 0):
    :func:`simulator.observe.mock.make_mock` with the specification's model, observation and
    selection. The same seed at other ``theta`` gives the same initial white noise and the same
    key of the noise draw (seed-matched simulations for finite differences)."""
    from simulator.observe.mock import make_mock

    cosmo, obs = spec.member_model(theta)
    mock, _ = make_mock(int(seed), cosmo, spec.conf, spec.model, obs, spec.selection)
    return mock.counts


def simulate_at(
    spec: TrainingSetSpec, theta: np.ndarray, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """The shells' ``k`` [h/Mpc] and the galaxy P(k) [(Mpc/h)^3], each ``(mesh // 2,)``, of a
    mock with parameters ``theta`` ``(p,)`` and initial-conditions ``seed``."""
    from inference.implicit.summaries import galaxy_power

    return galaxy_power(simulate_counts(spec, theta, seed), spec.selection, spec.conf.box)


def simulate_member(
    spec: TrainingSetSpec, index: int
) -> tuple[np.ndarray, int, np.ndarray, np.ndarray, np.ndarray]:
    """Member ``index``: its parameters ``(p,)``, seed, ``k``, P(k) (:func:`simulate_at`) and
    counts ``(mesh, mesh, mesh)`` (:func:`simulate_counts`)."""
    from inference.implicit.summaries import galaxy_power

    theta, seed = spec.draw(index)
    counts = simulate_counts(spec, theta, seed)
    return theta, seed, *galaxy_power(counts, spec.selection, spec.conf.box), counts


def _chunk_path(out_dir: Path, chunk: int) -> Path:
    return out_dir / PARTS_DIR / f"chunk-{chunk:06d}.h5"


def _chunk_done(path: Path, signature: str, size: int) -> bool:
    import h5py

    if not path.exists():
        return False
    with h5py.File(path, "r") as f:
        same = f.attrs.get("signature") == signature and "counts" in f
        return same and len(f["seeds"]) == size


def _chunk_members(spec: TrainingSetSpec, chunk: int) -> range:
    return range(chunk * spec.chunk, min((chunk + 1) * spec.chunk, spec.count))


def _merge(spec: TrainingSetSpec, out_dir: Path, chunks: int) -> Path:
    import h5py

    from cosmolaw.io import atomic_h5, set_attrs, write_toml

    parts = {"theta": [], "seeds": [], "pk": []}
    seconds = 0.0
    for c in range(chunks):
        with h5py.File(_chunk_path(out_dir, c), "r") as f:
            for name in parts:
                parts[name].append(f[name][()])
            seconds += float(f.attrs.get("seconds", np.nan))  # NaN: a chunk of older code
            k = f["k"][()]
            counts_dtype = f["counts"].dtype
    data = {name: np.concatenate(v) for name, v in parts.items()}
    path = out_dir / TRAINING_FILE
    shape = (spec.count, *spec.selection.shape)
    with atomic_h5(path) as f:
        counts = f.create_dataset(
            "counts", shape, counts_dtype, chunks=(1, *shape[1:]), compression="gzip"
        )
        counts.attrs.update(units="galaxies per cell", description="galaxy counts of each member")
        start = 0
        for c in range(chunks):  # chunk by chunk: the counts of a large set need not fit twice
            with h5py.File(_chunk_path(out_dir, c), "r") as part:
                block = part["counts"][()]
            counts[start : start + len(block)] = block
            start += len(block)
        set_attrs(f, spec.attrs())
        set_attrs(f, spec.obs.to_dict(), prefix="observation/")
        f.attrs["signature"] = spec.signature()
        f.attrs["simulation_seconds"] = seconds
        for name, value, units, description in (
            ("theta", data["theta"], "1", "parameters drawn from the prior (n, p)"),
            ("seeds", data["seeds"], "1", "initial-conditions seed of each member"),
            ("power/k", k, "h/Mpc", "mode-weighted mean |k| of each shell"),
            ("power/pk", data["pk"], "(Mpc/h)^3", "galaxy power spectrum of each member"),
            ("selection", spec.selection, "1", "survey selection of every member"),
        ):
            dset = f.create_dataset(name, data=value)
            dset.attrs.update(units=units, description=description)
        f["theta"].attrs["names"] = list(spec.prior.names)
    write_toml(
        out_dir / "config.toml",
        {**spec.attrs(), "prior": spec.prior.to_dict(), "observation": spec.obs.to_dict()},
    )
    for c in range(chunks):
        _chunk_path(out_dir, c).unlink()
    (out_dir / PARTS_DIR).rmdir()
    return path


def simulate_training_set(
    spec: TrainingSetSpec,
    out_dir: str | os.PathLike,
    progress: bool = True,
    comm: Any = None,
) -> Path | None:
    """Simulate (or finish simulating) ``spec`` into ``out_dir/training_set.h5``.

    Collective over ``comm`` (default ``MPI.COMM_WORLD``; a plain run is one rank). Chunks
    already written by an interrupted run with the same specification are kept. A complete
    ``training_set.h5`` of another specification is refused (``ValueError``).

    Returns:
        The path of ``training_set.h5`` on rank 0, ``None`` on the other ranks.
    """
    import h5py

    from cosmolaw.io import atomic_h5
    from cosmolaw.progress import progress_bar
    from simulator.distributed.multihost import shared_then_merged
    from simulator.ensemble import rank_members

    out_dir = Path(out_dir)
    signature = spec.signature()
    final = out_dir / TRAINING_FILE
    if final.exists():
        with h5py.File(final, "r") as f:
            same = f.attrs.get("signature") == signature and int(f.attrs["count"]) == spec.count
        if same:
            return final
        raise ValueError(f"out={str(out_dir)!r} already holds another training set")
    if comm is None:
        from mpi4py import MPI

        comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    chunks = math.ceil(spec.count / spec.chunk)

    def work() -> None:
        sizes = {c: len(_chunk_members(spec, c)) for c in rank_members(chunks, rank, size)}
        todo = [
            c for c, n in sizes.items() if not _chunk_done(_chunk_path(out_dir, c), signature, n)
        ]
        with progress_bar(
            total=sum(sizes.values()),
            initial=sum(sizes.values()) - sum(sizes[c] for c in todo),
            desc="training set",
            unit="sim",
            disable=not (progress and rank == 0),
        ) as bar:
            for c in todo:
                start, rows = perf_counter(), []
                for i in _chunk_members(spec, c):
                    rows.append(simulate_member(spec, i))
                    bar.update(1)
                seconds = perf_counter() - start
                with atomic_h5(_chunk_path(out_dir, c)) as f:
                    f.attrs["signature"] = signature
                    f.attrs["seconds"] = seconds
                    f["theta"] = np.stack([r[0] for r in rows])
                    f["seeds"] = np.asarray([r[1] for r in rows], np.int64)
                    f["k"] = rows[0][2]
                    f["pk"] = np.stack([r[3] for r in rows])
                    f["counts"] = np.stack([r[4] for r in rows])

    return shared_then_merged(comm, work, lambda: _merge(spec, out_dir, chunks))


@dataclasses.dataclass(frozen=True)
class TrainingSet:
    """A ``training_set.h5`` in memory: ``theta`` ``(n, p)``, ``names`` ``(p,)``, ``k``
    ``(nbins,)`` [h/Mpc], ``pk`` ``(n, nbins)`` [(Mpc/h)^3], ``seeds`` ``(n,)``,
    ``selection`` ``(m, m, m)``, the file ``attrs`` and its ``path``; the counts stay on disk
    until :meth:`read_counts`."""

    theta: np.ndarray
    names: tuple[str, ...]
    k: np.ndarray
    pk: np.ndarray
    seeds: np.ndarray
    selection: np.ndarray
    attrs: dict[str, Any]
    path: Path | None = None

    def read_counts(self, rows: np.ndarray | None = None) -> np.ndarray:
        """Galaxy counts ``(len(rows), m, m, m)`` [galaxies per cell] of the members ``rows``
        (integer indices; ``None``: all ``n``), read from :attr:`path`.

        Raises:
            ValueError: the file stores no counts (simulated before they were stored).
        """
        import h5py

        if self.path is None:
            raise ValueError("this training set has no file to read counts from (path=None)")
        with h5py.File(self.path, "r") as f:
            if "counts" not in f:
                raise ValueError(
                    f"data={str(self.path)!r} stores no counts (simulated before they were "
                    "kept): simulate the set again with cosmolaw sbi simulate into a new --out"
                )
            if rows is None:
                return f["counts"][()]
            unique, inverse = np.unique(np.asarray(rows, int), return_inverse=True)
            return f["counts"][unique][inverse]

    @property
    def simulation_seconds(self) -> float:
        """Seconds spent simulating the members, summed over the chunks (over the MPI ranks
        and the interrupted runs that wrote them); NaN for a set written before it was kept."""
        return float(self.attrs.get("simulation_seconds", np.nan))

    @property
    def prior(self) -> Any:
        """The prior the parameters were drawn from."""
        return prior_from_dict(json.loads(self.attrs["prior"]))

    def spec(self) -> TrainingSetSpec:
        """The specification the members were simulated with."""
        from inference.data import model_from_attrs

        conf, cosmo, obs, model = model_from_attrs(self.attrs)
        return TrainingSetSpec(
            count=len(self.theta),
            prior=self.prior,
            conf=conf,
            cosmo=cosmo,
            obs=obs,
            model=model,
            selection=self.selection,
            seed=int(self.attrs["seed"]),
        )


def read_training_set(path: str | os.PathLike) -> TrainingSet:
    """Read ``training_set.h5`` (a directory is taken to hold one)."""
    import h5py

    path = Path(path)
    if path.is_dir():
        path = path / TRAINING_FILE
    if not path.is_file():
        raise ValueError(
            f"data={str(path)!r} is invalid: no {TRAINING_FILE} (run cosmolaw sbi simulate)"
        )
    with h5py.File(path, "r") as f:
        attrs = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in f.attrs.items()}
        return TrainingSet(
            theta=f["theta"][()],
            names=tuple(str(n) for n in f["theta"].attrs["names"]),
            k=f["power/k"][()],
            pk=f["power/pk"][()],
            seeds=f["seeds"][()],
            selection=f["selection"][()],
            attrs=attrs,
            path=path,
        )
