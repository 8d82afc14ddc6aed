"""GetDist export of implicit posteriors and of field-level chains.

Field-level chains come from the driver itself (``inference.driver.run_chains`` on a small
field posterior with cosmology and bias sampled, as ``cosmolaw infer --sample-cosmology``
writes them) and from ``inference.chain_file.write_chain_file`` with the attributes the
driver gives it (the names ``group/name`` of the sampled scalars in the file attribute
``scalar_names``); the exported samples' means and covariances are recomputed with NumPy
from the draws stored in ``chain.h5``.
"""

import h5py
import numpy as np
import pytest

from inference.chain_file import write_chain_file
from inference.implicit.getdist_export import (
    chain_to_mcsamples,
    plot_contours,
    read_chain_scalars,
    scalar_labels,
    to_mcsamples,
)

#: What ``cosmolaw infer --sample-cosmology`` samples with the default Neyrinck bias.
NAMES = ["bias/beta", "bias/rho_g", "bias/epsilon", "cosmo/Omega_m", "cosmo/sigma8"]


def _write_chain(path, scalars: np.ndarray, names: list[str]) -> None:
    """A ``chain.h5`` as the driver writes it: float32 draws ``(C, n, p)`` and the names."""
    chains, steps, _ = scalars.shape
    arrays = {
        "samples/scalars": scalars.astype(np.float32),
        "samples/logdensity": np.zeros((chains, steps), np.float32),
    }
    attrs = {"scalar_names": names, "steps_done": steps, "complete": True, "config": {}}
    write_chain_file(path, arrays, {}, attrs)


@pytest.fixture
def chain(tmp_path) -> np.ndarray:
    """Draws ``(2, 400, 5)`` of :data:`NAMES` stored in ``tmp_path/chain.h5`` (float32)."""
    rng = np.random.default_rng(0)
    mean, std = [1.5, 0.4, 1.5, 0.3, 0.8], [0.1, 0.05, 0.2, 0.02, 0.03]
    scalars = rng.normal(mean, std, size=(2, 400, 5)).astype(np.float32)
    scalars[..., 4] += 0.5 * (scalars[..., 3] - 0.3)  # correlate sigma8 with Omega_m
    _write_chain(tmp_path / "chain.h5", scalars, NAMES)
    return scalars


