"""Friends-of-friends (FoF) haloes of particles in a periodic box.

Two particles are friends when their periodic (minimum-image) distance is below the linking
length ``b * box / N^(1/3)``, ``b`` times the mean interparticle separation of the ``N``
particles; a halo is a connected component of the friendship graph with at least
``min_members`` particles (Davis et al. 1985, b = 0.2). Pairs come from
``scipy.spatial.cKDTree`` with ``boxsize`` (periodic), components from
``scipy.sparse.csgraph.connected_components``. This runs on the host in NumPy, after a
simulation; it is not differentiable.

Halo masses are ``members * m_p`` with the particle mass ``m_p = Omega_m rho_crit box^3 / N``
in Msun/h, ``rho_crit`` the critical density today in (Msun/h) / (Mpc/h)^3.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from cosmolaw.pytree import pytree_dataclass, static_field
from simulator.cosmology import Cosmology

#: Critical density today, 3 H0^2 / (8 pi G) with H0 = 100 h km/s/Mpc, in (Msun/h) / (Mpc/h)^3.
RHO_CRIT = 2.77536627e11


@pytree_dataclass
class HaloCatalogue:
    """FoF haloes, ordered by decreasing number of members.

    Attributes:
        positions: centres of mass in Mpc/h, in ``[0, box)``, shape ``(H, 3)``.
        members: member particles per halo, shape ``(H,)`` (int).
        mass: halo masses in Msun/h, shape ``(H,)``.
        labels: halo index of each particle (``-1``: in no halo), shape ``(N,)``, or None.
        box: box side in Mpc/h.
        linking_length: linking length in Mpc/h.
        particle_mass: mass of one particle in Msun/h.
    """

    positions: np.ndarray
    members: np.ndarray
    mass: np.ndarray
    labels: np.ndarray | None
    box: float = static_field()
    linking_length: float = static_field()
    particle_mass: float = static_field()


def particle_mass(cosmo: Cosmology, box: float, n_particles: int) -> float:
    """Mass of one of ``n_particles`` equal-mass particles in a box of side ``box`` Mpc/h, in
    Msun/h: the mean matter density ``Omega_m rho_crit`` times ``box^3 / n_particles``."""
    return float(cosmo.Omega_m) * RHO_CRIT * box**3 / n_particles


def _require_positive(name: str, value: float, unit: str = "") -> None:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if not (ok and math.isfinite(value) and value > 0):
        raise ValueError(f"{name}={value!r} is invalid: must be a finite number > 0{unit}")


def _check(pos: np.ndarray, box: float, b: float, min_members: int) -> np.ndarray:
    """Validated positions as float64 ``(N, 3)`` wrapped into ``[0, box)``."""
    _require_positive("box", box, " (Mpc/h)")
    _require_positive("b", b)
    if isinstance(min_members, bool) or not isinstance(min_members, int | np.integer):
        raise ValueError(f"min_members={min_members!r} is invalid: must be an integer >= 1")
    if min_members < 1:
        raise ValueError(f"min_members={min_members!r} is invalid: must be an integer >= 1")
    pos = np.asarray(pos, dtype=np.float64)
    if pos.ndim != 2 or pos.shape[1] != 3 or pos.shape[0] < 1:
        raise ValueError(f"pos has shape {pos.shape}: must be (N, 3) with N >= 1")
    if not np.all(np.isfinite(pos)):
        raise ValueError("pos has non-finite entries: positions must be finite (Mpc/h)")
    pos = np.mod(pos, box)
    return np.where(pos >= box, pos - box, pos)  # mod can round up to box itself


def _centres(pos: np.ndarray, labels: np.ndarray, n_groups: int, box: float) -> np.ndarray:
    """Periodic centres of mass of the groups ``0..n_groups-1`` given by ``labels`` ``(N,)``
    (particles with ``labels < 0`` ignored): member offsets from each group's first member,
    taken by minimum image, are averaged (exact for groups narrower than half the box)."""
    member = labels >= 0
    lab, p = labels[member], pos[member]
    _, first = np.unique(lab, return_index=True)
    ref = p[first]
    offset = p - ref[lab]
    offset -= box * np.round(offset / box)
    count = np.bincount(lab, minlength=n_groups)[:, None]
    mean = np.stack([np.bincount(lab, offset[:, i], n_groups) for i in range(3)], -1) / count
    centre = np.mod(ref + mean, box)
    return np.where(centre >= box, centre - box, centre)


def friends_of_friends(
    pos: np.ndarray,
    box: float,
    b: float = 0.2,
    min_members: int = 10,
    cosmo: Cosmology | None = None,
    return_labels: bool = False,
) -> HaloCatalogue:
    """Find friends-of-friends haloes of equal-mass particles in a periodic box.

    Args:
        pos: particle positions in Mpc/h, shape ``(N, 3)`` (any periodic image).
        box: periodic box side in Mpc/h (> 0).
        b: linking length in units of the mean interparticle separation ``box / N^(1/3)``.
        min_members: smallest number of particles of a halo (>= 1).
        cosmo: cosmology setting the particle mass (default Planck 2018).
        return_labels: also return each particle's halo index (``-1`` for none).

    Returns:
        The ``HaloCatalogue``, haloes ordered by decreasing membership (ties by position in
        ``pos`` of their first member).
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    pos = _check(pos, box, b, min_members)
    cosmo = Cosmology.planck18() if cosmo is None else cosmo
    cosmo.validate()
    n = pos.shape[0]
    link = b * box / n ** (1.0 / 3.0)
    pairs = cKDTree(pos, boxsize=box).query_pairs(link, output_type="ndarray")
    graph = coo_matrix((np.ones(len(pairs), np.int8), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    _, component = connected_components(graph, directed=False)
    sizes = np.bincount(component)
    _, first = np.unique(component, return_index=True)
    keep = np.flatnonzero(sizes >= min_members)
    keep = keep[np.lexsort((first[keep], -sizes[keep]))]
    index = np.full(sizes.shape[0], -1, dtype=np.int64)
    index[keep] = np.arange(keep.size)
    labels = index[component]
    m_p = particle_mass(cosmo, box, n)
    members = sizes[keep].astype(np.int64)
    return HaloCatalogue(
        positions=_centres(pos, labels, keep.size, box) if keep.size else np.zeros((0, 3)),
        members=members,
        mass=members * m_p,
        labels=labels if return_labels else None,
        box=float(box),
        linking_length=float(link),
        particle_mass=m_p,
    )
