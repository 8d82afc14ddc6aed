"""The chain driver: checkpoint/resume reproduces an uninterrupted run; bad data is refused."""

import dataclasses
import json

import h5py
import numpy as np
import pytest
from field_helpers import linear_test_posterior

from cosmolaw.cli import main
from inference.data import validate_counts
from inference.driver import RunConfig, run_chains

MESH, BOX = 8, 100.0


@pytest.fixture(scope="module")
def posterior():
    return linear_test_posterior(MESH, BOX)


def test_resume_reproduces_uninterrupted_run(posterior, tmp_path):
    """Stop after 20 steps (checkpoint written), resume: identical to one run of 40 steps."""
    config = RunConfig(
        sampler="borg_hmc",
        num_samples=40,
        num_warmup=20,
        num_chains=2,
        thin=10,
        checkpoint_every=10,
        map_steps=10,
        fisher_probes=2,
    )
    run_chains(posterior, config, tmp_path / "a", progress=False, stop_after=20)
    with h5py.File(tmp_path / "a" / "chain.h5") as f:
        assert f.attrs["steps_done"] == 20 and not f.attrs["complete"]
    run_chains(posterior, config, tmp_path / "a", progress=False)
    run_chains(posterior, config, tmp_path / "b", progress=False)
    with h5py.File(tmp_path / "a" / "chain.h5") as fa, h5py.File(tmp_path / "b" / "chain.h5") as fb:
        assert fa.attrs["complete"] and fa.attrs["steps_done"] == 40
        for name in ("samples/logdensity", "samples/pk_linear", "info/acceptance", "fields/s"):
            assert fa[name].shape == fb[name].shape
            np.testing.assert_array_equal(fa[name][()], fb[name][()])
        assert fa["fields/s"].shape == (2, 4, MESH, MESH, MESH)
    with pytest.raises(ValueError, match="configuration differs"):
        run_chains(posterior, RunConfig(sampler="borg_hmc", seed=1), tmp_path / "a")


def test_resume_of_a_file_written_before_new_run_options(posterior, tmp_path):
    """A checkpoint whose stored configuration lacks options added since (here the large-scale
    speed-up) resumes with their defaults, and is still refused with another value of them."""
    config = RunConfig(sampler="borg_hmc", num_samples=20, num_warmup=10, num_chains=1, thin=10)
    run_chains(posterior, config, tmp_path, progress=False, stop_after=10)
    path = tmp_path / "chain.h5"
    with h5py.File(path, "r+") as f:
        stored = json.loads(f.attrs["config"])
        for name in ("large_scale_speedup", "large_scale_shells", "energy_variance"):
            del stored[name]
        f.attrs["config"] = json.dumps(stored)
    with pytest.raises(ValueError, match="configuration differs"):
        faster = dataclasses.replace(config, large_scale_speedup=2.0)
        run_chains(posterior, faster, tmp_path, progress=False)
    run_chains(posterior, config, tmp_path, progress=False)
    with h5py.File(path) as f:
        assert f.attrs["complete"] and f.attrs["steps_done"] == 20


def test_stop_during_warmup_resumes_from_the_set_up(posterior, tmp_path, monkeypatch):
    """Killed during the warm-up: the file holds the set-up checkpoint; the rerun does not
    redo the MAP and preconditioner, and its chains equal those of an uninterrupted run."""
    import inference.driver as driver

    config = RunConfig(
        sampler="borg_hmc", num_samples=20, num_warmup=10, num_chains=2, thin=10, map_steps=10
    )

    def killed(*args):
        raise KeyboardInterrupt

    with monkeypatch.context() as mp:
        mp.setattr(driver, "_warmup_fn", killed)
        with pytest.raises(KeyboardInterrupt):
            run_chains(posterior, config, tmp_path / "a", progress=False)
    with h5py.File(tmp_path / "a" / "chain.h5") as f:
        assert f.attrs["stage"] == "set-up" and not f.attrs["complete"]
        assert "checkpoint/starts" in f and "samples/logdensity" not in f
    with monkeypatch.context() as mp:
        mp.setattr(driver, "prepare", killed)
        run_chains(posterior, config, tmp_path / "a", progress=False)
    run_chains(posterior, config, tmp_path / "b", progress=False)
    with h5py.File(tmp_path / "a" / "chain.h5") as fa, h5py.File(tmp_path / "b" / "chain.h5") as fb:
        assert fa.attrs["stage"] == "sampling" and fa.attrs["complete"]
        for name in ("warmup/num_grads", "samples/logdensity", "fields/s", "map/s"):
            np.testing.assert_array_equal(fa[name][()], fb[name][()])


def test_set_up_and_warmup_progress_in_a_log(posterior, tmp_path, capsys):
    """stderr is not a terminal: the set-up and warm-up each write a first line at once (0
    runs, compiling), then a few lines counting their forward-model runs. The set-up's number
    is not known in advance (1st, 2nd, 4th, ... run and the total at the end); MCLMC's
    warm-up fixes it, one line per tenth of it, and that total is what the warm-up spent: its
    stored gradient count (one run per gradient) plus one initial evaluation per chain."""
    config = RunConfig(
        sampler="mclmc", num_samples=10, num_warmup=20, num_chains=2, thin=10, map_steps=5
    )
    run_chains(posterior, config, tmp_path, progress=True)
    err = capsys.readouterr().err
    set_up = [line for line in err.splitlines() if line.startswith("set-up: MAP")]
    warm = [line for line in err.splitlines() if line.startswith("warm-up: mclmc")]
    assert 3 <= len(set_up) <= 16 and len(warm) == 11
    assert " 0 forward runs " in set_up[0] and set_up[0].endswith("compiling]")
    assert "compiling" not in set_up[1]
    with h5py.File(tmp_path / "chain.h5") as f:
        warm_grads = int(np.sum(f["warmup/num_grads"][()]))
    total = warm_grads + config.num_chains
    assert f" 0/{total} forward runs " in warm[0] and warm[0].endswith("compiling]")
    desc = "warm-up: mclmc (joint) x2: "
    percent = [int(line.removeprefix(desc).split("%")[0]) for line in warm[1:]]
    assert [p // 10 for p in percent] == list(range(1, 11))
    assert f" {total}/{total} forward runs " in warm[-1]


def _write_mock(path, counts, selection):
    with h5py.File(path, "w") as f:
        f["data/counts"] = counts
        f["data/selection"] = selection


@pytest.mark.parametrize(
    ("counts", "selection", "message"),
    [
        (np.full((4, 4, 4), np.nan), np.ones((4, 4, 4)), "NaN"),
        (-np.ones((4, 4, 4)), np.ones((4, 4, 4)), "negative"),
        (np.ones((4, 4, 4)), np.ones((4, 4, 5)), "disagrees"),
        (np.ones((4, 4, 4)), np.zeros((4, 4, 4)), "empty"),
    ],
)
def test_bad_data_refused(tmp_path, capsys, counts, selection, message):
    """NaN/negative counts, a mask on another grid, an empty mask: ValueError and exit 2."""
    with pytest.raises(ValueError, match=message):
        validate_counts(counts, selection)
    path = tmp_path / "mock.h5"
    _write_mock(path, counts, selection)
    assert main(["infer", "--data", str(path), "--out", str(tmp_path / "run")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_bad_run_options_refused():
    """Run options outside their domain name the option."""
    with pytest.raises(ValueError, match="sampler"):
        RunConfig(sampler="metropolis")
    with pytest.raises(ValueError, match="thin"):
        RunConfig(num_samples=100, thin=7)
    with pytest.raises(ValueError, match="blocks"):
        RunConfig(blocks="metropolis")
