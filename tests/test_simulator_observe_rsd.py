"""Redshift-space distortions: geometry of the shifts and the Kaiser monopole boost."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from simulator import ic, lpt
from simulator.config import SimConfig
from simulator.cosmology import Cosmology
from simulator.growth import growth_at, growth_table
from simulator.observe.mock import observed_density
from simulator.observe.rsd import (
    RSDConfig,
    check_observer,
    kaiser_monopole_factor,
    line_of_sight,
    redshift_space_positions,
    rsd_shift,
)

BOX = 100.0


@pytest.fixture(scope="module")
def particles():
    rng = np.random.default_rng(0)
    pos = rng.uniform(0, BOX, (500, 3))
    vel = rng.normal(0, 5.0, (500, 3))
    return pos, vel


def test_plane_parallel_moves_along_the_line_of_sight_only(particles):
    pos, vel = particles
    los = line_of_sight([1.0, 2.0, -2.0])
    s = np.asarray(redshift_space_positions(jnp.asarray(pos), jnp.asarray(vel), BOX, los=los))
    assert np.all((s >= 0) & (s < BOX))
    shift = s - pos
    shift -= BOX * np.round(shift / BOX)  # undo the periodic wrap
    np.testing.assert_allclose(shift, np.outer(vel @ los, los), atol=1e-4)
    axis = np.asarray(rsd_shift(jnp.asarray(pos), jnp.asarray(vel), los=line_of_sight(1)))
    np.testing.assert_allclose(axis[:, [0, 2]], 0.0)
    np.testing.assert_allclose(axis[:, 1], vel[:, 1], rtol=1e-6)


def test_radial_shift_is_the_radial_velocity_along_the_sight_line(particles):
    pos, vel = particles
    observer = np.array([30.0, 60.0, 45.0])
    shift = np.asarray(rsd_shift(jnp.asarray(pos), jnp.asarray(vel), observer=observer))
    rel = pos - observer
    rhat = rel / np.linalg.norm(rel, axis=1, keepdims=True)
    np.testing.assert_allclose(np.cross(shift, rhat), 0.0, atol=1e-4)
    np.testing.assert_allclose(np.sum(shift * rhat, axis=1), np.sum(vel * rhat, axis=1), atol=1e-4)


def test_radial_tends_to_plane_parallel_for_a_distant_observer(particles, x64):
    pos, vel = jnp.asarray(particles[0]), jnp.asarray(particles[1])
    plane = rsd_shift(pos, vel, los=line_of_sight(2))
    errors = []
    for distance in (1e4, 1e5, 1e6):
        observer = jnp.array([BOX / 2, BOX / 2, -distance])
        errors.append(float(jnp.max(jnp.abs(rsd_shift(pos, vel, observer=observer) - plane))))
    # the sight lines converge as box / distance, so does the difference of the shifts
    assert errors[-1] < 1e-3
    np.testing.assert_allclose(np.array(errors[:-1]) / np.array(errors[1:]), 10.0, rtol=0.05)


def test_bad_line_of_sight_and_observer_are_named():
    for los in (3, [0.0, 0.0, 0.0], [1.0, 2.0]):
        with pytest.raises(ValueError, match="los="):
            line_of_sight(los)
    with pytest.raises(ValueError, match="observer="):
        check_observer([10.0, 10.0, 120.0], BOX)
    with pytest.raises(ValueError, match="rsd='sideways'"):
        RSDConfig("sideways")


A_OBS = 0.3  # early enough for linear theory on the largest scales of a 1 Gpc/h box


@pytest.fixture(scope="module")
def zeldovich_fields():
    """Real- and redshift-space CIC fields of 1LPT particles (fixed-amplitude ICs), for
    matter and for tracers of Lagrangian bias b_L = 1 (particle weights 1 + b_L delta_L)."""
    conf = SimConfig(mesh=32, box=1024.0, lpt_order=1)
    cosmo = Cosmology.planck18()

    @jax.jit
    def fields(seed, lagrangian_bias):
        table = growth_table(cosmo)
        delta_lin = ic.linear_field(ic.white_noise(seed, conf), cosmo, conf, fixed_amplitude=True)
        state = lpt.lpt(delta_lin, table, conf, a=A_OBS)
        growth = growth_at(table, A_OBS)
        weights = 1.0 + lagrangian_bias * growth.D1 * delta_lin.reshape(-1)
        real = observed_density(state.disp, state.vel, conf, RSDConfig("none"), weights)
        rsd = RSDConfig("plane-parallel", los=2)
        red = observed_density(state.disp, state.vel, conf, rsd, weights)
        matter = observed_density(state.disp, state.vel, conf, RSDConfig("none"))
        return real, red, matter, growth.f1

    return fields


def _large_scale_sum(a, b):
    """Sum of Re(a_k b_k*) over the modes with 1.5 <= |k| / k_f < 6 (line of sight: axis 2)."""
    n = a.shape[0]
    freqs = [np.fft.fftfreq(n, 1.0 / n)] * 2 + [np.fft.rfftfreq(n, 1.0 / n)]
    kx, ky, kz = np.meshgrid(*freqs, indexing="ij")
    k = np.sqrt(kx**2 + ky**2 + kz**2)
    weight = np.where((kz == 0) | (kz == n // 2), 1.0, 2.0) * ((k >= 1.5) & (k < 6))
    prod = np.fft.rfftn(np.asarray(a, np.float64)) * np.conj(
        np.fft.rfftn(np.asarray(b, np.float64))
    )
    return float(np.sum(weight * prod.real))


@pytest.mark.parametrize("lagrangian_bias", [0.0, 1.0])
def test_kaiser_monopole_boost_of_zeldovich_particles(zeldovich_fields, lagrangian_bias):
    """P_0^s / P^r = 1 + 2 beta/3 + beta^2/5, beta = f / b, f from the growth solver and b
    measured as P_gm / P_mm (1 + b_L at linear order), averaged over two seeds."""
    boosts, biases, kaiser = [], [], []
    for seed in (0, 1):
        real, red, matter, f = zeldovich_fields(seed, lagrangian_bias)
        b = _large_scale_sum(real, matter) / _large_scale_sum(matter, matter)
        biases.append(b)
        boosts.append(_large_scale_sum(red, red) / _large_scale_sum(real, real))
        kaiser.append(kaiser_monopole_factor(float(f), b))
    np.testing.assert_allclose(np.mean(biases), 1.0 + lagrangian_bias, rtol=0.03)
    np.testing.assert_allclose(np.mean(boosts), np.mean(kaiser), rtol=0.03)
    assert np.mean(kaiser) - 1.0 > 0.3  # the distortion is large compared with the tolerance