def _numpy_moments(draws: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (normalised by n, as GetDist's) of draws ``(C, n, p)``, pooled."""
    flat = np.asarray(draws, float).reshape(-1, draws.shape[-1])
    return flat.mean(0), np.cov(flat, rowvar=False, bias=True)


def _driver_chain(out) -> str:
    """``chain.h5`` of ``run_chains``: 2 chains x 40 MCLMC steps of a 6^3 field ``s`` with
    data ``d = b1 sigma8 Omega_m s + N(0, 1)`` per cell (``b1``, ``Omega_m`` and ``sigma8``
    sampled with Gaussian priors)."""
    import jax.numpy as jnp

    from inference.driver import RunConfig, run_chains
    from inference.fields import fourier_filter
    from inference.posterior import FieldPosterior

    m = 6
    data = jnp.asarray(np.random.default_rng(3).normal(size=(m,) * 3), jnp.float32)
    ones = jnp.ones((m, m, m // 2 + 1), jnp.float32)

    def linear(s, cosmo):
        return fourier_filter(s, cosmo["sigma8"] * cosmo["Omega_m"] * ones)

    def loglik(fields, bias, noise):
        return -0.5 * jnp.sum(jnp.square(data - bias["b1"] * fields["delta"]))

    priors = {"bias": {"b1": (1.0, 0.1)}, "cosmo": {"Omega_m": (0.3, 0.05), "sigma8": (0.8, 0.1)}}
    posterior = FieldPosterior(m, 100.0, linear, lambda x, c: x, loglik, priors)
    config = RunConfig(
        num_samples=40, num_warmup=10, num_chains=2, thin=20, init="prior", mass_matrix="prior"
    )
    return run_chains(posterior, config, out, progress=False)


def test_driver_chain_with_cosmology_and_bias_exports_to_getdist(tmp_path):
    path = _driver_chain(tmp_path / "run")
    with h5py.File(path, "r") as f:
        draws = f["samples/scalars"][()]
    names, scalars = read_chain_scalars(tmp_path / "run")
    assert names == ["bias/b1", "cosmo/Omega_m", "cosmo/sigma8"]
    np.testing.assert_array_equal(scalars, draws)
    samples = chain_to_mcsamples(tmp_path / "run", burn_in=8)
    assert [p.name for p in samples.paramNames.names] == ["Omega_m", "sigma8"]
    mean, cov = _numpy_moments(draws[:, 8:, 1:])
    np.testing.assert_allclose(samples.getMeans(), mean, rtol=1e-6)
    np.testing.assert_allclose(samples.getCov(), cov, rtol=1e-5)
    everything = chain_to_mcsamples(path, names=["b1", "Omega_m", "sigma8"])
    np.testing.assert_allclose(everything.getCov(), _numpy_moments(draws)[1], rtol=1e-5)


def test_field_level_chain_exports_its_cosmology(tmp_path, chain):
    samples = chain_to_mcsamples(tmp_path, burn_in=100)
    assert [p.name for p in samples.paramNames.names] == ["Omega_m", "sigma8"]
    mean, cov = _numpy_moments(chain[:, 100:, 3:])
    np.testing.assert_allclose(samples.getMeans(), mean, rtol=1e-6)
    np.testing.assert_allclose(samples.getCov(), cov, rtol=1e-6)
    assert samples.numrows == 2 * 300


def test_field_level_chain_exports_chosen_scalars(tmp_path, chain):
    samples = chain_to_mcsamples(tmp_path / "chain.h5", names=["epsilon", "cosmo/sigma8"])
    assert [p.name for p in samples.paramNames.names] == ["epsilon", "sigma8"]
    mean, cov = _numpy_moments(chain[..., [2, 4]])
    np.testing.assert_allclose(samples.getMeans(), mean, rtol=1e-6)
    np.testing.assert_allclose(samples.getCov(), cov, rtol=1e-6)
    with pytest.raises(ValueError, match=r"names=\['h'\] are not in the chain"):
        chain_to_mcsamples(tmp_path, names=["h"])
    with pytest.raises(ValueError, match="burn_in=400 is invalid"):
        chain_to_mcsamples(tmp_path, burn_in=400)


def test_chain_without_cosmology_exports_every_scalar(tmp_path):
    scalars = np.random.default_rng(1).normal(1.2, 0.1, size=(3, 50, 1))
    _write_chain(tmp_path / "chain.h5", scalars, ["bias/b1"])
    samples = chain_to_mcsamples(tmp_path)
    assert [p.name for p in samples.paramNames.names] == ["b1"]
    np.testing.assert_allclose(samples.getMeans(), _numpy_moments(scalars)[0], rtol=1e-6)


def test_chains_with_no_scalars_or_mismatched_names_are_refused(tmp_path):
    _write_chain(tmp_path / "none.h5", np.zeros((2, 10, 0)), [])
    with pytest.raises(ValueError, match="no scalar was sampled"):
        chain_to_mcsamples(tmp_path / "none.h5")
    _write_chain(tmp_path / "bad.h5", np.zeros((2, 10, 2)), ["bias/b1"])
    with pytest.raises(ValueError, match="does not match scalar_names"):
        read_chain_scalars(tmp_path / "bad.h5")
    with pytest.raises(ValueError, match="no chain.h5 there"):
        chain_to_mcsamples(tmp_path / "elsewhere")


def test_scalar_labels_keep_groups_only_where_names_clash():
    assert scalar_labels(NAMES) == ["beta", "rho_g", "epsilon", "Omega_m", "sigma8"]
    clash = ["bias/b1", "noise/b1", "cosmo/sigma8"]
    assert scalar_labels(clash) == ["bias_b1", "noise_b1", "sigma8"]


def test_implicit_and_field_level_contours_overlay(tmp_path, chain):
    field = chain_to_mcsamples(tmp_path, burn_in=100)
    draws = to_mcsamples(
        np.random.default_rng(2).normal([0.31, 0.82], 0.04, (1000, 2)), ["Omega_m", "sigma8"], "ILI"
    )
    plot_contours([draws, field], tmp_path / "contours.png", {"Omega_m": 0.3, "sigma8": 0.8})
    assert (tmp_path / "contours.png").read_bytes()[:4] == b"\x89PNG"
