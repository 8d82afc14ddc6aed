"""Gaussian random fields with power spectrum P(k) = A k^-B and their analytic Fisher matrix.

Fourier convention (docs/conventions.md): ``delta_k = rfftn(delta)`` unnormalised, so that
``P(k) = V / N^2 <|delta_k|^2>`` with ``V = box^ndim`` and ``N`` the number of cells. The zero
mode is set to zero (the field has zero mean). Wavenumbers are in units of 1/[box].
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def validate_shape(shape: tuple[int, ...], box: float) -> tuple[int, ...]:
    """Check a mesh shape (2 or 3 even sides >= 4) and the box size; return the shape as a tuple."""
    shape = tuple(int(s) for s in shape)
    if len(shape) not in (2, 3):
        raise ValueError(f"shape={shape}: a field must have 2 or 3 dimensions")
    if any(s < 4 or s % 2 for s in shape):
        raise ValueError(f"shape={shape}: every side must be an even integer >= 4")
    if not box > 0:
        raise ValueError(f"box={box}: the box size must be > 0")
    return shape


def rfft_wavenumbers(shape: tuple[int, ...], box: float) -> np.ndarray:
    """|k| on the rfftn grid, shape ``shape[:-1] + (shape[-1] // 2 + 1,)``, in units of 1/[box]."""
    axes = [np.fft.fftfreq(n, d=box / n) for n in shape[:-1]]
    axes.append(np.fft.rfftfreq(shape[-1], d=box / shape[-1]))
    grids = np.meshgrid(*axes, indexing="ij")
    return 2 * np.pi * np.sqrt(sum(g**2 for g in grids))


def rfft_multiplicity(shape: tuple[int, ...]) -> np.ndarray:
    """How many modes of the full FFT grid each rfftn mode stands for (1 or 2), same shape as k.

    Modes on the planes ``k_last = 0`` and ``k_last = Nyquist`` are their own Hermitian partners'
    plane and count once; all others stand for themselves and their conjugate.
    """
    nz = shape[-1] // 2 + 1
    weight = np.full(tuple(shape[:-1]) + (nz,), 2.0)
    weight[..., 0] = 1.0
    weight[..., -1] = 1.0
    return weight


def power_law(k: jax.Array, theta: jax.Array) -> jax.Array:
    """P(k) = A k^-B for ``theta = (A, B)``; k in 1/[box], P in [box]^ndim."""
    return theta[0] * k ** (-theta[1])


def gaussian_field(
    theta: jax.Array, key: jax.Array, shape: tuple[int, ...], box: float = 1.0
) -> jax.Array:
    """One Gaussian random field with P(k) = A k^-B; float array of ``shape``.

    Colours unit-variance white noise in Fourier space, so the field is differentiable in ``theta``
    at fixed ``key`` (``jax.jvp`` gives the exact derivative of the data w.r.t. the parameters).
    """
    k = rfft_wavenumbers(shape, box)
    ncell = int(np.prod(shape))
    volume = box ** len(shape)
    white = jax.random.normal(key, shape, dtype=jnp.float32)
    k_safe = jnp.asarray(np.where(k > 0, k, 1.0), dtype=jnp.float32)
    amplitude = jnp.sqrt(power_law(k_safe, theta) * ncell / volume)
    amplitude = jnp.where(jnp.asarray(k) > 0, amplitude, 0.0)
    return jnp.fft.irfftn(jnp.fft.rfftn(white) * amplitude, s=shape)


def power_law_fisher(theta: np.ndarray, shape: tuple[int, ...], box: float = 1.0) -> np.ndarray:
    """Analytic Fisher matrix of (A, B) for one field of ``shape``; (2, 2) float64.

    ``F_ij = 1/2 sum_k dlnP/dtheta_i dlnP/dtheta_j`` over every mode k != 0 of the full FFT grid
    (each real degree of freedom carries 1/2 (dlnP)^2; a complex mode pair k, -k has two).
    """
    shape = validate_shape(shape, box)
    k = rfft_wavenumbers(shape, box)
    weight = rfft_multiplicity(shape)[k > 0]
    lnk = np.log(k[k > 0])
    grad = np.stack([np.full_like(lnk, 1.0 / float(theta[0])), -lnk])
    return 0.5 * np.einsum("k,ik,jk->ij", weight, grad, grad)
