"""Distributed real 3D FFT of slab-decomposed meshes by all-to-all transposes.

Layout (same global arrays as ``numpy.fft.rfftn``, only the sharding differs):

- real space ``(n, n, n)`` split along axis 0 (each device holds ``n / P`` x-planes);
- Fourier space ``(n, n, n // 2 + 1)`` split along axis 1 (each device holds ``n / P``
  ky-planes of every kx).

Forward: real FFT along z and FFT along y on the local slab, one ``all_to_all`` that trades
the split of x for a split of y, then the FFT along x. The inverse runs the same steps
backwards. ``all_to_all`` is linear and JAX transposes it, so both maps are differentiable
and ``jax.linear_transpose`` works through them.

jaxDecomp 0.3.1 was tried first: on CPU under JAX 0.10 its ``pfft3d`` fails in
``custom_partitioning`` (result shape mismatch) and its real FFT is not implemented, and its
complex FFTs return transposed axes rather than the ``rfftn`` layout used here.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
from jax import Array
from jax.sharding import Mesh

from simulator.distributed.mesh import AXIS, FOURIER_SPEC, REAL_SPEC
from simulator.fft import low_modes


def rfftn_slab(block: Array, keep: int | None = None) -> Array:
    """Per-device forward FFT inside ``shard_map`` over ``AXIS``.

    Args:
        block: local real slab, shape ``(n / P, n, n)``.
        keep: if given (even, ``<= n``), return only the modes of a ``keep^3`` mesh
            (``|k_i|`` up to its Nyquist frequency), truncated before the transpose.

    Returns:
        Local Fourier slab, shape ``(n, n / P, n // 2 + 1)`` (``keep`` for ``n`` with ``keep``).
    """
    n = block.shape[1]
    k = jnp.fft.fft(jnp.fft.rfft(block, axis=2), axis=1)
    if keep is not None:
        k = k[:, low_modes(n, keep), : keep // 2 + 1]
    k = jax.lax.all_to_all(k, AXIS, split_axis=1, concat_axis=0, tiled=True)
    k = jnp.fft.fft(k, axis=0)
    return k if keep is None else k[low_modes(n, keep)]


def irfftn_slab(block: Array, n: int) -> Array:
    """Per-device inverse of :func:`rfftn_slab` inside ``shard_map`` over ``AXIS``.

    Args:
        block: local Fourier slab, shape ``(n, n / P, n // 2 + 1)``.
        n: mesh size per dimension.

    Returns:
        Local real slab, shape ``(n / P, n, n)``.
    """
    x = jnp.fft.ifft(block, axis=0)
    x = jax.lax.all_to_all(x, AXIS, split_axis=0, concat_axis=1, tiled=True)
    return jnp.fft.irfft(jnp.fft.ifft(x, axis=1), n=n, axis=2)


def rfftn(field: Array, mesh: Mesh, keep: int | None = None) -> Array:
    """``numpy.fft.rfftn`` of a slab-sharded real mesh.

    Args:
        field: real mesh ``(n, n, n)`` (any sharding; it is resharded along axis 0).
        mesh: device mesh from ``device_mesh``; ``n`` must be divisible by its size.
        keep: return only the modes that a coarser ``keep^3`` mesh represents (``keep``
            even, ``<= n`` and divisible by the number of devices), in that mesh's
            ``rfftn`` layout; unnormalised, so multiply by ``(keep / n)^3`` for the
            ``rfftn`` of the field sampled on the coarse mesh (up to aliasing).

    Returns:
        Complex modes ``(n, n, n // 2 + 1)`` (``keep`` in place of ``n`` when given),
        sharded along axis 1.
    """
    keep = None if keep == field.shape[0] else keep
    fn = jax.shard_map(
        partial(rfftn_slab, keep=keep), mesh=mesh, in_specs=REAL_SPEC, out_specs=FOURIER_SPEC
    )
    return fn(field)


def irfftn(modes: Array, mesh: Mesh) -> Array:
    """``numpy.fft.irfftn`` (to an ``(n, n, n)`` mesh) of slab-sharded Fourier modes.

    Args:
        modes: complex modes ``(n, n, n // 2 + 1)`` (resharded along axis 1).
        mesh: device mesh from ``device_mesh``.

    Returns:
        Real mesh ``(n, n, n)`` sharded along axis 0.
    """
    n = modes.shape[0]
    fn = jax.shard_map(
        partial(irfftn_slab, n=n), mesh=mesh, in_specs=FOURIER_SPEC, out_specs=REAL_SPEC
    )
    return fn(modes)
