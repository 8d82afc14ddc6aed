"""Symbolic distillation of a trained IMNN on a 2D power-law Gaussian field.

The network compresses 16 P(k) bins of a 32^2 field to 2 summaries; the symbolic engine fits each
summary as a law of two coarse log band powers. No law of those two inputs can hold more Fisher
information than the inputs themselves, and a good one keeps nearly all of it.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from discovery.compress import (
    IMNNConfig,
    binned_power,
    build_network,
    coarse_log_power,
    distill,
    fisher_stats,
    fit_input_scaling,
    gaussian_field,
    power_bins,
    simulate_fisher_set,
    summarise,
    summary_derivatives,
    train_imnn,
)

SHAPE, BOX, N_BINS = (32, 32), 1.0, 16


def pk_simulator(theta, key):
    return binned_power(gaussian_field(theta, key, SHAPE, BOX), power_bins(SHAPE, BOX, N_BINS), BOX)


@pytest.mark.slow
def test_symbolic_summaries_keep_information_of_their_inputs():
    theta = jnp.array([1.0, 0.5])
    train = simulate_fisher_set(pk_simulator, theta, jax.random.key(0), 1000, 1000, 500)
    val = simulate_fisher_set(pk_simulator, theta, jax.random.key(1), 1000, 1000, 500)
    test = simulate_fisher_set(pk_simulator, theta, jax.random.key(2), 1000, 1000, 500)
    model = build_network({"kind": "mlp", "n_in": N_BINS, "n_out": 2, "hidden": []}, seed=0)
    fit_input_scaling(model, train.fiducial)
    config = IMNNConfig(learning_rate=1e-2, max_steps=400, patience=100)
    train_imnn(model, train, val, config, progress=False)

    counts = power_bins(SHAPE, BOX, N_BINS).counts
    coarse = lambda p: coarse_log_power(p, counts, 2)
    rows = train.fiducial[:300]
    symbolic = distill(
        np.asarray(coarse(rows)),
        np.asarray(summarise(model, rows)),
        ["lnP0", "lnP1"],
        operators="add,sub,mul",
        max_complexity=9,
        budget_s=3,
        clock="work",
    )
    for law, front in zip(symbolic.laws, symbolic.fronts, strict=True):
        assert law.expression.free_symbols <= set(front.variables)
        assert law.expression.free_symbols  # a law of the data, not a constant

    law_of_data = lambda batch: symbolic(coarse(batch))
    f_sym = fisher_stats(law_of_data(test.fiducial), summary_derivatives(law_of_data, test))
    f_in = fisher_stats(coarse(test.fiducial), summary_derivatives(coarse, test))
    kept = np.linalg.det(np.asarray(f_sym.fisher)) / np.linalg.det(np.asarray(f_in.fisher))
    # the same simulations estimate both, so the ratio is precise; a law of the inputs can
    # only lose information (up to the estimation noise of a 2x2 Fisher from 1000 sims)
    assert 0.9 < kept < 1.02


def test_neighbour_noise_recovers_the_scatter_at_fixed_inputs():
    from discovery.compress import neighbour_noise

    rng = np.random.default_rng(5)
    x = rng.uniform(-1.0, 1.0, (400, 3))
    smooth = np.column_stack([np.sin(x[:, 0]) + x[:, 1] * x[:, 2], 2.0 * x[:, 0] - x[:, 1]])
    sigma = np.array([0.1, 0.3])
    got = neighbour_noise(x, smooth + sigma * rng.normal(size=smooth.shape))
    np.testing.assert_allclose(got, sigma, rtol=0.15)
    assert np.all(neighbour_noise(x, smooth) < 0.2 * sigma)  # no noise: small
