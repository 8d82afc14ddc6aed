"""Sharded CIC paint and readout with halo exchange between neighbouring slabs.

Each device holds the particles of its Lagrangian slab (``simulator.distributed.mesh``) and
the mesh planes ``[r w, (r + 1) w)`` of its slab (``w = n / P``). Particles move out of their
slab, so each device paints onto an extended slab of ``w + 2 halo`` planes (its own planes
and ``halo`` on each side); the halo planes are then sent with ``jax.lax.ppermute`` to the
devices that own them and added there. Readout is the transpose: the extended slab is
filled from the neighbours and interpolated locally. A halo wider than a slab spans several
devices and is exchanged with each of them.

The per-particle CIC maps are ``simulator.cic.scatter_flat``/``readout_flat`` applied to the
flattened extended slab: its planes are ``n x n`` like those of the cubic mesh, so the flat
indices of ``simulator.cic`` address it directly as long as no particle is farther than ``halo - 1``
cells from its slab (``required_halo`` measures that).
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
from jax import Array
from jax.sharding import Mesh

from simulator import cic
from simulator.distributed.mesh import AXIS, REAL_SPEC, check_divisible, num_shards


def check_halo(halo: int, n: int, mesh: Mesh) -> None:
    """Raise ``ValueError`` unless ``halo`` (mesh cells) fits the slab decomposition.

    One device needs ``halo = 0`` (its slab is the periodic mesh). Several need
    ``1 <= halo <= (n - n / P) / 2`` so that the extended slab is no longer than the mesh.
    """
    check_divisible(n, mesh)
    p = num_shards(mesh)
    top = (n - n // p) // 2
    ok = isinstance(halo, int) and (halo == 0 if p == 1 else 1 <= halo <= top)
    if not ok:
        allowed = "must be 0 on one device" if p == 1 else f"must be an integer in [1, {top}]"
        raise ValueError(f"halo={halo!r} is invalid: {allowed} (mesh={n}, devices={p})")


def default_halo(n: int, mesh: Mesh) -> int:
    """A halo of ``n / 8`` cells (at least 1), within the limits of ``check_halo``."""
    p = num_shards(mesh)
    return 0 if p == 1 else min(max(1, n // 8), (n - n // p) // 2)


def required_halo(pos: Array, n: int, mesh: Mesh) -> Array:
    """Smallest halo (cells) that holds every particle's CIC cloud, for sharded ``pos``.

    Args:
        pos: positions in cell units ``(N, 3)``, sharded by Lagrangian slab (particle ``i``
            belongs to slab ``i // (N / P)``).
        n: mesh size; mesh: device mesh.

    Returns:
        Integer scalar: ``max`` over particles of the distance (cells) beyond the home slab
        plus one for the CIC neighbour.
    """

    def local(pos):
        w = n // num_shards(mesh)
        x = _local_x(pos[:, 0], n, w, 0)
        beyond = jnp.maximum(-jnp.floor(x), jnp.floor(x) + 2 - w)
        return jax.lax.pmax(jnp.max(jnp.maximum(beyond, 0.0)), AXIS).astype(jnp.int32)

    return jax.shard_map(
        local, mesh=mesh, in_specs=REAL_SPEC, out_specs=jax.sharding.PartitionSpec()
    )(pos)


def _local_x(x: Array, n: int, w: int, halo: int) -> Array:
    """x in cells relative to the extended slab of this device, wrapped to be nearest to it."""
    start = jax.lax.axis_index(AXIS) * w
    centre = (n - w) // 2
    return jnp.mod(x - start + centre, n) - centre + halo


def _exchange_plan(w: int, halo: int) -> list[tuple[int, int, int, int]]:
    """Pieces of the extended slab: ``(shift, lo, hi, dest)`` for each device offset.

    Extended planes ``[lo, hi)`` belong to the device ``shift`` slabs away, where they are
    its local planes ``[dest, dest + hi - lo)``. The pieces tile ``[0, w + 2 halo)`` in order.
    """
    reach = -(-halo // w)
    plan = []
    for shift in range(-reach, reach + 1):
        lo, hi = max(shift * w, -halo), min((shift + 1) * w, w + halo)
        if lo < hi:
            plan.append((shift, lo + halo, hi + halo, lo - shift * w))
    return plan


def _ring(shift: int, p: int) -> list[tuple[int, int]]:
    return [(i, (i + shift) % p) for i in range(p)]


def _fold(ext: Array, w: int, halo: int, p: int) -> Array:
    """Add the halo planes of the extended slab ``(w + 2 halo, ...)`` to their owners."""
    out = jnp.zeros((w, *ext.shape[1:]), ext.dtype)
    for shift, lo, hi, dest in _exchange_plan(w, halo):
        piece = ext[lo:hi]
        if shift:
            piece = jax.lax.ppermute(piece, AXIS, _ring(shift, p))
        out = out.at[dest : dest + hi - lo].add(piece)
    return out


def _unfold(own: Array, w: int, halo: int, p: int) -> Array:
    """Extended slab ``(w + 2 halo, ...)`` filled from the owners' planes (transpose of fold)."""
    pieces = []
    for shift, lo, hi, dest in _exchange_plan(w, halo):
        piece = own[dest : dest + hi - lo]
        if shift:
            piece = jax.lax.ppermute(piece, AXIS, _ring(-shift, p))
        pieces.append(piece)
    return jnp.concatenate(pieces, axis=0)


def _paint_local(pos, vals, n, p, halo, chunk):
    w = n // p
    planes = w + 2 * halo
    pos = pos.at[:, 0].set(_local_x(pos[:, 0], n, w, halo))
    ext = cic.scatter_flat(pos, vals, n, chunk, planes * n * n).reshape(planes, n, n, -1)
    return _fold(ext, w, halo, p) if p > 1 else ext


def _readout_local(own, pos, n, p, halo, chunk):
    w = n // p
    ext = _unfold(own, w, halo, p) if p > 1 else own
    pos = pos.at[:, 0].set(_local_x(pos[:, 0], n, w, halo))
    flat = ext.reshape(-1, ext.shape[-1])
    return cic.readout_flat(flat, pos, n, chunk)


def paint(
    pos: Array,
    n: int,
    mesh: Mesh,
    halo: int,
    weights: Array | None = None,
    chunk_size: int | None = None,
) -> Array:
    """CIC-assign slab-sharded particles to a slab-sharded periodic mesh.

    Args:
        pos: positions in mesh-cell units ``(N, 3)``, sharded along axis 0 so that each
            device holds the particles of its Lagrangian slab (lattice order).
        n: mesh cells per side (divisible by the number of devices).
        mesh: device mesh from ``device_mesh``.
        halo: planes (cells) painted beyond each side of a slab; see ``check_halo`` and
            ``required_halo``.
        weights: ``None`` (unit mass), ``(N,)`` or ``(N, C)``, sharded like ``pos``.
        chunk_size: particles per chunk on each device (``None``: the backend's default,
            ``simulator.cic.chunk_particles``).

    Returns:
        Mesh ``(n, n, n)`` (or ``(n, n, n, C)``) sharded along axis 0, equal to
        ``simulator.cic.paint`` of the same particles.
    """
    check_halo(halo, n, mesh)
    vals, scalar = cic.weight_columns(pos, weights)
    fn = partial(_paint_local, n=n, p=num_shards(mesh), halo=halo, chunk=chunk_size)
    out = jax.shard_map(fn, mesh=mesh, in_specs=(REAL_SPEC, REAL_SPEC), out_specs=REAL_SPEC)(
        pos, vals
    )
    return out[..., 0] if scalar else out


def readout(
    field: Array, pos: Array, mesh: Mesh, halo: int, chunk_size: int | None = None
) -> Array:
    """CIC-interpolate a slab-sharded periodic mesh at slab-sharded particle positions.

    Args:
        field: mesh ``(n, n, n)`` or ``(n, n, n, C)``, sharded along axis 0.
        pos: positions in cell units ``(N, 3)``, sharded by Lagrangian slab.
        mesh, halo, chunk_size: as for :func:`paint`.

    Returns:
        Values ``(N,)`` (or ``(N, C)``) sharded along axis 0, equal to
        ``simulator.cic.readout``.
    """
    n = field.shape[0]
    check_halo(halo, n, mesh)
    columns = field[..., None] if field.ndim == 3 else field
    fn = partial(_readout_local, n=n, p=num_shards(mesh), halo=halo, chunk=chunk_size)
    out = jax.shard_map(fn, mesh=mesh, in_specs=(REAL_SPEC, REAL_SPEC), out_specs=REAL_SPEC)(
        columns, pos
    )
    return out[:, 0] if field.ndim == 3 else out
