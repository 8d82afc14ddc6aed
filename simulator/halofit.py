"""Halofit: the nonlinear matter power spectrum from the linear one (Takahashi et al. 2012).

The fitting formula of Smith et al. (2003, astro-ph/0207664, appendix C) with the revised
coefficients of Takahashi et al. (2012, arXiv:1208.2701, eqs. A6-A13). With the
dimensionless linear spectrum ``Delta_L^2(k) = k^3 P_L(k) / (2 pi^2)``:

- the nonlinear scale ``k_sigma = 1 / R`` solves ``sigma^2(R) = 1`` for the Gaussian-filtered
  variance ``sigma^2(R) = int dlnk Delta_L^2(k) exp(-k^2 R^2)``;
- the effective index ``n_eff = -3 - dln sigma^2 / dlnR`` and the curvature
  ``C = -d^2 ln sigma^2 / dlnR^2`` at that scale set the coefficients;
- ``Delta_NL^2 = Delta_Q^2 + Delta_H^2``, a quasi-linear (two-halo) term and a one-halo term of
  ``y = k / k_sigma``.

Everything is a pure JAX function (jit-able, differentiable in k, the cosmology and a): the
variance integrals use a fixed log-k grid and the root ``R_sigma`` is found by interpolation on
a fixed log-R grid refined by Newton steps. Units: k in h/Mpc, P in (Mpc/h)^3.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from simulator.cosmology import E2, Cosmology, dark_energy_density, omega_m_a
from simulator.linear_power import linear_power

#: log-k grid [h/Mpc] of the Gaussian-filtered variance integrals.
_LNK = np.linspace(math.log(1e-4), math.log(1e3), 1400)
#: log-R grid [Mpc/h] bracketing the nonlinear scale for 0 <= z <~ 10.
_LNR = np.linspace(math.log(1e-3), math.log(60.0), 96)
_NEWTON_STEPS = 3

LinearPower = Callable[[jnp.ndarray], jnp.ndarray]


def _moments(delta2: jnp.ndarray, lnr: jnp.ndarray) -> tuple[jnp.ndarray, ...]:
    """Gaussian-filtered integrals of ``delta2`` (on ``_LNK``) at radii ``exp(lnr)``.

    Returns ``(sigma^2, I_2, I_4)`` with ``I_m = int dlnk Delta^2 y^m exp(-y^2)``, ``y = k R``,
    each of the shape of ``lnr``.
    """
    lnk = jnp.asarray(_LNK)
    y2 = jnp.exp(2.0 * (lnk + lnr[..., None]))
    weight = delta2 * jnp.exp(-y2)
    return tuple(jnp.trapezoid(weight * y2**m, lnk, axis=-1) for m in (0, 1, 2))


def nonlinear_scale(delta2: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray, jnp.ndarray]:
    """``(k_sigma [h/Mpc], n_eff, C)`` of a dimensionless linear spectrum sampled on ``_LNK``.

    ``delta2``: ``Delta_L^2`` at ``exp(_LNK)``, shape ``(len(_LNK),)``.
    """
    lnr = jnp.asarray(_LNR)
    ln_sigma2 = jnp.log(_moments(delta2, lnr)[0])
    # ln sigma^2 decreases with R: interpolate ln R at ln sigma^2 = 0 on the reversed grid.
    x = jnp.interp(0.0, ln_sigma2[::-1], lnr[::-1])
    for _ in range(_NEWTON_STEPS):
        s2, i2, _ = _moments(delta2, x)
        x = x + jnp.log(s2) * s2 / (2.0 * i2)  # dln sigma^2 / dlnR = -2 I_2 / sigma^2
    s2, i2, i4 = _moments(delta2, x)
    n_plus_3 = 2.0 * i2 / s2
    curvature = n_plus_3**2 + 4.0 * (i2 - i4) / s2
    return jnp.exp(-x), n_plus_3 - 3.0, curvature


def _delta2_nonlinear(
    k: ArrayLike, cosmo: Cosmology, a: ArrayLike, delta2_lin: ArrayLike, delta2_grid: jnp.ndarray
) -> jnp.ndarray:
    """Takahashi et al. (2012) ``Delta_NL^2`` at ``k`` [h/Mpc] (shape of ``k``).

    Args:
        k: wavenumbers in h/Mpc, any shape.
        cosmo: cosmology (for Omega_m(a), Omega_de(a) and w(a)).
        a: scale factor (scalar).
        delta2_lin: linear ``Delta_L^2`` at ``k`` (shape of ``k``).
        delta2_grid: linear ``Delta_L^2`` on ``exp(_LNK)`` (for the nonlinear scale).
    """
    k = jnp.asarray(k)
    ksig, n, c = nonlinear_scale(delta2_grid)
    om = omega_m_a(a, cosmo)
    ode = cosmo.Omega_de * dark_energy_density(a, cosmo) / E2(a, cosmo)
    w = cosmo.w0 + cosmo.wa * (1.0 - a)
    a_n = 10.0 ** (
        1.5222 + 2.8553 * n + 2.3706 * n**2 + 0.9903 * n**3 + 0.2250 * n**4
        - 0.6038 * c + 0.1749 * ode * (1.0 + w)
    )  # fmt: skip
    b_n = 10.0 ** (-0.5642 + 0.5864 * n + 0.5716 * n**2 - 1.5474 * c + 0.2279 * ode * (1.0 + w))
    c_n = 10.0 ** (0.3698 + 2.0404 * n + 0.8161 * n**2 + 0.5869 * c)
    gamma_n = 0.1971 - 0.0843 * n + 0.8460 * c
    alpha_n = jnp.abs(6.0835 + 1.3373 * n - 0.1959 * n**2 - 5.5274 * c)
    beta_n = 2.0379 - 0.7354 * n + 0.3157 * n**2 + 1.2490 * n**3 + 0.3980 * n**4 - 0.1682 * c
    nu_n = 10.0 ** (5.2105 + 3.6902 * n)
    f1, f2, f3 = om**-0.0307, om**-0.0585, om**0.0743

    y = k / ksig
    d2l = jnp.asarray(delta2_lin)
    quasi = d2l * (1.0 + d2l) ** beta_n / (1.0 + alpha_n * d2l) * jnp.exp(-(y / 4.0 + y**2 / 8.0))
    halo = a_n * y ** (3.0 * f1) / (1.0 + b_n * y**f2 + (c_n * f3 * y) ** (3.0 - gamma_n))
    return quasi + halo / (1.0 + nu_n / y**2)


def _linear(cosmo: Cosmology, a: ArrayLike) -> LinearPower:
    """The default linear P(k) at ``a``: ``simulator.linear_power``."""
    return lambda k: linear_power(k, cosmo, a)


def halofit_power(
    k: ArrayLike,
    cosmo: Cosmology,
    a: ArrayLike = 1.0,
    linear_pk: LinearPower | None = None,
) -> jnp.ndarray:
    """Nonlinear matter power spectrum P_NL(k, a) in (Mpc/h)^3 by halofit (Takahashi 2012).

    Args:
        k: wavenumbers in h/Mpc (> 0), any shape.
        cosmo: cosmology (traceable).
        a: scale factor (scalar, traceable).
        linear_pk: the linear P(k) [(Mpc/h)^3] at scale factor ``a`` as a JAX function of k
            [h/Mpc] (any shape -> same shape); default ``linear_power(k, cosmo, a)``. It is
            evaluated from 1e-4 to 1e3 h/Mpc for the variance integrals.

    Returns:
        P_NL with the shape of ``k``.
    """
    linear_pk = _linear(cosmo, a) if linear_pk is None else linear_pk
    k = jnp.asarray(k)
    grid_k = jnp.exp(jnp.asarray(_LNK))
    delta2_grid = grid_k**3 * linear_pk(grid_k) / (2.0 * jnp.pi**2)
    p_lin = linear_pk(k)
    d2 = _delta2_nonlinear(k, cosmo, a, k**3 * p_lin / (2.0 * jnp.pi**2), delta2_grid)
    return d2 * 2.0 * jnp.pi**2 / k**3


def halofit_boost(
    k: ArrayLike,
    cosmo: Cosmology,
    a: ArrayLike = 1.0,
    linear_pk: LinearPower | None = None,
) -> jnp.ndarray:
    """Halofit's nonlinear boost ``P_NL(k, a) / P_lin(k, a)`` (shape of ``k``); see
    ``halofit_power`` for the arguments."""
    linear_pk = _linear(cosmo, a) if linear_pk is None else linear_pk
    return halofit_power(k, cosmo, a, linear_pk) / linear_pk(jnp.asarray(k))
