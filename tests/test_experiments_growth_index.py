"""``cosmolaw run growth-index --quick``: the discovered laws against the growth ODE itself.

The run's laws are read back from its own exports (``discoveries.json``, ``law.py``) and
checked on cosmologies and scale factors the run never saw, against
``simulator.growth.growth_rate`` solved independently here.
"""

from __future__ import annotations

import importlib.util
import json

import jax
import numpy as np
import pytest
import sympy as sp

from cosmolaw.cli import main
from discovery.operators import DEFAULT_OPERATORS, parse_operators
from experiments.growth_index import QUICK
from simulator.cosmology import Cosmology, omega_m_a
from simulator.growth import growth_rate


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("growth-index")
    assert main(["run", "growth-index", "--quick", "--out", str(out)]) == 0
    return out


def test_search_space_does_not_know_the_answer():
    assert parse_operators(QUICK["operators"]) == DEFAULT_OPERATORS
    assert QUICK["max_complexity"] >= 15


@pytest.fixture(scope="module")
def discoveries(run_dir):
    return json.loads((run_dir / "discoveries.json").read_text())


def _ode(omega_m0: float, w: float, a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    with jax.enable_x64(True):
        cosmo = Cosmology(Omega_m=omega_m0, w0=w, radiation=False)
        return np.asarray(omega_m_a(a, cosmo)), np.asarray(growth_rate(a, cosmo))


@pytest.mark.slow
def test_run_directory(run_dir):
    for name in ("config.toml", "growth.h5", "discoveries.json", "report.html"):
        assert (run_dir / name).stat().st_size > 0, name
    for suffix in (".tex", ".py", ".txt"):
        assert (run_dir / f"law{suffix}").exists()


@pytest.mark.slow
def test_lcdm_law_is_a_power_of_omega_with_gamma_055(discoveries, run_dir):
    best = discoveries["best"]
    expr = sp.sympify(best["srepr"])
    (omega,) = expr.free_symbols
    amp, gamma = sp.Wild("A", exclude=[omega]), sp.Wild("g", exclude=[omega])
    match = expr.match(amp * omega**gamma)
    assert match and match[amp].is_Number and match[gamma].is_Number, best["expression"]
    assert abs(float(match[amp]) - 1) <= 0.005  # f = 1 in matter domination
    assert abs(float(match[gamma]) - 0.55) <= 0.01
    # Max relative error on fresh LCDM cosmologies, through the exported module.
    spec = importlib.util.spec_from_file_location("growth_law", run_dir / "law.py")
    law = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(law)
    a = np.geomspace(0.1, 1.0, 97)
    for omega_m0 in (0.3, 0.305, 0.3111, 0.3177):
        om, f = _ode(omega_m0, -1.0, a)
        assert np.max(np.abs(law.law(om) / f - 1)) < 0.005


@pytest.mark.slow
def test_w_dependence_of_gamma(discoveries):
    gamma_law, combined = discoveries["laws"][1], discoveries["laws"][2]
    gamma = sp.sympify(gamma_law["srepr"])
    (w,) = gamma.free_symbols
    assert abs(float(gamma.subs(w, -1.0)) - 0.55) <= 0.01
    # Between Wang & Steinhardt's 3/121 and Linder's 0.05 per unit w.
    assert 0.02 <= float(sp.diff(gamma, w).subs(w, -1.0)) <= 0.05
    f_law = sp.sympify(combined["srepr"])
    fn = sp.lambdify(sorted(f_law.free_symbols, key=lambda s: s.name), f_law, "numpy")
    a = np.geomspace(0.1, 1.0, 50)
    for omega_m0, wv in ((0.305, -1.25), (0.31, -0.85), (0.318, -0.72)):
        om, f = _ode(omega_m0, wv, a)
        assert np.max(np.abs(fn(om, wv) / f - 1)) < 0.01


@pytest.mark.slow
def test_report_names_the_law(run_dir, discoveries):
    html = (run_dir / "report.html").read_text()
    assert "Linder (2005)" in html and discoveries["best"]["expression"].split("**")[0] in html
