"""The data a posterior holds: counts in the smallest exact dtype, with the same likelihood."""

import numpy as np
import pytest
from scipy import stats

from inference.data import compact_counts


@pytest.mark.parametrize(
    ("top", "dtype"), [(255, np.uint8), (256, np.uint16), (65535, np.uint16), (65536, np.int32)]
)
def test_integer_counts_get_the_smallest_exact_dtype(top, dtype):
    counts = np.arange(top + 1, dtype=np.float32)[-64:].reshape(4, 4, 4)
    out = compact_counts(counts, discrete=True)
    assert out.dtype == dtype
    np.testing.assert_array_equal(out.astype(np.float64), counts.astype(np.float64))


def test_real_valued_or_gaussian_counts_stay_float():
    counts = np.full((4, 4, 4), 2.0, np.float32)
    assert compact_counts(counts + 0.5, discrete=True).dtype == np.float32
    assert compact_counts(counts, discrete=False).dtype == np.float32


def test_posterior_likelihood_is_the_poisson_one_over_the_observed_cells():
    """``loglik`` of a posterior built from integer counts and a selection with empty cells
    equals SciPy's Poisson log pmf summed over the cells with selection > 0."""
    import jax

    from inference.models import counts_posterior, mock_counts
    from simulator.config import SimConfig
    from simulator.cosmology import Cosmology
    from simulator.observe.mock import Observation, expected_counts

    conf = SimConfig(mesh=8, box=256.0, a_stop=0.5, lpt_order=1)
    cosmo = Cosmology.planck18()
    obs = Observation(bias="linear", bias_params={"b1": 1.5}, nbar_cell=5.0, noise="poisson")
    counts, truth = mock_counts(conf, cosmo, obs, "lpt1", jax.random.PRNGKey(2))
    selection = np.ones_like(counts)
    selection[:2] = 0.0
    selection[2:4] = 0.5
    posterior = counts_posterior(counts.astype(np.int32), selection, conf, cosmo, obs, "lpt1", {})
    fields = posterior.fields({"s": truth["s"]})
    lam = np.asarray(
        expected_counts(fields["delta"], obs.law, obs.bias_parameters(), 5.0, selection)
    )
    seen = selection > 0
    expected = stats.poisson.logpmf(counts[seen], lam[seen]).sum()
    assert float(posterior.loglik(fields, {}, {})) == pytest.approx(expected, rel=1e-5)
