"""Survey geometry: the 3D selection grid (mask x radial selection x completeness).

The selection ``S`` is a mesh of shape ``(n, n, n)`` with values in ``[0, 1]``: the fraction of
the galaxies that the survey would see in each cell, so the expected count is
``nbar_cell * S * F(delta)``. Cells with ``S = 0`` are outside the survey and carry no data.

Mesh nodes sit at ``i * box / n`` (the convention of the CIC painter), and a cell's distance to
the observer is that of its node. Everything here runs in NumPy on concrete inputs, at the
boundary of the model, and raises ``ValueError`` naming the parameter on bad input.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

#: Dataset read by :func:`load_selection` by default (the layout of ``mock.h5``).
SELECTION_DATASET = "data/selection"


def validate_selection(
    selection: np.ndarray, shape: Sequence[int], name: str = "selection"
) -> np.ndarray:
    """Check a selection grid and return it as a float32 array.

    It must have exactly ``shape``, be finite, lie in ``[0, 1]`` and be non-zero somewhere;
    otherwise ``ValueError`` names ``name``.
    """
    sel = np.asarray(selection)
    shape = tuple(int(n) for n in shape)
    if sel.shape != shape:
        raise ValueError(f"{name} has shape {sel.shape}, but the mesh has shape {shape}")
    if not np.issubdtype(sel.dtype, np.number) or np.iscomplexobj(sel):
        raise ValueError(f"{name} must hold real numbers in [0, 1], got dtype {sel.dtype}")
    sel = sel.astype(np.float64)
    if not np.all(np.isfinite(sel)):
        raise ValueError(f"{name} has non-finite values; allowed values are in [0, 1]")
    lo, hi = float(sel.min()), float(sel.max())
    if lo < 0.0:
        raise ValueError(f"{name} has negative values (min {lo:g}); allowed values are in [0, 1]")
    if hi > 1.0:
        raise ValueError(f"{name} has values above 1 (max {hi:g}); allowed values are in [0, 1]")
    if hi == 0.0:
        raise ValueError(f"{name} is zero everywhere: the survey would observe no cell")
    return sel.astype(np.float32)


def load_selection(
    path: str | os.PathLike, shape: Sequence[int], dataset: str = SELECTION_DATASET
) -> np.ndarray:
    """Read and validate a selection grid from the HDF5 ``dataset`` of ``path``.

    A file holding a single dataset is read whatever its name. Raises ``ValueError`` naming
    ``selection`` for a missing file or dataset, or an invalid grid.
    """
    import h5py

    if not os.path.isfile(path):
        raise ValueError(f"selection file {os.fspath(path)!r} does not exist")
    try:
        with h5py.File(path, "r") as f:
            names: list[str] = []
            f.visititems(lambda n, obj: names.append(n) if isinstance(obj, h5py.Dataset) else None)
            if dataset in f:
                data = f[dataset][()]
            elif len(names) == 1:
                data = f[names[0]][()]
            else:
                raise ValueError(
                    f"selection file {os.fspath(path)!r} has no dataset {dataset!r} "
                    f"(datasets: {names})"
                )
    except OSError as err:
        raise ValueError(f"selection file {os.fspath(path)!r} is not readable HDF5: {err}") from err
    return validate_selection(data, shape, name=f"selection ({os.fspath(path)}:{dataset})")


def node_distances(shape: Sequence[int], box: float, observer: Sequence[float]) -> np.ndarray:
    """Distance [Mpc/h] from ``observer`` ``(3,)`` to every mesh node, shape ``shape``."""
    axes = [np.arange(n) * (box / n) - observer[i] for i, n in enumerate(shape)]
    grids = np.meshgrid(*axes, indexing="ij")
    return np.sqrt(sum(g**2 for g in grids))


def radial_selection(
    shape: Sequence[int],
    box: float,
    observer: Sequence[float],
    r: Sequence[float],
    n_of_r: Sequence[float],
) -> np.ndarray:
    """Radial selection grid from a tabulated n(r), normalised to its maximum.

    ``r`` [Mpc/h], increasing, and ``n_of_r`` (any units, >= 0) tabulate the radial number
    density; it is interpolated linearly at each node's distance to ``observer`` and is zero
    beyond ``r[-1]`` (and below ``r[0]``). Returns a float32 mesh with values in ``[0, 1]``.
    """
    r = np.asarray(r, dtype=float)
    n = np.asarray(n_of_r, dtype=float)
    if r.ndim != 1 or r.size < 2 or not np.all(np.isfinite(r)) or np.any(np.diff(r) <= 0):
        raise ValueError(f"r={r.tolist()!r} must be at least two finite, increasing distances")
    if n.shape != r.shape or not np.all(np.isfinite(n)) or np.any(n < 0) or n.max() == 0:
        raise ValueError(f"n_of_r={n.tolist()!r} must be {r.size} finite values >= 0, not all zero")
    dist = node_distances(shape, box, observer)
    return (np.interp(dist, r, n / n.max(), left=0.0, right=0.0)).astype(np.float32)


def survey_selection(
    shape: Sequence[int],
    mask: np.ndarray | None = None,
    radial: np.ndarray | None = None,
    completeness: float = 1.0,
) -> np.ndarray:
    """The selection grid ``mask * radial * completeness`` (float32, shape ``shape``).

    ``mask`` and ``radial`` are optional grids in ``[0, 1]`` (default: everywhere 1);
    ``completeness`` is the overall fraction of galaxies observed, in ``(0, 1]``.
    """
    if not (np.isfinite(completeness) and 0.0 < completeness <= 1.0):
        raise ValueError(f"completeness={completeness!r} must be in (0, 1]")
    sel = np.full(tuple(shape), completeness, dtype=np.float32)
    if mask is not None:
        sel = sel * validate_selection(mask, shape, name="mask")
    if radial is not None:
        sel = sel * validate_selection(radial, shape, name="radial selection")
    return validate_selection(sel, shape)
