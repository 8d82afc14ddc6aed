"""Friends-of-friends haloes against configurations whose groups are known by construction.

- planted clumps (small cubic lattices finer than the linking length, one across the corner
  of the box) on a background lattice coarser than the linking length: recovered exactly,
  with their membership, centres and masses (mass from rho_crit = 3 H0^2 / (8 pi G));
- a uniform lattice: no groups when its spacing exceeds the linking length, one group of
  every particle when it is below;
- Poisson points: the fraction of isolated particles is exp(-n 4/3 pi l^3).
"""

from __future__ import annotations

import numpy as np
import pytest

from simulator.cosmology import Cosmology
from simulator.observe.halos import friends_of_friends

#: Newton's constant in Mpc (km/s)^2 / Msun.
G_NEWTON = 4.300917e-9


def lattice(m: int, spacing: float, offset: float = 0.0) -> np.ndarray:
    """``m^3`` points of a cubic lattice, shape ``(m^3, 3)``."""
    i = (np.arange(m) + offset) * spacing
    return np.stack(np.meshgrid(i, i, i, indexing="ij"), -1).reshape(-1, 3)


def clump(shape: tuple[int, int, int], spacing: float, centre: np.ndarray) -> np.ndarray:
    """A small rectangular lattice of ``prod(shape)`` points centred on ``centre``."""
    axes = [(np.arange(s) - (s - 1) / 2) * spacing for s in shape]
    return np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3) + centre


def periodic_distance(a: np.ndarray, b: np.ndarray, box: float) -> np.ndarray:
    d = a - b
    d -= box * np.round(d / box)
    return np.linalg.norm(d, axis=-1)


@pytest.fixture(scope="module")
def planted():
    """Four clumps (8, 12, 27, 64 members) on a 10^3 background lattice of side 100 Mpc/h."""
    box, m = 100.0, 10
    s = box / m
    shapes = [(2, 2, 2), (2, 2, 3), (3, 3, 3), (4, 4, 4)]
    n = m**3 + sum(int(np.prod(sh)) for sh in shapes)
    link = 0.2 * box / n ** (1 / 3)
    # Background at cell centres; clumps on lattice corners (far from the background), the
    # largest on the box corner so that it straddles all three faces.
    centres = np.array([[3, 5, 7], [6, 2, 4], [8, 8, 1], [0, 0, 0]], float) * s
    pieces = [lattice(m, s, 0.5)] + [
        clump(sh, 0.6 * link, c) for sh, c in zip(shapes, centres, strict=True)
    ]
    rng = np.random.default_rng(1)
    pos = np.concatenate(pieces)
    order = rng.permutation(len(pos))
    truth = np.concatenate([np.full(len(p), i - 1) for i, p in enumerate(pieces)])
    cat = friends_of_friends(pos[order], box, min_members=10, return_labels=True)
    return cat, truth[order], centres, shapes, box, n


def test_planted_clumps_are_recovered_exactly(planted):
    cat, truth, centres, shapes, box, _ = planted
    sizes = [int(np.prod(sh)) for sh in shapes]
    # the 8-member clump is below min_members; the others in decreasing size
    np.testing.assert_array_equal(cat.members, [64, 27, 12])
    assert sizes[1:] == sorted(cat.members.tolist())
    for halo, clump_index in enumerate([3, 2, 1]):
        np.testing.assert_array_equal(cat.labels == halo, truth == clump_index)
        assert periodic_distance(cat.positions[halo], centres[clump_index], box) < 1e-9
    assert np.all(cat.labels[(truth == -1) | (truth == 0)] == -1)
    assert np.all((cat.positions >= 0) & (cat.positions < box))


def test_masses_from_the_critical_density(planted):
    cat, _, _, _, box, n = planted
    omega_m = float(Cosmology.planck18().Omega_m)
    rho_crit = 3 * 100.0**2 / (8 * np.pi * G_NEWTON)  # (Msun/h) / (Mpc/h)^3
    np.testing.assert_allclose(cat.mass, cat.members * omega_m * rho_crit * box**3 / n, rtol=1e-5)


def test_lattice_links_only_below_its_spacing():
    pos = lattice(12, 5.0, 0.25)
    apart = friends_of_friends(pos, 60.0, b=0.95, min_members=2, return_labels=True)
    assert apart.members.size == 0 and np.all(apart.labels == -1)
    joined = friends_of_friends(pos, 60.0, b=1.05, min_members=2)
    np.testing.assert_array_equal(joined.members, [12**3])


def test_isolated_fraction_of_poisson_points():
    n, box, b = 20**3, 50.0, 0.5
    pos = np.random.default_rng(3).uniform(0, box, (n, 3))
    cat = friends_of_friends(pos, box, b=b, min_members=1)
    isolated = np.sum(cat.members == 1) / n
    assert abs(isolated - np.exp(-4 / 3 * np.pi * b**3)) < 0.02


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"box": -1.0}, "box"),
        ({"b": 0.0}, "b"),
        ({"min_members": 0}, "min_members"),
        ({"pos": np.zeros((5, 2))}, "pos"),
        ({"pos": np.full((5, 3), np.nan)}, "pos"),
    ],
)
def test_bad_input_is_refused(kwargs, name):
    args = {"pos": np.zeros((5, 3)), "box": 10.0} | kwargs
    with pytest.raises(ValueError, match=name):
        friends_of_friends(**args)
