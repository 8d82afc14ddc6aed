"""cosmolaw's MCLMC tuning (``pooled_warmup``), its energy-error cutoff and the large-scale
speed-up of the mass matrix.

On a Gaussian of known widths the tuned ``L`` has a closed form (``L_PER_WIDTH`` times the root
of the summed variances) and the energy error of the tuned step has the requested variance per
dimension in every chain; chains vmapped over ``CHAIN_AXIS`` share ``L`` and each tunes its own
step size. On independent Poisson cells
with a linear bias, whose per-cell posteriors are known by quadrature, the cutoff is what makes
the variances right.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from inference.precondition import Preconditioner, speed_up_large_scales
from inference.samplers import CHAIN_AXIS
from inference.samplers import mclmc as mclmc_module
from simulator.observe.mock import smooth_positive

DIM, CHAINS, DESIRED = 1024, 4, 1e-4


@pytest.fixture(scope="module")
def tuned():
    widths = jnp.asarray(np.random.default_rng(0).uniform(0.5, 2.0, DIM), jnp.float32)
    sampler = mclmc_module.sampler(lambda x: -0.5 * jnp.sum((x / widths) ** 2), DESIRED)

    def one(key, start):
        key_warm, key_run = jax.random.split(key)
        state, tuning, _ = sampler.warmup(key_warm, start, 1000)

        def body(state, k):
            state, info = sampler.step(k, state, tuning)
            return state, info.energy_error

        _, energy = jax.lax.scan(body, state, jax.random.split(key_run, 1000))
        return tuning, energy

    keys = jax.random.split(jax.random.PRNGKey(1), CHAINS)
    starts = jax.random.normal(jax.random.PRNGKey(2), (CHAINS, DIM)) * widths
    tuning, energy = jax.jit(jax.vmap(one, axis_name=CHAIN_AXIS))(keys, starts)
    return widths, tuning, np.asarray(energy)


def test_chains_share_L_and_tune_their_own_step_size(tuned):
    _, tuning, _ = tuned
    assert np.ptp(np.asarray(tuning.L)) == 0.0
    step_size = np.asarray(tuning.step_size)
    assert np.ptp(step_size) > 0.0  # each chain's own dual averaging
    assert np.ptp(step_size) < 0.2 * np.mean(step_size)  # of one Gaussian


def test_tuned_L_is_from_the_gaussian_widths(tuned):
    widths, tuning, _ = tuned
    expected = mclmc_module.L_PER_WIDTH * np.sqrt(np.sum(np.asarray(widths) ** 2))
    np.testing.assert_allclose(np.asarray(tuning.L), expected, rtol=0.1)


def test_tuned_step_gives_the_requested_energy_error_in_every_chain(tuned):
    _, _, energy = tuned
    ratio = np.var(energy, axis=1) / DIM / DESIRED
    assert np.all((0.5 < ratio) & (ratio < 2.0)), ratio


def _poisson_cells(cells: int = 512, nbar: float = 2.0, b1: float = 1.5):
    """Log density of ``cells`` independent unit-Gaussian cells with Poisson counts of mean
    ``nbar * smooth_positive(1 + b1 x)`` drawn at a prior sample, and the per-cell posterior
    mean and variance by quadrature. An occupied cell has a wall at ``x = -1/b1``, where its
    expected count drops to the floor and the log likelihood to about ``n log(1e-8)``."""
    rng = np.random.default_rng(0)
    counts = rng.poisson(nbar * np.maximum(1 + b1 * rng.normal(size=cells), 0))

    def logdensity(x):
        lam = nbar * smooth_positive(1 + b1 * x)
        return jnp.sum(counts * jnp.log(lam) - lam) - 0.5 * jnp.sum(x**2)

    grid = np.linspace(-8.0, 8.0, 40001)
    lam = nbar * np.asarray(smooth_positive(jnp.asarray(1 + b1 * grid, jnp.float32)), float)
    log_post = counts[:, None] * np.log(lam) - lam - 0.5 * grid**2
    weight = np.exp(log_post - log_post.max(axis=1, keepdims=True))
    weight /= weight.sum(axis=1, keepdims=True)
    mean = weight @ grid
    return logdensity, mean, weight @ grid**2 - mean**2


@pytest.mark.parametrize("cutoff", [mclmc_module.ENERGY_CUTOFF, np.inf])
def test_energy_cutoff_keeps_poisson_walls_from_widening_the_posterior(cutoff):
    """With the cutoff, the sampled per-cell variances match quadrature (0.1% measured);
    without it, trajectories thrown back by the walls widen them by about 60%."""
    logdensity, mean, variance = _poisson_cells()
    sampler = mclmc_module.sampler(logdensity, energy_cutoff=cutoff)

    def one(key):
        key_warm, key_run = jax.random.split(key)
        state, tuning, _ = sampler.warmup(key_warm, jnp.zeros(mean.size), 1000)

        def body(state, k):
            state, info = sampler.step(k, state, tuning)
            return state, (state.position, info.acceptance)

        return jax.lax.scan(body, state, jax.random.split(key_run, 4000))[1]

    keys = jax.random.split(jax.random.PRNGKey(1), CHAINS)
    draws, acceptance = jax.jit(jax.vmap(one, axis_name=CHAIN_AXIS))(keys)
    draws = np.asarray(draws).reshape(-1, mean.size)
    ratio = np.mean(draws.var(axis=0) / variance)
    if np.isfinite(cutoff):
        assert abs(ratio - 1) < 0.03
        assert abs(np.mean((draws.mean(axis=0) - mean) / np.sqrt(variance))) < 0.05
        assert 0.5 < float(np.mean(acceptance)) < 1.0  # the walls are hit, and rejected
    else:
        assert ratio > 1.2
        assert float(np.mean(acceptance)) == 1.0


def test_speed_up_divides_the_lowest_shells_latent_widths():
    mesh, factor = 8, 2.0
    base = Preconditioner(jnp.full((mesh, mesh, mesh // 2 + 1), 0.7, jnp.float32), {}, {})
    fast = speed_up_large_scales(base, factor, num_shells=2)
    n = np.fft.fftfreq(mesh, 1.0 / mesh)
    nz = np.arange(mesh // 2 + 1)
    n2 = n[:, None, None] ** 2 + n[None, :, None] ** 2 + nz[None, None, :] ** 2
    low = (n2 >= 0.5**2) & (n2 < 2.5**2)  # shells of width k_f around k_f and 2 k_f
    np.testing.assert_allclose(np.asarray(fast.field_scale)[low], 0.7 * factor, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(fast.field_scale)[~low], 0.7, rtol=1e-6)
    assert speed_up_large_scales(base, 1.0) is base
