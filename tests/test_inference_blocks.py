"""Block (Gibbs) updates of the field and the bias against analytic posteriors.

Data ``d = b T * s + n`` with white noise ``s ~ N(0, I)``, a Fourier filter ``T(k)``, Gaussian
noise ``n ~ N(0, sigma^2)`` and an unknown bias amplitude ``b ~ N(mu, tau^2)``:

- given ``s``, ``b`` is Gaussian with precision ``|T*s|^2 / sigma^2 + 1 / tau^2``;
- given ``b``, ``s`` has the Wiener-filter posterior, mode by mode;
- marginally, ``d_k ~ N(0, N (b^2 T_k^2 + sigma^2))``, so ``p(b | d)`` is a 1-d density
  computed here by quadrature, and ``p(s | d)`` is a mixture of Wiener filters over it.

All written with NumPy here, independently of the package. Exact joint posterior draws (``b``
by inverse CDF of the quadrature, then ``s`` from its Wiener filter) are the reference for the
invariance of a Gibbs sweep; a driver run of the Gibbs sampler must reproduce ``p(b | d)``.
"""

import blackjax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from inference.driver import RunConfig, prepare, run_chains
from inference.fields import fourier_filter
from inference.posterior import FieldPosterior
from inference.precondition import latent_logdensity, latent_scalar_conditional
from inference.report import summarize
from inference.samplers import make_sampler
from inference.samplers.gibbs import GibbsState, scalar_kernel

MESH, BOX, SIGMA, B_TRUE, MU, TAU = 8, 100.0, 3.0, 1.5, 1.2, 0.5
AXES = (0, 1, 2)


def _transfer(k):
    return np.sqrt(np.where(k > 0, 3e3 * np.maximum(k, 1e-9) ** -1.5, 0.0) / (BOX / MESH) ** 3)


def _k(shape_z):
    k1 = np.fft.fftfreq(MESH, 1.0 / MESH) * 2 * np.pi / BOX
    kz = k1 if shape_z == MESH else np.fft.rfftfreq(MESH, 1.0 / MESH) * 2 * np.pi / BOX
    return np.sqrt(k1[:, None, None] ** 2 + k1[None, :, None] ** 2 + kz[None, None] ** 2)


