"""Samplers and the MAP optimiser against the analytic Wiener-filter posterior.

Data ``d = T * s + n`` with white noise ``s ~ N(0, I)``, a Fourier filter ``T(k)`` and white
noise ``n ~ N(0, sigma^2)`` has, mode by mode, the Gaussian posterior
``mean_k = T d_k / (sigma^2 + T^2)`` and ``var_k = sigma^2 / (sigma^2 + T^2)`` (per unit of
``<|s_k|^2> = N``). Computed here with NumPy, independently of the package.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from inference.diagnostics import ess_bulk
from inference.driver import RunConfig, adapt_mass_matrix
from inference.fields import fourier_filter
from inference.models import linear_gaussian_posterior
from inference.optimize import find_map
from inference.posterior import FieldPosterior, value_and_grad
from inference.precondition import (
    _impulse_response,
    _observed_information,
    fisher_preconditioner,
    hessian_preconditioner,
    latent_logdensity,
    prior_preconditioner,
    speed_up_large_scales,
)
from inference.samplers import SAMPLERS, make_sampler

MESH, BOX, SIGMA = 8, 100.0, 1.0


def _k_grid(m, box):
    k1 = np.fft.fftfreq(m, 1.0 / m) * 2 * np.pi / box
    kz = np.fft.rfftfreq(m, 1.0 / m) * 2 * np.pi / box
    return np.sqrt(k1[:, None, None] ** 2 + k1[None, :, None] ** 2 + kz[None, None] ** 2)


@pytest.fixture(scope="module")
def problem():
    k = _k_grid(MESH, BOX)
    pk = np.where(k > 0, 3e3 * np.maximum(k, 1e-9) ** -1.5, 0.0)
    transfer = np.sqrt(pk / (BOX / MESH) ** 3)
    rng = np.random.default_rng(42)
    s_true = rng.standard_normal((MESH,) * 3)
    axes = (0, 1, 2)
    data = np.fft.irfftn(np.fft.rfftn(s_true) * transfer, s=(MESH,) * 3, axes=axes)
    data = data + SIGMA * rng.standard_normal((MESH,) * 3)
    var = SIGMA**2 / (SIGMA**2 + transfer**2)
    mean_k = transfer * np.fft.rfftn(data) / (SIGMA**2 + transfer**2)
    # Self-conjugate modes (every index 0 or Nyquist) are real with variance N var;
    # the real and imaginary parts of the others have N var / 2 each.
    edge = np.isin(np.arange(MESH), [0, MESH // 2])
    selfconj = edge[:, None, None] & edge[None, :, None] & edge[None, None, : MESH // 2 + 1]
    half = np.where(selfconj, 1.0, 0.5)
    post = linear_gaussian_posterior(data, transfer, BOX, SIGMA)
    return {
        "posterior": post,
        "mean_k": mean_k,
        "var_re": MESH**3 * var * half,
        "var_im": np.where(selfconj, 0.0, MESH**3 * var * 0.5),
        "wiener": np.fft.irfftn(mean_k, s=(MESH,) * 3, axes=axes),
        "transfer": transfer,
        "data": data,
    }


def test_log_density_matches_gaussian(problem):
    """The posterior's value and gradient are those of the quadratic form written out here."""
    post = problem["posterior"]
    s = np.random.default_rng(1).standard_normal((MESH,) * 3).astype(np.float32)
    model = np.fft.irfftn(np.fft.rfftn(s) * problem["transfer"], s=s.shape, axes=(0, 1, 2))
    resid = problem["data"] - model
    expected = -0.5 * np.sum(resid**2) / SIGMA**2 - 0.5 * np.sum(s**2)
    grad_expected = (
        np.fft.irfftn(np.fft.rfftn(resid) * problem["transfer"], s=s.shape, axes=(0, 1, 2))
        / SIGMA**2
        - s
    )
    value, grad = value_and_grad(post)(post.initial_params(jnp.asarray(s)))
    assert float(value) == pytest.approx(expected, rel=1e-5)
    np.testing.assert_allclose(grad["s"], grad_expected, rtol=1e-3, atol=1e-3)


def test_fisher_preconditioner_is_wiener_covariance(problem):
    """For linear Gaussian data the Fisher mass matrix is exact: w(k)^2 = var_k (shells)."""
    post = problem["posterior"]
    pre = fisher_preconditioner(post, post.initial_params(), jax.random.PRNGKey(0))
    var = SIGMA**2 / (SIGMA**2 + problem["transfer"] ** 2)
    # T(k) depends on |k| only, so averaging over shells of equal |k| loses nothing.
    np.testing.assert_allclose(np.asarray(pre.field_scale) ** 2, var, rtol=1e-2)


