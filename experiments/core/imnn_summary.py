"""IMNN summaries of the galaxy counts for implicit-likelihood inference (``--summary imnn``).

An information-maximising neural network (Charnock, Lavaux & Wandelt 2018) is trained on the
3D galaxy counts themselves: a periodic CNN (:class:`discovery.compress.networks.PeriodicCNN`)
maps counts ``(N, m, m, m)`` [galaxies per cell] to ``p`` summaries ``(N, p)``, one per
inferred parameter, trained by :func:`discovery.compress.imnn.train_imnn` to maximise the
Fisher information at a fiducial point. The Fisher information needs simulations at the
fiducial parameters and seed-matched simulations at ``theta_i +- delta_i``
(:class:`discovery.compress.datasets.FiniteDifferenceSet`); they are drawn with the training
set's own simulator and observation model (bias, selection, noise:
:func:`inference.implicit.training_set.simulate_counts`), so the summary sees exactly what the
neural posterior is trained on and what a mock of ``cosmolaw mock`` holds.

Why here: ``inference`` may not import ``discovery`` and ``discovery`` may not import the
simulator, so the wiring lives in ``experiments`` (which ties the three together, as
``experiments.core.law_search`` does for the symbolic search). Importing this module registers
the ``"imnn"`` kind in :data:`inference.implicit.summaries.FIELD_SUMMARIES`; the ``cosmolaw``
command imports it before ``cosmolaw sbi`` runs, so ``sbi train --summary imnn`` and ``sbi
infer`` find it, while ``inference`` itself stays free of ``discovery``.

Python entry point: :func:`train_imnn_summary` (a training set or its specification in, an
:class:`IMNNSummary` out). :func:`fit_field_imnn` is the same for any simulator of fields (the
Gaussian-random-field test uses it).

Cost: ``2 (n_s + 2 p n_d)`` simulations (training and validation sets) and full-batch training
on them: meant for meshes up to 32^3 on CPUs. ``pool = f`` sums the counts over blocks of
``f^3`` cells before the network (a coarser survey of the same galaxies, still Poisson): each
factor 2 divides the network's cost by about 8, and keeps the modes below ``k_Nyq / f``.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from inference.implicit.summaries import register_field_summary

#: File of the trained network in a model directory.
IMNN_FILE = "imnn.h5"
#: Fields per compiled application of the network (the last batch is padded).
APPLY_BATCH = 32

#: ``simulate(theta, seed) -> field``: parameters ``(p,)`` and an integer seed >= 0 to a field
#: ``(m, m, m)``; the same seed at other parameters must reuse the same random numbers.
FieldSimulator = Callable[[np.ndarray, int], np.ndarray]


@dataclasses.dataclass(eq=False)
class IMNNSummary:
    """A trained IMNN: counts ``(N, m, m, m)`` -> summaries ``(N, p)``.

    Attributes:
        model: the flax NNX network (:class:`discovery.compress.networks.PeriodicCNN`).
        network: its ``spec`` for :func:`discovery.compress.networks.build_network`.
        names: the ``p`` parameters, in the order of the summaries.
        fiducial: parameters ``(p,)`` the Fisher information was maximised at (prior units).
        delta: finite-difference steps ``(p,)`` (prior units).
        fisher: Fisher matrix ``(p, p)`` of the summaries on the validation set (Hartlap
            debiased; units 1 / (parameter_i parameter_j)).
        mesh: cells per side ``m`` of the fields it takes.
        simulations: simulations spent on training and validation sets.
        best_step: the training step kept by early stopping.
        pool: counts are summed over blocks of ``pool^3`` cells before the network
            (:func:`pool_counts`).
    """

    model: Any
    network: dict[str, Any]
    names: tuple[str, ...]
    fiducial: np.ndarray
    delta: np.ndarray
    fisher: np.ndarray
    mesh: int
    simulations: int
    best_step: int
    pool: int = 1

    def __call__(self, counts: np.ndarray) -> np.ndarray:
        """Summaries ``(N, p)`` of fields ``(N, m, m, m)``, or ``(p,)`` of one ``(m, m, m)``."""
        from discovery.compress.networks import summarise

        counts = np.asarray(counts, np.float32)
        one = counts.ndim == 3
        batch = counts[None] if one else counts
        if batch.ndim != 4 or batch.shape[1:] != (self.mesh,) * 3:
            raise ValueError(
                f"counts of shape {counts.shape} are invalid: need (N, {self.mesh}, "
                f"{self.mesh}, {self.mesh}) or ({self.mesh}, {self.mesh}, {self.mesh})"
            )
        batch = pool_counts(batch, self.pool)
        out = []
        for start in range(0, len(batch), APPLY_BATCH):
            block = batch[start : start + APPLY_BATCH]
            pad = APPLY_BATCH - len(block)
            padded = np.concatenate([block, np.zeros((pad, *block.shape[1:]), np.float32)])
            out.append(np.asarray(summarise(self.model, padded))[: len(block)])
        x = np.concatenate(out).astype(float)
        return x[0] if one else x

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for ``model.json`` (``kind`` ``"imnn"``)."""
        return {
            "kind": "imnn",
            "file": IMNN_FILE,
            "names": list(self.names),
            "fiducial": self.fiducial.tolist(),
            "delta": self.delta.tolist(),
            "fisher": self.fisher.tolist(),
            "mesh": self.mesh,
            "simulations": self.simulations,
            "best_step": self.best_step,
            "pool": self.pool,
            "network": self.network,
        }

    def save(self, model_dir: str | os.PathLike) -> Path:
        """Write the network and this summary's description to ``model_dir/imnn.h5``."""
        from discovery.compress.io import save_network

        path = Path(model_dir) / IMNN_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        save_network(path, self.model, self.network, {"summary": json.dumps(self.to_dict())})
        return path

    @classmethod
    def load(cls, model_dir: str | os.PathLike) -> IMNNSummary:
        """The summary saved by :meth:`save` in ``model_dir`` (a directory or the file)."""
        import h5py

        from discovery.compress.io import load_network

        path = Path(model_dir)
        path = path / IMNN_FILE if path.is_dir() else path
        if not path.is_file():
            raise ValueError(f"model={str(model_dir)!r} is invalid: no {IMNN_FILE} in it")
        model, network = load_network(path)
        with h5py.File(path, "r") as f:
            table = json.loads(f.attrs["summary"])
        return cls(
            model=model,
            network=network,
            names=tuple(table["names"]),
            fiducial=np.asarray(table["fiducial"], float),
            delta=np.asarray(table["delta"], float),
            fisher=np.asarray(table["fisher"], float),
            mesh=int(table["mesh"]),
            simulations=int(table["simulations"]),
            best_step=int(table["best_step"]),
            pool=int(table.get("pool", 1)),
        )


