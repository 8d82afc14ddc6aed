"""Gradients through the PM forward model: adjoint (reverse-time) method against plain
autodiff and against central finite differences, and reversibility of the integrator."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from simulator.config import SimConfig
from simulator.cosmology import Cosmology
from simulator.growth import growth_table
from simulator.ic import linear_field, white_noise
from simulator.lpt import lpt
from simulator.nbody import integrate, integrate_backward, time_step_factors
from simulator.pipeline import forward

CONF64 = SimConfig(mesh=16, box=64.0, steps=6, dtype="float64", snapshots=(0.5,))


def _loss(conf: SimConfig):
    """A nonlinear scalar of the final field, of a snapshot and of the final velocities,
    as a function of (white noise, Omega_m, sigma8)."""

    def loss(s, om, s8):
        target = jnp.sin(jnp.arange(s.size, dtype=s.dtype) * 0.37).reshape(s.shape)
        res = forward(s, Cosmology.planck18(Omega_m=om, sigma8=s8), conf)
        return (
            jnp.sum(res.delta * target)
            + 0.1 * jnp.sum(res.snapshot_deltas[0] ** 2)
            + 1e-3 * jnp.sum(res.state.vel**2)
        )

    return loss


@pytest.fixture(scope="module")
def float64_case():
    """Loss, inputs and gradients (adjoint and autodiff) of the float64 run.

    JAX caches traced constants without keying them on the x64 mode, so after float32 runs
    in the same process (other test files) a float64 trace can silently pick up
    float32-rounded constants (seen here as a 3e-7 relative change of linear_power, enough to
    spoil 1e-5 finite differences); the caches are cleared first.
    """
    jax.clear_caches()
    with jax.enable_x64(True):
        noise = white_noise(3, CONF64)
        args = (noise, 0.3111, 0.8102)
        loss = jax.jit(_loss(CONF64))
        adjoint = jax.jit(jax.grad(_loss(CONF64), argnums=(0, 1, 2)))(*args)
        autodiff_conf = dataclasses.replace(CONF64, gradient="autodiff")
        autodiff = jax.jit(jax.grad(_loss(autodiff_conf), argnums=(0, 1, 2)))(*args)
    return loss, args, adjoint, autodiff


def test_adjoint_matches_autodiff_float64(float64_case):
    _, _, adjoint, autodiff = float64_case
    for g_adj, g_auto in zip(adjoint, autodiff, strict=True):
        rel = np.linalg.norm(np.asarray(g_adj - g_auto)) / np.linalg.norm(np.asarray(g_auto))
        assert rel < 1e-6, rel


def test_gradients_match_central_differences(x64, float64_case):
    """White noise (along a random direction), Omega_m and sigma8 against central finite
    differences to 1e-4 relative."""
    loss, (noise, om, s8), (g_noise, g_om, g_s8), _ = float64_case
    direction = jax.random.normal(jax.random.key(9), noise.shape, jnp.float64)
    eps = 1e-5

    def central(fn):
        return (fn(eps) - fn(-eps)) / (2 * eps)

    fd_noise = central(lambda e: loss(noise + e * direction, om, s8))
    fd_om = central(lambda e: loss(noise, om + e, s8))
    fd_s8 = central(lambda e: loss(noise, om, s8 + e))
    for grad, fd in ((jnp.vdot(g_noise, direction), fd_noise), (g_om, fd_om), (g_s8, fd_s8)):
        assert abs(float(grad) - float(fd)) < 1e-4 * abs(float(fd)), (grad, fd)


def test_adjoint_matches_autodiff_float32():
    conf = SimConfig(mesh=16, box=64.0, steps=10, snapshots=(0.5,))
    noise = white_noise(4, conf)
    cosmo = Cosmology.planck18()

    def grad(c):
        return jax.jit(jax.grad(lambda s: _loss(c)(s, cosmo.Omega_m, cosmo.sigma8)))(noise)

    g_adj = np.asarray(grad(conf))
    g_auto = np.asarray(grad(dataclasses.replace(conf, gradient="autodiff")))
    ratio = np.sqrt(np.mean((g_adj - g_auto) ** 2)) / np.sqrt(np.mean(g_auto**2))
    assert ratio < 1e-3, ratio


def test_reversibility_float32():
    """Forward then backward recovers the initial positions.

    Each step rounds positions of size ~box to float32 (relative 6e-8, i.e. ~2e-6 cells
    at 32 cells per box); over 10 steps forward and 10 back, with the mild chaotic
    amplification of a quasi-linear 32^3 run, we expect ~1e-5 cells and assert 1e-3 cells.
    """
    conf = SimConfig(mesh=32, box=128.0, steps=10)
    cosmo = Cosmology.planck18()
    table = growth_table(cosmo)
    init = lpt(linear_field(white_noise(5, conf), cosmo, conf), table, conf)
    factors = time_step_factors(cosmo, table, conf, jnp.float32)
    run = jax.jit(lambda d, v: integrate_backward(*integrate(d, v, factors, conf), factors, conf))
    disp, vel = run(init.disp, init.vel)
    err_cells = float(jnp.max(jnp.abs(disp - init.disp))) / conf.cell_size
    print(f"float32 reversibility error after 10 steps: {err_cells:.2e} cells (max)")
    assert err_cells < 1e-3
    assert float(jnp.max(jnp.abs(vel - init.vel))) < 1e-3 * float(jnp.std(init.vel))


def test_forward_mode_matches_reverse_mode():
    """jax.jvp through the N-body integration (forward mode, available with
    gradient="autodiff") equals the adjoint gradient projected on the same direction."""
    conf = SimConfig(mesh=16, box=64.0, steps=5, gradient="autodiff")
    cosmo = Cosmology.planck18()
    table = growth_table(cosmo)
    init = lpt(linear_field(white_noise(6, conf), cosmo, conf), table, conf)
    factors = time_step_factors(cosmo, table, conf, jnp.float32)
    weights = jnp.cos(jnp.arange(init.disp.size, dtype=jnp.float32)).reshape(init.disp.shape)
    direction = jax.random.normal(jax.random.key(2), init.disp.shape)

    def loss(disp, c):
        final, _ = integrate(disp, init.vel, factors, c)
        return jnp.sum(weights * jnp.tanh(final))

    _, tangent = jax.jit(lambda d: jax.jvp(lambda x: loss(x, conf), (d,), (direction,)))(init.disp)
    adjoint = dataclasses.replace(conf, gradient="adjoint")
    grad = jax.jit(jax.grad(lambda d: loss(d, adjoint)))(init.disp)
    expected = float(jnp.vdot(grad, direction))
    assert abs(float(tangent) - expected) < 1e-3 * abs(expected), (tangent, expected)
