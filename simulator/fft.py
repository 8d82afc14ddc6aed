"""Single-device real 3D FFTs in the layout of ``numpy.fft.rfftn``.

These are the default ``rfftn``/``irfftn`` of the Fourier-space kernels (``ic``, ``lpt``,
``gravity``); ``simulator.distributed.fft`` provides the same two maps on slab-sharded
meshes, so the kernels run unchanged on one device or many.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jax import Array


def low_modes(n: int, m: int) -> np.ndarray:
    """Indices of the ``m`` lowest frequencies of an ``n``-point FFT, in ``m``-point FFT order."""
    return np.concatenate([np.arange(m // 2 + 1), np.arange(n - m // 2 + 1, n)])


def rfftn(field: Array, keep: int | None = None) -> Array:
    """``numpy.fft.rfftn`` of a real mesh, optionally truncated to a coarser mesh's modes.

    Args:
        field: real mesh ``(n, n, n)``.
        keep: if given (even, ``<= n``), return only the modes that a ``keep^3`` mesh
            represents (``|k_i|`` up to its Nyquist frequency), in that mesh's ``rfftn``
            layout; unnormalised, so multiply by ``(keep / n)^3`` for the ``rfftn`` of the
            field sampled on the coarse mesh (up to aliasing).

    Returns:
        Complex modes ``(n, n, n // 2 + 1)`` (``keep`` in place of ``n`` when given).
    """
    modes = jnp.fft.rfftn(field)
    n = field.shape[0]
    if keep is None or keep == n:
        return modes
    low = low_modes(n, keep)
    return modes[low][:, low][:, :, : keep // 2 + 1]


def irfftn(modes: Array) -> Array:
    """``numpy.fft.irfftn`` of modes ``(n, n, n // 2 + 1)`` to a real ``(n, n, n)`` mesh."""
    n = modes.shape[0]
    return jnp.fft.irfftn(modes, s=(n, n, n))
