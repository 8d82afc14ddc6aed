"""Linear theory against CAMB and analytic limits: P(k), growth D1 D2 f1 f2, normalisation."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from camb_reference import camb_params

from simulator.cosmology import Cosmology, E, omega_m_a
from simulator.growth import growth_at, growth_factor, growth_table
from simulator.linear_power import TabulatedTransfer, linear_power, sigma_r

REDSHIFTS = (0.0, 0.5, 1.0, 3.0, 9.0)


def _camb_linear(cosmo: Cosmology, redshifts=(0.0,)) -> dict:
    """CAMB linear P(k, z) [(Mpc/h)^3] for ``cosmo`` with massless neutrinos (as our
    background assumes), at A_s = 2.1e-9; also CAMB's sigma8."""
    camb = pytest.importorskip("camb")
    pars = camb_params(cosmo)
    pars.set_matter_power(redshifts=list(redshifts), kmax=20.0)
    pars.NonLinear = camb.model.NonLinear_none
    results = camb.get_results(pars)
    kh, z, pk = results.get_matter_power_spectrum(minkh=1e-3, maxkh=5.0, npoints=400)
    pk_by_z = {float(zz): p for zz, p in zip(z, pk, strict=True)}
    sigma8 = float(results.get_sigma8_0())
    return dict(k=kh, pk=pk_by_z, sigma8=sigma8)


@pytest.fixture(scope="module")
def camb_run():
    """CAMB for Planck18, and our Planck18 normalised to CAMB's sigma8."""
    run = _camb_linear(Cosmology.planck18(), REDSHIFTS)
    return dict(run, cosmo=Cosmology.planck18(sigma8=run["sigma8"]))


def test_default_power_matches_camb(camb_run):
    k, pk = camb_run["k"], camb_run["pk"][0.0]
    ratio = np.asarray(linear_power(k, camb_run["cosmo"])) / pk
    band = (k > 0.01) & (k < 1.0)
    assert np.max(np.abs(ratio[band] - 1)) < 0.01


def test_default_power_matches_camb_off_the_table_grid():
    """A cosmology between the correction table's nodes and at another h: the
    correction's physical-density interpolation carries over."""
    cosmo = Cosmology(Omega_m=0.33, Omega_b=0.052, h=0.72, n_s=0.95, sigma8=0.8)
    run = _camb_linear(cosmo)
    cosmo = dataclasses.replace(cosmo, sigma8=run["sigma8"])
    k, pk = run["k"], run["pk"][0.0]
    ratio = np.asarray(linear_power(k, cosmo)) / pk
    band = (k > 0.01) & (k < 1.0)
    assert np.max(np.abs(ratio[band] - 1)) < 0.01


def test_eh98_wiggle_is_within_its_published_accuracy(camb_run):
    k, pk = camb_run["k"], camb_run["pk"][0.0]
    ratio = np.asarray(linear_power(k, camb_run["cosmo"], transfer="eh")) / pk
    band = (k > 0.01) & (k < 1.0)
    # EH98 as published: the broadband within 3%; its BAO amplitude at the first trough
    # (k ~ 0.09 h/Mpc) is 3.8% off CAMB for Planck18, the fit's own limit, which the
    # default "eh_camb" correction removes.
    assert np.max(np.abs(ratio[band] - 1)) < 0.04
    outside_bao = band & ((k < 0.07) | (k > 0.3))
    assert np.max(np.abs(ratio[outside_bao] - 1)) < 0.03


def test_eh_nowiggle_is_the_smooth_broadband(camb_run):
    k, pk = camb_run["k"], camb_run["pk"][0.0]
    cosmo = camb_run["cosmo"]
    wiggle = np.asarray(linear_power(k, cosmo))
    smooth = np.asarray(linear_power(k, cosmo, transfer="eh_nowiggle"))
    # Off the BAO range the two EH98 forms agree to their stated few per cent; inside it the
    # smooth one averages the wiggles.
    off = (k < 0.01) | (k > 1.0)
    assert np.max(np.abs(smooth[off] / wiggle[off] - 1)) < 0.04
    bao = (k > 0.03) & (k < 0.4)
    lnk = np.log(k[bao])
    mean_log_ratio = np.trapezoid(np.log(pk[bao] / smooth[bao]), lnk) / (lnk[-1] - lnk[0])
    assert abs(mean_log_ratio) < 0.02


def test_tabulated_transfer_reproduces_camb(camb_run):
    k, pk = camb_run["k"], camb_run["pk"][0.0]
    cosmo = camb_run["cosmo"]
    transfer = TabulatedTransfer(k=np.asarray(k), T=np.sqrt(pk / k**cosmo.n_s))
    mine = np.asarray(linear_power(k, cosmo, transfer=transfer))
    band = (k > 0.005) & (k < 2.0)
    assert np.max(np.abs(mine[band] / pk[band] - 1)) < 5e-3


def test_sigma8_normalisation_and_As(camb_run):
    cosmo = camb_run["cosmo"]
    np.testing.assert_allclose(float(sigma_r(8.0, cosmo)), camb_run["sigma8"], rtol=1e-4)
    by_as = Cosmology.planck18(sigma8=None, A_s=2.1e-9)
    np.testing.assert_allclose(float(sigma_r(8.0, by_as)), camb_run["sigma8"], rtol=5e-3)


