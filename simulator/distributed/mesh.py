"""Device mesh of the slab decomposition and the shardings of meshes and particles.

Real-space meshes ``(n, n, n[, C])`` and particle arrays ``(N, ...)`` are split along their
leading axis over the mesh axis ``AXIS`` (slabs of ``n / P`` planes, and the particles whose
Lagrangian lattice points lie in them). Fourier meshes ``(n, n, n // 2 + 1)`` are split along
their second axis (the layout left by the slab FFT's transpose).
"""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

#: Name of the device-mesh axis that slabs are distributed over.
AXIS = "slab"

#: Partition specs: real meshes and particles by slab, Fourier meshes by their second axis.
REAL_SPEC = P(AXIS)
FOURIER_SPEC = P(None, AXIS)


def device_mesh(num_devices: int | None = None) -> Mesh:
    """A 1D device mesh over the first ``num_devices`` devices (all devices when ``None``).

    Across hosts (after ``jax.distributed.initialize``) ``jax.devices()`` lists every
    process's devices, so the mesh spans them all.

    Raises:
        ValueError: if ``num_devices`` is not in ``[1, len(jax.devices())]``.
    """
    devices = jax.devices()
    count = len(devices) if num_devices is None else num_devices
    if not (isinstance(count, int | np.integer) and 1 <= count <= len(devices)):
        raise ValueError(
            f"num_devices={num_devices!r} is invalid: must be an integer in [1, {len(devices)}]"
        )
    return Mesh(np.asarray(devices[:count]), (AXIS,))


def num_shards(mesh: Mesh) -> int:
    """Number of slabs ``P`` (devices along ``AXIS``)."""
    return mesh.shape[AXIS]


def real_sharding(mesh: Mesh) -> NamedSharding:
    """Sharding of real-space meshes and particle arrays (leading axis split)."""
    return NamedSharding(mesh, REAL_SPEC)


def fourier_sharding(mesh: Mesh) -> NamedSharding:
    """Sharding of ``rfftn`` meshes (second axis split)."""
    return NamedSharding(mesh, FOURIER_SPEC)


def check_divisible(n: int, mesh: Mesh, name: str = "mesh") -> None:
    """Raise ``ValueError`` unless ``n`` splits into equal slabs over the device mesh."""
    p = num_shards(mesh)
    if n % p:
        raise ValueError(f"{name}={n!r} is invalid: must be divisible by the {p} devices")
