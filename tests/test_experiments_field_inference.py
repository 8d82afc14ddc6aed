"""``experiments.core.field_inference``: the experiments' chains of a field-level posterior.

``run_config`` is checked field by field against the experiment's configuration;
``sample_chains`` runs the driver on a small linear posterior (4^3 white noise, amplitude
and bias sampled) and is checked against what it promises: the directory named after the
SHA-1 of the posterior's description (recomputed here), the description and the true fields
stored in ``chain.h5``, the same posterior resumed (not resampled) and another one kept apart.
"""

import hashlib
import json

import h5py
import numpy as np
import pytest

from experiments.core.field_inference import run_config, sample_chains

CONFIG = {
    "sampler": "mclmc",
    "samples": 8,
    "warmup": 10,
    "chains": 2,
    "thin": 4,
    "inference_seed": 5,
}


def test_run_config_takes_the_experiment_settings():
    config = run_config(CONFIG)
    assert (config.sampler, config.num_samples, config.num_warmup) == ("mclmc", 8, 10)
    assert (config.num_chains, config.thin, config.seed) == (2, 4, 5)
    assert config.checkpoint_every == 40
    with pytest.raises(ValueError, match="thin=3 is not allowed"):
        run_config({**CONFIG, "thin": 3})


def _posterior(m: int = 4):
    """Data ``d = b1 sigma8 s + N(0, 1)`` per cell; ``b1`` and ``sigma8`` sampled."""
    import jax.numpy as jnp

    from inference.fields import fourier_filter
    from inference.posterior import FieldPosterior

    data = jnp.asarray(np.random.default_rng(0).normal(size=(m,) * 3), jnp.float32)
    ones = jnp.ones((m, m, m // 2 + 1), jnp.float32)

    def linear(s, cosmo):
        return fourier_filter(s, cosmo["sigma8"] * ones)

    def loglik(fields, bias, noise):
        return -0.5 * jnp.sum(jnp.square(data - bias["b1"] * fields["delta"]))

    priors = {"bias": {"b1": (1.0, 0.1)}, "cosmo": {"sigma8": (0.8, 0.1)}}
    return FieldPosterior(m, 100.0, linear, lambda x, c: x, loglik, priors, name="linear test")


def _digest(description: dict) -> str:
    return hashlib.sha1(json.dumps(description, sort_keys=True).encode()).hexdigest()[:10]


def test_sample_chains_names_stores_and_resumes_by_posterior(tmp_path):
    posterior = _posterior()
    rng = np.random.default_rng(1)
    truth = {
        k: rng.normal(size=(4,) * 3) for k in ("white_noise", "delta_linear", "delta_observed")
    }
    model = {"priors": {"b1": [1.0, 0.1]}, "seed": 0}
    path = sample_chains(posterior, CONFIG, tmp_path / "chains" / "field", truth, model)
    described = {"name": "linear test", **model}
    assert path == tmp_path / "chains" / f"field-{_digest(described)}" / "chain.h5"
    with h5py.File(path, "r") as f:
        assert json.loads(f.attrs["posterior"]) == described
        assert json.loads(f.attrs["scalar_names"]) == ["bias/b1", "cosmo/sigma8"]
        assert f["samples/scalars"].shape == (2, 8, 2)
        for stored, key in (("s", "white_noise"), ("delta_L", "delta_linear")):
            np.testing.assert_allclose(f[f"truth/{stored}"][()], truth[key], rtol=1e-6)
        np.testing.assert_allclose(f["truth/delta"][()], truth["delta_observed"], rtol=1e-6)
        first = f["samples/scalars"][()]
    again = sample_chains(posterior, CONFIG, tmp_path / "chains" / "field", truth, model)
    assert again == path
    with h5py.File(again, "r") as f:
        np.testing.assert_array_equal(f["samples/scalars"][()], first)
    other = sample_chains(posterior, CONFIG, tmp_path / "chains" / "field", truth, {"seed": 1})
    assert other.parent.name == f"field-{_digest({'name': 'linear test', 'seed': 1})}"
    assert other.parent != path.parent and other.is_file()
