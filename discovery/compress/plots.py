"""Training-curve figure of a compressor run (matplotlib, Agg backend, written atomically)."""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np

from cosmolaw.io import atomic_path

#: History entries drawn, with their axis labels, when present.
CURVES = {
    "loss": "loss",
    "log_det_F": "ln det F (train)",
    "validation": "validation score",
    "log_det_C": "ln det C (train)",
}


def plot_history(path: str | os.PathLike, history: Mapping[str, np.ndarray], title: str) -> None:
    """One panel per training curve in ``history`` against the step; best step marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n in CURVES if n in history]
    fig, axes = plt.subplots(1, len(names), figsize=(3.6 * len(names), 3.2), squeeze=False)
    best = int(history.get("best_step", 0))
    for ax, name in zip(axes[0], names, strict=True):
        values = np.asarray(history[name])
        ax.plot(np.arange(1, values.size + 1), values, lw=1)
        if best:
            ax.axvline(best, color="k", ls=":", lw=1)
        ax.set_xlabel("step")
        ax.set_ylabel(CURVES[name])
    fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
