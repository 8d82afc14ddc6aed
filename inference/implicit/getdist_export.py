"""Posteriors as GetDist samples and contour plots, the form cosmologists read and compare.

:func:`to_mcsamples` wraps draws of an implicit posterior; :func:`chain_to_mcsamples` reads the
scalar samples of a field-level ``chain.h5`` (:mod:`inference.chain_file`; cosmology by
default, named by the file attribute ``scalar_names``), so both posteriors overlay in
:func:`plot_contours`. GetDist (and matplotlib) are imported only here.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

#: LaTeX labels (without dollars) of the usual parameters.
LABELS = {
    "Omega_m": r"\Omega_{\rm m}",
    "sigma8": r"\sigma_8",
    "h": "h",
    "n_s": "n_s",
    "Omega_b": r"\Omega_{\rm b}",
    "w0": "w_0",
    "wa": "w_a",
    "nbar_cell": r"\bar n",
}


def to_mcsamples(
    samples: np.ndarray,
    names: Sequence[str],
    label: str = "posterior",
    ranges: Mapping[str, tuple[float, float]] | None = None,
    weights: np.ndarray | None = None,
) -> Any:
    """A ``getdist.MCSamples`` of draws ``(n, p)`` of the parameters ``names`` ``(p,)``;
    ``ranges``: prior bounds (GetDist corrects its kernel density estimates at them)."""
    from getdist import MCSamples

    samples = np.asarray(samples, float)
    if samples.ndim != 2 or samples.shape[1] != len(names):
        raise ValueError(f"samples of shape {samples.shape} is invalid: must be (n, {len(names)})")
    with contextlib.redirect_stdout(io.StringIO()):  # GetDist's "Removed no burn in"
        return MCSamples(
            samples=samples,
            weights=weights,
            names=list(names),
            labels=[LABELS.get(n, n) for n in names],
            label=label,
            ranges=dict(ranges or {}),
            settings={"ignore_rows": 0},
        )


def chain_to_mcsamples(
    path: str | os.PathLike,
    names: Sequence[str] | None = None,
    burn_in: int = 0,
    label: str = "field-level",
) -> Any:
    """The scalar samples ``samples/scalars`` ``(C, n, p)`` of a field-level ``chain.h5`` (all
    chains pooled, the first ``burn_in`` steps of each dropped) as ``getdist.MCSamples``.

    The chain names its scalars ``group/name`` in the file attribute ``scalar_names``
    (``cosmo/Omega_m``, ``bias/b1``); GetDist gets the short names of :func:`scalar_labels`.
    ``names`` picks parameters, short or ``group/name`` (default: the cosmological ones
    sampled, ``Omega_m`` and ``sigma8``, else every scalar).
    """
    stored, scalars = read_chain_scalars(path)
    short = scalar_labels(stored)
    if names is None:
        cosmo = [s for s, full in zip(short, stored, strict=True) if full.startswith("cosmo/")]
        names = cosmo or short
    cols = [_column(n, stored, short, path) for n in names]
    if not 0 <= burn_in < scalars.shape[1]:
        raise ValueError(f"burn_in={burn_in!r} is invalid: must be in [0, {scalars.shape[1]})")
    draws = scalars[:, burn_in:, cols].reshape(-1, len(cols))
    return to_mcsamples(draws, [short[c] for c in cols], label=label)


def read_chain_scalars(path: str | os.PathLike) -> tuple[list[str], np.ndarray]:
    """The names ``group/name`` (file attribute ``scalar_names``) and the draws
    ``samples/scalars`` ``(C, n, p)`` (float64) of ``chain.h5`` at ``path`` (or in the run
    directory ``path``)."""
    import json

    import h5py

    path = Path(path)
    if path.is_dir():
        path = path / "chain.h5"
    if not path.is_file():
        raise ValueError(f"chain={str(path)!r} is invalid: no chain.h5 there")
    with h5py.File(path, "r") as f:
        stored = json.loads(f.attrs.get("scalar_names", "[]"))
        if not stored or "samples/scalars" not in f:
            raise ValueError(
                f"chain={str(path)!r} has no samples/scalars: no scalar was sampled (or no "
                "sampling step is stored yet)"
            )
        scalars = np.asarray(f["samples/scalars"][()], float)
    if scalars.ndim != 3 or scalars.shape[-1] != len(stored):
        raise ValueError(
            f"chain={str(path)!r} is invalid: samples/scalars {scalars.shape} does not match "
            f"scalar_names {stored}"
        )
    return [str(n) for n in stored], scalars


def scalar_labels(stored: Sequence[str]) -> list[str]:
    """GetDist names of stored ``group/name`` scalars: ``name``, or ``group_name`` where two
    groups share a name (``["bias/b1", "cosmo/sigma8"]`` -> ``["b1", "sigma8"]``), as the
    variables of ``inference.chain_file.to_inference_data``."""
    short = [n.split("/", 1)[-1] for n in stored]
    pairs = zip(stored, short, strict=True)
    return [s if short.count(s) == 1 else n.replace("/", "_") for n, s in pairs]


def _column(name: str, stored: list[str], short: list[str], path: str | os.PathLike) -> int:
    """Index in ``samples/scalars`` of ``name`` (a short name or ``group/name``)."""
    if name in short:
        return short.index(name)
    if name in stored:
        return stored.index(name)
    raise ValueError(f"names=[{name!r}] are not in the chain {str(path)!r} (allowed: {short})")


def plot_contours(
    samples: Sequence[Any],
    path: str | os.PathLike,
    truth: Mapping[str, float] | None = None,
) -> None:
    """Triangle plot (1D marginals and 68/95% contours) of one or more ``MCSamples`` over their
    common parameters, with ``truth`` marked, written atomically to ``path`` (PNG or PDF)."""
    import matplotlib

    matplotlib.use("Agg")
    from getdist import plots

    from cosmolaw.io import atomic_path

    names = [p.name for p in samples[0].paramNames.names]
    common = [n for n in names if all(s.paramNames.parWithName(n) for s in samples)]
    g = plots.get_subplot_plotter(width_inch=5)
    g.triangle_plot(
        list(samples),
        common,
        filled=True,
        markers={k: v for k, v in (truth or {}).items() if k in common},
    )
    path = Path(path)
    with atomic_path(path) as tmp:
        g.fig.savefig(tmp, format=path.suffix.lstrip(".") or "png", dpi=120)
    import matplotlib.pyplot as plt

    plt.close(g.fig)
