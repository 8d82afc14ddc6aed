"""Cloud-in-cell (CIC) paint (scatter) and readout (gather) on periodic meshes.

Positions are in mesh-cell units (any real value; wrapped periodically), so a particle
at ``x`` Mpc/h sits at ``x * n / box``. Particles are processed in chunks of
``chunk_size`` with ``lax.scan``, so temporary memory is ``~8 x chunk_size`` values
rather than ``8 x N`` (``None`` picks the backend's default, :func:`chunk_particles`).

``paint`` and ``readout`` carry custom VJPs: the transpose of a paint is a readout and vice
versa, and the position cotangent is one more gather with the gradient of the CIC kernel,
so reverse mode stores nothing but the inputs. ``paint_plain``/``readout_plain`` are the
same maps without custom rules (for forward-mode ``jvp``).
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
from jax import Array

#: Default particles per chunk on CPUs: the gathered corners of a chunk (8 x 3 values per
#: particle, ~13 MB) then fit in a shared L3 cache beside another device's; a PM step at
#: 80^3 on 2 host devices runs twice as fast as with 2^20 (``benchmarks/scaling.py``), and the
#: gradient of a 2LPT posterior at 64^3 (one paint) took 0.08 s against 0.11 s in one chunk.
CPU_CHUNK = 2**17
#: Default on CPUs for the PM force inside the time-step loop (``simulator.gravity``): one chunk
#: up to 2^22 particles (a 160^3 lattice, ~0.7 GB of temporaries). Chunk loops nested in the
#: time-step loop compile to slower code (in a profile at 64^3 their fused elementwise work ran
#: 3.5 times slower per particle): the 10-step PM gradient on 2 cores took 0.92 s in one chunk
#: against 1.88 s in chunks of 2^17 at 64^3, and 3.05 s against 5.36 s at 96^3.
CPU_FORCE_CHUNK = 2**22
#: Default on accelerators: few large chunks keep the device busy.
ACCELERATOR_CHUNK = 2**20


def chunk_particles(chunk_size: int | None, force: bool = False) -> int:
    """Particles per scatter/gather chunk: ``chunk_size``, or when ``None`` the default of
    the backend that runs the computation (``ACCELERATOR_CHUNK``; on CPUs ``CPU_CHUNK``, or
    ``CPU_FORCE_CHUNK`` for the PM ``force`` evaluation)."""
    if chunk_size is not None:
        return chunk_size
    if jax.default_backend() != "cpu":
        return ACCELERATOR_CHUNK
    return CPU_FORCE_CHUNK if force else CPU_CHUNK


def _stencil(pos: Array, n: int) -> tuple[Array, tuple[Array, Array, Array]]:
    """Flat indices of the 8 neighbouring cells ``(M, 2, 2, 2)`` and per-axis weights
    ``(M, 2)`` (lower and upper cell) along x, y and z."""
    base = jnp.floor(pos)
    frac = pos - base
    base = base.astype(jnp.int32)
    idx = [jnp.stack([base[:, j] % n, (base[:, j] + 1) % n], axis=-1) for j in range(3)]
    wts = tuple(jnp.stack([1.0 - frac[:, j], frac[:, j]], axis=-1) for j in range(3))
    flat = (idx[0][:, :, None, None] * n + idx[1][:, None, :, None]) * n + idx[2][:, None, None, :]
    return flat.reshape(-1, 8), wts


def _outer(wx: Array, wy: Array, wz: Array) -> Array:
    """Product weights of the 8 corners, ``(M, 8)``."""
    return (wx[:, :, None, None] * wy[:, None, :, None] * wz[:, None, None, :]).reshape(-1, 8)


def _take(mesh: Array, flat: Array) -> Array:
    return mesh.at[flat].get(mode="promise_in_bounds")


def _paint_chunk(mesh: Array, pos: Array, vals: Array, n: int) -> Array:
    flat, wts = _stencil(pos, n)
    upd = _outer(*wts)[..., None] * vals[:, None, :]
    return mesh.at[flat.reshape(-1)].add(upd.reshape(-1, vals.shape[-1]), mode="promise_in_bounds")


def _readout_chunk(mesh: Array, pos: Array, n: int) -> Array:
    flat, wts = _stencil(pos, n)
    return jnp.einsum("mc,mcv->mv", _outer(*wts), _take(mesh, flat))


def _pos_grad_chunk(mesh: Array, pos: Array, vals: Array, n: int) -> Array:
    """sum_corners grad_x W_c(x) (mesh[c] . vals): the position cotangent of both maps."""
    flat, (wx, wy, wz) = _stencil(pos, n)
    s = jnp.einsum("mcv,mv->mc", _take(mesh, flat), vals)
    dw = jnp.broadcast_to(jnp.array([-1.0, 1.0], pos.dtype), wx.shape)
    grads = [_outer(dw, wy, wz), _outer(wx, dw, wz), _outer(wx, wy, dw)]
    return jnp.stack([jnp.sum(s * g, axis=-1) for g in grads], axis=-1)


def _chunks(x: Array, chunk: int) -> Array:
    """Zero-pad the leading axis to a multiple of ``chunk`` and split it into chunks."""
    pad = (-x.shape[0]) % chunk
    x = jnp.pad(x, [(0, pad)] + [(0, 0)] * (x.ndim - 1))
    return x.reshape(-1, chunk, *x.shape[1:])


def scatter_flat(
    pos: Array, vals: Array, n: int, chunk: int | None, num_cells: int | None = None
) -> Array:
    """CIC-paint ``vals`` onto a flattened mesh whose planes are ``n x n`` cells.

    The flat index of cell ``(i, j, k)`` is ``(i n + j) n + k`` with ``j``, ``k`` wrapped
    periodically and ``i`` wrapped modulo ``n``; a slab of ``planes`` planes
    (``num_cells = planes n^2``, as in ``simulator.distributed.cic``) is addressed directly
    as long as every ``floor(pos[:, 0]) + 1 < planes``.

    Args:
        pos: positions in mesh-cell units, ``(N, 3)``.
        vals: values to paint, ``(N, C)``.
        n: cells per side of a plane (and the period along axis 0).
        chunk: particles per ``lax.scan`` chunk (``None``: :func:`chunk_particles`).
        num_cells: length of the flat mesh; ``None`` for the periodic cube ``n^3``.

    Returns:
        Flat mesh ``(num_cells, C)`` of summed weights (no custom VJP).
    """
    chunk = chunk_particles(chunk)
    mesh = jnp.zeros((n**3 if num_cells is None else num_cells, vals.shape[-1]), vals.dtype)
    if pos.shape[0] <= chunk:
        return _paint_chunk(mesh, pos, vals, n)

    def body(m, pv):
        return _paint_chunk(m, pv[0], pv[1], n), None

    pos, vals = _chunks(pos, chunk), _chunks(vals, chunk)
    # the first chunk starts the carry, so that the loop keeps its type: inside shard_map
    # a painted mesh varies over the device axis while a fresh zeros mesh does not
    mesh = _paint_chunk(mesh, pos[0], vals[0], n)
    mesh, _ = jax.lax.scan(body, mesh, (pos[1:], vals[1:]))
    return mesh


def _gather(fn, mesh: Array, pos: Array, vals: Array | None, n: int, chunk: int | None) -> Array:
    chunk = chunk_particles(chunk)
    num = pos.shape[0]
    if num <= chunk:
        return fn(mesh, pos, n) if vals is None else fn(mesh, pos, vals, n)
    xs = (_chunks(pos, chunk),) if vals is None else (_chunks(pos, chunk), _chunks(vals, chunk))

    def body(_, x):
        return None, fn(mesh, *x, n)

    _, out = jax.lax.scan(body, None, xs)
    return out.reshape(-1, out.shape[-1])[:num]


@partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _paint_vjp(pos: Array, vals: Array, n: int, chunk: int) -> Array:
    return scatter_flat(pos, vals, n, chunk)


def _paint_fwd(pos, vals, n, chunk):
    return scatter_flat(pos, vals, n, chunk), (pos, vals)


def _paint_bwd(n, chunk, res, ct):
    pos, vals = res
    pos_ct = _gather(_pos_grad_chunk, ct, pos, vals, n, chunk)
    vals_ct = readout_flat(ct, pos, n, chunk)
    return pos_ct, vals_ct


_paint_vjp.defvjp(_paint_fwd, _paint_bwd)


def readout_flat(mesh: Array, pos: Array, n: int, chunk: int | None) -> Array:
    """CIC-interpolate a flattened mesh (layout of ``scatter_flat``) at ``pos`` ``(N, 3)``.

    Args:
        mesh: flat mesh ``(num_cells, C)`` whose planes are ``n x n`` cells.
        pos: positions in mesh-cell units; n: plane size; chunk: particles per chunk.

    Returns:
        Values ``(N, C)`` (no custom VJP).
    """
    return _gather(_readout_chunk, mesh, pos, None, n, chunk)


@partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _readout_vjp(mesh: Array, pos: Array, n: int, chunk: int) -> Array:
    return readout_flat(mesh, pos, n, chunk)


def _readout_fwd(mesh, pos, n, chunk):
    return readout_flat(mesh, pos, n, chunk), (mesh, pos)


def _readout_bwd(n, chunk, res, ct):
    mesh, pos = res
    return scatter_flat(pos, ct, n, chunk), _gather(_pos_grad_chunk, mesh, pos, ct, n, chunk)


_readout_vjp.defvjp(_readout_fwd, _readout_bwd)


def weight_columns(pos: Array, weights: Array | None) -> tuple[Array, bool]:
    """Particle weights as columns ``(N, C)`` and whether they were scalar per particle.

    Args:
        pos: positions ``(N, 3)`` (for ``N`` and the dtype).
        weights: ``None`` (unit mass), ``(N,)`` or ``(N, C)``.

    Returns:
        ``(vals, scalar)``: ``vals`` of shape ``(N, 1)`` for ``None`` or ``(N,)`` weights
        (``scalar = True``) and ``(N, C)`` otherwise.
    """
    if weights is None:
        return jnp.ones((pos.shape[0], 1), pos.dtype), True
    weights = jnp.asarray(weights, pos.dtype)
    return (weights[:, None], True) if weights.ndim == 1 else (weights, False)


def paint(
    pos: Array,
    n: int,
    weights: Array | None = None,
    chunk_size: int | None = None,
    custom_vjp: bool = True,
) -> Array:
    """CIC-assign particles to a periodic mesh.

    Args:
        pos: positions in mesh-cell units, shape ``(N, 3)``.
        n: mesh cells per side.
        weights: ``None`` (unit mass), shape ``(N,)`` or ``(N, C)``.
        chunk_size: particles per chunk (``None``: the backend's default,
            :func:`chunk_particles`).
        custom_vjp: use the custom VJP (reverse mode); ``False`` gives the plain JAX map,
            which also supports forward mode.

    Returns:
        Mesh of shape ``(n, n, n)`` (or ``(n, n, n, C)``) holding the summed weights.
    """
    vals, scalar = weight_columns(pos, weights)
    fn = _paint_vjp if custom_vjp else scatter_flat
    mesh = fn(pos, vals, n, chunk_size)
    return mesh.reshape(n, n, n) if scalar else mesh.reshape(n, n, n, -1)


def readout(
    mesh: Array, pos: Array, chunk_size: int | None = None, custom_vjp: bool = True
) -> Array:
    """CIC-interpolate a periodic mesh at particle positions.

    Args:
        mesh: shape ``(n, n, n)`` or ``(n, n, n, C)``.
        pos: positions in mesh-cell units, shape ``(N, 3)``.
        chunk_size: particles per chunk.
        custom_vjp: see :func:`paint`.

    Returns:
        Values of shape ``(N,)`` (or ``(N, C)``).
    """
    n = mesh.shape[0]
    flat = mesh.reshape(n**3, -1)
    if custom_vjp:
        out = _readout_vjp(flat, pos, n, chunk_size)
    else:
        out = readout_flat(flat, pos, n, chunk_size)
    return out[:, 0] if mesh.ndim == 3 else out


def readout_position_vjp(
    mesh: Array, pos: Array, ct: Array, chunk_size: int | None = None
) -> Array:
    """Cotangent of the positions of ``readout(mesh, pos)`` for output cotangent ``ct``.

    Args:
        mesh: shape ``(n, n, n, C)``; pos: ``(N, 3)`` cell units; ct: ``(N, C)``.

    Returns:
        Position cotangent, shape ``(N, 3)``, in 1 / cell units.
    """
    n = mesh.shape[0]
    return _gather(_pos_grad_chunk, mesh.reshape(n**3, -1), pos, ct, n, chunk_size)


def paint_position_vjp(mesh_ct: Array, pos: Array, chunk_size: int | None = None) -> Array:
    """Cotangent of the positions of the unit-mass ``paint(pos, n)`` for mesh cotangent
    ``mesh_ct`` of shape ``(n, n, n)``; returns shape ``(N, 3)``."""
    n = mesh_ct.shape[0]
    ones = jnp.ones((pos.shape[0], 1), pos.dtype)
    return _gather(_pos_grad_chunk, mesh_ct.reshape(n**3, 1), pos, ones, n, chunk_size)
