"""Report figures rendered offline to PNG bytes with matplotlib (Agg, no pyplot state).

Each function takes plain arrays and returns the PNG image as bytes, so the report can
embed it as base64 and stays one self-contained file.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping, Sequence

import numpy as np
from matplotlib import mathtext
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from experiments.core.laws import FrontPoint

Predict = Callable[[np.ndarray], np.ndarray]
_DPI = 110
_LIT_STYLES = ("--", ":", "-.")


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI, bbox_inches="tight")
    return buf.getvalue()


def equation_png(latex: str, fontsize: float = 18.0) -> bytes:
    """``latex`` (math mode, no ``$``) rendered with matplotlib mathtext; plain text if mathtext
    cannot parse it."""
    from matplotlib.font_manager import FontProperties

    buf = io.BytesIO()
    try:
        mathtext.math_to_image(f"${latex}$", buf, prop=FontProperties(size=fontsize), dpi=_DPI)
    except ValueError:
        fig = Figure(figsize=(0.1, 0.1))
        fig.text(0, 0, latex, fontsize=fontsize * 0.7, family="monospace")
        return _png(fig)
    return buf.getvalue()


def pareto_png(front: Sequence[FrontPoint], chosen: int | None, loss_name: str) -> bytes:
    """Complexity against loss (log scale) of a Pareto front, the chosen law starred."""
    fig = Figure(figsize=(6.0, 3.8))
    ax = fig.add_subplot()
    c = np.array([p.complexity for p in front], float)
    loss = np.maximum(np.array([p.loss for p in front], float), 1e-300)
    order = np.argsort(c)
    ax.step(c[order], loss[order], where="post", color="0.6", lw=1)
    ax.plot(c, loss, "o", color="C0", label="candidates")
    if chosen is not None:
        ax.plot(c[chosen], loss[chosen], "*", ms=18, color="C3", label="chosen law")
    ax.set_yscale("log")
    ax.set_xlabel("complexity")
    ax.set_ylabel(loss_name)
    ax.legend(frameon=False)
    ax.grid(alpha=0.3)
    return _png(fig)


def parity_png(
    y: np.ndarray, pred: np.ndarray, target: str, literature: Mapping[str, np.ndarray]
) -> bytes:
    """Predicted against true held-out values, with the 1:1 line and any literature laws."""
    fig = Figure(figsize=(4.8, 4.4))
    ax = fig.add_subplot()
    lo, hi = float(np.min(y)), float(np.max(y))
    for i, (name, lit) in enumerate(literature.items()):
        ax.plot(y, lit, ".", ms=3, alpha=0.5, color=f"C{i + 1}", label=name)
    ax.plot(y, pred, ".", ms=4, color="C0", label="discovered law")
    ax.plot([lo, hi], [lo, hi], "k-", lw=0.8, label="1:1")
    ax.set_xlabel(f"{target} (held-out truth)")
    ax.set_ylabel(f"{target} (prediction)")
    ax.legend(frameon=False, fontsize=8)
    ax.grid(alpha=0.3)
    return _png(fig)


def residual_png(
    y: np.ndarray, pred: np.ndarray, target: str, literature: Mapping[str, np.ndarray]
) -> bytes:
    """Residuals against the truth and their histogram; relative when the target stays away
    from zero (every |y| above 5% of the largest)."""
    relative = bool(np.min(np.abs(y)) > 0.05 * np.max(np.abs(y)))
    scale = y if relative else np.ones_like(y)
    label = "relative residual" if relative else "residual"
    fig = Figure(figsize=(8.0, 3.4))
    ax, hx = fig.subplots(1, 2, gridspec_kw={"width_ratios": [2, 1]})
    series = {"discovered law": pred, **literature}
    for i, (name, p) in enumerate(series.items()):
        r = (p - y) / scale
        ax.plot(y, r, ".", ms=3, alpha=0.7 if i == 0 else 0.4, color=f"C{i}", label=name)
        hx.hist(r, bins=30, histtype="step", color=f"C{i}", orientation="horizontal")
    ax.axhline(0.0, color="k", lw=0.8)
    ax.set_xlabel(f"{target} (held-out truth)")
    ax.set_ylabel(label)
    ax.legend(frameon=False, fontsize=8)
    ax.grid(alpha=0.3)
    hx.set_xlabel("count")
    hx.sharey(ax)
    hx.grid(alpha=0.3)
    return _png(fig)


def partial_dependence(
    predict: Predict, X: np.ndarray, column: int, grid: np.ndarray
) -> np.ndarray:
    """Partial dependence of ``predict`` on one column: the mean prediction over the rows of
    ``X`` ``(n, d)`` with that column set to each value of ``grid``; shape ``grid.shape``."""
    out = np.empty(len(grid))
    for i, value in enumerate(grid):
        Xg = np.array(X, float, copy=True)
        Xg[:, column] = value
        out[i] = float(np.mean(predict(Xg)))
    return out


def dependence_png(
    predict: Predict,
    X: np.ndarray,
    y: np.ndarray,
    variables: Sequence[str],
    target: str,
    literature: Mapping[str, Predict],
    n_grid: int = 40,
) -> bytes:
    """One panel per variable: partial dependence of the law (and literature laws) over the
    held-out range of that variable, above the held-out data."""
    d = len(variables)
    fig = Figure(figsize=(min(4.2 * d, 13.0), 3.5))
    axes = np.atleast_1d(fig.subplots(1, d))
    for j, (ax, name) in enumerate(zip(axes, variables, strict=True)):
        grid = np.linspace(np.min(X[:, j]), np.max(X[:, j]), n_grid)
        ax.plot(X[:, j], y, ".", ms=2, color="0.75", label="held-out data")
        ax.plot(grid, partial_dependence(predict, X, j, grid), "C0-", lw=2, label="discovered")
        for i, (lname, lit) in enumerate(literature.items()):
            style = _LIT_STYLES[i % len(_LIT_STYLES)]
            pd = partial_dependence(lit, X, j, grid)
            ax.plot(grid, pd, style, color=f"C{i + 1}", lw=1.5, label=lname)
        ax.set_xlabel(name)
        ax.set_ylabel(f"mean {target}")
        ax.grid(alpha=0.3)
    axes[0].legend(frameon=False, fontsize=8)
    return _png(fig)
