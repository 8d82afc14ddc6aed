"""Linear matter power spectrum: Eisenstein & Hu (1998) transfer functions and normalisation.

Units: k in h/Mpc, P(k) in (Mpc/h)^3. The spectrum is

    P(k, a) = A k^n_s T(k)^2 D1(a)^2

with A fixed either by sigma8 (a differentiable top-hat variance integral on a
fixed log-k grid) or by the primordial amplitude A_s. Transfer functions:
``"eh_camb"`` (the default: EH98 with baryon acoustic oscillations times a shipped
CAMB-calibrated correction, see ``simulator.transfer_correction``), ``"eh"`` (EH98 with
baryon acoustic oscillations, as published), ``"eh_nowiggle"`` (EH98
zero-baryon-oscillation shape) or a user ``TabulatedTransfer`` (e.g. from CAMB or CLASS).
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from cosmolaw.pytree import pytree_dataclass
from simulator.cosmology import Cosmology
from simulator.growth import GrowthTable, growth_at, growth_table
from simulator.transfer_correction import log_correction

#: log-k grid [h/Mpc] of the sigma8 integral: the top-hat window makes both ends negligible.
_SIGMA_LNK = np.linspace(math.log(1e-5), math.log(1e3), 2049)
_K_PIVOT = 0.05  # 1/Mpc, for A_s
_C_KM_S = 299792.458


@pytree_dataclass
class TabulatedTransfer:
    """A transfer function tabulated by the user, interpolated in log-log space.

    Attributes:
        k: (n,) increasing wavenumbers in h/Mpc.
        T: (n,) transfer function at ``k`` (any normalisation: it is divided by T at
            the smallest k, so that T -> 1 on large scales). Beyond the table, T is held
            constant at low k and extrapolated as a power law at high k.
    """

    k: jnp.ndarray
    T: jnp.ndarray

    def __post_init__(self) -> None:
        k, t = self.k, self.T
        if isinstance(k, np.ndarray | list | tuple) and isinstance(t, np.ndarray | list | tuple):
            k, t = np.asarray(k), np.asarray(t)
            if k.ndim != 1 or k.shape != t.shape or k.size < 2:
                raise ValueError(
                    f"TabulatedTransfer: k and T must be 1D of equal length >= 2, "
                    f"got shapes {k.shape} and {t.shape}"
                )
            if np.any(np.diff(k) <= 0) or k[0] <= 0:
                raise ValueError("TabulatedTransfer: k must be positive and strictly increasing")
            if np.any(t <= 0):
                raise ValueError("TabulatedTransfer: T must be positive")

    def __call__(self, k: ArrayLike) -> jnp.ndarray:
        lnk, lnt = jnp.log(self.k), jnp.log(self.T / self.T[0])
        x = jnp.log(jnp.asarray(k))
        slope = (lnt[-1] - lnt[-2]) / (lnk[-1] - lnk[-2])
        inside = jnp.interp(x, lnk, lnt)
        beyond = lnt[-1] + slope * (x - lnk[-1])
        return jnp.exp(jnp.where(x > lnk[-1], beyond, inside))


def _eh_common(cosmo: Cosmology) -> dict[str, jnp.ndarray]:
    """EH98 quantities shared by both transfer functions (lengths in Mpc, not Mpc/h)."""
    h = cosmo.h
    om = cosmo.Omega_m * h**2
    ob = cosmo.Omega_b * h**2
    theta = cosmo.T_cmb / 2.7
    fb = cosmo.Omega_b / cosmo.Omega_m
    z_eq = 2.50e4 * om * theta**-4
    k_eq = 7.46e-2 * om * theta**-2
    b1 = 0.313 * om**-0.419 * (1 + 0.607 * om**0.674)
    b2 = 0.238 * om**0.223
    z_d = 1291 * om**0.251 / (1 + 0.659 * om**0.828) * (1 + b1 * ob**b2)
    r_d = 31.5 * ob * theta**-4 * (1e3 / z_d)
    r_eq = 31.5 * ob * theta**-4 * (1e3 / z_eq)
    s = (
        2.0
        / (3.0 * k_eq)
        * jnp.sqrt(6.0 / r_eq)
        * jnp.log((jnp.sqrt(1 + r_d) + jnp.sqrt(r_d + r_eq)) / (1 + jnp.sqrt(r_eq)))
    )
    return dict(om=om, ob=ob, theta=theta, fb=fb, z_eq=z_eq, k_eq=k_eq, z_d=z_d, r_d=r_d, s=s)


def _t0_tilde(q: jnp.ndarray, alpha: ArrayLike, beta: ArrayLike) -> jnp.ndarray:
    """EH98 eq. 19-20: the pressureless transfer shape."""
    lg = jnp.log(math.e + 1.8 * beta * q)
    c = 14.2 / alpha + 386.0 / (1 + 69.9 * q**1.08)
    return lg / (lg + c * q**2)


def transfer_eh(k: ArrayLike, cosmo: Cosmology) -> jnp.ndarray:
    """EH98 matter transfer function with baryon acoustic oscillations; k in h/Mpc."""
    p = _eh_common(cosmo)
    om, ob, fb, k_eq, s = p["om"], p["ob"], p["fb"], p["k_eq"], p["s"]
    fc = 1.0 - fb
    kk = jnp.asarray(k) * cosmo.h  # 1/Mpc
    q = kk / (13.41 * k_eq)

    a1 = (46.9 * om) ** 0.670 * (1 + (32.1 * om) ** -0.532)
    a2 = (12.0 * om) ** 0.424 * (1 + (45.0 * om) ** -0.582)
    alpha_c = a1**-fb * a2 ** (-(fb**3))
    bb1 = 0.944 / (1 + (458 * om) ** -0.708)
    bb2 = (0.395 * om) ** -0.0266
    beta_c = 1.0 / (1 + bb1 * (fc**bb2 - 1))
    f = 1.0 / (1 + (kk * s / 5.4) ** 4)
    t_c = f * _t0_tilde(q, 1.0, beta_c) + (1 - f) * _t0_tilde(q, alpha_c, beta_c)

    y = (1 + p["z_eq"]) / (1 + p["z_d"])
    sq = jnp.sqrt(1 + y)
    g = y * (-6 * sq + (2 + 3 * y) * jnp.log((sq + 1) / (sq - 1)))
    alpha_b = 2.07 * k_eq * s * (1 + p["r_d"]) ** -0.75 * g
    beta_b = 0.5 + fb + (3 - 2 * fb) * jnp.sqrt((17.2 * om) ** 2 + 1)
    beta_node = 8.41 * om**0.435
    k_silk = 1.6 * ob**0.52 * om**0.73 * (1 + (10.4 * om) ** -0.95)
    ks = kk * s
    s_tilde = s / (1 + (beta_node / ks) ** 3) ** (1.0 / 3.0)
    x = kk * s_tilde
    j0 = jnp.sinc(x / jnp.pi)
    t_b = (
        _t0_tilde(q, 1.0, 1.0) / (1 + (ks / 5.2) ** 2)
        + alpha_b / (1 + (beta_b / ks) ** 3) * jnp.exp(-((kk / k_silk) ** 1.4))
    ) * j0
    return fb * t_b + fc * t_c


def transfer_eh_nowiggle(k: ArrayLike, cosmo: Cosmology) -> jnp.ndarray:
    """EH98 zero-baryon-oscillation transfer function (eq. 26-31); k in h/Mpc."""
    h = cosmo.h
    p = _eh_common(cosmo)
    om, ob, fb, theta = p["om"], p["ob"], p["fb"], p["theta"]
    s = 44.5 * jnp.log(9.83 / om) / jnp.sqrt(1 + 10 * ob**0.75)
    alpha_gamma = 1 - 0.328 * jnp.log(431 * om) * fb + 0.38 * jnp.log(22.3 * om) * fb**2
    kk = jnp.asarray(k) * h
    gamma_eff = cosmo.Omega_m * h * (alpha_gamma + (1 - alpha_gamma) / (1 + (0.43 * kk * s) ** 4))
    q = jnp.asarray(k) * theta**2 / gamma_eff
    l0 = jnp.log(2 * math.e + 1.8 * q)
    c0 = 14.2 + 731.0 / (1 + 62.5 * q)
    return l0 / (l0 + c0 * q**2)


def transfer_eh_camb(k: ArrayLike, cosmo: Cosmology) -> jnp.ndarray:
    """EH98 wiggle transfer times its CAMB-calibrated correction; k in h/Mpc.

    Agrees with CAMB (massless neutrinos) to a few 0.1% inside the table's range; see
    ``simulator.transfer_correction``.
    """
    h = cosmo.h
    ln_r = log_correction(jnp.asarray(k) * h, cosmo.Omega_m * h**2, cosmo.Omega_b / cosmo.Omega_m)
    return transfer_eh(k, cosmo) * jnp.exp(ln_r)


TRANSFERS = {"eh": transfer_eh, "eh_nowiggle": transfer_eh_nowiggle, "eh_camb": transfer_eh_camb}
#: The transfer function used unless one is named.
DEFAULT_TRANSFER = "eh_camb"


def transfer_function(
    k: ArrayLike, cosmo: Cosmology, transfer: str | TabulatedTransfer = DEFAULT_TRANSFER
) -> jnp.ndarray:
    """T(k) (-> 1 as k -> 0) for k in h/Mpc, by name or from a ``TabulatedTransfer``."""
    if isinstance(transfer, TabulatedTransfer):
        return transfer(k)
    if transfer not in TRANSFERS:
        raise ValueError(
            f"transfer={transfer!r} is unknown; allowed: {sorted(TRANSFERS)} or a TabulatedTransfer"
        )
    return TRANSFERS[transfer](k, cosmo)


def tophat_window(x: ArrayLike) -> jnp.ndarray:
    """Fourier transform of a unit top-hat sphere, 3 (sin x - x cos x) / x^3 (stable near 0)."""
    x = jnp.asarray(x)
    small = x < 1e-3
    xs = jnp.where(small, 1.0, x)
    w = 3.0 * (jnp.sin(xs) - xs * jnp.cos(xs)) / xs**3
    return jnp.where(small, 1.0 - x**2 / 10.0, w)


def sigma_r(
    radius: ArrayLike, cosmo: Cosmology, transfer: str | TabulatedTransfer = DEFAULT_TRANSFER
) -> jnp.ndarray:
    """rms linear density contrast at a = 1 in top-hat spheres of ``radius`` Mpc/h."""
    k = jnp.exp(jnp.asarray(_SIGMA_LNK))
    return jnp.sqrt(_tophat_variance(linear_power(k, cosmo, 1.0, transfer=transfer), radius))


def _tophat_variance(pk_on_grid: jnp.ndarray, radius: ArrayLike) -> jnp.ndarray:
    """Variance in top-hat spheres of ``radius`` Mpc/h of a P(k) sampled on ``_SIGMA_LNK``."""
    lnk = jnp.asarray(_SIGMA_LNK)
    k = jnp.exp(lnk)
    integrand = k**3 * pk_on_grid / (2 * jnp.pi**2) * tophat_window(k * radius) ** 2
    return jnp.trapezoid(integrand, lnk)


def _primordial_amplitude(
    cosmo: Cosmology, transfer: str | TabulatedTransfer, table: GrowthTable | None
) -> jnp.ndarray:
    """Amplitude A of P(k) = A k^n_s T^2 D1^2 at a = 1, from sigma8 or from A_s."""
    if cosmo.sigma8 is not None:
        k = jnp.exp(jnp.asarray(_SIGMA_LNK))
        shape = k**cosmo.n_s * transfer_function(k, cosmo, transfer) ** 2
        return cosmo.sigma8**2 / _tophat_variance(shape, 8.0)
    # Delta^2(k) = (4/25) A_s (k/k_p)^(n_s-1) (k/H0)^4 T^2 (D_+(1)/Omega_m)^2 with D_+ ~ a
    # in matter domination (D1_raw_today); H0 = 100 h km/s/Mpc = (1/2997.9) h/Mpc.
    table = growth_table(cosmo) if table is None else table
    k_pivot = _K_PIVOT / cosmo.h  # h/Mpc
    hubble_k = 100.0 / _C_KM_S
    d_plus = table.D1_raw_today
    return (
        2
        * jnp.pi**2
        * 4.0
        / 25.0
        * cosmo.A_s
        * k_pivot ** (1 - cosmo.n_s)
        * hubble_k**-4
        * (d_plus / cosmo.Omega_m) ** 2
    )


def linear_power(
    k: ArrayLike,
    cosmo: Cosmology,
    a: ArrayLike = 1.0,
    *,
    transfer: str | TabulatedTransfer = DEFAULT_TRANSFER,
    table: GrowthTable | None = None,
) -> jnp.ndarray:
    """Linear matter power spectrum P(k, a) in (Mpc/h)^3.

    Args:
        k: wavenumbers in h/Mpc, any shape; k = 0 gives 0.
        cosmo: cosmology (normalised by sigma8, or by A_s when sigma8 is None).
        a: scale factor (scalar, or broadcastable against ``k``).
        transfer: "eh_camb" (default), "eh", "eh_nowiggle" or a ``TabulatedTransfer``.
        table: a precomputed ``growth_table(cosmo)``, to avoid re-solving the ODE.

    Returns:
        P(k, a) with the broadcast shape of ``k`` and ``a``.
    """
    k = jnp.asarray(k)
    safe_k = jnp.where(k > 0, k, 1.0)
    amp = _primordial_amplitude(cosmo, transfer, table)
    pk = amp * safe_k**cosmo.n_s * transfer_function(safe_k, cosmo, transfer) ** 2
    if not (isinstance(a, int | float) and a == 1.0):
        table = growth_table(cosmo) if table is None else table
        pk = pk * growth_at(table, a).D1 ** 2
    return jnp.where(k > 0, pk, 0.0)
