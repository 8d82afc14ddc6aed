"""``cosmolaw simulate``: output file contents and refusal of bad input."""

import h5py
import numpy as np
import pytest

from cosmolaw.cli import main
from simulator.config import SimConfig
from simulator.cosmology import Cosmology
from simulator.linear_power import linear_power
from simulator.measure import power_spectrum

ARGS = ["simulate", "--mesh", "16", "--box", "64", "--steps", "3", "--seed", "7"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim")
    assert main([*ARGS, "--snapshots", "0.5,1.0", "--sigma8", "0.7", "--out", str(out)]) == 0
    return out


def test_sim_h5_contents(run_dir):
    with h5py.File(run_dir / "sim.h5") as f:
        for name in (
            "fields/delta_linear",
            "fields/delta",
            "power/k",
            "power/pk",
            "power/pk_linear",
        ):
            assert "units" in f[name].attrs and "description" in f[name].attrs
        delta = f["fields/delta"][...]
        assert delta.shape == (16, 16, 16)
        # the density contrast of equal-mass particles has mean zero and is >= -1
        assert abs(delta.mean()) < 1e-5 and delta.min() >= -1.0
        # stored spectra are those of the stored fields and of the stored cosmology
        spec = power_spectrum(delta, 64.0)
        np.testing.assert_allclose(f["power/pk"][...], spec.power, rtol=1e-5)
        cosmo = Cosmology.planck18(sigma8=f.attrs["cosmology/sigma8"])
        np.testing.assert_allclose(
            f["power/pk_linear"][...], linear_power(f["power/k"][...], cosmo), rtol=1e-5
        )
        conf = SimConfig(
            mesh=int(f.attrs["config/mesh"]),
            box=float(f.attrs["config/box"]),
            steps=int(f.attrs["config/steps"]),
            snapshots=tuple(f.attrs["config/snapshots"]),
        )
        assert conf.snapshots == (0.5, 1.0) and f.attrs["seed"] == 7
        assert f.attrs["cosmology/sigma8"] == pytest.approx(0.7)
        # the a = 1 snapshot is the final state
        np.testing.assert_array_equal(f["snapshots/a=1/delta"][...], delta)
        assert f["snapshots/a=0.5/delta"].shape == (16, 16, 16)
        assert f["snapshots/a=0.5"].attrs["a"] == 0.5
    assert "[config]" in (run_dir / "config.toml").read_text()


@pytest.mark.parametrize(
    ("extra", "name"),
    [
        (["--mesh", "15"], "mesh"),
        (["--box", "-1"], "box"),
        (["--steps", "0"], "steps"),
        (["--a-start", "1.5"], "a_start"),
        (["--ptcl-grid", "6"], "ptcl_grid"),
        (["--omega-m", "1.2"], "Omega_m"),
        (["--cosmology", "nope"], "cosmology"),
        (["--snapshots", "0.5,x"], "snapshots"),
    ],
)
def test_bad_input_exits_nonzero_and_writes_nothing(tmp_path, capsys, extra, name):
    out = tmp_path / "run"
    assert main([*ARGS, *extra, "--out", str(out)]) == 2
    assert name in capsys.readouterr().err
    assert not out.exists()
