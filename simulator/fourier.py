"""Wavenumbers of real-FFT meshes (NumPy ``rfftn`` layout) and Fourier-space kernels.

A real field of shape ``(n, n, n)`` has ``rfftn`` modes of shape ``(n, n, n // 2 + 1)``.
Wavenumbers are in h/Mpc for a periodic box of side ``box`` Mpc/h. The Nyquist planes
(index ``n // 2`` along any axis) hold modes whose sign is ambiguous: odd kernels such as
the gradient ``i k`` are set to zero there so that derived real fields stay real.
"""

from __future__ import annotations

from collections.abc import Callable

import jax.numpy as jnp
from jax import Array


def wavenumbers(n: int, box: float, dtype=jnp.float32) -> tuple[Array, Array, Array]:
    """Wave-vector components of an ``rfftn`` mesh, broadcastable against each other.

    Args:
        n: mesh size per dimension (even).
        box: box side in Mpc/h.
        dtype: real dtype of the result.

    Returns:
        ``(kx, ky, kz)`` in h/Mpc with shapes ``(n, 1, 1)``, ``(1, n, 1)`` and
        ``(1, 1, n // 2 + 1)``.
    """
    kf = 2.0 * jnp.pi / box
    full = jnp.fft.fftfreq(n, d=1.0 / n).astype(dtype) * kf
    half = jnp.fft.rfftfreq(n, d=1.0 / n).astype(dtype) * kf
    return full.reshape(n, 1, 1), full.reshape(1, n, 1), half.reshape(1, 1, -1)


def k_norm(n: int, box: float, dtype=jnp.float32) -> Array:
    """|k| in h/Mpc on the ``rfftn`` mesh, shape ``(n, n, n // 2 + 1)``."""
    kx, ky, kz = wavenumbers(n, box, dtype)
    return jnp.sqrt(kx**2 + ky**2 + kz**2)


def shell_index(n: int) -> Array:
    """``i^2 + j^2 + l^2`` (int32) of each ``rfftn`` mode, shape ``(n, n, n // 2 + 1)``: the
    integer shell ``|k|^2 / k_f^2`` with ``k_f = 2 pi / box``, ``0`` to ``3 (n // 2)^2``.

    A function of ``|k|`` evaluated on the ``3 (n // 2)^2 + 1`` shells and gathered with this
    index gives the mesh exactly, and XLA fuses the index arithmetic into the gather: one
    mesh-sized buffer instead of the temporaries of the function on the whole mesh.
    """
    full = jnp.fft.fftfreq(n, d=1.0 / n).astype(jnp.int32)
    half = jnp.fft.rfftfreq(n, d=1.0 / n).astype(jnp.int32)
    return full[:, None, None] ** 2 + full[None, :, None] ** 2 + half[None, None, :] ** 2


def on_shells(fn: Callable[[Array], Array], n: int, box: float, dtype=jnp.float32) -> Array:
    """``fn(|k|)`` on the ``rfftn`` mesh, shape ``(n, n, n // 2 + 1)``, with ``fn`` (1D
    wavenumbers in h/Mpc -> values, elementwise) evaluated once per shell of :func:`shell_index`.
    """
    shells = jnp.arange(3 * (n // 2) ** 2 + 1, dtype=dtype)
    return fn(jnp.sqrt(shells) * (2.0 * jnp.pi / box))[shell_index(n)]


def odd_kernel_mask(n: int, dtype=jnp.float32) -> tuple[Array, Array, Array]:
    """Per-axis masks equal to 0 on the Nyquist plane and 1 elsewhere (broadcastable)."""
    full = jnp.ones(n, dtype).at[n // 2].set(0.0)
    half = jnp.ones(n // 2 + 1, dtype).at[n // 2].set(0.0)
    return full.reshape(n, 1, 1), full.reshape(1, n, 1), half.reshape(1, 1, -1)


def gradient_kernels(n: int, box: float, kind: str, dtype=jnp.float32) -> tuple[Array, ...]:
    """Real factors ``K_j`` with d/dx_j -> ``i K_j(k)``, zero on the Nyquist planes.

    Args:
        n: mesh size per dimension.
        box: box side in Mpc/h.
        kind: ``"exact"`` (``K = k``) or ``"fd"`` (fourth-order finite difference,
            ``K = (8 sin(k h) - sin(2 k h)) / (6 h)`` with cell size ``h``).
        dtype: real dtype.

    Returns:
        Three broadcastable arrays in h/Mpc.
    """
    ks = wavenumbers(n, box, dtype)
    masks = odd_kernel_mask(n, dtype)
    if kind == "fd":
        h = box / n
        ks = tuple((8.0 * jnp.sin(k * h) - jnp.sin(2.0 * k * h)) / (6.0 * h) for k in ks)
    return tuple(k * m for k, m in zip(ks, masks, strict=True))


def cic_window(n: int, dtype=jnp.float32) -> Array:
    """Fourier window of one CIC assignment, prod_j sinc^2(k_j h / 2), shape ``(n, n, n//2+1)``."""
    ws = []
    for k in wavenumbers(n, float(n), dtype):  # box = n: k h / 2 = k / 2 in cell units
        ws.append(jnp.sinc(k / (2.0 * jnp.pi)) ** 2)
    return ws[0] * ws[1] * ws[2]


def mode_multiplicity(n: int, dtype=jnp.float32) -> Array:
    """How many complex modes each ``rfftn`` entry stands for (1 on the kz=0 and Nyquist
    planes, 2 elsewhere), shape ``(1, 1, n // 2 + 1)``."""
    w = jnp.full(n // 2 + 1, 2.0, dtype).at[0].set(1.0).at[n // 2].set(1.0)
    return w.reshape(1, 1, -1)
