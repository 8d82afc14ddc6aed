"""The ``cosmolaw compress`` command: run directory contents and refusal of bad input."""

import h5py
import jax
import numpy as np
import pytest

from cosmolaw.cli import main
from discovery.compress import gaussian_field, load_network, summarise
from discovery.compress.grf import power_law_fisher


def test_compress_writes_run_directory(tmp_path):
    out = tmp_path / "run"
    argv = ["compress", "--out", str(out), "--n", "16", "--n-sims", "200", "--n-deriv", "200"]
    argv += ["--n-bins", "8", "--steps", "150", "--patience", "50", "--lr", "0.01", "--no-progress"]
    assert main(argv) == 0
    assert {p.name for p in out.iterdir()} == {
        "config.toml",
        "compressor.h5",
        "summaries.h5",
        "training.png",
    }
    with h5py.File(out / "summaries.h5") as f:
        fisher, analytic = f["fisher"][()], f["fisher_analytic"][()]
        frac = f.attrs["fisher_fraction"]
        assert f["summaries"].shape == (200, 2)
        assert f["history/log_det_F"].size >= f["history/best_step"][()]
    np.testing.assert_allclose(analytic, power_law_fisher(np.array([1.0, 0.5]), (16, 16)))
    assert frac == pytest.approx(np.linalg.det(fisher) / np.linalg.det(analytic))
    assert np.all(np.linalg.eigvalsh(fisher) > 0)
    model, spec = load_network(out / "compressor.h5")
    assert spec["kind"] == "spectral"
    keys = [jax.random.key(i) for i in (1, 2, 3)]
    fields = np.stack([gaussian_field(np.array([1.0, 0.5]), k, (16, 16)) for k in keys])
    assert np.all(np.isfinite(np.asarray(summarise(model, fields))))


@pytest.mark.parametrize(
    ("flag", "value"), [("--n", "15"), ("--compressor", "pca"), ("--n-deriv", "5000")]
)
def test_compress_refuses_bad_input(tmp_path, capsys, flag, value):
    out = tmp_path / "bad"
    assert main(["compress", "--out", str(out), flag, value]) == 2
    assert flag.lstrip("-").replace("-", "_") in capsys.readouterr().err
    assert not out.exists()
