"""The interpretability report: one self-contained HTML file, readable offline.

Every image (figures and the rendered equations) is a PNG embedded as base64, and
there are no external stylesheets, fonts or scripts. The report says what question
was asked, where the data came from, and for each discovered law: the Pareto front
with the chosen law marked, the law rendered from LaTeX with its constants and their
uncertainties, parity and residual plots on held-out data, the partial dependence on
each variable and the comparison with the literature; then the checks and the
provenance (versions, seeds, git commit, run time). An experiment whose product is a
comparison rather than a law adds its figures and tables as :class:`Panel` s, shown in a
``results`` section after the data.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import sympy as sp

from cosmolaw.io import write_text
from experiments.core import figures
from experiments.core.laws import Law, accuracy

#: Section ids of every report, in order (the browser test checks them).
SECTIONS = ("question", "data", "checks", "laws", "provenance")
#: Parts of each law's block, by class name (the browser test checks them).
LAW_PARTS = ("front", "equation", "held-out", "dependence", "literature")
#: Section id of the panels, present when a report has any (the browser test checks it).
RESULTS_SECTION = "results"


@dataclass(frozen=True)
class Check:
    """A scientific check of the run: the measured value, the criterion and whether it holds."""

    name: str
    value: float
    criterion: str
    passed: bool


@dataclass(frozen=True)
class Panel:
    """A result shown as it is, beside (or instead of) discovered laws.

    Attributes:
        title: what the panel shows, in one line.
        text: a paragraph of plain text read before the images and the table.
        images: PNG images ``(alt text, bytes)``, embedded in order.
        header: the table's column names; rows: its rows (no table when empty).
    """

    title: str
    text: str = ""
    images: Sequence[tuple[str, bytes]] = ()
    header: Sequence[str] = ()
    rows: Sequence[Sequence[Any]] = ()


@dataclass(frozen=True)
class Report:
    """Inputs of a report.

    Attributes:
        title: report title (the experiment name).
        question: the question the experiment asks, in a sentence or two.
        data: where the data came from (number of simulations, samples, seeds, ...).
        laws: the discovered laws, the main one first.
        checks: the scientific checks against known answers.
        provenance: versions, seeds, commit, run time (see ``experiments.core.provenance``).
        panels: results shown as figures and tables (:class:`Panel`), in order.
    """

    title: str
    question: str
    data: Mapping[str, Any]
    laws: Sequence[Law]
    checks: Sequence[Check] = ()
    provenance: Mapping[str, Any] = field(default_factory=dict)
    panels: Sequence[Panel] = ()


_CSS = """
body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{border-bottom:2px solid #446}h2{color:#335;margin-top:1.6em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;
text-align:left;font-size:.9em}tr.chosen{background:#fde9b0}
section.law{border-left:4px solid #99b;padding-left:1em;margin:1.5em 0}
img{max-width:100%;display:block;margin:.3em 0}code{background:#f3f3f3;padding:1px 3px}
"""


def _esc(value: Any) -> str:
    return html.escape(str(value))


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{_esc(alt)}" src="data:image/png;base64,{data}">'


def _table(
    header: Sequence[str], rows: Sequence[Sequence[Any]], highlight: int | None = None
) -> str:
    head = "".join(f"<th>{_esc(h)}</th>" for h in header)
    body = []
    for i, row in enumerate(rows):
        cls = ' class="chosen"' if i == highlight else ""
        body.append(f"<tr{cls}>" + "".join(f"<td>{_esc(c)}</td>" for c in row) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _label(law: Law, name: str) -> str:
    """Axis label of a variable: its LaTeX name in mathtext when the law gives one."""
    return f"${law.latex_names[name]}$" if name in law.latex_names else name


def _rounded(expr: sp.Expr, digits: int = 4) -> sp.Expr:
    """``expr`` with its floats shown to ``digits`` significant digits (for display only)."""
    return expr.xreplace({f: sp.Float(float(f), digits) for f in expr.atoms(sp.Float)})


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def _front_html(law: Law) -> str:
    if not law.front:
        return "<p>No search front: this law was obtained by refitting a discovered form.</p>"
    rows = [(p.complexity, f"{p.loss:.4g}", p.expression) for p in law.front]
    return _img(figures.pareto_png(law.front, law.chosen, law.loss_name), "Pareto front") + _table(
        ("complexity", law.loss_name, "expression"), rows, law.chosen
    )


def _equation_html(law: Law) -> str:
    template = ""
    if law.template is not None:
        template = _img(
            figures.equation_png(law.latex(law.template)), f"{law.target} = {law.template}"
        )
    const_rows = [(name, _fmt(v), f"{s:.2g}") for name, (v, s) in law.constants.items()]
    units = [(k, v) for k, v in law.units.items() if v]
    return (
        template
        + _img(
            figures.equation_png(law.latex(_rounded(law.expression))),
            f"{law.target} = {law.expression}",
        )
        + f"<p>sympy: <code>{_esc(law.target)} = {_esc(law.expression)}</code></p>"
        + (_table(("constant", "value", "1-sigma"), const_rows) if const_rows else "")
        + (_table(("quantity", "units"), units) if units else "")
    )


def _lit_predictions(law: Law, X: np.ndarray) -> dict[str, np.ndarray]:
    return {lit.name: np.asarray(lit.predict(X), float) for lit in law.literature if lit.predict}


def _held_out_html(law: Law, X: np.ndarray, y: np.ndarray, pred: np.ndarray) -> str:
    lits = _lit_predictions(law, X)
    rows = [("discovered law", *(_fmt(v) for v in accuracy(y, pred).values()))]
    rows += [(name, *(_fmt(v) for v in accuracy(y, p).values())) for name, p in lits.items()]
    return (
        f"<p>{len(y)} held-out points, not used in the search.</p>"
        + _table(("law", "R^2", "RMSE", "max |rel. error|", "RMS rel. error"), rows)
        + _img(figures.parity_png(y, pred, _label(law, law.target), lits), "parity plot")
        + _img(figures.residual_png(y, pred, _label(law, law.target), lits), "residual plot")
    )


def _literature_html(law: Law) -> str:
    if not law.literature:
        return "<p>No literature law for this relation.</p>"
    parts = []
    for lit in law.literature:
        expr = "" if lit.expression is None else f": <code>{_esc(lit.expression)}</code>"
        parts.append(f"<p><b>{_esc(lit.name)}</b> ({_esc(lit.reference)}){expr}</p>")
        if lit.numbers:
            rows = [(q, _fmt(d), _fmt(r), _fmt(d - r)) for q, d, r in lit.numbers]
            parts.append(_table(("quantity", "discovered", "literature", "difference"), rows))
    return "".join(parts)


def _law_html(index: int, law: Law) -> str:
    X, y = np.asarray(law.X_test, float), np.asarray(law.y_test, float)
    pred = law.evaluate(X)
    lit_fns = {lit.name: lit.predict for lit in law.literature if lit.predict}
    labels = [_label(law, v) for v in law.variables]
    dependence = figures.dependence_png(
        law.evaluate, X, y, labels, _label(law, law.target), lit_fns
    )
    parts = {
        "front": ("Pareto front", _front_html(law)),
        "equation": ("The law", _equation_html(law)),
        "held-out": ("Held-out accuracy", _held_out_html(law, X, y, pred)),
        "dependence": (
            "Partial dependence",
            "<p>Mean prediction with one variable swept over its held-out range.</p>"
            + _img(dependence, "partial dependence"),
        ),
        "literature": ("Comparison with the literature", _literature_html(law)),
    }
    body = "".join(
        f'<div class="{cls}"><h3>{_esc(title)}</h3>{content}</div>'
        for cls, (title, content) in parts.items()
    )
    heading = f"<h2>{index + 1}. {_esc(law.title)}</h2>"
    return f'<section class="law" id="law-{index}">{heading}{body}</section>'


def _mapping_table(mapping: Mapping[str, Any]) -> str:
    rows = []
    for key, value in mapping.items():
        if isinstance(value, Mapping):
            value = ", ".join(f"{k}={v}" for k, v in value.items())
        elif isinstance(value, list | tuple):
            value = ", ".join(map(str, value))
        rows.append((key, value))
    return _table(("item", "value"), rows)


def _panel_html(panel: Panel) -> str:
    images = "".join(_img(png, alt) for alt, png in panel.images)
    table = _table(panel.header, panel.rows) if panel.rows else ""
    text = f"<p>{_esc(panel.text)}</p>" if panel.text else ""
    return f'<div class="panel"><h3>{_esc(panel.title)}</h3>{text}{images}{table}</div>'


def render_html(report: Report) -> str:
    """The complete report as an HTML string (images embedded)."""
    checks = [
        (c.name, _fmt(c.value), c.criterion, "pass" if c.passed else "FAIL") for c in report.checks
    ]
    sections = {
        "question": ("Question", f"<p>{_esc(report.question)}</p>"),
        "data": ("Data", _mapping_table(report.data)),
        RESULTS_SECTION: ("Results", "".join(_panel_html(p) for p in report.panels)),
        "checks": (
            "Checks against known answers",
            _table(("check", "value", "criterion", "result"), checks) if checks else "<p>None</p>",
        ),
        "laws": (
            "Discovered laws",
            "".join(_law_html(i, law) for i, law in enumerate(report.laws))
            or "<p>This experiment searches for no law.</p>",
        ),
        "provenance": ("Provenance", _mapping_table(report.provenance)),
    }
    body = "".join(
        f'<section id="{sid}"><h2>{_esc(title)}</h2>{content}</section>'
        for sid, (title, content) in sections.items()
        if sid != RESULTS_SECTION or report.panels
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>cosmolaw: {_esc(report.title)}</title><style>{_CSS}</style></head>"
        f"<body><h1>cosmolaw report: {_esc(report.title)}</h1>{body}</body></html>\n"
    )


def write_report(path: str | Path, report: Report) -> Path:
    """Write ``report`` as one self-contained HTML file at ``path`` (atomically)."""
    path = Path(path)
    write_text(path, render_html(report))
    return path
