"""Summaries of a galaxy survey and the transforms the estimators apply to them.

- :func:`galaxy_power`: binned power spectrum [(Mpc/h)^3] of the galaxy overdensity of counts
  on the mesh, ``n // 2`` shells up to the Nyquist frequency (``simulator.measure``);
- :class:`PowerSummary`: the log of the bins with ``k <= k_max`` (default 0.15 h/Mpc;
  ``"nyquist"`` keeps every bin), the summary ``--summary pk`` trains on;
- :class:`LinearCompression`: MOPED-style compression to one number per parameter, fitted on a
  training set drawn over the prior (``--summary moped``);
- :class:`Whitener`: mean and covariance of a training set's summaries; the flows are
  conditioned on whitened summaries and the out-of-distribution check measures distances there;
- :data:`FIELD_SUMMARIES`: summaries learned from the galaxy counts themselves (``--summary
  imnn``). Their compressors live in ``discovery``, which ``inference`` may not import, so a
  layer allowed to import both registers them here (:func:`register_field_summary`):
  ``experiments.core.imnn_summary`` registers ``"imnn"`` when imported, and the ``cosmolaw``
  command imports it before ``cosmolaw sbi`` runs.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np

#: k_max [h/Mpc] of the default P(k) summary (the scale where perturbation theory stops).
DEFAULT_KMAX = 0.15


def galaxy_overdensity(counts: Any, selection: Any) -> Any:
    """``delta_g = (counts - nbar selection) / nbar`` ``(n, n, n)`` with the mean density
    ``nbar = sum(counts) / sum(selection)`` [galaxies per cell]; zero where unobserved."""
    import jax.numpy as jnp

    counts = jnp.asarray(counts, jnp.float32)
    selection = jnp.asarray(selection, jnp.float32)
    nbar = jnp.sum(counts) / jnp.sum(selection)
    return (counts - nbar * selection) / nbar


def galaxy_power(counts: Any, selection: Any, box: float) -> tuple[np.ndarray, np.ndarray]:
    """``(k [h/Mpc], P(k) [(Mpc/h)^3])``, each ``(n // 2,)``: the power spectrum of the galaxy
    overdensity of ``counts`` ``(n, n, n)`` under ``selection`` (shot noise included)."""
    spec = _spectrum()(galaxy_overdensity(counts, selection), float(box))
    return np.asarray(spec.k), np.asarray(spec.power)


@functools.cache
def _spectrum():
    import jax

    from simulator.measure import power_spectrum

    return jax.jit(power_spectrum, static_argnums=1)


def parse_kmax(value: str | float) -> float | None:
    """``k_max`` from the command line: a number > 0 [h/Mpc], or ``"nyquist"`` (``None``)."""
    if isinstance(value, str) and value.strip().lower() == "nyquist":
        return None
    try:
        kmax = float(value)
    except (TypeError, ValueError):
        kmax = float("nan")
    if not kmax > 0:
        raise ValueError(f"kmax={value!r} is invalid: must be a number > 0 (h/Mpc) or 'nyquist'")
    return kmax


@dataclasses.dataclass(frozen=True)
class PowerSummary:
    """``log P(k)`` in the shells with ``k <= kmax``; ``kmax=None`` keeps every shell.

    Attributes:
        k: shell wavenumbers ``(nbins,)`` [h/Mpc] of the stored spectra.
        kmax: cut [h/Mpc] or ``None`` (Nyquist).
    """

    k: tuple[float, ...]
    kmax: float | None = DEFAULT_KMAX

    def __post_init__(self) -> None:
        object.__setattr__(self, "k", tuple(float(v) for v in self.k))
        if not self.mask.any():
            raise ValueError(
                f"kmax={self.kmax} is invalid: below the first shell k={min(self.k):.4g} h/Mpc"
            )

    @property
    def mask(self) -> np.ndarray:
        """Shells kept ``(nbins,)`` (bool)."""
        k = np.asarray(self.k)
        return np.ones(k.shape, bool) if self.kmax is None else k <= self.kmax

    def __call__(self, pk: np.ndarray) -> np.ndarray:
        """Summaries ``(..., kept)`` of spectra ``pk`` ``(..., nbins)`` [(Mpc/h)^3]."""
        return np.log(np.maximum(np.asarray(pk)[..., self.mask], 1e-30))

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for ``model.json``."""
        return {"kind": "pk", "k": list(self.k), "kmax": self.kmax}


@dataclasses.dataclass(frozen=True, eq=False)
class LinearCompression:
    """MOPED-style compression ``t = W (x - mu0)`` ``(..., p)`` of summaries ``x`` ``(..., d)``.

    Fitted on a training set drawn over the prior rather than by finite differences at a
    fiducial point: the global linear model ``x = mu0 + D (theta - theta0) + e`` by least
    squares gives ``D`` ``(d, p)`` and the residual covariance ``C``; then ``W = L^-1 D^T C^-1``
    with ``D^T C^-1 D = L L^T`` (Heavens et al. 2000), so ``t`` has unit covariance at fixed
    ``theta`` and keeps the Fisher information of the linear-Gaussian model.
    """

    base: Any
    center: np.ndarray
    weights: np.ndarray

    @classmethod
    def fit(cls, base: Any, theta: np.ndarray, pk: np.ndarray) -> LinearCompression:
        """Fit on parameters ``theta`` ``(n, p)`` and the spectra ``pk`` ``(n, nbins)`` that
        ``base`` (a :class:`PowerSummary`) turns into ``x`` ``(n, d)``."""
        x = base(pk)
        n, p = theta.shape
        if n < x.shape[1] + p + 2:
            raise ValueError(f"n={n} simulations are too few to fit MOPED on {x.shape[1]} bins")
        design = np.column_stack([np.ones(n), theta - theta.mean(0)])
        coef, *_ = np.linalg.lstsq(design, x, rcond=None)
        resid = x - design @ coef
        cov = resid.T @ resid / (n - p - 1)
        dmu = coef[1:].T
        score = np.linalg.solve(cov, dmu).T
        chol = np.linalg.cholesky(score @ dmu)
        return cls(base, coef[0], np.linalg.solve(chol, score))

    def __call__(self, pk: np.ndarray) -> np.ndarray:
        """Compressed summaries ``(..., p)`` of spectra ``pk`` ``(..., nbins)``."""
        return (self.base(pk) - self.center) @ self.weights.T

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for ``model.json``."""
        return {
            **self.base.to_dict(),
            "kind": "moped",
            "center": self.center.tolist(),
            "weights": self.weights.tolist(),
        }


def summary_from_dict(table: dict[str, Any]) -> PowerSummary | LinearCompression:
    """The summary stored by ``to_dict``."""
    base = PowerSummary(tuple(table["k"]), table["kmax"])
    if table["kind"] == "pk":
        return base
    return LinearCompression(base, np.asarray(table["center"]), np.asarray(table["weights"]))


@dataclasses.dataclass(frozen=True, eq=False)
class Whitener:
    """Whitening ``w = L^-1 (x - mean)`` with ``cov = L L^T`` of a training set's summaries.

    Attributes:
        mean: ``(d,)``; chol: lower Cholesky factor ``(d, d)`` of the covariance (with a
            1e-9 relative ridge); distances: Mahalanobis distances ``|w|`` of the training
            summaries ``(n,)``, the reference of the out-of-distribution check.
    """

    mean: np.ndarray
    chol: np.ndarray
    distances: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray) -> Whitener:
        """From training summaries ``x`` ``(n, d)``, ``n > d``."""
        x = np.asarray(x, float)
        if x.ndim != 2 or len(x) <= x.shape[1]:
            raise ValueError(f"summaries of shape {x.shape} are invalid: need (n, d) with n > d")
        mean = x.mean(0)
        cov = np.cov(x, rowvar=False).reshape(x.shape[1], x.shape[1])
        cov = cov + 1e-9 * np.trace(cov) / len(cov) * np.eye(len(cov))
        chol = np.linalg.cholesky(cov)
        white = cls(mean, chol, np.zeros(0))
        return cls(mean, chol, np.linalg.norm(white(x), axis=-1))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Whitened summaries ``(..., d)``."""
        from scipy.linalg import solve_triangular

        diff = np.asarray(x, float) - self.mean
        flat = diff.reshape(-1, len(self.mean))
        return solve_triangular(self.chol, flat.T, lower=True).T.reshape(diff.shape)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for ``model.json``."""
        return {
            "mean": self.mean.tolist(),
            "chol": self.chol.tolist(),
            "distances": self.distances.tolist(),
        }

    @classmethod
    def from_dict(cls, table: dict[str, Any]) -> Whitener:
        """Inverse of :meth:`to_dict`."""
        return cls(*(np.asarray(table[k], float) for k in ("mean", "chol", "distances")))


class FieldSummary(Protocol):
    """A summary of the galaxy counts themselves (a trained compressor)."""

    def __call__(self, counts: np.ndarray) -> np.ndarray:
        """Summaries ``(N, d)`` of counts ``(N, m, m, m)`` [galaxies per cell]."""

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for ``model.json`` (with ``"kind"``)."""

    def save(self, model_dir: Path) -> None:
        """Write what :attr:`FieldSummaryKind.load` needs into ``model_dir``."""


@dataclasses.dataclass(frozen=True)
class FieldSummaryKind:
    """How ``cosmolaw sbi`` trains and loads one kind of field summary.

    Attributes:
        train: ``train(data, sims, steps, seed, progress, pool) -> FieldSummary`` with
            ``data`` a :class:`inference.implicit.training_set.TrainingSet` (its specification
            gives the simulator and observation model), ``sims`` simulations per training and
            validation set of the compressor, ``steps`` its most training steps, ``seed`` an
            integer >= 0, ``progress`` whether to show bars and ``pool`` the block size (in
            cells a side, dividing the mesh) the counts are summed over before the
            compressor.
        load: ``load(model_dir) -> FieldSummary``, the summary saved in ``model_dir``.
    """

    train: Callable[..., FieldSummary]
    load: Callable[[Path], FieldSummary]


#: Field summaries by ``--summary`` name, filled by :func:`register_field_summary`.
FIELD_SUMMARIES: dict[str, FieldSummaryKind] = {}


def register_field_summary(
    kind: str, train: Callable[..., FieldSummary], load: Callable[[Path], FieldSummary]
) -> None:
    """Make ``--summary kind`` train with ``train`` and ``sbi infer`` load with ``load``
    (see :class:`FieldSummaryKind`); registering a kind again replaces it."""
    if kind in ("pk", "moped"):
        raise ValueError(f"kind={kind!r} is invalid: 'pk' and 'moped' are built in")
    FIELD_SUMMARIES[kind] = FieldSummaryKind(train, load)
