"""Linear and second-order growth: D1, D2 and the growth rates f1, f2.

The growth ODEs, in x = ln a with primes d/dx,

    D1'' + (2 + dlnE/dlna) D1' = (3/2) Omega_m(a) D1
    D2'' + (2 + dlnE/dlna) D2' = (3/2) Omega_m(a) (D2 - D1^2)

are integrated with fixed-step RK4 in JAX (``lax.scan``), so the table is
jit-able and differentiable with respect to every cosmological parameter. Nothing
is cached: call ``growth_table`` once per traced function and pass the table on.

Normalisation: D1(a=1) = 1 and D2 is scaled by the same factor squared, so that
in matter domination D2 = -(3/7) D1^2 (2LPT displacement Psi = D1 Psi1 + D2 Psi2
with nabla.Psi2 = sum_{i<j} [phi_ii phi_jj - phi_ij^2] of the first-order potential).
The integration starts deep in the radiation era on the Meszaros growing mode
D1 = a + (2/3) a_eq, which reduces to D1 = a without radiation.
"""

from __future__ import annotations

import math
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from cosmolaw.pytree import pytree_dataclass, static_field
from simulator.cosmology import Cosmology, dlnE_dlna, omega_m_a


class Growth(NamedTuple):
    """Growth functions at given scale factors; each field has the shape of ``a``."""

    D1: jnp.ndarray
    D2: jnp.ndarray
    f1: jnp.ndarray
    f2: jnp.ndarray


@pytree_dataclass
class GrowthTable:
    """Solution of the growth ODEs on a uniform grid in ln a.

    Attributes:
        y: (n, 4) array of (D1, D1', D2, D2') at the grid nodes (normalised; primes d/dlna).
        dy: (n, 4) array of their ln-a derivatives (from the ODE right-hand side).
        D1_raw_today: unnormalised D1(a=1) (the Meszaros mode normalised to D1 = a
            in matter domination); used to normalise P(k) by A_s.
        lna_min, lna_max: static grid bounds.
    """

    y: jnp.ndarray
    dy: jnp.ndarray
    D1_raw_today: jnp.ndarray
    lna_min: float = static_field(default=math.log(1e-5))
    lna_max: float = static_field(default=math.log(2.0))

    @property
    def n(self) -> int:
        return self.y.shape[0]


def _rhs(lna: jnp.ndarray, y: jnp.ndarray, cosmo: Cosmology) -> jnp.ndarray:
    a = jnp.exp(lna)
    d1, d1p, d2, d2p = y
    friction = 2.0 + dlnE_dlna(a, cosmo)
    source = 1.5 * omega_m_a(a, cosmo)
    return jnp.stack(
        [d1p, -friction * d1p + source * d1, d2p, -friction * d2p + source * (d2 - d1**2)]
    )


@partial(jax.jit, static_argnames=("n_steps", "a_min", "a_max"))
def growth_table(
    cosmo: Cosmology, n_steps: int = 1024, a_min: float = 1e-5, a_max: float = 2.0
) -> GrowthTable:
    """Integrate the growth ODEs from ``a_min`` to ``a_max`` with ``n_steps`` RK4 steps.

    Args:
        cosmo: cosmology (may be traced).
        n_steps: RK4 steps, uniform in ln a (static).
        a_min, a_max: scale-factor range of the table (static); a = 1 must lie inside.

    Returns:
        The ``GrowthTable`` with ``n_steps + 1`` nodes.
    """
    lna_min, lna_max = math.log(a_min), math.log(a_max)
    dx = (lna_max - lna_min) / n_steps
    omega_r = jnp.asarray(cosmo.Omega_r, dtype=float)
    a_eq = omega_r / cosmo.Omega_m
    d1 = a_min + 2.0 / 3.0 * a_eq
    d1p = jnp.asarray(a_min, dtype=d1.dtype)
    # EdS second-order mode; the homogeneous admixture this leaves decays as 1/D1.
    d2 = -3.0 / 7.0 * d1**2
    y0 = jnp.stack([d1, d1p, d2, 2.0 * (d1p / d1) * d2])

    def step(y, lna):
        k1 = _rhs(lna, y, cosmo)
        k2 = _rhs(lna + dx / 2, y + dx / 2 * k1, cosmo)
        k3 = _rhs(lna + dx / 2, y + dx / 2 * k2, cosmo)
        k4 = _rhs(lna + dx, y + dx * k3, cosmo)
        y_next = y + dx / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        return y_next, y_next

    lnas = lna_min + dx * jnp.arange(n_steps)
    _, ys = jax.lax.scan(step, y0, lnas)
    ys = jnp.concatenate([y0[None], ys])
    grid = lna_min + dx * jnp.arange(n_steps + 1)
    dys = jax.vmap(lambda x, y: _rhs(x, y, cosmo))(grid, ys)

    # Normalise D1(a=1) = 1, using the Hermite interpolant of the raw solution.
    raw = GrowthTable(ys, dys, jnp.ones(()), lna_min, lna_max)
    d1_today = _hermite(raw, jnp.zeros(()))[0]
    scale = jnp.stack([1 / d1_today, 1 / d1_today, 1 / d1_today**2, 1 / d1_today**2])
    return GrowthTable(ys * scale, dys * scale, d1_today, lna_min, lna_max)


def _hermite(table: GrowthTable, lna: jnp.ndarray) -> jnp.ndarray:
    """Cubic Hermite interpolation of the 4 table columns at ``lna``; shape (4, *lna.shape)."""
    dx = (table.lna_max - table.lna_min) / (table.n - 1)
    u = (lna - table.lna_min) / dx
    i = jnp.clip(jnp.floor(u).astype(int), 0, table.n - 2)
    t = (u - i)[..., None]
    y0, y1 = table.y[i], table.y[i + 1]
    m0, m1 = table.dy[i] * dx, table.dy[i + 1] * dx
    t2, t3 = t * t, t * t * t
    out = (
        (2 * t3 - 3 * t2 + 1) * y0
        + (t3 - 2 * t2 + t) * m0
        + (-2 * t3 + 3 * t2) * y1
        + (t3 - t2) * m1
    )
    return jnp.moveaxis(out, -1, 0)


def growth_at(table: GrowthTable, a: ArrayLike) -> Growth:
    """D1, D2, f1 = dlnD1/dlna and f2 = dlnD2/dlna at scale factors ``a`` (any shape)."""
    d1, d1p, d2, d2p = _hermite(table, jnp.log(jnp.asarray(a)))
    return Growth(D1=d1, D2=d2, f1=d1p / d1, f2=d2p / d2)


def growth_factor(a: ArrayLike, cosmo: Cosmology) -> jnp.ndarray:
    """Linear growth factor D1(a), D1(1) = 1 (solves the ODE: in loops use ``growth_table``)."""
    return growth_at(growth_table(cosmo), a).D1


def growth_rate(a: ArrayLike, cosmo: Cosmology) -> jnp.ndarray:
    """Linear growth rate f1(a) = dlnD1/dlna (solves the ODE: in loops use ``growth_table``)."""
    return growth_at(growth_table(cosmo), a).f1
