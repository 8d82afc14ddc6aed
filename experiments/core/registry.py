"""The experiment registry: every experiment is a module of ``experiments``.

An experiment module defines, at module level and without importing anything heavy:

- ``NAME``: the name ``cosmolaw run NAME`` takes;
- ``QUESTION``: the question it asks, in a sentence or two;
- ``QUICK`` and ``FULL``: configurations (flat TOML-serialisable dicts); ``QUICK``
  finishes in a few minutes on 2 CPU cores, ``FULL`` is meant for a GPU;
- ``run(config, out_dir) -> ExperimentResult``: does the work, writes its data (HDF5)
  into ``out_dir`` and returns the discovered laws and checks.

``run_experiment`` wraps that into a run directory: ``config.toml``, the data file,
``discoveries.json``, the exports of the main law (``law.tex``, ``law.py``, ``law.txt``;
further laws as ``law_2.*``, ...) and ``report.html``.
"""

from __future__ import annotations

import datetime as _dt
import importlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

#: Modules holding one experiment each, in listing order.
EXPERIMENT_MODULES = (
    "experiments.growth_index",
    "experiments.velocity_density",
    "experiments.field_level_bias",
    "experiments.quickstart",
    "experiments.bias_law",
    "experiments.pk_boost",
    "experiments.compressed_summary",
    "experiments.fli_vs_ili",
    "experiments.feynman",
)


@dataclass(frozen=True)
class ExperimentResult:
    """What an experiment's ``run`` returns.

    Attributes:
        laws: the discovered laws (``experiments.core.laws.Law``), the main one first.
        checks: scientific checks against the known answer (``experiments.core.html_report.Check``).
        data: where the data came from: number of simulations, samples, seeds, data file.
        seeds: every random seed used, by role.
        summary: the key numbers of the run (go to ``discoveries.json``).
        panels: figures and tables the report shows as results
            (``experiments.core.html_report.Panel``).
    """

    laws: Sequence[Any]
    checks: Sequence[Any] = ()
    data: Mapping[str, Any] = field(default_factory=dict)
    seeds: Mapping[str, int] = field(default_factory=dict)
    summary: Mapping[str, Any] = field(default_factory=dict)
    panels: Sequence[Any] = ()


@dataclass(frozen=True)
class Experiment:
    """A registered experiment (see the module docstring for the fields)."""

    name: str
    question: str
    quick: Mapping[str, Any]
    full: Mapping[str, Any]
    run: Callable[[dict[str, Any], Path], ExperimentResult]
    module: str


@dataclass(frozen=True)
class RunOutcome:
    """A finished run: its directory, the report path and the experiment's result."""

    out_dir: Path
    report: Path
    result: ExperimentResult
    run_time_s: float


def _from_module(module: ModuleType) -> Experiment:
    return Experiment(
        name=module.NAME,
        question=module.QUESTION,
        quick=dict(module.QUICK),
        full=dict(module.FULL),
        run=module.run,
        module=module.__name__,
    )


def experiments() -> dict[str, Experiment]:
    """Every registered experiment by name, in listing order."""
    found = [_from_module(importlib.import_module(m)) for m in EXPERIMENT_MODULES]
    return {e.name: e for e in found}


def get_experiment(name: str) -> Experiment:
    """The experiment called ``name``; ValueError listing the known names otherwise."""
    known = experiments()
    if name not in known:
        raise ValueError(f"experiment={name!r} is not registered; allowed: {sorted(known)}")
    return known[name]


def run_experiment(
    name: str,
    quick: bool = True,
    out_dir: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> RunOutcome:
    """Run one experiment and write its run directory.

    Args:
        name: a registered experiment name (see ``experiments()``).
        quick: use the ``QUICK`` configuration (else ``FULL``).
        out_dir: run directory (default ``runs/NAME`` or ``runs/NAME-quick``).
        overrides: configuration entries replacing those of the chosen size; each key must
            already exist in it.

    Returns:
        The ``RunOutcome`` (directory, report path, result, run time in seconds).
    """
    from cosmolaw.io import write_json, write_toml
    from experiments.core import provenance
    from experiments.core.exports import write_exports
    from experiments.core.html_report import Report, write_report
    from experiments.core.laws import law_record

    exp = get_experiment(name)
    config = dict(exp.quick if quick else exp.full)
    for key, value in (overrides or {}).items():
        if key not in config:
            raise ValueError(
                f"overrides key {key!r} is not a {name} setting; allowed: {sorted(config)}"
            )
        config[key] = value
    out = (
        Path(out_dir)
        if out_dir is not None
        else Path("runs") / f"{name}{'-quick' if quick else ''}"
    )
    if out.exists() and not out.is_dir():
        raise ValueError(f"out_dir={str(out)!r} exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    size = "quick" if quick else "full"
    write_toml(out / "config.toml", {"experiment": name, "size": size, "config": config})

    started = _dt.datetime.now(_dt.UTC)
    t0 = time.perf_counter()
    result = exp.run(config, out)
    run_time = time.perf_counter() - t0
    prov = provenance.collect(dict(result.seeds), started, run_time)

    records = [law_record(law) for law in result.laws]
    checks = [
        {
            "name": c.name,
            "value": float(c.value),
            "criterion": c.criterion,
            "passed": bool(c.passed),
        }
        for c in result.checks
    ]
    write_json(
        out / "discoveries.json",
        {
            "experiment": name,
            "question": exp.question,
            "size": size,
            "best": records[0] if records else None,
            "laws": records,
            "checks": checks,
            "summary": dict(result.summary),
            "data": dict(result.data),
            "provenance": prov,
        },
    )
    for i, law in enumerate(result.laws):
        write_exports(law, out, "law" if i == 0 else f"law_{i + 1}")
    report = Report(
        title=name,
        question=exp.question,
        data=result.data,
        laws=result.laws,
        checks=result.checks,
        provenance=prov,
        panels=result.panels,
    )
    path = write_report(out / "report.html", report)
    return RunOutcome(out_dir=out, report=path, result=result, run_time_s=run_time)
