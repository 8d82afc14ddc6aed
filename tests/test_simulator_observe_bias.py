"""Bias laws: limiting cases, linear response, tidal field, gradients and validation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from field_helpers import cross_power, gaussian_random_field

from simulator.observe import bias

N = 16


@pytest.fixture(scope="module")
def small_field():
    """A low-variance GRF (rms 0.02): every law is linear in delta to O(sigma^2)."""
    return gaussian_random_field(32, 0.02, seed=1)


@pytest.fixture(scope="module")
def field():
    """A moderate GRF (rms 0.3) kept above delta = -0.9."""
    return np.maximum(gaussian_random_field(N, 0.3, seed=2), -0.9)


def _law_and_params(name, **values):
    law = bias.get_bias_law(name)
    return law, law.make_params(values)


# name, parameters, expected d<F delta>/d<delta delta> = F'(delta=0), computed by hand
LINEAR_RESPONSE = [
    ("linear", {"b1": 1.7}, 1.7),
    ("quadratic", {"b1": 1.3, "b2": 0.8, "bs2": -0.5}, 1.3),
    ("power_law", {"alpha": 1.8}, 1.8),
    (
        "neyrinck",
        {"beta": 1.2, "rho_g": 0.5, "epsilon": 0.7},
        np.exp(-(0.5**0.7)) * (1.2 + 0.7 * 0.5**0.7),
    ),
    (
        "broken_power_law",
        {"alpha_low": 2.5, "alpha_high": 0.5, "x_break": 1.0, "smoothness": 0.4},
        2.0 ** (-2.0 * 0.4) * (2.5 - 2.0 / 2),
    ),
]


@pytest.mark.parametrize("name,values,expected", LINEAR_RESPONSE)
def test_large_scale_bias_is_the_linear_response(small_field, name, values, expected):
    """P_gm / P_mm on large scales equals the analytic dF/ddelta at delta = 0."""
    law, params = _law_and_params(name, **values)
    galaxies = np.asarray(law(jnp.asarray(small_field, jnp.float32), params), np.float64)
    _, p_gm = cross_power(galaxies, small_field, nbins=4)
    _, p_mm = cross_power(small_field, small_field, nbins=4)
    np.testing.assert_allclose(p_gm / p_mm, expected, rtol=0.01)


def test_linear_bias_scales_the_power_spectrum_by_b1_squared(small_field):
    law, params = _law_and_params("linear", b1=2.2)
    galaxies = np.asarray(law(jnp.asarray(small_field), params), np.float64) - 1.0
    _, p_gg = cross_power(galaxies, galaxies, nbins=6)
    _, p_mm = cross_power(small_field, small_field, nbins=6)
    np.testing.assert_allclose(p_gg / p_mm, 2.2**2, rtol=1e-4)


def test_power_law_with_unit_exponent_is_linear_bias_one(field):
    delta = jnp.asarray(field)
    np.testing.assert_allclose(
        bias.power_law(delta, bias.PowerLawBias(alpha=1.0)),
        bias.linear(delta, bias.LinearBias(b1=1.0)),
        rtol=1e-5,
    )


def test_neyrinck_tends_to_the_power_law_as_the_cutoff_vanishes(field, x64):
    delta = jnp.asarray(field)
    target = bias.power_law(delta, bias.PowerLawBias(alpha=1.4))
    errors = []
    for rho_g in (1e-2, 1e-4, 1e-6):
        law = bias.neyrinck(delta, bias.NeyrinckBias(beta=1.4, rho_g=rho_g, epsilon=1.0))
        errors.append(float(jnp.max(jnp.abs(law / target - 1.0))))
    # 1 - exp(-rho_g / x) ~ rho_g / x with x >= 0.1: the gap shrinks linearly with rho_g
    assert errors[-1] < 1.1e-5
    np.testing.assert_allclose(np.array(errors[:-1]) / np.array(errors[1:]), 100.0, rtol=0.1)


def test_broken_power_law_limits(field, x64):
    delta = jnp.asarray(field)
    same = bias.BrokenPowerLawBias(alpha_low=1.3, alpha_high=1.3, x_break=0.7, smoothness=0.3)
    np.testing.assert_allclose(
        bias.broken_power_law(delta, same),
        bias.power_law(delta, bias.PowerLawBias(alpha=1.3)),
        rtol=1e-12,
    )
    params = bias.BrokenPowerLawBias(alpha_low=2.5, alpha_high=0.5, x_break=2.0, smoothness=0.2)

    def log_slope(log_x):
        return jax.grad(lambda u: jnp.log(bias.broken_power_law(jnp.exp(u) - 1.0, params)))(log_x)

    assert abs(float(log_slope(np.log(2.0 * 1e-4))) - 2.5) < 1e-6
    assert abs(float(log_slope(np.log(2.0 * 1e4))) - 0.5) < 1e-6
    assert abs(float(log_slope(np.log(2.0))) - 1.5) < 1e-12  # halfway at the break


def test_quadratic_reduces_to_linear_and_keeps_the_mean(field):
    delta = jnp.asarray(field - field.mean(), jnp.float32)
    lin = bias.linear(delta, bias.LinearBias(b1=1.6))
    quad0 = bias.quadratic(delta, bias.QuadraticBias(b1=1.6, b2=0.0, bs2=0.0))
    np.testing.assert_allclose(quad0, lin, atol=1e-6)
    quad = bias.quadratic(delta, bias.QuadraticBias(b1=1.6, b2=1.1, bs2=-0.7))
    assert abs(float(jnp.mean(quad)) - 1.0) < 1e-5
    assert float(jnp.max(jnp.abs(quad - lin))) > 1e-2  # the second-order terms act


@pytest.mark.parametrize("mode", [(1, 0, 0), (1, 2, 0), (2, 1, 3)])
def test_tidal_field_of_a_plane_wave(mode):
    """For one plane wave s_ij = (k_i k_j / k^2 - delta_ij / 3) delta, so s^2 = 2/3 delta^2."""
    idx = np.indices((N, N, N))
    phase = 2 * np.pi * sum(m * i for m, i in zip(mode, idx, strict=True)) / N
    delta = 0.3 * np.cos(phase + 0.4)
    s2 = bias.tidal_field_squared(jnp.asarray(delta, jnp.float32))
    np.testing.assert_allclose(s2, 2.0 / 3.0 * delta**2, atol=1e-6)


FD_CASES = [
    ("linear", {"b1": 1.7}),
    ("quadratic", {"b1": 1.3, "b2": 0.8, "bs2": -0.5}),
    ("power_law", {"alpha": 1.8}),
    ("neyrinck", {"beta": 1.2, "rho_g": 0.5, "epsilon": 0.7}),
    ("broken_power_law", {"alpha_low": 2.5, "alpha_high": 0.5, "x_break": 1.2, "smoothness": 0.4}),
]


@pytest.mark.parametrize("name,values", FD_CASES)
def test_gradients_match_finite_differences(field, name, values, x64):
    law, params = _law_and_params(name, **values)
    rng = np.random.default_rng(3)
    weights = jnp.asarray(rng.standard_normal(field.shape))
    direction = jnp.asarray(rng.standard_normal(field.shape))
    delta = jnp.asarray(field)

    @jax.jit
    def objective(p, d):
        return jnp.sum(weights * law(d, p))

    grad_p, grad_d = jax.grad(objective, argnums=(0, 1))(params, delta)
    h = 1e-6
    fd_d = (objective(params, delta + h * direction) - objective(params, delta - h * direction)) / (
        2 * h
    )
    np.testing.assert_allclose(jnp.vdot(grad_d, direction), fd_d, rtol=1e-6)
    for key, value in values.items():
        up = law.make_params({**values, key: value + h})
        down = law.make_params({**values, key: value - h})
        fd = (objective(up, delta) - objective(down, delta)) / (2 * h)
        np.testing.assert_allclose(getattr(grad_p, key), fd, rtol=1e-6, err_msg=key)


def cubic_law(delta, params):
    """A user law, as a discovered expression would come back: 1 + c1 delta + c3 delta^3."""
    return 1.0 + params["c1"] * delta + params["c3"] * delta**3


def test_user_law_runs_under_jit_and_grad(field):
    law = bias.get_bias_law(cubic_law)
    params = law.make_params({"c1": 1.5, "c3": -0.2})
    delta = jnp.asarray(field, jnp.float32)
    bias.check_bias(law, params, delta.shape)
    grad = jax.jit(jax.grad(lambda p: jnp.sum(law(delta, p))))(params)
    np.testing.assert_allclose(grad["c1"], jnp.sum(delta), rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(grad["c3"], jnp.sum(delta**3), rtol=1e-4, atol=1e-3)


def test_user_law_of_the_wrong_shape_is_refused():
    law = bias.get_bias_law(lambda delta, params: jnp.sum(delta) * params["a"])
    with pytest.raises(ValueError, match="bias=.*shape"):
        bias.check_bias(law, {"a": 1.0}, (N, N, N))
    with pytest.raises(ValueError, match="bias_params"):
        bias.check_bias(bias.get_bias_law("neyrinck"), bias.LinearBias(), (N, N, N))


@pytest.mark.parametrize(
    "name,param,value",
    [
        ("neyrinck", "rho_g", -0.3),
        ("neyrinck", "epsilon", 0.0),
        ("neyrinck", "beta", -1.0),
        ("power_law", "alpha", float("nan")),
        ("linear", "b1", -1.0),
        ("broken_power_law", "smoothness", 0.0),
        ("broken_power_law", "x_break", -2.0),
    ],
)
def test_out_of_domain_parameters_are_named(name, param, value):
    with pytest.raises(ValueError, match=rf"{param}=.*{name}"):
        bias.get_bias_law(name).make_params({param: value})


def test_unknown_law_and_parameter_are_refused():
    with pytest.raises(ValueError, match="bias='nope'"):
        bias.get_bias_law("nope")
    with pytest.raises(ValueError, match="'b3' is not a parameter"):
        bias.get_bias_law("quadratic").make_params({"b3": 1.0})
