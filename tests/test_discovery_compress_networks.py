"""Compressor architectures, saving and reloading, and the regression compressor."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from discovery.compress import (
    FisherSet,
    IMNNConfig,
    RegressionConfig,
    build_network,
    fit_input_scaling,
    load_fisher_set,
    load_linear,
    load_network,
    save_fisher_set,
    save_linear,
    save_network,
    score_compressor,
    summarise,
    train_regression,
)

SPECS = [
    {"kind": "mlp", "n_in": 6, "n_out": 2, "hidden": [8, 8]},
    {"kind": "spectral", "shape": [16, 16], "box": 1.0, "n_bins": 8, "n_out": 2},
    {"kind": "cnn", "ndim": 2, "n_out": 2, "channels": [4, 8]},
    {"kind": "cnn", "ndim": 3, "n_out": 3, "channels": [4]},
]


def inputs_for(spec: dict) -> jax.Array:
    if spec["kind"] == "mlp":
        shape = (5, spec["n_in"])
    elif spec["kind"] == "spectral":
        shape = (5, *spec["shape"])
    else:
        shape = (5, *(16,) * spec["ndim"])
    return jax.random.normal(jax.random.key(1), shape)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"{s['kind']}")
def test_saved_network_reloads_to_identical_summaries(spec, tmp_path):
    model = build_network(spec, seed=7)
    x = inputs_for(spec)
    fit_input_scaling(model, x)
    before = np.asarray(summarise(model, x))
    assert before.shape == (5, spec["n_out"])
    save_network(tmp_path / "net.h5", model, spec, attrs={"note": "test"})
    loaded, loaded_spec = load_network(tmp_path / "net.h5")
    assert loaded_spec == spec
    np.testing.assert_array_equal(np.asarray(summarise(loaded, x)), before)
    # a freshly built network (another seed) differs, so the file really carried the weights
    assert not np.allclose(np.asarray(summarise(build_network(spec, seed=0), x)), before)


def test_linear_compressor_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((8, 8))
    comp = score_compressor(
        rng.standard_normal(8), rng.standard_normal((8, 2)), a @ a.T + 8 * np.eye(8)
    )
    save_linear(tmp_path / "lin.h5", comp)
    x = rng.standard_normal((4, 8))
    np.testing.assert_array_equal(
        np.asarray(load_linear(tmp_path / "lin.h5")(x)), np.asarray(comp(x))
    )


def test_fisher_set_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    dataset = FisherSet(rng.standard_normal((6, 4)), rng.standard_normal((3, 2, 4)))
    save_fisher_set(tmp_path / "set.h5", dataset, np.array([1.0, 0.5]), attrs={"box": 1.0})
    loaded, theta = load_fisher_set(tmp_path / "set.h5")
    np.testing.assert_array_equal(loaded.fiducial, dataset.fiducial)
    np.testing.assert_array_equal(loaded.derivative, dataset.derivative)
    np.testing.assert_array_equal(theta, [1.0, 0.5])
    with pytest.raises(ValueError, match="path"):
        load_network(tmp_path / "set.h5")


@pytest.mark.parametrize("ndim", [2, 3])
def test_cnn_summaries_invariant_under_periodic_shifts(ndim):
    """Circular padding: shifting a periodic field by a multiple of the total stride (4 cells)
    leaves the summaries unchanged; an arbitrary field changes them."""
    model = build_network({"kind": "cnn", "ndim": ndim, "n_out": 2, "channels": [4, 4]}, seed=0)
    field = jax.random.normal(jax.random.key(2), (1, *(16,) * ndim))
    shifted = jnp.roll(field, shift=(4, -8, 12)[:ndim], axis=tuple(range(1, ndim + 1)))
    np.testing.assert_allclose(summarise(model, shifted), summarise(model, field), atol=1e-5)
    other = jax.random.normal(jax.random.key(3), field.shape)
    assert not np.allclose(summarise(model, other), summarise(model, field), atol=1e-3)


@pytest.mark.parametrize(("ndim", "c_in", "kernel"), [(3, 1, 3), (3, 3, 3), (2, 2, 2), (2, 8, 3)])
def test_circular_conv_is_the_periodic_cross_correlation(ndim, c_in, kernel):
    """Both paths of ``circular_conv`` (shifted sums up to 4 input channels, XLA above) give
    out[i] = b + sum_o w[o] x[(i + o - (k - 1) // 2) mod m], written here with NumPy's wrap."""
    from flax import nnx

    from discovery.compress.networks import circular_conv

    conv = nnx.Conv(c_in, 5, (kernel,) * ndim, padding="CIRCULAR", rngs=nnx.Rngs(0))
    conv.bias[...] = jnp.linspace(-1.0, 1.0, 5)
    rng = np.random.default_rng(1)
    h = rng.standard_normal((2, *(6,) * ndim, c_in)).astype(np.float32)
    w, b = np.asarray(conv.kernel[...]), np.asarray(conv.bias[...])
    expected = np.broadcast_to(b, (2, *(6,) * ndim, 5)).astype(np.float64)
    for offset in np.ndindex(*(kernel,) * ndim):
        moved = h
        for axis, o in enumerate(offset):
            index = (np.arange(6) + o - (kernel - 1) // 2) % 6
            moved = np.take(moved, index, axis=axis + 1)
        expected = expected + moved @ w[offset]
    np.testing.assert_allclose(circular_conv(conv, jnp.asarray(h)), expected, atol=2e-5)


@pytest.mark.parametrize("ndim", [2, 3])
def test_block_conv_equals_the_strided_convolution(ndim):
    """A kernel-2, stride-2 convolution contracts each 2^ndim block with the kernel: block_conv
    against XLA's strided convolution (nnx.Conv) and against a NumPy sum over the blocks."""
    from flax import nnx

    from discovery.compress.networks import block_conv

    conv = nnx.Conv(3, 4, (2,) * ndim, strides=2, rngs=nnx.Rngs(0))
    conv.bias[...] = jnp.arange(4.0)
    h = np.random.default_rng(2).standard_normal((2, *(6,) * ndim, 3)).astype(np.float32)
    w, b = np.asarray(conv.kernel[...]), np.asarray(conv.bias[...])
    expected = np.broadcast_to(b, (2, *(3,) * ndim, 4)).astype(np.float64)
    for offset in np.ndindex(*(2,) * ndim):
        corner = tuple(slice(o, None, 2) for o in offset)
        expected = expected + h[(slice(None), *corner)] @ w[offset]
    out = block_conv(conv, jnp.asarray(h))
    np.testing.assert_allclose(out, expected, atol=2e-5)
    np.testing.assert_allclose(out, conv(jnp.asarray(h)), atol=2e-5)


def test_regression_learns_gaussian_posterior_mean():
    """Linear Gaussian model d = M theta + n, theta ~ N(0, S): E[theta | d] is linear in d."""
    rng = np.random.default_rng(0)
    n_data, n_theta = 6, 2
    m = rng.standard_normal((n_data, n_theta))
    prior_sd, noise_sd = np.array([1.0, 0.5]), 0.7

    def draw(n):
        theta = rng.standard_normal((n, n_theta)) * prior_sd
        return (theta @ m.T + noise_sd * rng.standard_normal((n, n_data))).astype(np.float32), theta

    x_train, t_train = draw(4000)
    x_val, t_val = draw(1000)
    x_test, _ = draw(2000)
    precision = np.diag(prior_sd**-2) + m.T @ m / noise_sd**2
    post_mean = np.linalg.solve(precision, m.T @ x_test.T / noise_sd**2).T
    post_sd = np.sqrt(np.diag(np.linalg.inv(precision)))

    model = build_network({"kind": "mlp", "n_in": n_data, "n_out": n_theta, "hidden": [16]}, seed=0)
    fit_input_scaling(model, jnp.asarray(x_train))
    config = RegressionConfig(learning_rate=3e-3, max_steps=1500, patience=200, batch_size=256)
    history = train_regression(model, x_train, t_train, x_val, t_val, config, progress=False)
    assert history["validation"].min() < history["validation"][0]
    rms = np.sqrt(
        np.mean((np.asarray(summarise(model, jnp.asarray(x_test))) - post_mean) ** 2, axis=0)
    )
    # a network ignoring the prior (the least-squares estimate) would be off by ~post_sd
    assert np.all(rms < 0.2 * post_sd)


@pytest.mark.parametrize(
    ("make", "name"),
    [
        (lambda: build_network({"kind": "transformer"}), "kind"),
        (lambda: build_network({"kind": "cnn", "ndim": 4, "n_out": 2}), "ndim"),
        (
            lambda: build_network(
                {"kind": "spectral", "shape": [16, 15], "box": 1.0, "n_bins": 4, "n_out": 2}
            ),
            "shape",
        ),
        (
            lambda: build_network(
                {"kind": "spectral", "shape": [8, 8], "box": 1.0, "n_bins": 40, "n_out": 2}
            ),
            "n_bins",
        ),
        (lambda: IMNNConfig(epsilon=2.0), "epsilon"),
        (lambda: IMNNConfig(learning_rate=0.0), "learning_rate"),
        (lambda: RegressionConfig(batch_size=0), "batch_size"),
    ],
)
def test_bad_settings_raise_value_error_naming_the_parameter(make, name):
    with pytest.raises(ValueError, match=name):
        make()