def test_growth_factor_matches_camb(camb_run):
    k = camb_run["k"]
    band = (k > 0.01) & (k < 0.1)
    table = growth_table(camb_run["cosmo"])
    for z in REDSHIFTS[1:]:
        d_camb = np.sqrt(camb_run["pk"][z][band] / camb_run["pk"][0.0][band]).mean()
        d_mine = float(growth_at(table, 1.0 / (1.0 + z)).D1)
        assert abs(d_mine / d_camb - 1) < 1e-3, z


def test_growth_einstein_de_sitter_limit():
    eds = Cosmology(Omega_m=1.0 - 1e-7, radiation=False)
    a = jnp.array([0.05, 0.2, 0.7, 1.0])
    g = growth_at(growth_table(eds), a)
    np.testing.assert_allclose(g.D1, a, rtol=1e-5)
    np.testing.assert_allclose(g.D2, -3.0 / 7.0 * a**2, rtol=1e-5)
    np.testing.assert_allclose(g.f1, 1.0, rtol=1e-5)
    np.testing.assert_allclose(g.f2, 2.0, rtol=1e-5)


def test_growth_rates_follow_known_lcdm_approximations():
    cosmo = Cosmology(radiation=False)
    a = jnp.linspace(0.1, 1.0, 10)
    g = growth_at(growth_table(cosmo), a)
    om = omega_m_a(a, cosmo)
    # Linder (2005): f1 = Omega_m(a)^0.55, good to 0.6% (the exact index is 0.5545 at
    # Omega_m = 0.31); Bouchet et al. (1995): f2 = 2 Omega_m^(6/11).
    np.testing.assert_allclose(g.f1, om**0.55, rtol=6e-3)
    np.testing.assert_allclose(g.f2, 2.0 * om ** (6.0 / 11.0), rtol=1e-2)
    # D2 / D1^2 stays close to -3/7 Omega_m^(-1/143) (Bouchet et al. 1995).
    np.testing.assert_allclose(g.D2 / g.D1**2, -3.0 / 7.0 * om ** (-1.0 / 143.0), rtol=5e-3)


def test_background_expansion():
    cosmo = Cosmology.planck18()
    np.testing.assert_allclose(float(E(1.0, cosmo)), 1.0, rtol=1e-6)
    wcdm = Cosmology(w0=-0.8, wa=0.3, radiation=False)
    a = 0.5
    rho_de = a ** (-3 * (1 - 0.8 + 0.3)) * np.exp(-3 * 0.3 * (1 - a))
    expect = np.sqrt(wcdm.Omega_m * a**-3 + (1 - wcdm.Omega_m) * rho_de)
    np.testing.assert_allclose(float(E(a, wcdm)), expect, rtol=1e-6)


def test_growth_gradient_matches_finite_differences(x64):
    @jax.jit
    def d1(params):
        om, w0 = params
        return growth_factor(0.5, Cosmology(Omega_m=om, w0=w0))

    x = jnp.array([0.3, -0.9])
    grad = jax.grad(d1)(x)
    eps = 1e-5
    for i in range(2):
        dx = jnp.zeros(2).at[i].set(eps)
        fd = (d1(x + dx) - d1(x - dx)) / (2 * eps)
        np.testing.assert_allclose(grad[i], fd, rtol=1e-6)


def test_power_gradient_in_sigma8_and_omega_m(x64):
    k = jnp.array([0.05, 0.2])

    @jax.jit
    def log_pk(params):
        om, s8 = params
        return jnp.log(linear_power(k, Cosmology(Omega_m=om, sigma8=s8), a=0.5)).sum()

    x = jnp.array([0.3, 0.8])
    grad = jax.grad(log_pk)(x)
    # P is proportional to sigma8^2: d ln P / d sigma8 = 2 / sigma8 per k.
    np.testing.assert_allclose(grad[1], 2 * 2 / 0.8, rtol=1e-10)
    eps = 1e-6
    fd = (log_pk(x + jnp.array([eps, 0])) - log_pk(x - jnp.array([eps, 0]))) / (2 * eps)
    np.testing.assert_allclose(grad[0], fd, rtol=1e-5)


def test_jit_over_cosmology_leaks_no_tracers():
    f = jax.jit(lambda c: growth_factor(0.5, c))
    d_a = f(Cosmology(Omega_m=0.3))
    d_b = f(Cosmology(Omega_m=0.25))
    batched = jax.vmap(lambda om: growth_factor(0.5, Cosmology(Omega_m=om)))(jnp.array([0.3, 0.25]))
    np.testing.assert_allclose(batched, [d_a, d_b], rtol=1e-6)
    assert d_b > d_a  # less matter, more Lambda: less growth since a = 0.5, normalised today


@pytest.mark.parametrize(
    ("field", "value"),
    [("Omega_m", 1.2), ("Omega_b", 0.5), ("h", -0.7), ("sigma8", 0.0), ("w0", 0.5)],
)
def test_unphysical_cosmology_is_refused(field, value):
    cosmo = dataclasses.replace(Cosmology.planck18(), **{field: value})
    with pytest.raises(ValueError, match=field):
        cosmo.validate()


def test_unknown_preset_and_transfer():
    with pytest.raises(ValueError, match="cosmology"):
        Cosmology.from_name("nonexistent")
    with pytest.raises(ValueError, match="transfer"):
        linear_power(0.1, Cosmology(), transfer="bbks")
