"""Cosmological parameters and the background expansion of a flat w0-wa CDM universe.

Conventions: H0 = 100 h km/s/Mpc; E(a) = H(a)/H0 is dimensionless. Radiation
(photons and three massless neutrino species, density set by ``T_cmb``) is
included in E(a) unless ``radiation=False``, which gives the matter +
dark-energy background most N-body codes assume. The universe is spatially
flat: Omega_de = 1 - Omega_m - Omega_r.
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
from jax.typing import ArrayLike

from cosmolaw.pytree import pytree_dataclass, static_field

#: Radiation density today times h^2 per unit (T_cmb / 2.7255 K)^4: photons
#: (2.4730e-5) plus three massless neutrino species with N_eff = 3.046
#: (factor 1 + 0.2271 N_eff).
_OMEGA_R_H2_PER_T4 = 2.4730e-5 * (1.0 + 0.2271 * 3.046)
_T_CMB_REF = 2.7255


@pytree_dataclass
class Cosmology:
    """Parameters of a flat w0-wa CDM cosmology; every field is a differentiable leaf.

    Attributes:
        Omega_m: total matter density today (CDM + baryons), in (0, 1).
        Omega_b: baryon density today, in (0, Omega_m).
        h: dimensionless Hubble constant, H0 / (100 km/s/Mpc).
        n_s: scalar spectral index.
        sigma8: rms linear density contrast in spheres of 8 Mpc/h at a = 1.
            Set to None to normalise by ``A_s`` instead.
        A_s: primordial curvature amplitude at the pivot 0.05 /Mpc (used only when
            sigma8 is None).
        w0, wa: dark-energy equation of state w(a) = w0 + wa (1 - a).
        T_cmb: CMB temperature today in K; sets the radiation density and enters the
            Eisenstein & Hu fits.
        radiation: static flag; False drops radiation from E(a).
    """

    Omega_m: ArrayLike = 0.3111
    Omega_b: ArrayLike = 0.0490
    h: ArrayLike = 0.6766
    n_s: ArrayLike = 0.9665
    sigma8: ArrayLike | None = 0.8102
    A_s: ArrayLike | None = None
    w0: ArrayLike = -1.0
    wa: ArrayLike = 0.0
    T_cmb: ArrayLike = _T_CMB_REF
    radiation: bool = static_field(default=True)

    @classmethod
    def planck18(cls, **overrides: ArrayLike) -> Cosmology:
        """Planck 2018 (TT,TE,EE+lowE+lensing+BAO) best fit, optionally with overrides."""
        return dataclasses.replace(cls(), **overrides)

    @classmethod
    def from_name(cls, name: str, **overrides: ArrayLike) -> Cosmology:
        """A named preset (see ``PRESETS``) with optional parameter overrides."""
        key = name.lower()
        if key not in PRESETS:
            raise ValueError(
                f"cosmology={name!r} is not a known preset; allowed: {sorted(PRESETS)}"
            )
        return dataclasses.replace(PRESETS[key], **overrides)

    @property
    def Omega_r(self) -> ArrayLike:
        """Radiation density today (photons + massless neutrinos)."""
        if not self.radiation:
            return 0.0
        return _OMEGA_R_H2_PER_T4 * (self.T_cmb / _T_CMB_REF) ** 4 / self.h**2

    @property
    def Omega_de(self) -> ArrayLike:
        """Dark-energy density today, from flatness."""
        return 1.0 - self.Omega_m - self.Omega_r

    def validate(self) -> Cosmology:
        """Check concrete parameter values; raise ValueError naming the first bad one.

        Call this at public boundaries (CLI, ``simulate``) before compiling, not under ``jit``.
        """
        checks = [
            ("Omega_m", self.Omega_m, 0.0 < float(self.Omega_m) < 1.0, "0 < Omega_m < 1"),
            (
                "Omega_b",
                self.Omega_b,
                0.0 <= float(self.Omega_b) < float(self.Omega_m),
                "0 <= Omega_b < Omega_m",
            ),
            ("h", self.h, 0.2 < float(self.h) < 2.0, "0.2 < h < 2"),
            ("n_s", self.n_s, 0.5 < float(self.n_s) < 1.5, "0.5 < n_s < 1.5"),
            ("w0", self.w0, -3.0 < float(self.w0) < 0.0, "-3 < w0 < 0"),
            ("wa", self.wa, -3.0 < float(self.wa) < 3.0, "-3 < wa < 3"),
            ("T_cmb", self.T_cmb, 0.5 < float(self.T_cmb) < 10.0, "0.5 < T_cmb < 10 K"),
        ]
        if self.sigma8 is None and self.A_s is None:
            raise ValueError("sigma8=None and A_s=None: give one of them to normalise P(k)")
        if self.sigma8 is not None:
            s8 = float(self.sigma8)
            checks.append(("sigma8", self.sigma8, 0.0 < s8 < 3.0, "0 < sigma8 < 3"))
        else:
            a_s = float(self.A_s)
            checks.append(("A_s", self.A_s, 0.0 < a_s < 1e-7, "0 < A_s < 1e-7"))
        for name, value, ok, allowed in checks:
            if not ok:
                raise ValueError(f"{name}={value} is unphysical; allowed: {allowed}")
        return self


PRESETS: dict[str, Cosmology] = {
    "planck18": Cosmology(),
    # Fiducial of many N-body code comparisons (e.g. the Quijote suite).
    "quijote": Cosmology(Omega_m=0.3175, Omega_b=0.049, h=0.6711, n_s=0.9624, sigma8=0.834),
}


def dark_energy_density(a: ArrayLike, cosmo: Cosmology) -> jnp.ndarray:
    """rho_de(a) / rho_de(a=1) for w(a) = w0 + wa (1 - a). Shape of ``a``."""
    a = jnp.asarray(a)
    return a ** (-3.0 * (1.0 + cosmo.w0 + cosmo.wa)) * jnp.exp(-3.0 * cosmo.wa * (1.0 - a))


def E2(a: ArrayLike, cosmo: Cosmology) -> jnp.ndarray:
    """(H(a)/H0)^2. Shape of ``a``."""
    a = jnp.asarray(a)
    return (
        cosmo.Omega_r * a**-4
        + cosmo.Omega_m * a**-3
        + cosmo.Omega_de * dark_energy_density(a, cosmo)
    )


def E(a: ArrayLike, cosmo: Cosmology) -> jnp.ndarray:
    """Dimensionless Hubble rate H(a)/H0. Shape of ``a``."""
    return jnp.sqrt(E2(a, cosmo))


def dlnE_dlna(a: ArrayLike, cosmo: Cosmology) -> jnp.ndarray:
    """Logarithmic derivative d ln E / d ln a. Shape of ``a``."""
    a = jnp.asarray(a)
    w = cosmo.w0 + cosmo.wa * (1.0 - a)
    # d ln rho_de / d ln a = -3 (1 + w(a)).
    dE2 = (
        -4.0 * cosmo.Omega_r * a**-4
        - 3.0 * cosmo.Omega_m * a**-3
        - 3.0 * (1.0 + w) * cosmo.Omega_de * dark_energy_density(a, cosmo)
    )
    return 0.5 * dE2 / E2(a, cosmo)


def omega_m_a(a: ArrayLike, cosmo: Cosmology) -> jnp.ndarray:
    """Matter density parameter at scale factor a, Omega_m a^-3 / E(a)^2. Shape of ``a``."""
    a = jnp.asarray(a)
    return cosmo.Omega_m * a**-3 / E2(a, cosmo)
