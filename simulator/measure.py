"""Two-point measurements on meshes: power spectra, cross-correlation, transfer function.

All estimators use the ``rfftn`` convention of docs/conventions.md,
``P(k) = V / N_cells^2 <Re(a_k b_k^*)>``, averaged in spherical shells of width one
fundamental frequency ``k_f = 2 pi / box`` centred on multiples of ``k_f`` (the first
bin holds the modes with 0.5 k_f < |k| < 1.5 k_f), up to the Nyquist frequency. Each
``rfftn`` entry is weighted by the number of complex modes it stands for. They are
jit-able (the binning is static).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import Array

from simulator.fourier import cic_window, k_norm, mode_multiplicity


class Spectrum(NamedTuple):
    """Binned spectrum: ``k`` (h/Mpc, mode-weighted bin mean), ``power`` ((Mpc/h)^3) and
    ``modes`` (number of modes per bin), each of shape ``(nbins,)``."""

    k: Array
    power: Array
    modes: Array


def _bins(n: int, box: float, dtype) -> tuple[Array, Array, int]:
    kf = 2.0 * jnp.pi / box
    k = k_norm(n, box, dtype)
    idx = jnp.floor(k / kf + 0.5).astype(jnp.int32) - 1  # bin 0 = shell around k_f
    nbins = n // 2
    idx = jnp.where((idx >= 0) & (idx < nbins), idx, nbins)  # overflow bin dropped
    return k, idx, nbins


def _binned_mean(values: Array, idx: Array, weights: Array, nbins: int) -> tuple[Array, Array]:
    tot = jax.ops.segment_sum((values * weights).ravel(), idx.ravel(), nbins + 1)
    cnt = jax.ops.segment_sum(
        jnp.broadcast_to(weights, values.shape).ravel(), idx.ravel(), nbins + 1
    )
    return tot[:nbins] / jnp.maximum(cnt[:nbins], 1), cnt[:nbins]


def cross_power(
    field_a: Array,
    field_b: Array,
    box: float,
    compensate_cic: bool = False,
    shot_noise: float = 0.0,
) -> Spectrum:
    """Cross power spectrum of two real fields on the same mesh.

    Args:
        field_a, field_b: real fields (e.g. density contrasts), shape ``(n, n, n)``.
        box: box side in Mpc/h.
        compensate_cic: divide each field by the CIC assignment window.
        shot_noise: constant subtracted from the power, in (Mpc/h)^3 (e.g. ``box^3 / N``).

    Returns:
        ``Spectrum`` with ``n // 2`` bins up to the Nyquist frequency.
    """
    n = field_a.shape[0]
    dtype = field_a.dtype
    a_k, b_k = jnp.fft.rfftn(field_a), jnp.fft.rfftn(field_b)
    if compensate_cic:
        w = cic_window(n, dtype)
        a_k, b_k = a_k / w, b_k / w
    k, idx, nbins = _bins(n, box, dtype)
    weights = mode_multiplicity(n, dtype)
    pk = jnp.real(a_k * jnp.conj(b_k)) * (box**3 / n**6)
    power, modes = _binned_mean(pk, idx, weights, nbins)
    kmean, _ = _binned_mean(k, idx, weights, nbins)
    return Spectrum(kmean, power - shot_noise, modes)


def power_spectrum(
    field: Array, box: float, compensate_cic: bool = False, shot_noise: float = 0.0
) -> Spectrum:
    """Auto power spectrum of a real field ``(n, n, n)``; see ``cross_power``."""
    return cross_power(field, field, box, compensate_cic, shot_noise)


def correlation_coefficient(field_a: Array, field_b: Array, box: float) -> Spectrum:
    """Cross-correlation coefficient ``r(k) = P_ab / sqrt(P_aa P_bb)`` (in ``power``)."""
    ab = cross_power(field_a, field_b, box)
    aa = power_spectrum(field_a, box).power
    bb = power_spectrum(field_b, box).power
    return ab._replace(power=ab.power / jnp.sqrt(aa * bb))


def field_transfer(field_a: Array, field_b: Array, box: float) -> Spectrum:
    """Transfer function ``T(k) = sqrt(P_aa / P_bb)`` of field a relative to b (in ``power``)."""
    aa = power_spectrum(field_a, box)
    bb = power_spectrum(field_b, box).power
    return aa._replace(power=jnp.sqrt(aa.power / bb))
