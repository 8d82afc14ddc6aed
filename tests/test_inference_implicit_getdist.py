"""GetDist export of implicit posteriors and of field-level chains."""

import h5py
import numpy as np
import pytest

from inference.implicit.getdist_export import chain_to_mcsamples, plot_contours, to_mcsamples


def test_field_level_chain_and_draws_become_mcsamples(tmp_path):
    rng = np.random.default_rng(0)
    scalars = rng.normal([0.3, 0.8, 1.5], [0.02, 0.03, 0.1], size=(2, 400, 3))
    with h5py.File(tmp_path / "chain.h5", "w") as f:
        f["samples/scalars"] = scalars
        f["samples/scalars"].attrs["names"] = ["Omega_m", "sigma8", "b1"]
    chain = chain_to_mcsamples(tmp_path, burn_in=100)
    assert [p.name for p in chain.paramNames.names] == ["Omega_m", "sigma8"]
    np.testing.assert_allclose(chain.getMeans(), scalars[:, 100:, :2].mean((0, 1)))
    np.testing.assert_allclose(
        np.sqrt(np.diag(chain.getCov())), scalars[:, 100:, :2].reshape(-1, 2).std(0), rtol=1e-2
    )
    with pytest.raises(ValueError, match=r"names=\['h'\] are not in the chain"):
        chain_to_mcsamples(tmp_path, names=["h"])
    draws = to_mcsamples(rng.normal([0.31, 0.82], 0.04, (1000, 2)), ["Omega_m", "sigma8"], "ILI")
    plot_contours([draws, chain], tmp_path / "contours.png", {"Omega_m": 0.3, "sigma8": 0.8})
    assert (tmp_path / "contours.png").read_bytes()[:4] == b"\x89PNG"
