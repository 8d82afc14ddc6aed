"""Initial conditions: white noise and the linear density field on the mesh."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax import Array

from simulator import fft
from simulator.config import SimConfig
from simulator.cosmology import Cosmology
from simulator.fourier import on_shells
from simulator.linear_power import linear_power


def white_noise(seed: int | Array, conf: SimConfig) -> Array:
    """Unit-variance Gaussian white noise in real space.

    Args:
        seed: integer seed or a ``jax.random`` key.
        conf: configuration (mesh size, dtype).

    Returns:
        Noise of shape ``(mesh, mesh, mesh)``; the same seed gives bit-identical noise.
    """
    key = jax.random.key(seed) if jnp.ndim(seed) == 0 and not _is_key(seed) else seed
    n = conf.mesh
    return jax.random.normal(key, (n, n, n), conf.float_dtype)


def _is_key(x) -> bool:
    return isinstance(x, Array) and jnp.issubdtype(x.dtype, jax.dtypes.prng_key)


def linear_modes(
    noise: Array,
    cosmo: Cosmology,
    conf: SimConfig,
    fixed_amplitude: bool = False,
    paired: bool = False,
    *,
    rfftn: Callable[[Array], Array] = fft.rfftn,
) -> Array:
    """Fourier modes ``delta_k = sqrt(P(k) / V_cell) rfftn(s)`` of the linear field at a = 1.

    With ``P(k) = V_box / N^2 <|delta_k|^2>`` (docs/conventions.md) and ``<|s_k|^2> = N``,
    the field has power ``P(k)``. Hermitian symmetry is that of ``rfftn`` of a real field.

    Args:
        noise: white noise ``(mesh, mesh, mesh)``.
        cosmo: cosmology (sigma8-normalised linear power).
        conf: configuration (mesh, box).
        fixed_amplitude: replace each ``|s_k|`` by its rms ``sqrt(N)`` (keeps the phase).
        paired: flip every phase by pi (``s -> -s``), for paired-fixed simulations.
        rfftn: real FFT of a mesh (``simulator.fft.rfftn``, or the sharded one of
            ``simulator.distributed.fft`` bound to a device mesh).

    Returns:
        Complex modes of shape ``(mesh, mesh, mesh // 2 + 1)``.
    """
    n = conf.mesh
    s_k = rfftn(noise)
    if fixed_amplitude:
        amp = jnp.abs(s_k)
        s_k = jnp.where(amp > 0, s_k / jnp.where(amp > 0, amp, 1.0), 0.0) * jnp.sqrt(n**3)
    if paired:
        s_k = -s_k
    pk = on_shells(lambda k: linear_power(k, cosmo), n, conf.box, noise.dtype).astype(noise.dtype)
    positive = pk > 0  # k = 0: keep sqrt off zero so that forward-mode tangents stay finite
    amp = jnp.where(positive, jnp.sqrt(jnp.where(positive, pk, 1.0) / conf.cell_size**3), 0.0)
    return s_k * amp


def linear_field(
    noise: Array,
    cosmo: Cosmology,
    conf: SimConfig,
    fixed_amplitude: bool = False,
    paired: bool = False,
    *,
    rfftn: Callable[[Array], Array] = fft.rfftn,
    irfftn: Callable[[Array], Array] = fft.irfftn,
) -> Array:
    """Linear density contrast at a = 1 in real space, shape ``(mesh, mesh, mesh)``.

    See ``linear_modes`` for the arguments; ``irfftn`` is the inverse of ``rfftn``
    (``simulator.fft.irfftn`` by default).
    """
    modes = linear_modes(noise, cosmo, conf, fixed_amplitude, paired, rfftn=rfftn)
    return irfftn(modes).astype(noise.dtype)
