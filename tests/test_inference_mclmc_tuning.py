"""cosmolaw's MCLMC tuning (``pooled_warmup``) and the large-scale speed-up of the mass matrix.

On a Gaussian of known widths the tuned ``L`` has a closed form (``L_PER_WIDTH`` times the root
of the summed variances) and the energy error of the tuned step has the requested variance per
dimension; chains vmapped over ``CHAIN_AXIS`` share one tuning.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from inference.precondition import Preconditioner, speed_up_large_scales
from inference.samplers import CHAIN_AXIS
from inference.samplers import mclmc as mclmc_module

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


def test_chains_share_one_tuning(tuned):
    _, tuning, _ = tuned
    assert np.ptp(np.asarray(tuning.step_size)) == 0.0
    assert np.ptp(np.asarray(tuning.L)) == 0.0


def test_tuned_L_is_from_the_gaussian_widths(tuned):
    widths, tuning, _ = tuned
    expected = mclmc_module.L_PER_WIDTH * np.sqrt(np.sum(np.asarray(widths) ** 2))
    np.testing.assert_allclose(np.asarray(tuning.L), expected, rtol=0.1)


def test_tuned_step_gives_the_requested_energy_error(tuned):
    _, _, energy = tuned
    ratio = np.var(energy) / DIM / DESIRED
    assert 0.5 < ratio < 2.0


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
