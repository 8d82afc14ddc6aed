"""End-to-end compression of the power-law Gaussian random field (CLI and benchmark workflow).

Simulates training, validation and test sets at ``theta = (A, B)``, trains the chosen compressor
(IMNN, regression or MOPED), measures the Fisher matrix of its summaries on the test set and
compares it with the analytic Fisher matrix of the field. With ``out_dir`` it writes a run
directory: ``config.toml``, ``compressor.h5``, ``summaries.h5`` and ``training.png``.
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from cosmolaw.io import atomic_h5, set_attrs, write_json, write_toml
from discovery.compress.datasets import simulate_fisher_set, summary_derivatives
from discovery.compress.distill import distill
from discovery.compress.fisher import fisher_stats
from discovery.compress.grf import gaussian_field, power_law_fisher, validate_shape
from discovery.compress.imnn import IMNNConfig, train_imnn
from discovery.compress.io import save_linear, save_network
from discovery.compress.moped import fit_moped
from discovery.compress.networks import build_network, fit_input_scaling, head_of
from discovery.compress.plots import plot_history
from discovery.compress.regression import RegressionConfig, train_regression
from discovery.compress.spectra import binned_power, coarse_log_power, power_bins
from discovery.compress.training import split_apply

COMPRESSORS = ("imnn", "regression", "moped")
NETWORKS = ("spectral", "cnn")


@dataclasses.dataclass(frozen=True)
class CompressConfig:
    """Settings of one compression run on a 2D field with P(k) = A k^-B (validated)."""

    compressor: str = "imnn"  #: "imnn", "regression" or "moped"
    network: str = "spectral"  #: "spectral" (P(k) bins + MLP) or "cnn" (periodic CNN)
    n: int = 32  #: mesh side, cells
    box: float = 1.0  #: box side (k in units of 1/box)
    amplitude: float = 1.0  #: fiducial A
    slope: float = 0.5  #: fiducial B
    n_sims: int = 1000  #: fiducial simulations in the training and the test set
    n_deriv: int = 1000  #: of which with derivatives
    n_bins: int = 16  #: P(k) bins of the spectral network and of MOPED
    hidden: tuple[int, ...] = ()  #: hidden layers of the MLP head
    channels: tuple[int, ...] = (8, 16, 32)  #: CNN channels per block
    learning_rate: float = 3e-3
    max_steps: int = 1500
    patience: int = 200
    prior_width: float = 0.2  #: regression prior: theta_fid * (1 +- prior_width), uniform
    distill_inputs: int = 0  #: symbolic distillation on this many coarse ln P(k) bands (0: off)
    distill_budget_s: float = 20.0  #: symbolic search time per summary
    seed: int = 0

    def __post_init__(self):
        if self.compressor not in COMPRESSORS:
            raise ValueError(f"compressor={self.compressor!r}: must be one of {COMPRESSORS}")
        if self.network not in NETWORKS:
            raise ValueError(f"network={self.network!r}: must be one of {NETWORKS}")
        if int(self.n) < 4 or int(self.n) % 2:
            raise ValueError(f"n={self.n}: the mesh side must be an even integer >= 4")
        validate_shape((self.n, self.n), self.box)
        if not (self.amplitude > 0 and self.slope > 0):
            raise ValueError(f"amplitude={self.amplitude}, slope={self.slope}: both must be > 0")
        if int(self.n_sims) < max(8, self.n_bins + 3):
            least = max(8, self.n_bins + 3)
            raise ValueError(f"n_sims={self.n_sims}: need at least max(8, n_bins + 3) = {least}")
        if not 1 <= int(self.n_deriv) <= int(self.n_sims):
            raise ValueError(f"n_deriv={self.n_deriv}: must be between 1 and n_sims={self.n_sims}")
        if not 0 < self.prior_width < 1:
            raise ValueError(f"prior_width={self.prior_width}: must be in (0, 1)")
        if any(h < 1 for h in self.hidden) or any(c < 1 for c in self.channels):
            raise ValueError(f"hidden={self.hidden}, channels={self.channels}: sizes must be >= 1")
        power_bins((self.n, self.n), self.box, self.n_bins)
        if self.distill_inputs and not 1 <= self.distill_inputs <= self.n_bins:
            raise ValueError(f"distill_inputs={self.distill_inputs}: must be 0..n_bins")
        if self.distill_inputs and self.network == "cnn" and self.compressor != "moped":
            raise ValueError(
                f"distill_inputs={self.distill_inputs}: distillation needs P(k) inputs, "
                "use network='spectral' or compressor='moped'"
            )
        if not self.distill_budget_s > 0:
            raise ValueError(f"distill_budget_s={self.distill_budget_s}: must be > 0")

    @property
    def theta(self) -> np.ndarray:
        """Fiducial parameters (A, B)."""
        return np.array([self.amplitude, self.slope])


def _simulator(cfg: CompressConfig):
    shape = (cfg.n, cfg.n)
    if cfg.network == "cnn" and cfg.compressor != "moped":
        return lambda theta, key: gaussian_field(theta, key, shape, cfg.box)
    bins = power_bins(shape, cfg.box, cfg.n_bins)
    return lambda theta, key: binned_power(
        gaussian_field(theta, key, shape, cfg.box), bins, cfg.box
    )


def _network_spec(cfg: CompressConfig) -> dict[str, Any]:
    if cfg.network == "cnn":
        return {"kind": "cnn", "ndim": 2, "n_out": 2, "channels": list(cfg.channels),
                "hidden": list(cfg.hidden)}  # fmt: skip
    return {"kind": "spectral", "shape": [cfg.n, cfg.n], "box": cfg.box, "n_bins": cfg.n_bins,
            "n_out": 2, "hidden": list(cfg.hidden)}  # fmt: skip


def _regression_set(cfg, simulator, key, n):
    k_theta, k_sim = jax.random.split(key)
    lo, hi = cfg.theta * (1 - cfg.prior_width), cfg.theta * (1 + cfg.prior_width)
    theta = jax.random.uniform(k_theta, (n, 2), minval=lo, maxval=hi)
    data = jax.lax.map(
        jax.jit(lambda tk: simulator(*tk)), (theta, jax.random.split(k_sim, n)), batch_size=64
    )
    return data, theta


def run_compression(
    cfg: CompressConfig, out_dir: str | os.PathLike | None = None, progress: bool = True
) -> dict[str, Any]:
    """Train and evaluate one compressor; returns ``fisher``, ``fisher_analytic``,
    ``fisher_fraction`` (ratio of determinants), ``train_s``, ``simulate_s`` and ``history``;
    with distillation also ``symbolic_expressions``, ``symbolic_fisher``, ``symbolic_fraction``
    (and ``symbolic``, the ``SymbolicSummaries``, when no run directory is written)."""
    simulator = _simulator(cfg)
    theta = jnp.asarray(cfg.theta, jnp.float32)
    keys = jax.random.split(jax.random.key(cfg.seed), 4)
    t0 = time.perf_counter()
    train = simulate_fisher_set(simulator, theta, keys[0], cfg.n_sims, cfg.n_deriv)
    val = simulate_fisher_set(simulator, theta, keys[1], cfg.n_sims, cfg.n_deriv)
    test = simulate_fisher_set(simulator, theta, keys[2], cfg.n_sims, cfg.n_deriv)
    simulate_s = time.perf_counter() - t0

    spec = _network_spec(cfg)
    history: dict[str, np.ndarray] = {}
    t0 = time.perf_counter()
    if cfg.compressor == "moped":
        compressor = fit_moped(train.fiducial, train.derivative)
        apply = compressor
    else:
        model = build_network(spec, seed=cfg.seed)
        # the spectral network's P(k) layer is fixed: train its head on precomputed band powers
        trained = head_of(model) if cfg.network == "spectral" else model
        fit_input_scaling(trained, train.fiducial)
        if cfg.compressor == "imnn":
            config = IMNNConfig(cfg.learning_rate, cfg.max_steps, cfg.patience)
            history = train_imnn(trained, train, val, config, seed=cfg.seed, progress=progress)
        else:
            rconfig = RegressionConfig(cfg.learning_rate, cfg.max_steps, cfg.patience)
            x_train, t_train = _regression_set(cfg, simulator, keys[3], cfg.n_sims)
            x_val, t_val = _regression_set(
                cfg, simulator, jax.random.fold_in(keys[3], 1), cfg.n_sims
            )
            history = train_regression(
                trained, x_train, t_train, x_val, t_val, rconfig, seed=cfg.seed, progress=progress
            )
        apply_fn, params = split_apply(trained)
        apply = jax.jit(lambda batch: apply_fn(params, batch))
    train_s = time.perf_counter() - t0

    summaries = apply(test.fiducial)
    derivatives = summary_derivatives(apply, test)
    stats = fisher_stats(summaries, derivatives, hartlap=True)
    analytic = power_law_fisher(cfg.theta, (cfg.n, cfg.n), cfg.box)
    fraction = float(np.linalg.det(np.asarray(stats.fisher, np.float64)) / np.linalg.det(analytic))
    result = {
        "fisher": np.asarray(stats.fisher),
        "fisher_analytic": analytic,
        "fisher_fraction": fraction,
        "train_s": train_s,
        "simulate_s": simulate_s,
        "history": history,
    }
    if cfg.distill_inputs:
        result.update(_distill(cfg, apply, train, test, analytic))
    if out_dir is not None:
        out = Path(out_dir)
        table = dataclasses.asdict(cfg)
        write_toml(out / "config.toml", {"compress": table, "network": spec})
        if cfg.compressor == "moped":
            save_linear(out / "compressor.h5", compressor)
        else:
            save_network(out / "compressor.h5", model, spec, attrs={"theta_fid": cfg.theta})
        _write_summaries(out / "summaries.h5", cfg, summaries, derivatives, result)
        if history:
            plot_history(out / "training.png", history, f"{cfg.compressor} ({cfg.network})")
        if cfg.distill_inputs:
            fronts = [front.to_dict() for front in result.pop("symbolic").fronts]
            write_json(out / "discoveries.json", {"summaries": fronts})
    return result


def _distill(cfg, apply, train, test, analytic) -> dict[str, Any]:
    """Symbolic laws for the summaries as functions of coarse ln P(k) bands, and the Fisher
    information they keep (measured on the test set like the compressor's own)."""
    counts = power_bins((cfg.n, cfg.n), cfg.box, cfg.n_bins).counts
    coarse = lambda p: coarse_log_power(p, counts, cfg.distill_inputs)
    rows = train.fiducial[: min(500, cfg.n_sims)]
    symbolic = distill(
        np.asarray(coarse(rows)),
        np.asarray(apply(rows)),
        [f"lnP{i}" for i in range(cfg.distill_inputs)],
        budget_s=cfg.distill_budget_s,
        seed=cfg.seed,
    )
    summarise_sym = lambda batch: symbolic(coarse(batch))
    stats = fisher_stats(
        summarise_sym(test.fiducial), summary_derivatives(summarise_sym, test), hartlap=True
    )
    det = np.linalg.det(np.asarray(stats.fisher, np.float64))
    return {
        "symbolic": symbolic,
        "symbolic_expressions": symbolic.expressions(),
        "symbolic_fisher": np.asarray(stats.fisher),
        "symbolic_fraction": float(det / np.linalg.det(analytic)),
    }


def _write_summaries(path, cfg, summaries, derivatives, result) -> None:
    with atomic_h5(path) as f:
        set_attrs(f, {"config": dataclasses.asdict(cfg)})
        f.attrs["fisher_fraction"] = result["fisher_fraction"]
        if "symbolic_fisher" in result:
            f.attrs["symbolic_fraction"] = result["symbolic_fraction"]
            f.attrs["symbolic_expressions"] = result["symbolic_expressions"]
            f.create_dataset("symbolic_fisher", data=result["symbolic_fisher"])
        entries = {
            "summaries": (summaries, "compressed test simulations at theta_fid, (n_sims, 2)"),
            "summary_derivatives": (derivatives, "d summaries / d theta, (n_deriv, 2, 2)"),
            "fisher": (result["fisher"], "Fisher matrix of the summaries (Hartlap-debiased)"),
            "fisher_analytic": (result["fisher_analytic"], "analytic Fisher matrix of the field"),
        }
        for name, (data, description) in entries.items():
            dset = f.create_dataset(name, data=np.asarray(data))
            dset.attrs["description"] = description
            dset.attrs["units"] = "parameters (A, B) in units of the fiducial field's own"
        for name, data in result["history"].items():
            f.create_dataset(f"history/{name}", data=np.asarray(data))
