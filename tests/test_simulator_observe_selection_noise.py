"""Survey selection grids and the noise models: validation, moments, likelihoods, gradients."""

import h5py
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from field_helpers import gaussian_random_field
from scipy import stats

from simulator.observe import selection as sel
from simulator.observe.bias import get_bias_law
from simulator.observe.mock import counts_log_likelihood
from simulator.observe.noise import GaussianNoise, NegativeBinomialNoise, PoissonNoise, make_noise

N = 8
SHAPE = (N, N, N)


@pytest.mark.parametrize(
    "grid,match",
    [
        (-0.1 * np.ones(SHAPE), "negative"),
        (np.ones((N, N, N + 1)), "shape"),
        (np.zeros(SHAPE), "zero everywhere"),
        (1.5 * np.ones(SHAPE), "above 1"),
        (np.full(SHAPE, np.nan), "non-finite"),
    ],
)
def test_bad_selection_grids_are_named(grid, match):
    with pytest.raises(ValueError, match=f"selection.*{match}"):
        sel.validate_selection(grid, SHAPE)


def test_selection_from_hdf5(tmp_path):
    grid = np.random.default_rng(0).uniform(0, 1, SHAPE)
    path = tmp_path / "sel.h5"
    with h5py.File(path, "w") as f:
        f["data/selection"] = grid
        f["other"] = np.ones(3)
    np.testing.assert_allclose(sel.load_selection(path, SHAPE), grid, rtol=1e-6)
    with pytest.raises(ValueError, match="selection.*shape"):
        sel.load_selection(path, (4, 4, 4))
    with pytest.raises(ValueError, match="no dataset 'mask'"):
        sel.load_selection(path, SHAPE, dataset="mask")
    with pytest.raises(ValueError, match="does not exist"):
        sel.load_selection(tmp_path / "missing.h5", SHAPE)


def test_radial_selection_interpolates_n_of_r_around_the_observer():
    box, observer = 80.0, (40.0, 30.0, 50.0)
    r, n_of_r = [0.0, 20.0, 35.0], [2.0, 4.0, 1.0]
    grid = sel.radial_selection(SHAPE, box, observer, r, n_of_r)
    for node in [(0, 0, 0), (4, 3, 5), (5, 5, 5), (7, 1, 2), (2, 6, 6)]:
        dist = np.linalg.norm(np.array(node) * box / N - observer)
        if dist <= 20.0:
            expected = (2.0 + 2.0 * dist / 20.0) / 4.0
        elif dist <= 35.0:
            expected = (4.0 - 3.0 * (dist - 20.0) / 15.0) / 4.0
        else:
            expected = 0.0
        assert grid[node] == pytest.approx(expected, abs=1e-6), node
    assert grid.max() <= 1.0 and grid[4, 3, 5] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="n_of_r"):
        sel.radial_selection(SHAPE, box, observer, r, [1.0, -1.0, 0.0])


def test_survey_selection_combines_mask_radial_and_completeness():
    rng = np.random.default_rng(1)
    mask = (rng.uniform(size=SHAPE) > 0.3).astype(float)
    radial = rng.uniform(size=SHAPE)
    grid = sel.survey_selection(SHAPE, mask=mask, radial=radial, completeness=0.8)
    np.testing.assert_allclose(grid, 0.8 * mask * radial, rtol=1e-6)
    with pytest.raises(ValueError, match="completeness"):
        sel.survey_selection(SHAPE, completeness=0.0)
    with pytest.raises(ValueError, match="mask.*shape"):
        sel.survey_selection(SHAPE, mask=np.ones((N, N)))


def test_log_likelihoods_match_scipy(x64):
    rng = np.random.default_rng(2)
    lam = rng.uniform(0.1, 6.0, 300)
    counts = rng.poisson(lam * rng.uniform(0.5, 2.0, lam.size))
    mask = rng.uniform(size=lam.size) > 0.2
    lam_masked = np.where(mask, lam, 0.0)  # no data, zero rate: ignored, and finite
    cases = [
        (PoissonNoise(), stats.poisson.logpmf(counts, lam)),
        (NegativeBinomialNoise(r=2.5), stats.nbinom.logpmf(counts, 2.5, 2.5 / (2.5 + lam))),
        (GaussianNoise(sigma=1.7), stats.norm.logpdf(counts, lam, 1.7)),
    ]
    for noise, expected in cases:
        args = jnp.asarray(counts), jnp.asarray(lam_masked), jnp.asarray(mask)
        got = jax.jit(noise.log_likelihood)(*args)
        np.testing.assert_allclose(got, expected[mask].sum(), rtol=1e-10, err_msg=noise.name)


M = 16**3 * 4  # draws per row


@pytest.fixture(scope="module")
def draws():
    """Counts drawn once per noise model (one compilation each) from five rows of rates:
    constant rates 0.5, 2 and 8 repeated M times, a log-normal field of M rates, and zeros."""
    field = gaussian_random_field(16, 0.5, seed=3).reshape(-1)
    varied = 2.0 * np.exp(np.tile(field, 4) - 0.125)
    constant = np.full((3, M), [[0.5], [2.0], [8.0]])
    rates = jnp.asarray(np.vstack([constant, varied, np.zeros(M)]), jnp.float32)
    models = [PoissonNoise(), NegativeBinomialNoise(r=3.0), GaussianNoise(sigma=1.5)]
    keys = jax.random.split(jax.random.key(5), len(models))
    return {
        m.name: (np.asarray(jax.jit(m.sample)(k, rates), np.float64), np.asarray(rates, np.float64))
        for m, k in zip(models, keys, strict=True)
    }


