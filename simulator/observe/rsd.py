"""Redshift-space distortions of particles, plane-parallel or radial, in a periodic box.

Velocities follow the particle convention of ``docs/conventions.md``: ``vel = dx / dln a`` in
Mpc/h, so that a particle at comoving position ``x`` appears in redshift space at
``s = x + (vel . n) n`` with ``n`` the unit line of sight (``v_pec / (a H) = dx / dln a``).

- plane-parallel: ``n`` is a fixed axis (0, 1, 2) or unit vector;
- radial: ``n = (x - observer) / |x - observer|`` for an observer at a position in the box, using
  the positions as given in ``[0, box)`` (no periodic images of the observer).

Redshift-space positions are wrapped back into ``[0, box)``. All functions are pure JAX and
differentiable in positions and velocities.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from cosmolaw.pytree import pytree_dataclass, static_field

#: Kinds of redshift-space distortion.
RSD_KINDS = ("none", "plane-parallel", "radial")


def line_of_sight(los: int | Sequence[float]) -> np.ndarray:
    """Unit line-of-sight vector, shape ``(3,)``, from an axis index or a 3-vector.

    Raises ``ValueError`` naming ``los`` for an axis outside 0..2, a vector of the wrong size,
    a non-finite or zero vector.
    """
    if isinstance(los, int | np.integer) and not isinstance(los, bool):
        if not 0 <= int(los) <= 2:
            raise ValueError(f"los={los!r} must be an axis index 0, 1 or 2, or a 3-vector")
        return np.eye(3)[int(los)]
    vec = np.asarray(los, dtype=float)
    norm = np.linalg.norm(vec) if vec.shape == (3,) else 0.0
    if vec.shape != (3,) or not np.all(np.isfinite(vec)) or norm == 0.0:
        raise ValueError(f"los={los!r} must be an axis index 0, 1 or 2, or a non-zero 3-vector")
    return vec / norm


def check_observer(observer: Sequence[float], box: float) -> np.ndarray:
    """The observer position as a ``(3,)`` array in Mpc/h; must lie inside ``[0, box]^3``."""
    obs = np.asarray(observer, dtype=float)
    if obs.shape != (3,) or not np.all(np.isfinite(obs)) or np.any((obs < 0) | (obs > box)):
        raise ValueError(
            f"observer={np.asarray(observer).tolist()!r} must be a position (x, y, z) inside "
            f"the box [0, {box}]^3 Mpc/h"
        )
    return obs


@pytree_dataclass
class RSDConfig:
    """Redshift-space settings (all static).

    Attributes:
        kind: ``"none"``, ``"plane-parallel"`` or ``"radial"``.
        los: line of sight for ``"plane-parallel"``: an axis index or a 3-vector (stored as
            a unit 3-tuple).
        observer: observer position (x, y, z) in Mpc/h for ``"radial"``; ``None`` means the
            centre of the box.
    """

    kind: str = static_field("none")
    los: int | tuple[float, float, float] = static_field(2)
    observer: tuple[float, float, float] | None = static_field(None)

    def __post_init__(self) -> None:
        if self.kind not in RSD_KINDS:
            raise ValueError(f"rsd={self.kind!r} is not allowed (allowed: {list(RSD_KINDS)})")
        object.__setattr__(self, "los", tuple(float(x) for x in line_of_sight(self.los)))
        if self.observer is not None:
            obs = np.asarray(self.observer, dtype=float)
            if obs.shape != (3,) or not np.all(np.isfinite(obs)):
                raise ValueError(f"observer={self.observer!r} must be a finite position (x, y, z)")
            object.__setattr__(self, "observer", tuple(float(x) for x in obs))

    def observer_in(self, box: float) -> np.ndarray:
        """The observer position [Mpc/h] in a box of side ``box`` (checked to lie inside)."""
        return check_observer((box / 2,) * 3 if self.observer is None else self.observer, box)


def plane_parallel_shift(vel: jax.Array, los: jax.Array) -> jax.Array:
    """Redshift-space displacement ``(vel . n) n`` [Mpc/h], shape ``(N, 3)``.

    ``vel``: ``(N, 3)`` velocities dx/dln a [Mpc/h]; ``los``: unit vector ``(3,)``.
    """
    los = jnp.asarray(los, vel.dtype)
    return (vel @ los)[:, None] * los[None, :]


def radial_shift(pos: jax.Array, vel: jax.Array, observer: jax.Array) -> jax.Array:
    """Redshift-space displacement along the observer-particle direction [Mpc/h], ``(N, 3)``.

    ``pos``: ``(N, 3)`` positions [Mpc/h]; ``vel``: ``(N, 3)`` dx/dln a [Mpc/h]; ``observer``:
    ``(3,)`` [Mpc/h]. A particle exactly at the observer is not shifted.
    """
    rel = pos - jnp.asarray(observer, pos.dtype)
    r2 = jnp.sum(rel**2, axis=-1, keepdims=True)
    safe_r2 = jnp.where(r2 > 0, r2, 1.0)
    return jnp.where(r2 > 0, jnp.sum(vel * rel, axis=-1, keepdims=True) * rel / safe_r2, 0.0)


def rsd_shift(
    pos: jax.Array,
    vel: jax.Array,
    los: jax.Array | None = None,
    observer: jax.Array | None = None,
) -> jax.Array:
    """Redshift-space displacement [Mpc/h], ``(N, 3)``, to add to positions or displacements.

    ``pos``: ``(N, 3)`` positions in ``[0, box)`` [Mpc/h] (used only for the radial case);
    ``vel``: ``(N, 3)`` dx/dln a [Mpc/h]. Give exactly one of ``los`` (unit vector ``(3,)``:
    plane-parallel) or ``observer`` (``(3,)`` Mpc/h: radial); build them with
    :func:`line_of_sight` / :func:`check_observer`.
    """
    if (los is None) == (observer is None):
        raise ValueError("give exactly one of los (plane-parallel) or observer (radial)")
    if observer is None:
        return plane_parallel_shift(vel, los)
    return radial_shift(pos, vel, observer)


def redshift_space_positions(
    pos: jax.Array,
    vel: jax.Array,
    box: float,
    los: jax.Array | None = None,
    observer: jax.Array | None = None,
) -> jax.Array:
    """Positions in redshift space, wrapped into ``[0, box)`` [Mpc/h], shape ``(N, 3)``.

    Arguments as in :func:`rsd_shift`; ``box`` is the periodic box side [Mpc/h].
    """
    return jnp.mod(pos + rsd_shift(pos, vel, los, observer), box)


def kaiser_monopole_factor(f: float, b: float = 1.0) -> float:
    """Kaiser (1987) linear boost of the monopole, ``P_0^s / P^r = 1 + 2 beta/3 + beta^2/5``
    relative to the real-space tracer power, with ``beta = f / b``."""
    beta = f / b
    return 1.0 + 2.0 * beta / 3.0 + beta**2 / 5.0
