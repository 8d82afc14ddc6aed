"""Fourier-space helpers for fields on a periodic mesh: wavenumbers, filters, shell averages.

Convention (docs/conventions.md): ``delta_k = rfftn(delta)`` unnormalised, so that a white
noise of unit variance per cell has ``<|s_k|^2> = N_cells`` and
``P(k) = V_box / N_cells^2 <|delta_k|^2>``.
"""

from __future__ import annotations

from collections.abc import Callable

import jax.numpy as jnp
import numpy as np
from jax import Array
from jax.sharding import Mesh

from simulator import fft


def fft_hooks(devices: Mesh | None = None) -> dict[str, Callable[..., Array]]:
    """The real 3D FFT pair ``{"rfftn", "irfftn"}`` of fields on ``devices``.

    ``None``: one device (``simulator.fft``). A device mesh: the slab FFT of
    ``simulator.distributed.fft``, which takes real meshes ``(m, m, m)`` sharded along axis 0
    to modes ``(m, m, m//2+1)`` sharded along axis 1 and back, without gathering the field.
    Both give the global arrays of ``numpy.fft.rfftn``/``irfftn``.
    """
    if devices is None:
        return {"rfftn": fft.rfftn, "irfftn": fft.irfftn}
    from simulator.distributed.pm import fft_hooks as sharded_hooks

    return sharded_hooks(devices)


def wavenumbers(mesh: int, box: float) -> np.ndarray:
    """|k| [h/Mpc] of every mode of ``rfftn`` on an ``(mesh,)*3`` grid, shape ``(m, m, m//2+1)``."""
    kf = 2.0 * np.pi / box
    k1 = np.fft.fftfreq(mesh, d=1.0 / mesh) * kf
    kz = np.fft.rfftfreq(mesh, d=1.0 / mesh) * kf
    return np.sqrt(k1[:, None, None] ** 2 + k1[None, :, None] ** 2 + kz[None, None, :] ** 2)


def mode_multiplicity(mesh: int) -> np.ndarray:
    """How many complex modes of the full FFT each ``rfftn`` entry stands for (1 or 2)."""
    mult = np.full(mesh // 2 + 1, 2.0)
    mult[0] = 1.0
    if mesh % 2 == 0:
        mult[-1] = 1.0
    return np.broadcast_to(mult, (mesh, mesh, mesh // 2 + 1)).copy()


def shell_index(mesh: int, box: float, nbins: int | None = None) -> np.ndarray:
    """Integer k-bin of every ``rfftn`` mode: bin ``i`` holds ``(i+0.5) kf <= |k| < (i+1.5) kf``.

    Modes outside the ``nbins`` shells (k = 0, corners beyond Nyquist) get index ``nbins``.
    Default ``nbins = mesh // 2``. Shape ``(m, m, m//2+1)``.
    """
    nbins = mesh // 2 if nbins is None else nbins
    kf = 2.0 * np.pi / box
    idx = np.floor(wavenumbers(mesh, box) / kf - 0.5).astype(np.int32)
    return np.where((idx >= 0) & (idx < nbins), idx, nbins)


def bin_centres(mesh: int, box: float, nbins: int | None = None) -> np.ndarray:
    """Mode-weighted mean |k| [h/Mpc] of each shell of :func:`shell_index`, shape ``(nbins,)``."""
    nbins = mesh // 2 if nbins is None else nbins
    idx = shell_index(mesh, box, nbins).ravel()
    w = mode_multiplicity(mesh).ravel()
    k = wavenumbers(mesh, box).ravel()
    num = np.bincount(idx, weights=w * k, minlength=nbins + 1)[:nbins]
    den = np.bincount(idx, weights=w, minlength=nbins + 1)[:nbins]
    return num / np.maximum(den, 1.0)


def shell_mean(values: Array, index: np.ndarray, nbins: int) -> Array:
    """Mode-weighted mean of an rfft-shaped array over each shell, shape ``(nbins,)``."""
    mesh = index.shape[0]
    w = jnp.asarray(mode_multiplicity(mesh))
    idx = jnp.asarray(index)
    num = jnp.zeros(nbins + 1, values.dtype).at[idx].add(w * values)
    den = jnp.zeros(nbins + 1, values.dtype).at[idx].add(w)
    return num[:nbins] / jnp.maximum(den[:nbins], 1.0)


def power_in_shells(
    field: Array, box: float, index: np.ndarray, nbins: int, devices: Mesh | None = None
) -> Array:
    """Power spectrum [(Mpc/h)^3] of a real ``(m, m, m)`` field in the shells of ``index``,
    shape ``(nbins,)``; ``devices``: the field's device mesh (:func:`fft_hooks`)."""
    n_cells = field.size
    fk = fft_hooks(devices)["rfftn"](field)
    p = (fk.real**2 + fk.imag**2) * (box**3 / n_cells**2)
    return shell_mean(p, index, nbins)


def fourier_filter(field: Array, kernel: Array, devices: Mesh | None = None) -> Array:
    """``irfftn(rfftn(field) * kernel)`` for a real ``(m, m, m)`` field and an rfft-shaped
    ``(m, m, m//2+1)`` kernel; ``devices``: the field's device mesh (:func:`fft_hooks`), over
    which the result stays sharded."""
    hooks = fft_hooks(devices)
    return hooks["irfftn"](hooks["rfftn"](field) * kernel).astype(field.dtype)
