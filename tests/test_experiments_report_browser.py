"""The interpretability report opens in a real headless browser (Debian's chromium).

Chromium is driven through the DevTools protocol (``report_browser``): the page is loaded
from disk with networking disabled, every JavaScript exception and console error is
collected, each image must have decoded (``naturalWidth > 0``) and every report section and
law part must be present. A screenshot of the full page is saved beside the report. A
deliberately broken copy of the report (corrupt image, throwing script, missing section and
panel) must fail the same checks. The ``fli-vs-ili`` report (a result panel, no law) is opened the
same way in ``test_experiments_fli_vs_ili.py``, on the run its tests share.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import sympy as sp
from report_browser import CHROMIUM, inspect_in_chromium, problems

from experiments.core.figures import equation_png
from experiments.core.html_report import Check, Panel, Report, write_report
from experiments.core.laws import FrontPoint, Law, Literature

pytestmark = pytest.mark.browser

PANEL = Panel(
    "A result shown as it is",
    "An image and a table, as fli-vs-ili shows its posteriors.",
    [("the growth index", equation_png(r"\gamma = 0.55"))],
    ("quantity", "value"),
    [("gamma", "0.55"), ("samples", "150")],
)


@pytest.fixture(scope="module")
def report_path(tmp_path_factory) -> Path:
    """A two-law report with one result panel (an image and a table) built by the report
    machinery from a known law and noisy data."""
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    rng = np.random.default_rng(1)
    x, w = sp.symbols("x w")
    X = np.column_stack([rng.uniform(0.3, 1.0, 150), rng.uniform(-1.3, -0.7, 150)])
    y = X[:, 0] ** (0.55 + 0.03 * (1 + X[:, 1])) * (1 + 1e-3 * rng.normal(size=150))
    front = [FrontPoint(1, 1e-2, "x"), FrontPoint(3, 2e-6, "x**0.55"), FrontPoint(7, 1e-6, "...")]
    lit = Literature(
        "power law",
        "test reference",
        x**0.55,
        lambda X: X[:, 0] ** 0.55,
        [("gamma", 0.551, 0.55)],
    )
    laws = [
        Law(
            "f(x, w)",
            "f",
            ("x", "w"),
            x ** (0.55 + 0.03 * (1 + w)),
            X,
            y,
            front=front,
            chosen=1,
            literature=[lit],
            constants={"gamma": (0.55, 1e-3)},
        ),
        Law("f(x)", "f", ("x",), x**0.55, X[:, :1], y),
    ]
    report = Report(
        "browser-test",
        "Does the report render?",
        {"samples": 150},
        laws,
        [Check("gamma", 0.55, "0.55 +- 0.01", True)],
        {"seed": 1},
        panels=[PANEL],
    )
    return write_report(tmp_path_factory.mktemp("report") / "report.html", report)


def test_report_renders_in_chromium(report_path: Path):
    screenshot = report_path.with_suffix(".png")
    page = inspect_in_chromium(report_path, screenshot)
    print(f"screenshot: {screenshot}")
    assert problems(page, n_laws=2, n_panels=1) == []
    # the panel's; law 1: front, equation, parity, residuals, dependence; law 2 (no front): four.
    assert len(page["images"]) == 10
    (panel,) = page["panels"]
    assert panel["title"] == PANEL.title and panel["images"][0]["width"] > 0
    assert panel["header"] == list(PANEL.header)
    assert panel["rows"] == [list(row) for row in PANEL.rows]
    assert screenshot.stat().st_size > 10_000


def test_broken_report_is_caught(report_path: Path):
    html = report_path.read_text()
    broken = html.replace('id="provenance"', 'id="elsewhere"', 1)
    broken = broken.replace("data:image/png;base64,", "data:image/png;base64,AAAA", 1)
    broken = broken.replace("</body>", "<script>undefinedFunction();</script></body>")
    broken = broken.replace('<div class="panel">', '<div class="other">', 1)
    path = report_path.with_name("broken.html")
    path.write_text(broken)
    found = problems(inspect_in_chromium(path, path.with_suffix(".png")), n_laws=2, n_panels=1)
    assert any(p.startswith("javascript error") for p in found), found
    assert any(p.startswith("broken image") for p in found), found
    assert "missing section: provenance" in found
    assert "0 result panels, expected 1" in found
