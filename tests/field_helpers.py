"""NumPy helpers shared by the observation-model tests: Gaussian random fields and binned
power spectra, written independently of the simulator's own FFT and measurement code."""

from __future__ import annotations

import numpy as np


def gaussian_random_field(n: int, sigma: float, seed: int, slope: float = -1.5) -> np.ndarray:
    """Zero-mean GRF of shape ``(n, n, n)`` with P(k) ~ k^slope, rescaled to rms ``sigma``."""
    rng = np.random.default_rng(seed)
    white_k = np.fft.rfftn(rng.standard_normal((n, n, n)))
    kx = np.fft.fftfreq(n)[:, None, None]
    ky = np.fft.fftfreq(n)[None, :, None]
    kz = np.fft.rfftfreq(n)[None, None, :]
    k = np.sqrt(kx**2 + ky**2 + kz**2)
    amp = np.where(k > 0, np.where(k > 0, k, 1.0) ** (slope / 2), 0.0)
    field = np.fft.irfftn(white_k * amp, s=(n, n, n), axes=(0, 1, 2))
    return field * (sigma / field.std())


def cross_power(a: np.ndarray, b: np.ndarray, nbins: int) -> tuple[np.ndarray, np.ndarray]:
    """Binned cross power <Re a_k b_k*> in the lowest ``nbins`` shells of width one fundamental
    mode (box units arbitrary: the bins are in units of k_f); returns (k/k_f centres, power)."""
    n = a.shape[0]
    ak, bk = np.fft.rfftn(a), np.fft.rfftn(b)
    kx = np.fft.fftfreq(n, 1.0 / n)[:, None, None]
    ky = np.fft.fftfreq(n, 1.0 / n)[None, :, None]
    kz = np.fft.rfftfreq(n, 1.0 / n)[None, None, :]
    k = np.sqrt(kx**2 + ky**2 + kz**2)
    weight = np.where((kz == 0) | (kz == n // 2), 1.0, 2.0) * np.ones_like(k)
    shell = np.floor(k + 0.5).astype(int)
    prod = (ak * np.conj(bk)).real * weight
    centres, power = [], []
    for s in range(1, nbins + 1):
        sel = shell == s
        centres.append(s)
        power.append(prod[sel].sum() / weight[sel].sum())
    return np.asarray(centres), np.asarray(power)


def linear_test_posterior(mesh: int = 8, box: float = 100.0):
    """Linear Gaussian posterior used by the driver tests: data = delta_L + unit noise at
    ``mesh^3`` in a ``box`` Mpc/h box, with ``P(k) ~ k^-1`` (transfer ``2 k^-1/2``)."""
    from inference.models import linear_gaussian_posterior

    k1 = np.fft.fftfreq(mesh, 1.0 / mesh) * 2 * np.pi / box
    kz = np.fft.rfftfreq(mesh, 1.0 / mesh) * 2 * np.pi / box
    k = np.sqrt(k1[:, None, None] ** 2 + k1[None, :, None] ** 2 + kz[None, None] ** 2)
    transfer = np.where(k > 0, 2.0 * np.maximum(k, 1e-9) ** -0.5, 0.0)
    data = np.random.default_rng(3).standard_normal((mesh,) * 3)
    return linear_gaussian_posterior(data, transfer, box, 1.0)
