"""Mock drawing and the ``cosmolaw mock`` command: contracted file, truth, bad input."""

import h5py
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from field_helpers import cross_power, gaussian_random_field

from cosmolaw.cli import main
from simulator.config import SimConfig
from simulator.cosmology import Cosmology
from simulator.observe.bias import get_bias_law
from simulator.observe.mock import (
    BIAS_FLOOR,
    Observation,
    draw_mock,
    expected_counts,
    lpt_forward,
    read_mock,
)
from simulator.observe.noise import GaussianNoise, PoissonNoise

N = 16
BOX = 128.0


@pytest.fixture(scope="module")
def half_mask():
    """Selection: zero in the half x < box/2, a gradient in (0, 1] elsewhere."""
    sel = np.zeros((N, N, N), np.float32)
    sel[N // 2 :] = np.linspace(0.2, 1.0, N)[None, None, :]
    return sel


def test_expected_counts_are_positive_and_follow_the_law(half_mask):
    delta = jnp.asarray(gaussian_random_field(N, 0.8, seed=0), jnp.float32)
    law = get_bias_law("linear")
    params = law.make_params({"b1": 2.0})
    lam = np.asarray(expected_counts(delta, law, params, 3.0, None))
    f = 1.0 + 2.0 * np.asarray(delta)
    assert np.all(lam > 0) and np.any(f < -1)  # the floor acts where 1 + b1 delta < 0
    assert np.all(lam[f < 0] <= 3.0 * BIAS_FLOOR)
    fine = f > 0.1
    np.testing.assert_allclose(lam[fine], 3.0 * f[fine], rtol=2e-6)
    masked = np.asarray(expected_counts(delta, law, params, 3.0, jnp.asarray(half_mask)))
    np.testing.assert_allclose(masked, lam * half_mask, rtol=1e-6)


def test_drawn_counts_vanish_outside_the_survey_and_positions_fill_their_cells(half_mask):
    delta = jnp.asarray(gaussian_random_field(N, 0.5, seed=1), jnp.float32)
    law = get_bias_law("neyrinck")  # as in the CLI run below: the draw compiles once
    mock = draw_mock(
        jax.random.key(3), delta, law, law.make_params(), 4.0, PoissonNoise(), half_mask, box=BOX
    )
    assert mock.counts.dtype.kind == "i"
    assert np.all(mock.counts[half_mask == 0] == 0) and mock.counts[half_mask > 0].sum() > 1000
    assert mock.positions.shape == (mock.counts.sum(), 3)
    assert np.all((mock.positions >= 0) & (mock.positions < BOX))
    # each galaxy lies within half a cell of the node of its cell
    nodes = np.mod(np.floor(mock.positions * (N / BOX) + 0.5).astype(int), N)
    binned = np.zeros((N, N, N), int)
    np.add.at(binned, tuple(nodes.T), 1)
    np.testing.assert_array_equal(binned, mock.counts)


def test_gaussian_noise_gives_no_positions(half_mask):
    delta = jnp.zeros((N, N, N))
    with pytest.raises(ValueError, match="positions"):
        draw_mock(
            jax.random.key(0), delta, get_bias_law("linear"), get_bias_law("linear").make_params(),
            2.0, GaussianNoise(), half_mask, box=BOX,
        )  # fmt: skip


@pytest.fixture(scope="module")
def mock_file(tmp_path_factory, half_mask):
    """One ``cosmolaw mock`` run at 16^3 (PM, 3 steps; plane-parallel RSD; a selection file)."""
    tmp = tmp_path_factory.mktemp("mock")
    with h5py.File(tmp / "sel.h5", "w") as f:
        f["selection"] = half_mask
    out = tmp / "run"
    args = ["mock", "--mesh", str(N), "--box", str(BOX), "--model", "pm", "--steps", "3"]
    args += ["--seed", "4", "--no-progress"]
    args += ["--bias", "neyrinck", "--bias-param", "rho_g=0.3", "--nbar", "3"]
    args += ["--rsd", "plane-parallel", "--los", "x", "--positions"]
    args += ["--selection", str(tmp / "sel.h5"), "--selection-dataset", "selection"]
    assert main([*args, "--out", str(out)]) == 0
    return out


def test_mock_file_has_the_contracted_datasets(mock_file, half_mask):
    data = read_mock(mock_file / "mock.h5")
    attrs = data["attrs"]
    for name in ("white_noise", "delta_linear", "delta", "delta_observed", "expected_counts"):
        assert data[f"truth/{name}"].shape == (N, N, N), name
    assert data["data/counts"].shape == (N, N, N)
    np.testing.assert_array_equal(data["data/selection"], half_mask)
    assert np.all(data["data/counts"][half_mask == 0] == 0)
    assert data["data/galaxy_positions"].shape == (data["data/counts"].sum(), 3)
    assert float(data["truth/bias/rho_g"]) == pytest.approx(0.3)
    assert attrs["observation/bias"] == "neyrinck" and attrs["observation/noise"] == "poisson"
    assert attrs["sim/mesh"] == N and attrs["sim/box"] == BOX and attrs["model"] == "pm"
    assert attrs["observation/rsd/kind"] == "plane-parallel"
    np.testing.assert_allclose(attrs["observation/rsd/los"], [1.0, 0.0, 0.0])
    assert "Omega_m" in (mock_file / "config.toml").read_text()
    with h5py.File(mock_file / "mock.h5") as f:
        assert f["data/counts"].attrs["units"] and f["truth/delta"].attrs["description"]


def test_mock_file_is_self_consistent(mock_file):
    """The truth reproduces the expected counts through the law named in the attributes; the
    counts scatter around them as Poisson; RSD moved the field along x only."""
    data = read_mock(mock_file / "mock.h5")
    obs = Observation.from_attrs(data["attrs"])
    assert obs.bias == "neyrinck" and obs.rsd.kind == "plane-parallel" and obs.nbar_cell == 3.0
    law = obs.law
    params = law.make_params(
        {k: float(data[f"truth/bias/{k}"]) for k in ("beta", "rho_g", "epsilon")}
    )
    assert params == obs.bias_parameters()
    lam = expected_counts(
        jnp.asarray(data["truth/delta_observed"]), law, params, obs.nbar_cell,
        jnp.asarray(data["data/selection"]),
    )  # fmt: skip
    np.testing.assert_allclose(lam, data["truth/expected_counts"], rtol=1e-5, atol=1e-6)
    seen = data["data/selection"] > 0
    lam, counts = np.asarray(lam, np.float64)[seen], data["data/counts"][seen]
    assert abs(np.sum(counts - lam) / np.sqrt(lam.sum())) < 4.0
    assert np.std(data["truth/white_noise"]) == pytest.approx(1.0, rel=0.05)
    assert not np.allclose(data["truth/delta_observed"], data["truth/delta"])
    # plane-parallel RSD along x leaves the projection onto the (y, z) plane unchanged
    np.testing.assert_allclose(
        data["truth/delta_observed"].mean(axis=0), data["truth/delta"].mean(axis=0), atol=1e-4
    )


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--bias-param", "rho_g=-1"], "rho_g=-1.0"),
        (["--bias-param", "epsilon=0"], "epsilon=0.0"),
        (["--bias", "nope"], "bias='nope'"),
        (["--nbar", "-2"], "nbar=-2.0"),
        (["--noise", "negbinom", "--noise-param", "r=-3"], "r=-3.0"),
        (["--rsd", "radial", "--observer", "10,10,500"], "observer="),
        (["--selection", "SELFILE"], "selection.*shape"),
        (["--mesh", "15"], "mesh=15"),
    ],
)
def test_bad_input_is_named_and_leaves_no_file(tmp_path, capsys, extra, message):
    with h5py.File(tmp_path / "sel.h5", "w") as f:
        f["data/selection"] = np.ones((8, 8, 8))
    extra = [str(tmp_path / "sel.h5") if e == "SELFILE" else e for e in extra]
    out = tmp_path / "run"
    code = main(["mock", "--mesh", str(N), "--model", "lpt1", "--out", str(out), *extra])
    assert code == 2
    assert pytest.importorskip("re").search(message, capsys.readouterr().err)
    assert not out.exists()


def test_lpt_forward_shares_the_initial_conditions_and_large_scales_with_pm(mock_file):
    """The LPT forward model from the same seed has the same white noise and linear field as
    the PM run of the mock, and its final field correlates with the PM one on large scales."""
    data = read_mock(mock_file / "mock.h5")
    conf = SimConfig(mesh=N, box=BOX, lpt_order=2)
    fields = lpt_forward(4, Cosmology.planck18(), conf)
    np.testing.assert_array_equal(fields["white_noise"], data["truth/white_noise"])
    np.testing.assert_allclose(fields["delta_linear"], data["truth/delta_linear"], atol=1e-5)
    _, p_lp = cross_power(np.asarray(fields["delta"], np.float64), data["truth/delta"], 3)
    _, p_ll = cross_power(np.asarray(fields["delta"], np.float64), fields["delta"], 3)
    _, p_pp = cross_power(data["truth/delta"], data["truth/delta"], 3)
    assert np.all(p_lp / np.sqrt(p_ll * p_pp) > 0.95)