@pytest.mark.parametrize(
    "name,variance",
    [
        ("poisson", lambda lam: lam),
        ("negbinom", lambda lam: lam + lam**2 / 3.0),
        ("gaussian", lambda lam: 1.5**2 + 0 * lam),
    ],
)
def test_sample_moments(draws, name, variance):
    """Sample mean and variance per rate agree with lam and the model variance within five
    standard errors (the variance's error from the sample fourth central moment)."""
    samples, rates = draws[name]
    samples, lam, m = samples[:3], rates[:3, 0], M
    mean, var = samples.mean(axis=1), samples.var(axis=1, ddof=1)
    mu4 = np.mean((samples - mean[:, None]) ** 4, axis=1)
    assert np.all(np.abs(mean - lam) < 5 * np.sqrt(variance(lam) / m))
    assert np.all(np.abs(var - variance(lam)) < 5 * np.sqrt((mu4 - var**2) / m))
    if name != "gaussian":
        assert samples.min() >= 0 and np.all(samples == np.round(samples))
        assert np.all(draws[name][0][4] == 0)  # a zero rate (zero selection) gives no galaxy


def test_poisson_counts_pass_a_chi_square_test(draws):
    """X = sum (n - lam)^2 / lam over a field of rates has mean N_cells and variance
    sum(2 + 1/lam) for Poisson counts; the total count is within 4 sigma of sum(lam)."""
    samples, rates = draws["poisson"]
    counts, lam = samples[3], rates[3]
    chi2 = np.sum((counts - lam) ** 2 / lam)
    z = (chi2 - lam.size) / np.sqrt(np.sum(2.0 + 1.0 / lam))
    assert abs(z) < 4.0
    z_mean = np.sum(counts - lam) / np.sqrt(lam.sum())
    assert abs(z_mean) < 4.0


@pytest.mark.parametrize("noise_name,noise_values", [("poisson", {}), ("negbinom", {"r": 4.0})])
def test_likelihood_gradients_match_finite_differences(noise_name, noise_values, x64):
    """d ln L / d(delta, bias params, noise params) through lam = nbar S F(delta), with part of
    the volume unobserved (S = 0), against central finite differences."""
    rng = np.random.default_rng(4)
    delta = jnp.asarray(np.maximum(gaussian_random_field(N, 0.4, seed=4), -0.9))
    selection = jnp.asarray(np.where(rng.uniform(size=SHAPE) > 0.25, rng.uniform(size=SHAPE), 0.0))
    law = get_bias_law("neyrinck")
    bias_values = {"beta": 1.3, "rho_g": 0.3, "epsilon": 0.8}
    noise = make_noise(noise_name, noise_values)
    counts = jnp.asarray(rng.poisson(3.0 * np.asarray(selection)))
    mask = selection > 0

    @jax.jit
    def loglike(d, bias_params, noise_model):
        return counts_log_likelihood(counts, d, law, bias_params, 3.0, noise_model, selection)

    params = law.make_params(bias_values)
    g_delta, g_bias, g_noise = jax.grad(loglike, argnums=(0, 1, 2))(delta, params, noise)
    assert np.all(np.isfinite(g_delta)) and np.all(np.asarray(g_delta)[~np.asarray(mask)] == 0)
    h = 1e-6
    direction = jnp.asarray(rng.standard_normal(SHAPE))
    fd = loglike(delta + h * direction, params, noise) - loglike(
        delta - h * direction, params, noise
    )
    np.testing.assert_allclose(jnp.vdot(g_delta, direction), fd / (2 * h), rtol=1e-6)
    for key, value in bias_values.items():
        up = law.make_params({**bias_values, key: value + h})
        down = law.make_params({**bias_values, key: value - h})
        fd = (loglike(delta, up, noise) - loglike(delta, down, noise)) / (2 * h)
        np.testing.assert_allclose(getattr(g_bias, key), fd, rtol=1e-6, err_msg=key)
    for key, value in noise_values.items():
        up = make_noise(noise_name, {key: value + h})
        down = make_noise(noise_name, {key: value - h})
        fd = (loglike(delta, params, up) - loglike(delta, params, down)) / (2 * h)
        np.testing.assert_allclose(getattr(g_noise, key), fd, rtol=1e-6, err_msg=key)


def test_gaussian_likelihood_gradient_in_sigma(x64):
    lam = jnp.linspace(0.5, 4.0, 50)
    counts = lam + jnp.sin(jnp.arange(50.0))
    grad = jax.jit(jax.grad(lambda s: GaussianNoise(sigma=s).log_likelihood(counts, lam)))(1.3)
    # d/dsigma sum(-(n-lam)^2 / (2 sigma^2) - ln sigma) = sum((n-lam)^2) / sigma^3 - N / sigma
    expected = jnp.sum((counts - lam) ** 2) / 1.3**3 - 50 / 1.3
    np.testing.assert_allclose(grad, expected, rtol=1e-10)


def test_noise_parameters_are_validated():
    with pytest.raises(ValueError, match="sigma=-1.0"):
        make_noise("gaussian", {"sigma": -1.0})
    with pytest.raises(ValueError, match="r=0.0"):
        make_noise("negbinom", {"r": 0.0})
    with pytest.raises(ValueError, match="noise='cauchy'"):
        make_noise("cauchy")
    with pytest.raises(ValueError, match="'sigma' is not a parameter"):
        make_noise("poisson", {"sigma": 1.0})
