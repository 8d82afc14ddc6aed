"""``cosmolaw sbi``: bad input is refused with the parameter, its value and what is allowed,
before anything is simulated, compiled or written."""

import pytest

from cosmolaw.cli import main


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["simulate", "--n", "0"], "--n=0 is invalid: must be an integer >= 1"),
        (["simulate", "--n", "5", "--chunk", "0"], "--chunk=0 is invalid"),
        (["simulate", "--n", "5", "--prior", "Omega_m=0.4,0.2"], "prior Omega_m=[0.4, 0.2]"),
        (["simulate", "--n", "5", "--prior", "sigma8=0.8"], "--prior 'sigma8=0.8' is invalid"),
        (["simulate", "--n", "5", "--prior", "h0=0.6,0.8"], "prior parameter 'h0' is not"),
        (["simulate", "--n", "5", "--model", "nbody"], "model='nbody' is not allowed"),
        (["simulate", "--n", "5", "--mesh", "15"], "mesh=15 is invalid"),
        (["simulate", "--n", "5", "--nbar", "-1"], "nbar=-1.0"),
        (["simulate", "--n", "5", "--like", "missing.h5"], "data='missing.h5' is not a file"),
        (["train", "--data", "DIR", "--summary", "imnn", "--imnn-sims", "2"], "--imnn-sims=2"),
        (["train", "--data", "DIR", "--imnn-steps", "0"], "--imnn-steps=0 is invalid"),
        (["train", "--data", "DIR", "--summary", "wst"], "--summary 'wst' is not allowed"),
        (["train", "--data", "DIR", "--kmax", "-0.1"], "kmax='-0.1' is invalid"),
        (["train", "--data", "DIR", "--flow", "glow"], "flow='glow' is not allowed"),
        (["train", "--data", "DIR", "--ensemble", "0"], "ensemble=0 is invalid"),
        (["train", "--data", "DIR", "--heldout", "0.9"], "--heldout=0.9 is invalid"),
        (["train", "--data", "DIR"], "no training_set.h5"),
        (["infer", "--model", "DIR", "--data", "m.h5", "--samples", "0"], "--samples=0"),
        (["infer", "--model", "DIR", "--data", "m.h5", "--ppc", "3"], "--ppc=3 is invalid"),
        (["infer", "--model", "DIR", "--data", "m.h5"], "no model.json"),
        (["bolfi", "--data", "m.h5", "--budget", "0"], "--budget=0 is invalid"),
        (["bolfi", "--data", "m.h5", "--kmax", "big"], "kmax='big' is invalid"),
        (["bolfi", "--data", "missing.h5"], "data='missing.h5' is not a file"),
        (["bolfi", "--data", "m.h5", "--prior", "sigma8=0.8"], "--prior 'sigma8=0.8' is invalid"),
    ],
)
def test_bad_input_is_refused_before_any_work(argv, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "DIR").mkdir()
    code = main(["sbi", *argv, "--out", str(tmp_path / "out")])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
