"""CAMB as the tests' reference: parameters matching a cosmolaw ``Cosmology``."""

import pytest

from simulator.cosmology import Cosmology


def camb_params(cosmo: Cosmology, **extra):
    """``camb.CAMBparams`` for ``cosmo`` with massless neutrinos (as our background assumes)
    at A_s = 2.1e-9; ``extra`` goes to ``camb.set_params`` (e.g. ``halofit_version``).
    Skips the test where camb is not installed."""
    camb = pytest.importorskip("camb")
    return camb.set_params(
        H0=100 * cosmo.h,
        ombh2=cosmo.Omega_b * cosmo.h**2,
        omch2=(cosmo.Omega_m - cosmo.Omega_b) * cosmo.h**2,
        mnu=0.0,
        num_massive_neutrinos=0,
        ns=cosmo.n_s,
        As=2.1e-9,
        TCMB=cosmo.T_cmb,
        **extra,
    )
