"""Binned power spectra of periodic 2D and 3D fields (the "P(k) bins" summary vector).

Bins are linear in |k| from half the fundamental frequency to the corner of the mesh, so every
non-zero mode is in exactly one bin. Each rfftn mode is weighted by the number of full-grid
modes it stands for, so a bin average is the average over the full FFT grid.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from discovery.compress.grf import rfft_multiplicity, rfft_wavenumbers, validate_shape


class PowerBins(NamedTuple):
    """Mode-to-bin assignment on the rfftn grid of one mesh (NumPy arrays, static)."""

    index: np.ndarray  #: bin of each rfftn mode, ``n_bins`` for the zero mode; rfft-grid shape
    weight: np.ndarray  #: full-grid modes each rfftn mode stands for (0 for the zero mode)
    counts: np.ndarray  #: full-grid modes per bin, shape (n_bins,)
    k_mean: np.ndarray  #: mode-weighted mean |k| per bin, shape (n_bins,), in 1/[box]


@functools.lru_cache(maxsize=16)
def power_bins(shape: tuple[int, ...], box: float, n_bins: int) -> PowerBins:
    """Assign the modes of a ``shape`` mesh of side ``box`` to ``n_bins`` linear |k| bins.

    Raises ValueError when a bin would be empty (too many bins for the mesh).
    """
    shape = validate_shape(shape, box)
    if int(n_bins) < 1:
        raise ValueError(f"n_bins={n_bins}: need at least one bin")
    k = rfft_wavenumbers(shape, box)
    k_fund = 2 * np.pi / box
    edges = np.linspace(0.5 * k_fund, k.max() * (1 + 1e-6), int(n_bins) + 1)
    index = np.clip(np.digitize(k, edges) - 1, 0, n_bins - 1)
    index[k == 0] = n_bins
    weight = rfft_multiplicity(shape) * (k > 0)
    counts = np.bincount(index.ravel(), weights=weight.ravel(), minlength=n_bins + 1)[:n_bins]
    if np.any(counts == 0):
        raise ValueError(
            f"n_bins={n_bins}: too many bins for shape={shape}, {int(np.sum(counts == 0))} "
            "would be empty"
        )
    k_sum = np.bincount(index.ravel(), weights=(weight * k).ravel(), minlength=n_bins + 1)
    return PowerBins(index, weight, counts, k_sum[:n_bins] / counts)


def binned_power(field: jax.Array, bins: PowerBins, box: float) -> jax.Array:
    """Band powers ``P_b = V / N^2 <|delta_k|^2>_b`` of one field; shape (n_bins,), [box]^ndim."""
    n_bins = bins.counts.shape[0]
    ncell = int(np.prod(field.shape))
    volume = box**field.ndim
    power = jnp.abs(jnp.fft.rfftn(field)) ** 2 * jnp.asarray(bins.weight, field.dtype)
    total = jax.ops.segment_sum(power.ravel(), bins.index.ravel(), num_segments=n_bins + 1)
    return total[:n_bins] * (volume / ncell**2) / jnp.asarray(bins.counts, field.dtype)


def coarse_log_power(power: jax.Array, counts: np.ndarray, n_coarse: int) -> jax.Array:
    """ln of mode-weighted averages of consecutive groups of fine band powers.

    ``power`` (..., n_bins) with ``counts`` (n_bins,) modes per bin -> (..., n_coarse): a few
    interpretable inputs (large-, intermediate-, small-scale power) for symbolic laws.
    """
    n_bins = counts.shape[0]
    if not 1 <= int(n_coarse) <= n_bins:
        raise ValueError(f"n_coarse={n_coarse}: must be between 1 and n_bins={n_bins}")
    weights = np.zeros((int(n_coarse), n_bins))
    for i, group in enumerate(np.array_split(np.arange(n_bins), int(n_coarse))):
        weights[i, group] = counts[group] / counts[group].sum()
    return jnp.log(power @ jnp.asarray(weights.T, power.dtype))