def test_hessian_preconditioner_is_wiener_precision(problem):
    """For linear Gaussian data the Hessian-vector-product estimate of the Fourier diagonal
    is the Wiener precision 1 + T^2 / sigma^2 of every mode, at any point."""
    post = problem["posterior"]
    s = jnp.asarray(np.random.default_rng(2).standard_normal((MESH,) * 3), jnp.float32)
    pre = hessian_preconditioner(post, post.initial_params(s), jax.random.PRNGKey(0), 2)
    precision = 1.0 + problem["transfer"] ** 2 / SIGMA**2
    np.testing.assert_allclose(np.asarray(pre.field_scale) ** -2, precision, rtol=1e-2)


def test_adapted_mass_matrix_matches_wiener_variance_per_shell(problem):
    """The pilot run rescales the prior mass matrix to the mode-weighted shell means of the
    Wiener posterior variance (shells of width k_f, binned here with NumPy)."""
    post = problem["posterior"]
    config = RunConfig(sampler="quarter_hmc", mass_matrix="adapted", num_warmup=200)
    prior = prior_preconditioner(post, post.initial_params())
    starts = jax.vmap(lambda _: prior.to_latent(post.initial_params()))(jnp.arange(4))
    pre, _, grads = adapt_mass_matrix(post, config, prior, starts, jax.random.PRNGKey(5))
    assert np.all(np.asarray(grads) > 400)
    var = SIGMA**2 / (SIGMA**2 + problem["transfer"] ** 2)
    shell = np.floor(_k_grid(MESH, BOX) * BOX / (2 * np.pi) - 0.5).astype(int)
    kz = np.arange(MESH // 2 + 1)[None, None, :]
    weight = np.where((kz == 0) | (kz == MESH // 2), 1.0, 2.0) * np.ones_like(var)
    scale2 = np.asarray(pre.field_scale) ** 2
    for i in range(MESH // 2):
        sel = shell == i
        expected = np.sum(weight[sel] * var[sel]) / np.sum(weight[sel])
        np.testing.assert_allclose(scale2[sel], expected, rtol=0.15)


@pytest.mark.parametrize("mass", ["fisher", "prior"])
def test_map_reaches_wiener_filter(problem, mass):
    """L-BFGS in latent space converges to the Wiener-filter mean."""
    post = problem["posterior"]
    p0 = post.initial_params()
    make = {"fisher": fisher_preconditioner, "prior": prior_preconditioner}[mass]
    pre = make(post, p0, jax.random.PRNGKey(0)) if mass == "fisher" else make(post, p0)
    x, trace = find_map(latent_logdensity(post, pre), pre.to_latent(p0), 100)
    s_map = np.asarray(pre.to_params(x)["s"])
    err = np.sqrt(np.mean((s_map - problem["wiener"]) ** 2)) / np.std(problem["wiener"])
    assert err < 1e-3
    assert trace[-1] <= trace[0]


@pytest.mark.parametrize(("name", "speedup"), [(name, 1.0) for name in SAMPLERS] + [("mclmc", 2.0)])
def test_sampler_moments_match_wiener_posterior(problem, name, speedup):
    """Per-mode posterior mean (z-scores with the measured ESS) and variance (< 2% bias),
    also with the three lowest k-shells sped up (their latent widths halved)."""
    post = problem["posterior"]
    p0 = post.initial_params()
    pre = fisher_preconditioner(post, p0, jax.random.PRNGKey(0))
    pre = speed_up_large_scales(pre, speedup)
    sampler = make_sampler(name, latent_logdensity(post, pre))
    x0 = pre.to_latent(p0)
    num = 2000 if "mclmc" in name else 1000

    @jax.jit
    def run(key):
        key_warm, key_run = jax.random.split(key)
        state, tuning, _ = sampler.warmup(key_warm, x0, 200)

        def body(state, k):
            state, _ = sampler.step(k, state, tuning)
            return state, jnp.fft.rfftn(pre.to_params(sampler.position(state))["s"])

        return jax.lax.scan(body, state, jax.random.split(key_run, num))[1]

    sk = np.asarray(run(jax.random.PRNGKey(7)))
    parts = {"re": (sk.real, problem["mean_k"].real, problem["var_re"])}
    parts["im"] = (sk.imag, problem["mean_k"].imag, problem["var_im"])
    for draws, mean, var in parts.values():
        ok = var > 0
        d, mu, v = draws[:, ok], mean[ok], var[ok]
        ess = ess_bulk(d[None])
        z = (d.mean(axis=0) - mu) / np.sqrt(v / ess)
        assert np.mean(z**2) < 1.5, name
        assert np.max(np.abs(z)) < 5.0, name
        second = np.mean((d - mu) ** 2, axis=0)
        assert abs(np.mean(second / v) - 1.0) < 0.02, name


def _weighted_wiener_posterior(transfer, data, precision, unobserved=None) -> FieldPosterior:
    """Posterior of ``s`` given ``data = T * s + n``, ``n`` of per-cell precision
    ``precision`` ``(m, m, m)``; ``unobserved`` as in :class:`FieldPosterior`."""
    filt, prec = jnp.asarray(transfer, jnp.float32), jnp.asarray(precision, jnp.float32)
    return FieldPosterior(
        data.shape[0],
        BOX,
        lambda s, cosmo: fourier_filter(s, filt),
        lambda delta_l, cosmo: delta_l,
        lambda fields, bias, noise: -0.5 * jnp.sum(prec * (data - fields["delta"]) ** 2),
        priors={},
        unobserved=unobserved,
    )


def test_hessian_preconditioner_keeps_at_least_the_expected_information():
    """Data ``d = T * s + n`` with noise of per-cell precision ``p(x)``: 0 in most cells, 500
    in a few. The Hessian's Fourier diagonal is ``1 + mean(p) T(k)^2`` for every mode (NumPy
    here), but its Hutchinson estimate from one probe is noisy in the shells of few modes,
    negative in some; the floor at the expected Fisher information keeps every mode's
    curvature at least the exact diagonal."""
    mesh = 16
    k = _k_grid(mesh, BOX)
    transfer = np.sqrt(np.where(k > 0, 3e3 * np.maximum(k, 1e-9) ** -1.5, 0.0)) / 10.0
    rng = np.random.default_rng(3)
    precision = np.where(rng.uniform(size=(mesh,) * 3) < 0.002, 500.0, 0.0)
    data = jnp.asarray(rng.standard_normal((mesh,) * 3), jnp.float32)
    post = _weighted_wiener_posterior(transfer, data, precision)
    params = post.initial_params(jnp.asarray(rng.standard_normal((mesh,) * 3), jnp.float32))
    diagonal = 1.0 + precision.mean() * transfer**2
    pre = hessian_preconditioner(post, params, jax.random.PRNGKey(0), num_probes=1)
    h = np.asarray(pre.field_scale) ** -2
    assert np.all(h >= diagonal * (1 - 1e-3))
    # Without the floor, the one-probe estimate of the data information is negative in a shell.
    response = _impulse_response(post, {}, params["s"].shape, 1e-2)
    observed = _observed_information(post, params, jax.random.PRNGKey(0), 1, 1e-2, response)
    assert np.min(np.asarray(observed)) < 0.0


def test_mask_aware_map_whitens_a_masked_wiener_posterior():
    """Data ``d = T * s + n`` on the observed cells only, a slab of a quarter of the box
    unobserved: the exact posterior covariance ``(I + T^T O T / sigma^2)^-1`` (dense, NumPy),
    seen in the latent coordinates of the Fisher preconditioner's map, is much better
    conditioned with the mask-aware map (``FieldPosterior.unobserved`` given) than with the
    Fourier-diagonal one (the same posterior without it; condition numbers 143 and 861 when
    written), its observed modes keep unit variance, and the map inverts. Without a mask the
    diagonal map whitens it exactly."""
    k = _k_grid(MESH, BOX)
    transfer = np.sqrt(np.where(k > 0, 3e3 * np.maximum(k, 1e-9) ** -1.5, 0.0)) / 10.0
    n = MESH**3
    basis = np.eye(n).reshape(n, MESH, MESH, MESH)
    filtered = np.fft.irfftn(
        np.fft.rfftn(basis, axes=(1, 2, 3)) * transfer, s=(MESH,) * 3, axes=(1, 2, 3)
    )
    t_matrix = filtered.reshape(n, n).T
    rng = np.random.default_rng(7)
    data = jnp.asarray(rng.standard_normal((MESH,) * 3), jnp.float32)

    def latent_eigenvalues(observed, mask_aware):
        unobserved = jnp.asarray(observed == 0) if mask_aware else None
        post = _weighted_wiener_posterior(transfer, data, observed / SIGMA**2, unobserved)
        pre = fisher_preconditioner(post, post.initial_params(), jax.random.PRNGKey(0))
        x = jnp.asarray(rng.standard_normal((MESH,) * 3), jnp.float32)
        np.testing.assert_allclose(pre.to_latent(pre.to_params({"s": x}))["s"], x, atol=1e-4)
        jac = jax.jacfwd(lambda v: pre.to_params({"s": v})["s"])(jnp.zeros((MESH,) * 3))
        a = np.asarray(jac, np.float64).reshape(n, n)
        precision = np.eye(n) + t_matrix.T @ (observed.reshape(-1, 1) * t_matrix) / SIGMA**2
        latent = np.linalg.solve(a, np.linalg.solve(a, np.linalg.inv(precision)).T)
        return np.linalg.eigvalsh(0.5 * (latent + latent.T))

    full = latent_eigenvalues(np.ones((MESH,) * 3), False)
    np.testing.assert_allclose(full, 1.0, rtol=1e-4)
    observed = np.ones((MESH,) * 3)
    observed[: MESH // 4] = 0.0
    aware = latent_eigenvalues(observed, True)
    diagonal = latent_eigenvalues(observed, False)
    assert aware.min() > 0.999
    assert aware.max() / aware.min() < 0.25 * diagonal.max() / diagonal.min()