@pytest.fixture(scope="module")
def problem():
    transfer = _transfer(_k(MESH // 2 + 1))
    rng = np.random.default_rng(0)
    s_true = rng.standard_normal((MESH,) * 3)
    data = B_TRUE * np.fft.irfftn(np.fft.rfftn(s_true) * transfer, s=(MESH,) * 3, axes=AXES)
    data = data + SIGMA * rng.standard_normal((MESH,) * 3)
    data_j, transfer_j = jnp.asarray(data, jnp.float32), jnp.asarray(transfer, jnp.float32)

    def loglik(fields, bias, noise):
        return -0.5 * jnp.sum(jnp.square(data_j - bias["b"] * fields["delta"])) / SIGMA**2

    posterior = FieldPosterior(
        MESH,
        BOX,
        lambda s, cosmo: fourier_filter(s, transfer_j),
        lambda delta, cosmo: delta,
        loglik,
        {"bias": {"b": (MU, TAU)}},
    )
    # p(b | d) on a grid: the full-FFT modes of d are independent with variance N C_k(b).
    power = np.abs(np.fft.fftn(data)).ravel() ** 2 / MESH**3
    t2 = _transfer(_k(MESH)).ravel() ** 2
    grid = np.linspace(MU - 8 * TAU, MU + 8 * TAU, 8001)
    cov = grid[:, None] ** 2 * t2 + SIGMA**2
    logp = -0.5 * ((grid - MU) / TAU) ** 2 - 0.5 * np.sum(power / cov + np.log(cov), axis=1)
    weights = np.exp(logp - logp.max())
    weights /= weights.sum()
    mean_b = np.sum(weights * grid)
    return {
        "posterior": posterior,
        "data": data,
        "transfer": transfer,
        "grid": grid,
        "weights": weights,
        "mean_b": mean_b,
        "std_b": np.sqrt(np.sum(weights * (grid - mean_b) ** 2)),
    }


def _wiener(problem, b):
    """Per-mode Wiener mean (rfft) and variance per unit of N at bias amplitude(s) ``b``."""
    t = problem["transfer"]
    b = np.asarray(b)[..., None, None, None]
    denom = SIGMA**2 + b**2 * t**2
    return b * t * np.fft.rfftn(problem["data"]) / denom, SIGMA**2 / denom


def _self_conjugate():
    edge = np.isin(np.arange(MESH), [0, MESH // 2])
    return edge[:, None, None] & edge[None, :, None] & edge[None, None, : MESH // 2 + 1]


def _exact_joint_draws(problem, rng, num):
    """``(b, s)`` drawn exactly from the joint posterior (b to the quadrature's resolution)."""
    cdf = np.cumsum(problem["weights"])
    b = np.interp(rng.uniform(size=num), cdf, problem["grid"])
    mean_k, var = _wiener(problem, b)
    z = np.fft.rfftn(rng.standard_normal((num,) + (MESH,) * 3), axes=(1, 2, 3))
    s_k = mean_k + np.sqrt(var) * z
    return b, np.fft.irfftn(s_k, s=(MESH,) * 3, axes=(1, 2, 3))


@pytest.fixture(scope="module")
def gibbs(problem):
    """The Gibbs sampler (BORG-HMC on the field) in the driver's latent space, warmed up on
    one chain, independently of any draw it is then applied to."""
    posterior = problem["posterior"]
    config = RunConfig(sampler="borg_hmc", blocks="gibbs", num_chains=1, map_steps=30)
    precond, _, starts = prepare(posterior, config, jax.random.PRNGKey(1))
    sampler = make_sampler(
        "borg_hmc",
        latent_logdensity(posterior, precond),
        "gibbs",
        latent_scalar_conditional(posterior, precond),
    )
    start = jax.tree.map(lambda x: x[0], starts)
    _, tuning, _ = jax.jit(sampler.warmup, static_argnums=2)(jax.random.PRNGKey(2), start, 200)
    return precond, sampler, tuning


def test_scalar_block_leaves_its_conditional_invariant(problem, gibbs):
    """Exact draws of b | s stay distributed as b | s after random-walk steps of the block."""
    precond, _, tuning = gibbs
    posterior = problem["posterior"]
    s = jnp.asarray(np.random.default_rng(5).standard_normal((MESH,) * 3), jnp.float32)
    model = np.fft.irfftn(np.fft.rfftn(np.asarray(s)) * problem["transfer"], s=s.shape, axes=AXES)
    precision = np.sum(model**2) / SIGMA**2 + 1.0 / TAU**2
    mean = (np.sum(model * problem["data"]) / SIGMA**2 + MU / TAU**2) / precision
    std = precision**-0.5
    b0 = mean + std * np.random.default_rng(6).standard_normal(4000)
    conditional = latent_scalar_conditional(posterior, precond)
    latent_s = precond.to_latent({"s": s})["s"]
    target = conditional.build({"s": latent_s, "bias": {"b": jnp.float32(MU)}})
    loc, scale = precond.loc["bias"]["b"], precond.scale["bias"]["b"]

    def move(key, b):
        latent = {"bias": {"b": (b - loc) / scale}}
        out, acc = scalar_kernel(key, latent, target, tuning.scalar_scale, 10)
        return loc + scale * out["bias"]["b"], acc

    keys = jax.random.split(jax.random.PRNGKey(3), b0.size)
    b1, acc = jax.jit(jax.vmap(move))(keys, jnp.asarray(b0, jnp.float32))
    b1 = np.asarray(b1, np.float64)
    assert 0.2 < float(np.mean(acc)) < 0.7
    assert np.mean(np.abs(b1 - b0) > 1e-6 * std) > 0.5
    assert stats.kstest((b1 - mean) / std, "norm").pvalue > 0.01


def test_gibbs_sweep_leaves_joint_posterior_invariant(problem, gibbs):
    """Exact joint draws of (b, s), three sweeps each: b still follows p(b | d) (KS against
    the quadrature), each mode of s keeps the mixture-of-Wiener mean and variance, and the
    field kernel's cached log density and gradient are those at the updated scalars."""
    precond, sampler, tuning = gibbs
    num = 1000
    b0, s0 = _exact_joint_draws(problem, np.random.default_rng(11), num)
    starts = jax.vmap(precond.to_latent)(
        {"s": jnp.asarray(s0, jnp.float32), "bias": {"b": jnp.asarray(b0, jnp.float32)}}
    )
    logdensity = latent_logdensity(problem["posterior"], precond)

    def sweeps(key, position):
        scalars = {"bias": position["bias"]}
        field = blackjax.hmc.init(position["s"], lambda s: logdensity({**scalars, "s": s}))
        state = GibbsState(field, scalars, field.logdensity)
        for k in jax.random.split(key, 3):
            state, _ = sampler.step(k, state, tuning)
        cached = (state.logdensity, state.field.logdensity_grad)
        position = sampler.position(state)
        fresh = jax.value_and_grad(lambda s: logdensity({**position, "s": s}))(position["s"])
        return precond.to_params(position), cached, fresh

    out, cached, fresh = jax.jit(jax.vmap(sweeps))(
        jax.random.split(jax.random.PRNGKey(4), num), starts
    )
    # The field kernel's cached log density and gradient belong to the new scalars.
    np.testing.assert_allclose(cached[0], fresh[0], rtol=1e-5)
    np.testing.assert_allclose(cached[1], fresh[1], rtol=1e-4, atol=1e-4)
    b1 = np.asarray(out["bias"]["b"], np.float64)
    assert np.mean(np.abs(b1 - b0) > 1e-6) > 0.5
    cdf = np.cumsum(problem["weights"])
    assert stats.kstest(b1, lambda x: np.interp(x, problem["grid"], cdf)).pvalue > 0.01

    mean_b, var_b = _wiener(problem, problem["grid"])
    w = problem["weights"][:, None, None, None]
    half = np.where(_self_conjugate(), 1.0, 0.5)
    mix_mean = np.sum(w * mean_b, axis=0)
    parts = {
        "re": (MESH**3 * half * var_b, mean_b.real, mix_mean.real),
        "im": (MESH**3 * (1.0 - half) * var_b, mean_b.imag, mix_mean.imag),
    }
    s_k = np.fft.rfftn(np.asarray(out["s"], np.float64), axes=(1, 2, 3))
    for name, (var_part, mean_part, mix) in parts.items():
        mix_var = np.sum(w * (var_part + (mean_part - mix) ** 2), axis=0)
        draws = getattr(s_k, "real" if name == "re" else "imag")
        ok = mix_var > 0
        z = (draws.mean(axis=0) - mix)[ok] / np.sqrt(mix_var[ok] / num)
        assert np.mean(z**2) < 1.5, name
        ratio = np.mean((draws - mix) ** 2, axis=0)[ok] / mix_var[ok]
        assert abs(np.mean(ratio) - 1.0) < 0.03, name


@pytest.mark.slow
def test_gibbs_run_recovers_marginal_posterior_of_bias(problem, tmp_path):
    """Four chains through the driver (``blocks="gibbs"``): mean and std of b against the
    quadrature of p(b | d), split-Rhat < 1.01, the scalar block's acceptance stored."""
    config = RunConfig(
        sampler="borg_hmc",
        blocks="gibbs",
        num_samples=1500,
        num_warmup=200,
        num_chains=4,
        thin=150,
        checkpoint_every=1500,
        map_steps=30,
        fisher_probes=2,
    )
    summary, _ = summarize(run_chains(problem["posterior"], config, tmp_path, progress=False))
    b = summary["scalars"]["bias/b"]
    assert b["rhat"] < 1.01
    # The scalar block's acceptance is stored per step and sits near the adapted target 0.4.
    assert 0.25 < summary["mean_scalar_acceptance"] < 0.6
    z = (b["mean"] - problem["mean_b"]) / (problem["std_b"] / np.sqrt(b["ess_bulk"]))
    assert abs(z) < 4.0
    assert abs(b["std"] / problem["std_b"] - 1.0) < 0.12
