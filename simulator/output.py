"""Writing a simulation run: ``sim.h5`` (fields, spectra, particles) and ``config.toml``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from cosmolaw.io import atomic_h5, set_attrs, write_toml
from cosmolaw.pytree import to_dict
from simulator.config import SimConfig
from simulator.cosmology import Cosmology
from simulator.linear_power import linear_power
from simulator.measure import power_spectrum
from simulator.pipeline import SimResult


def run_metadata(cosmo: Cosmology, conf: SimConfig, seed: int) -> dict[str, Any]:
    """Configuration of a run as a nested dict of plain Python values."""
    return {"seed": seed, "config": to_dict(conf), "cosmology": to_dict(cosmo)}


def _dataset(group, name: str, data, units: str, description: str) -> None:
    ds = group.create_dataset(name, data=np.asarray(data))
    ds.attrs["units"] = units
    ds.attrs["description"] = description


def _write_fields(group, delta, disp, vel, box: float, a: float, cosmo: Cosmology) -> None:
    spec = power_spectrum(delta, box)
    _dataset(group, "delta", delta, "1", f"CIC density contrast rho/mean - 1 at a={a:g}")
    _dataset(group, "disp", disp, "Mpc/h", "particle displacements from the lattice, (N, 3)")
    _dataset(group, "vel", vel, "Mpc/h", "particle velocities dx/dlna, (N, 3)")
    _dataset(group, "pk", spec.power, "(Mpc/h)^3", f"power spectrum of delta at a={a:g}")
    _dataset(group, "pk_linear", linear_power(spec.k, cosmo, a), "(Mpc/h)^3", "linear P(k, a)")


def write_sim(
    out_dir: str | os.PathLike, result: SimResult, cosmo: Cosmology, conf: SimConfig, seed: int
) -> Path:
    """Write ``out_dir/sim.h5`` and ``out_dir/config.toml`` atomically.

    ``sim.h5`` holds ``fields/{noise, delta_linear, delta}``, ``particles/{disp, vel}``,
    ``power/{k, pk, pk_linear, pk_linear_field, modes}`` and, for each snapshot at scale
    factor ``a``, ``snapshots/a=<a>/{delta, disp, vel, pk, pk_linear}``. Every dataset has
    ``units`` and ``description`` attributes; the configuration is stored as file attributes
    ``config/...``, ``cosmology/...`` and ``seed``.

    Returns:
        Path of ``sim.h5``.
    """
    out_dir = Path(out_dir)
    meta = run_metadata(cosmo, conf, seed)
    box, a_stop = conf.box, conf.a_stop
    spec = power_spectrum(result.delta, box)
    spec_lin = power_spectrum(result.delta_linear, box)
    path = out_dir / "sim.h5"
    with atomic_h5(path) as f:
        set_attrs(f, meta)
        fields = f.create_group("fields")
        _dataset(fields, "noise", result.noise, "1", "unit-variance white noise")
        _dataset(fields, "delta_linear", result.delta_linear, "1", "linear density contrast, a=1")
        _dataset(fields, "delta", result.delta, "1", f"final CIC density contrast, a={a_stop:g}")
        parts = f.create_group("particles")
        _dataset(parts, "disp", result.state.disp, "Mpc/h", "final displacements from lattice")
        _dataset(parts, "vel", result.state.vel, "Mpc/h", "final velocities dx/dlna")
        power = f.create_group("power")
        _dataset(power, "k", spec.k, "h/Mpc", "mode-weighted mean |k| of each shell")
        _dataset(power, "modes", spec.modes, "1", "number of Fourier modes per shell")
        _dataset(power, "pk", spec.power, "(Mpc/h)^3", "power spectrum of fields/delta")
        _dataset(
            power,
            "pk_linear",
            linear_power(spec.k, cosmo, a_stop),
            "(Mpc/h)^3",
            f"model linear P(k) at a={a_stop:g}",
        )
        _dataset(
            power,
            "pk_linear_field",
            spec_lin.power,
            "(Mpc/h)^3",
            "power spectrum of fields/delta_linear (a=1)",
        )
        for a, state, delta in zip(
            conf.snapshots, result.snapshots, result.snapshot_deltas, strict=True
        ):
            group = f.create_group(f"snapshots/a={a:g}")
            group.attrs["a"] = a
            _write_fields(group, delta, state.disp, state.vel, box, a, cosmo)
    write_toml(out_dir / "config.toml", meta)
    return path
