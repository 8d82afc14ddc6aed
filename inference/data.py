"""Galaxy-count data for the inference: read ``mock.h5`` (issue 3's format) and refuse bad data.

Refused with a ``ValueError`` naming the dataset: counts that are not finite or negative, a
selection whose shape disagrees with the counts or the mesh, a selection outside [0, 1], an
empty mask (no observed cell).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

#: Truth datasets of ``mock.h5`` and the field names the inference uses for them.
TRUTH_FIELDS = {"white_noise": "s", "delta_linear": "delta_L", "delta_observed": "delta"}


@dataclasses.dataclass(frozen=True)
class CountsData:
    """Observed counts on the mesh and how they were made.

    Attributes:
        counts: galaxy counts per cell ``(m, m, m)`` (float32).
        selection: selection grid in [0, 1], ``(m, m, m)`` (float32); 0 marks unobserved cells.
        attrs: the mock's file attributes (``sim/*``, ``cosmology/*``, ``observation/*``).
        truth: true fields ``{"s", "delta_L", "delta"}`` and ``bias/<name>`` when present.
    """

    counts: np.ndarray
    selection: np.ndarray
    attrs: dict[str, Any]
    truth: dict[str, Any]


def validate_counts(counts: np.ndarray, selection: np.ndarray, mesh: int | None = None) -> None:
    """Raise ``ValueError`` for counts or a selection the likelihood cannot use.

    Args:
        counts: counts per cell, shape ``(m, m, m)``.
        selection: selection grid, same shape, values in [0, 1], not all zero.
        mesh: expected mesh size, if known (from the configuration).
    """
    counts = np.asarray(counts)
    selection = np.asarray(selection)
    if counts.ndim != 3 or len(set(counts.shape)) != 1:
        raise ValueError(f"data/counts has shape {counts.shape}: need a cubic (m, m, m) mesh")
    if mesh is not None and counts.shape != (mesh,) * 3:
        raise ValueError(
            f"data/counts has shape {counts.shape}, but the configuration's mesh is {mesh}"
        )
    if selection.shape != counts.shape:
        raise ValueError(
            f"data/selection has shape {selection.shape}, which disagrees with data/counts "
            f"{counts.shape}: the mask must be on the same grid"
        )
    if not np.all(np.isfinite(counts)):
        bad = int(np.sum(~np.isfinite(counts)))
        raise ValueError(f"data/counts has {bad} NaN or infinite cells: counts must be finite")
    if np.any(counts < 0):
        raise ValueError(
            f"data/counts has negative values (min {counts.min():g}): counts must be >= 0"
        )
    if not np.all(np.isfinite(selection)) or selection.min() < 0 or selection.max() > 1:
        raise ValueError("data/selection must be finite and lie in [0, 1]")
    if not np.any(selection > 0):
        raise ValueError("data/selection is zero everywhere: the mask is empty, nothing observed")


def compact_counts(counts: np.ndarray, discrete: bool) -> np.ndarray:
    """Counts ``(m, m, m)`` in the smallest dtype that holds them exactly.

    Integer-valued counts of a discrete noise model become ``uint8`` (all below 256),
    ``uint16`` (below 65536) or ``int32``; anything else stays ``float32``. The likelihood
    converts them to float inside its fused elementwise kernel, so at 1024^3 the data cost
    1 GB (uint8) instead of 4.3 GB (float32) on the device, with the same log density.
    """
    counts = np.asarray(counts)
    integral = discrete and bool(np.all(counts == np.round(counts)))
    if not integral or counts.size == 0:
        return counts.astype(np.float32)
    top = float(counts.max())
    for dtype in (np.uint8, np.uint16):
        if top <= np.iinfo(dtype).max:
            return counts.astype(dtype)
    return counts.astype(np.int32)


def load_counts(path: str | Path) -> CountsData:
    """Read and validate a ``mock.h5`` written by ``cosmolaw mock``."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"data={str(path)!r} is not a file: give a mock.h5 from cosmolaw mock")
    with h5py.File(path, "r") as f:
        for name in ("data/counts", "data/selection"):
            if name not in f:
                raise ValueError(f"data={str(path)!r} has no dataset {name!r}")
        counts = np.asarray(f["data/counts"][()], np.float32)
        selection = np.asarray(f["data/selection"][()], np.float32)
        attrs = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in f.attrs.items()}
        truth: dict[str, Any] = {}
        for name, field in TRUTH_FIELDS.items():
            if f"truth/{name}" in f:
                truth[field] = np.asarray(f[f"truth/{name}"][()], np.float32)
        if "truth/bias" in f:
            for name, dset in f["truth/bias"].items():
                truth[f"bias/{name}"] = float(dset[()])
    mesh = attrs.get("sim/mesh")
    validate_counts(counts, selection, None if mesh is None else int(mesh))
    return CountsData(counts, selection, attrs, truth)


def _group(attrs: dict[str, Any], prefix: str) -> dict[str, Any]:
    """Attributes ``prefix/<name>`` as ``{name: value}`` (one level, nested keys kept whole)."""
    out = {}
    for key, value in attrs.items():
        if key.startswith(prefix + "/"):
            if isinstance(value, np.ndarray):
                value = value.tolist()
            out[key[len(prefix) + 1 :]] = value
    return out


def model_from_attrs(attrs: dict[str, Any]) -> tuple[Any, Any, Any, str]:
    """``(SimConfig, Cosmology, Observation, model)`` of a mock from its file attributes."""
    from simulator.config import SimConfig
    from simulator.cosmology import Cosmology
    from simulator.observe.mock import Observation
    from simulator.observe.rsd import RSDConfig

    sim = _group(attrs, "sim")
    if not sim:
        raise ValueError("data has no sim/* attributes: it was not written by cosmolaw mock")
    sim["snapshots"] = tuple(np.atleast_1d(sim.get("snapshots", ())).tolist())
    sim.setdefault("ptcl_grid", None)
    conf = SimConfig(**{k: v for k, v in sim.items() if k in SimConfig.__dataclass_fields__})
    cosmo = Cosmology(
        **{
            k: v
            for k, v in _group(attrs, "cosmology").items()
            if k in Cosmology.__dataclass_fields__
        }
    )
    obs_attrs = _group(attrs, "observation")
    rsd = RSDConfig(
        obs_attrs.get("rsd/kind", "none"),
        los=tuple(obs_attrs.get("rsd/los", (0.0, 0.0, 1.0))),
        observer=tuple(obs_attrs["rsd/observer"]) if "rsd/observer" in obs_attrs else None,
    )
    obs = Observation(
        bias=obs_attrs.get("bias", "linear"),
        bias_params={
            k.split("/", 1)[1]: v for k, v in obs_attrs.items() if k.startswith("bias_params/")
        },
        nbar_cell=float(obs_attrs.get("nbar_cell", 1.0)),
        noise=obs_attrs.get("noise", "poisson"),
        noise_params={
            k.split("/", 1)[1]: v for k, v in obs_attrs.items() if k.startswith("noise_params/")
        },
        rsd=rsd,
    )
    return conf, cosmo, obs, str(attrs.get("model", "lpt1"))
