"""Halofit (Takahashi et al. 2012) against CAMB's own implementation, and its derivatives."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from camb_reference import camb_params

from simulator.cosmology import Cosmology
from simulator.halofit import halofit_boost, halofit_power

REDSHIFTS = (0.0, 1.0)


@pytest.fixture(scope="module")
def camb_halofit():
    """CAMB linear and Takahashi-halofit P(k, z) for Planck18 with massless neutrinos."""
    camb = pytest.importorskip("camb")
    c = Cosmology.planck18()
    pars = camb_params(c, halofit_version="takahashi")
    pars.set_matter_power(redshifts=list(REDSHIFTS), kmax=5.0)
    pars.NonLinear = camb.model.NonLinear_both
    results = camb.get_results(pars)
    k, z, p_lin = results.get_linear_matter_power_spectrum(hubble_units=True, k_hunit=True)
    k_nl, z_nl, p_nl = results.get_nonlinear_matter_power_spectrum(hubble_units=True, k_hunit=True)
    np.testing.assert_allclose(k, k_nl)
    return {
        "k": k,
        "lin": {float(zz): p for zz, p in zip(z, p_lin, strict=True)},
        "nl": {float(zz): p for zz, p in zip(z_nl, p_nl, strict=True)},
        "cosmo": c,
    }


def loglog_interpolator(k: np.ndarray, pk: np.ndarray):
    """A JAX P(k) interpolating a table in log-log, extended as power laws at both ends."""
    lk, lp = jnp.log(jnp.asarray(k)), jnp.log(jnp.asarray(pk))
    lo, hi = (lp[1] - lp[0]) / (lk[1] - lk[0]), (lp[-1] - lp[-2]) / (lk[-1] - lk[-2])

    def pk_fn(kk):
        x = jnp.log(kk)
        v = jnp.interp(x, lk, lp)
        v = jnp.where(x > lk[-1], lp[-1] + hi * (x - lk[-1]), v)
        return jnp.exp(jnp.where(x < lk[0], lp[0] + lo * (x - lk[0]), v))

    return pk_fn


@pytest.mark.parametrize("z", REDSHIFTS)
def test_halofit_matches_camb_takahashi(camb_halofit, z):
    """Same linear input as CAMB: the nonlinear P(k) agrees to 1% for k < 1 h/Mpc."""
    k = camb_halofit["k"]
    linear = loglog_interpolator(k, camb_halofit["lin"][z])
    band = (k > 0.01) & (k < 1.0)
    mine = np.asarray(
        halofit_power(jnp.asarray(k[band]), camb_halofit["cosmo"], 1 / (1 + z), linear)
    )
    ref = camb_halofit["nl"][z][band]
    assert np.max(np.abs(mine / ref - 1)) < 0.01
    # The boost is a real effect at the top of the band, not a trivially passing one.
    assert ref[-1] / camb_halofit["lin"][z][band][-1] > 1.5


def test_boost_limits_and_growth_with_sigma8():
    k = jnp.geomspace(1e-3, 1.0, 20)
    low = Cosmology.planck18(sigma8=0.7)
    high = Cosmology.planck18(sigma8=0.9)
    boost = jax.jit(halofit_boost)
    b_low, b_high = (np.asarray(boost(k, c)) for c in (low, high))
    np.testing.assert_allclose(b_low[0], 1.0, atol=1e-3)
    # Quasi-linear scales: halofit's small dip below 1 (its exp(-y/4 - y^2/8) damping).
    linear = np.asarray(k) < 0.1
    assert np.all(np.abs(b_high[linear] - 1) < 0.03)
    nonlinear = np.asarray(k) > 0.2
    assert np.all(b_high[nonlinear] > b_low[nonlinear])
    assert np.all(np.diff(b_high[nonlinear]) > 0)


def test_derivative_in_sigma8_matches_finite_difference(x64):
    k = jnp.array([0.1, 0.5, 1.0])

    @jax.jit
    def p_nl(s8):
        return halofit_power(k, Cosmology.planck18(sigma8=s8), 0.8)

    grad = np.asarray(jax.jit(jax.jacfwd(p_nl))(0.8))
    h = 1e-4
    fd = (np.asarray(p_nl(0.8 + h)) - np.asarray(p_nl(0.8 - h))) / (2 * h)
    np.testing.assert_allclose(grad, fd, rtol=1e-5)
    assert np.all(grad > 0)
