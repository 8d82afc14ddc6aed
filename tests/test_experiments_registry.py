"""The experiment registry and the ``cosmolaw list`` / ``cosmolaw run`` commands."""

from __future__ import annotations

import pytest

from cosmolaw.cli import main
from experiments.core.registry import (
    EXPERIMENT_MODULES,
    experiments,
    get_experiment,
    run_experiment,
)


def test_every_module_declares_an_experiment():
    found = experiments()
    assert len(found) == len(EXPERIMENT_MODULES)
    for exp in found.values():
        assert exp.question.strip()
        assert callable(exp.run)
        # The full size is a superset of the quick one (same settings, larger values).
        assert set(exp.quick) == set(exp.full)


def test_list_prints_every_experiment(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for exp in experiments().values():
        assert exp.name in out and exp.question in out


def test_unknown_experiment_is_refused(capsys, tmp_path):
    assert main(["run", "no-such-law", "--quick", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "no-such-law" in err and "growth-index" in err
    assert not (tmp_path / "x").exists()
    with pytest.raises(ValueError, match="allowed"):
        get_experiment("no-such-law")


def test_unknown_override_is_refused(tmp_path):
    with pytest.raises(ValueError, match="budget_seconds"):
        run_experiment("growth-index", out_dir=tmp_path, overrides={"budget_seconds": 1})
    assert not any(tmp_path.iterdir())
