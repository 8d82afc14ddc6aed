"""The report machinery: refits, accuracy numbers, exports, figures and the HTML file."""

from __future__ import annotations

import base64
import importlib.util
import re

import numpy as np
import pytest
import sympy as sp

from experiments.core import figures
from experiments.core.exports import write_exports
from experiments.core.html_report import LAW_PARTS, SECTIONS, Check, Report, render_html
from experiments.core.laws import FrontPoint, Law, Literature, accuracy, law_record
from experiments.core.refit import free_constants, refit, refit_like

x, w = sp.symbols("x w")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(3)
    X = np.column_stack([rng.uniform(0.3, 1.0, 400), rng.uniform(-1.3, -0.7, 400)])
    y = 2.5 * X[:, 0] ** (0.55 + 0.03 * (1 + X[:, 1]))
    return X, y


def test_refit_recovers_constants_within_their_uncertainty(data):
    X, y = data
    rng = np.random.default_rng(4)
    noisy = y * (1 + 1e-3 * rng.normal(size=y.shape))
    # Start from a wrong form's constants; the form itself is the true one.
    start = 2.0 * x ** (0.5 + 0.1 * (1 + w))
    fit = refit(start, [x, w], X, noisy, relative=True)
    by_value = dict(
        zip(np.round(fit.values, 1), zip(fit.values, fit.sigmas, strict=True), strict=True)
    )
    # 2.5 x^(0.58 + 0.03 w): sympy folds 0.55 + 0.03 into one constant.
    for true in (2.5, 0.58, 0.03):
        value, sigma = min(by_value.values(), key=lambda vs: abs(vs[0] - true))
        assert abs(value - true) < 5 * sigma, (true, value, sigma)
        assert 0 < sigma < 0.01
    assert fit.rms == pytest.approx(1e-3, rel=0.1)


def test_refit_like_keeps_constants_that_print_alike():
    """A law whose two constants came out equal refits to data where they differ."""
    X = np.linspace(0.5, 2.0, 50)[:, None]
    law = refit(sp.Float(2.0) * x + sp.Float(3.0) * x**2, [x], X, 2.5 * X[:, 0] * (1 + X[:, 0]))
    assert len(law.names) == 2 and np.allclose(law.values, 2.5)  # prints as 2.5 x + 2.5 x**2
    other = refit_like(law, [x], X, X[:, 0] + 4.0 * X[:, 0] ** 2)
    assert other.names == law.names
    np.testing.assert_allclose(sorted(other.values), [1.0, 4.0], rtol=1e-8)
    assert len(refit(law.expression, [x], X, X[:, 0]).names) == 1  # what refit would see


def test_free_constants_keeps_integers():
    template, names, values = free_constants(3 * x**2 + 0.25 * sp.exp(-1.5 * x))
    assert sorted(values) == [-1.5, 0.25]
    assert template.has(sp.Integer(3)) and len(names) == 2


def test_accuracy_numbers():
    y = np.array([1.0, 2.0, 4.0, 8.0])
    acc = accuracy(y, 1.01 * y)
    assert acc["max_rel_error"] == pytest.approx(0.01)
    assert acc["rms_rel_error"] == pytest.approx(0.01)
    assert accuracy(y, y)["r2"] == 1.0
    assert accuracy(y, np.full(4, y.mean()))["r2"] == pytest.approx(0.0)


def test_partial_dependence_of_a_linear_law_is_analytic(data):
    X, _ = data
    grid = np.linspace(0.3, 1.0, 7)
    pd = figures.partial_dependence(lambda A: 2 * A[:, 0] - 3 * A[:, 1], X, 0, grid)
    np.testing.assert_allclose(pd, 2 * grid - 3 * X[:, 1].mean(), rtol=1e-12)


def _law(data) -> Law:
    X, y = data
    expr = 2.5 * x ** (0.55 + 0.03 * (1 + w))
    lit = Literature(
        "Linder-like", "ref", 2.5 * x**0.55, lambda A: 2.5 * A[:, 0] ** 0.55, [("g", 0.55, 0.55)]
    )
    front = [FrontPoint(1, 0.1, "x"), FrontPoint(5, 1e-9, str(expr)), FrontPoint(9, 1e-10, "...")]
    return Law(
        "test law",
        "f",
        ("x", "w"),
        expr,
        X,
        y,
        constants={"A": (2.5, 0.01)},
        front=front,
        chosen=1,
        literature=[lit],
        template=sp.Symbol("A") * x ** (0.55 + 0.03 * (1 + w)),
        latex_names={"x": r"\Omega_m(a)"},
    )


def test_exports_round_trip(data, tmp_path):
    law = _law(data)
    X, y = data
    write_exports(law, tmp_path)
    spec = importlib.util.spec_from_file_location("exported_law", tmp_path / "law.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    np.testing.assert_allclose(module.law(X[:, 0], X[:, 1]), y, rtol=1e-12)
    srepr = re.search(r"^srepr: (.*)$", (tmp_path / "law.txt").read_text(), re.M).group(1)
    assert sp.sympify(srepr) == law.expression
    tex = (tmp_path / "law.tex").read_text()
    assert r"\begin{equation}" in tex and r"\Omega_m(a)" in tex


def test_law_record_scores_held_out_data(data):
    record = law_record(_law(data))
    assert record["held_out"]["max_rel_error"] < 1e-12
    # The literature law drops the w term: its error is the analytic |x^(0.03(1+w)) - 1| max.
    X, _ = data
    expected = np.max(np.abs(X[:, 0] ** (-0.03 * (1 + X[:, 1])) - 1))
    assert record["literature"][0]["held_out"]["max_rel_error"] == pytest.approx(expected)
    assert sp.sympify(record["srepr"]) == sp.sympify(_law(data).expression)


def test_equation_png_renders_and_falls_back():
    assert figures.equation_png(r"f = \Omega_m(a)^{0.55}").startswith(PNG_MAGIC)
    assert figures.equation_png(r"f = \notacommand{x}").startswith(PNG_MAGIC)


def test_report_is_self_contained(data):
    X, y = data
    law = _law((X[:100], y[:100]))
    page = render_html(
        Report(
            "t", "q?", {"simulations": 1}, [law, law], [Check("c", 1.0, "> 0", True)], {"seed": 0}
        )
    )
    assert not re.search(r"(src|href)=\"(https?:)?//", page)
    for sid in SECTIONS:
        assert f'id="{sid}"' in page
    assert page.count('class="law"') == 2
    for part in LAW_PARTS:
        assert page.count(f'class="{part}"') == 2
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == 2 * 6  # front, template, law, parity, residuals, dependence
    assert all(base64.b64decode(img).startswith(PNG_MAGIC) for img in images)
    assert page.count('<tr class="chosen">') == 2
