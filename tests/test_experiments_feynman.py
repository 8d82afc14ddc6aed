"""``cosmolaw run feynman --quick``: the quick Feynman equations are recovered.

The run's laws are read back from its ``discoveries.json`` and compared with the formulas
of the AI Feynman CSV, parsed here with sympy: the ratio of law and truth must simplify
to a number, equal to 1 within the stated precision (exact constants at noise 0, 1% at
noise 0.01); the run's own data file must hold the noiseless truth on held-out rows.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import sympy as sp

from cosmolaw.cli import main
from experiments import feynman as experiment

#: Relative precision of the recovered constant factor, by noise level.
PRECISION = {0.0: 1e-9, 0.01: 1e-2}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("feynman")
    assert main(["run", "feynman", "--quick", "--out", str(out)]) == 0
    return out


def _formulas() -> dict[str, tuple[sp.Expr, list[sp.Symbol]]]:
    path = Path(experiment.__file__).resolve().parents[1] / experiment.QUICK["csv"]
    out = {}
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            names = [row[f"v{i}_name"] for i in range(1, 11) if row.get(f"v{i}_name")]
            syms = [sp.Symbol(name, positive=True) for name in names]
            local = {str(s): s for s in syms} | {"pi": sp.pi}
            out[row["Filename"]] = (sp.sympify(row["Formula"], locals=local), syms)
    return out


@pytest.mark.slow
def test_quick_problems_are_recovered_symbolically(run_dir):
    found = json.loads((run_dir / "discoveries.json").read_text())
    formulas = _formulas()
    seen = set()
    for law in found["laws"]:
        truth, syms = formulas[law["problem"]]
        by_name = {s.name: s for s in syms}
        expr = sp.sympify(law["srepr"])
        expr = expr.xreplace({s: by_name[s.name] for s in expr.free_symbols})
        ratio = sp.simplify(expr / truth)
        assert not ratio.free_symbols, (law["problem"], law["expression"])
        assert abs(float(ratio) - 1) <= PRECISION[law["noise"]], (law["problem"], ratio)
        seen.add((law["problem"], law["noise"]))
    expected = {
        (p, n) for p in experiment.QUICK["problems"] for n in experiment.QUICK["noise_levels"]
    }
    assert seen == expected
    assert all(c["passed"] for c in found["checks"])
    assert (run_dir / "report.html").stat().st_size > 0


@pytest.mark.slow
def test_data_file_holds_the_truth_on_held_out_rows(run_dir):
    formulas = _formulas()
    with h5py.File(run_dir / "feynman.h5") as h5:
        for name in experiment.QUICK["problems"]:
            truth, syms = formulas[name]
            fn = sp.lambdify(syms, truth, "numpy")
            for noise in experiment.QUICK["noise_levels"]:
                g = h5[f"{name}/noise_{noise:g}"]
                X, y = g["X_test"][:], g["y_test"][:]
                np.testing.assert_allclose(fn(*X.T), y, rtol=1e-12)
                noisy = g["y_train"][:] - fn(*g["X_train"][:].T)
                rms = np.sqrt(np.mean(fn(*g["X_train"][:].T) ** 2))
                assert np.std(noisy) == pytest.approx(noise * rms, rel=0.2, abs=1e-12)


def test_every_problem_samples_its_own_formula():
    """Each CSV formula uses only its problem's variables (I.18.12 undercounts them) and
    the sampled rows lie in the stated ranges."""
    from discovery import feynman

    path = Path(experiment.__file__).resolve().parents[1] / experiment.QUICK["csv"]
    problems = feynman.load(path)
    formulas = _formulas()
    assert [p.name for p in problems] == list(formulas)
    rng = np.random.default_rng(0)
    for p in problems:
        assert formulas[p.name][0].free_symbols <= set(p.symbols), p.name
        X, y = feynman.sample(p, 16, rng)
        lo, hi = np.array(p.ranges).T
        assert np.all((X >= lo) & (X <= hi)) and np.all(np.isfinite(y)), p.name