def pool_counts(counts: np.ndarray, factor: int) -> np.ndarray:
    """Counts ``(..., m, m, m)`` summed over blocks of ``factor^3`` cells: ``(..., m / factor,
    m / factor, m / factor)`` [galaxies per coarse cell]; ``factor = 1`` returns them as they
    are. ``factor`` must divide ``m``."""
    if factor == 1:
        return counts
    *lead, m, _, _ = counts.shape
    if m % factor:
        raise ValueError(f"pool={factor} is invalid for fields of {m} cells a side: must divide it")
    c = m // factor
    blocks = counts.reshape(*lead, c, factor, c, factor, c, factor)
    return blocks.sum(axis=(-5, -3, -1))


def _check_int(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
        raise ValueError(f"{name}={value!r} is invalid: must be an integer >= {low}")
    return int(value)


def _finite_difference_set(
    simulate: FieldSimulator,
    fiducial: np.ndarray,
    delta: np.ndarray,
    seeds: np.ndarray,
    n_d: int,
    bar: Any,
) -> Any:
    """Fields at ``fiducial`` for every seed and at ``fiducial +- delta_i e_i`` for the first
    ``n_d`` seeds (:class:`discovery.compress.datasets.FiniteDifferenceSet`, float32)."""
    import jax.numpy as jnp

    from discovery.compress.datasets import FiniteDifferenceSet

    def run(theta: np.ndarray, seed: int) -> np.ndarray:
        field = np.asarray(simulate(theta, int(seed)), np.float32)
        bar.update(1)
        return field

    steps = np.diag(delta)
    fid = np.stack([run(fiducial, s) for s in seeds])
    plus = np.stack([np.stack([run(fiducial + d, s) for d in steps]) for s in seeds[:n_d]])
    minus = np.stack([np.stack([run(fiducial - d, s) for d in steps]) for s in seeds[:n_d]])
    return FiniteDifferenceSet(
        jnp.asarray(fid), jnp.asarray(plus), jnp.asarray(minus), jnp.asarray(delta, jnp.float32)
    )


def fit_field_imnn(
    simulate: FieldSimulator,
    fiducial: Sequence[float] | np.ndarray,
    delta: Sequence[float] | np.ndarray,
    names: Sequence[str],
    n_s: int = 200,
    n_d: int | None = None,
    channels: Sequence[int] = (8, 16, 32),
    config: Any = None,
    seed: int = 0,
    progress: bool = True,
    pool: int = 1,
) -> IMNNSummary:
    """Train an IMNN on 3D fields of any seed-matched simulator.

    Args:
        simulate: ``simulate(theta, seed) -> field``, parameters ``(p,)`` and an integer seed
            >= 0 to a field ``(m, m, m)`` (``m`` even, >= 8); a seed must give the same random
            numbers at every ``theta``.
        fiducial: parameters ``(p,)`` at which the Fisher information is maximised.
        delta: finite-difference steps ``(p,)`` (> 0, same units as ``fiducial``).
        names: the ``p`` parameter names.
        n_s: fiducial simulations per set (training and validation; >= 4 and > p + 2).
        n_d: seeds with derivative simulations per set (1 <= n_d <= n_s; default ``n_s // 2``).
        channels: CNN channels per block; each block halves the mesh (``2**len(channels)``
            must divide ``m``).
        config: :class:`discovery.compress.imnn.IMNNConfig` (default: its defaults).
        seed: integer >= 0 of the simulation seeds and of the network's initial weights.
        progress: show bars over the simulations and the training steps.
        pool: sum the fields over blocks of ``pool^3`` cells before the network
            (:func:`pool_counts`; ``pool`` must divide ``m``, and ``2**len(channels)`` the
            pooled mesh).

    Returns:
        The trained :class:`IMNNSummary`, with the Fisher matrix of its summaries on the
        validation set. ``2 (n_s + 2 p n_d)`` simulations are run.
    """
    from cosmolaw.progress import progress_bar
    from discovery.compress.imnn import IMNNConfig, compressor_fisher, train_imnn
    from discovery.compress.networks import build_network, fit_input_scaling

    fiducial = np.asarray(fiducial, float).reshape(-1)
    delta = np.asarray(delta, float).reshape(-1)
    names = tuple(str(n) for n in names)
    p = len(names)
    if fiducial.shape != (p,) or not np.all(np.isfinite(fiducial)):
        raise ValueError(f"fiducial={fiducial.tolist()} is invalid: need {p} finite values")
    if delta.shape != (p,) or not np.all(delta > 0):
        raise ValueError(f"delta={delta.tolist()} is invalid: need {p} values > 0")
    n_s = _check_int("n_s", n_s, max(4, p + 3))
    n_d = _check_int("n_d", n_s // 2 if n_d is None else n_d, 1)
    if n_d > n_s:
        raise ValueError(f"n_d={n_d} is invalid: must be <= n_s={n_s}")
    channels = tuple(_check_int("channels", int(c), 1) for c in channels)
    if not channels:
        raise ValueError("channels=() is invalid: need at least one block")
    seed = _check_int("seed", seed, 0)
    pool = _check_int("pool", pool, 1)
    config = IMNNConfig() if config is None else config

    def pooled(theta: np.ndarray, sim_seed: int) -> np.ndarray:
        return pool_counts(np.asarray(simulate(theta, sim_seed), np.float32), pool)

    rng = np.random.default_rng([seed, 7])
    seeds = rng.integers(2**31 - 1, size=(2, n_s))
    per_set = n_s + 2 * p * n_d
    with progress_bar(
        total=2 * per_set, desc="IMNN simulations", unit="sim", disable=not progress
    ) as bar:
        train, validation = (
            _finite_difference_set(pooled, fiducial, delta, s, n_d, bar) for s in seeds
        )
    mesh = int(train.fiducial.shape[1])
    if train.fiducial.shape[1:] != (mesh,) * 3 or mesh % 2 ** len(channels):
        raise ValueError(
            f"fields of shape {tuple(train.fiducial.shape[1:])} are invalid: need (m, m, m) "
            f"with m a multiple of 2**len(channels) = {2 ** len(channels)}"
        )
    network = {"kind": "cnn", "ndim": 3, "n_out": p, "channels": list(channels)}
    model = build_network(network, seed=seed)
    fit_input_scaling(model, train.fiducial)
    history = train_imnn(model, train, validation, config, seed=seed, progress=progress)
    fisher = np.asarray(compressor_fisher(model, validation).fisher, float)
    return IMNNSummary(
        model=model,
        network=network,
        names=names,
        fiducial=fiducial,
        delta=delta,
        fisher=fisher,
        mesh=mesh * pool,
        simulations=2 * per_set,
        best_step=int(history["best_step"]),
        pool=pool,
    )


def default_fiducial(prior: Any) -> tuple[np.ndarray, np.ndarray]:
    """Fiducial parameters and steps ``(p,)`` of a prior: the centre of a box prior with steps
    of 5% of its widths, or the mean of a Gaussian prior with steps of 0.2 standard
    deviations."""
    if hasattr(prior, "low"):
        low, high = np.asarray(prior.low, float), np.asarray(prior.high, float)
        return 0.5 * (low + high), 0.05 * (high - low)
    return np.asarray(prior.mean, float), 0.2 * np.sqrt(np.diag(np.asarray(prior.cov, float)))


def train_imnn_summary(
    data: Any,
    fiducial: Mapping[str, float] | Sequence[float] | None = None,
    delta: Mapping[str, float] | Sequence[float] | None = None,
    n_s: int = 200,
    n_d: int | None = None,
    channels: Sequence[int] = (8, 16, 32),
    config: Any = None,
    seed: int = 0,
    progress: bool = True,
    pool: int = 1,
) -> IMNNSummary:
    """Train the IMNN summary of a training set's galaxy counts (what ``sbi train --summary
    imnn`` does).

    Args:
        data: the training set: a
            :class:`inference.implicit.training_set.TrainingSetSpec`, a
            :class:`~inference.implicit.training_set.TrainingSet`, or the path of a
            ``training_set.h5`` (or its directory). Its prior names the ``p`` parameters; its
            simulator, observation model (bias, noise) and selection draw every IMNN
            simulation (:func:`inference.implicit.training_set.simulate_counts`).
        fiducial: parameters at which the Fisher information is maximised, in the prior's
            units (Omega_m and sigma8 dimensionless, bias parameters dimensionless,
            ``nbar_cell`` in galaxies per cell): a mapping name -> value (every prior name) or
            a sequence in the prior's order. Default: the centre of a box prior (the mean of
            a Gaussian one). The mock's true parameters are the best choice when known.
        delta: finite-difference steps, same forms and units (> 0). Default: 5% of a box
            prior's widths (0.2 standard deviations of a Gaussian one).
        n_s: fiducial simulations per set (training and validation; >= 4 and > p + 2).
        n_d: seeds with simulations at ``fiducial +- delta_i`` per set (default ``n_s // 2``).
        channels: CNN channels per block; ``2**len(channels)`` must divide the mesh.
        config: :class:`discovery.compress.imnn.IMNNConfig` (learning rate, steps, patience,
            regulariser); default its defaults (2000 steps at most, patience 200).
        seed: integer >= 0 of the IMNN's simulation seeds and initial weights.
        progress: show bars.
        pool: sum the counts over blocks of ``pool^3`` cells before the network
            (:func:`pool_counts`; it must divide the mesh, and ``2**len(channels)`` must
            divide the pooled mesh).

    Returns:
        The trained :class:`IMNNSummary`: ``summary(counts)`` maps counts ``(N, m, m, m)``
        [galaxies per cell] to ``(N, p)`` summaries (``(p,)`` for one ``(m, m, m)`` field);
        ``summary.fisher`` is their Fisher matrix ``(p, p)`` at ``fiducial`` on the
        validation set; ``summary.save(model_dir)`` / ``IMNNSummary.load(model_dir)`` store
        it. It costs ``summary.simulations = 2 (n_s + 2 p n_d)`` simulations.
    """
    from inference.implicit.training_set import (
        TrainingSet,
        TrainingSetSpec,
        read_training_set,
        simulate_counts,
    )

    if isinstance(data, str | os.PathLike):
        data = read_training_set(data)
    if isinstance(data, TrainingSet):
        data = data.spec()
    if not isinstance(data, TrainingSetSpec):
        raise ValueError(
            f"data={type(data).__name__} is invalid: need a TrainingSetSpec, a TrainingSet "
            "or the path of a training_set.h5"
        )
    spec = data
    pool = _check_int("pool", pool, 1)
    if spec.conf.mesh % pool:
        raise ValueError(f"pool={pool} is invalid for mesh={spec.conf.mesh}: it must divide it")
    if (spec.conf.mesh // pool) % 2 ** len(tuple(channels)):
        raise ValueError(
            f"channels={list(channels)} is invalid for mesh={spec.conf.mesh} pooled by {pool}: "
            "2**len(channels) must divide the pooled mesh"
        )
    names = spec.prior.names
    centre, step = default_fiducial(spec.prior)
    fiducial = centre if fiducial is None else _by_name("fiducial", fiducial, names)
    delta = step if delta is None else _by_name("delta", delta, names)
    if not np.all(delta > 0):
        raise ValueError(f"delta={delta.tolist()} is invalid: every step must be > 0")
    for sign in (-1, 1):
        for i, name in enumerate(names):
            theta = fiducial.copy()
            theta[i] += sign * delta[i]
            try:
                spec.member_model(theta)[0].validate()
            except ValueError as err:
                raise ValueError(
                    f"fiducial={fiducial.tolist()}, delta={delta.tolist()}: {name}="
                    f"{theta[i]:.6g} is not a valid model ({err})"
                ) from None

    def simulate(theta: np.ndarray, seed: int) -> np.ndarray:
        return simulate_counts(spec, theta, seed)

    return fit_field_imnn(
        simulate, fiducial, delta, names, n_s, n_d, channels, config, seed, progress, pool
    )


def _by_name(
    label: str, values: Mapping[str, float] | Sequence[float], names: Sequence[str]
) -> np.ndarray:
    """Values ``(p,)`` in the order of ``names`` from a mapping or a sequence."""
    if isinstance(values, Mapping):
        if set(values) != set(names):
            raise ValueError(
                f"{label}={dict(values)!r} is invalid: need exactly the prior's names {list(names)}"
            )
        values = [values[n] for n in names]
    out = np.asarray(values, float).reshape(-1)
    if out.shape != (len(names),) or not np.all(np.isfinite(out)):
        raise ValueError(
            f"{label}={np.asarray(values).tolist()} is invalid: need {len(names)} finite values "
            f"(for {list(names)})"
        )
    return out


def _train_for_cli(
    data: Any, sims: int, steps: int, seed: int, progress: bool, pool: int = 1
) -> IMNNSummary:
    """``sbi train --summary imnn``: :func:`train_imnn_summary` with ``n_s = sims``, at most
    ``steps`` training steps (patience a quarter of them) and the counts in ``pool^3``
    blocks."""
    from discovery.compress.imnn import IMNNConfig

    config = IMNNConfig(max_steps=steps, patience=max(1, steps // 4))
    return train_imnn_summary(
        data, n_s=sims, config=config, seed=seed, progress=progress, pool=pool
    )


register_field_summary("imnn", _train_for_cli, IMNNSummary.load)
