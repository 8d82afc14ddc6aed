"""Priors over the inferred parameters, and the unbounded space the flows are trained in.

A :class:`BoxPrior` (independent uniform ranges, e.g. over ``Omega_m`` and ``sigma8``) maps
its box to R^p by the logit of each coordinate, so a flow trained there never puts mass
outside the prior; a :class:`GaussianPrior` maps affinely. Parameters are arrays ``(..., p)``
in the parameters' own units (``Omega_m`` and ``sigma8`` are dimensionless).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import jax.numpy as jnp
import numpy as np


def _names(names: Any) -> tuple[str, ...]:
    names = tuple(str(n) for n in names)
    if not names or len(set(names)) != len(names):
        raise ValueError(f"names={list(names)!r} is invalid: must be distinct and non-empty")
    return names


@dataclasses.dataclass(frozen=True)
class BoxPrior:
    """Independent uniform priors ``low[i] <= theta[i] <= high[i]``.

    Attributes:
        names: parameter names ``(p,)``.
        low, high: bounds ``(p,)`` with ``low < high``, finite.
    """

    names: tuple[str, ...]
    low: tuple[float, ...]
    high: tuple[float, ...]

    def __post_init__(self) -> None:
        names = _names(self.names)
        low = tuple(float(v) for v in self.low)
        high = tuple(float(v) for v in self.high)
        if not len(low) == len(high) == len(names):
            raise ValueError(
                f"low={list(low)}, high={list(high)} must have one value per name {list(names)}"
            )
        for name, lo, hi in zip(names, low, high, strict=True):
            if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
                raise ValueError(f"prior {name}=[{lo}, {hi}] is invalid: need finite low < high")
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)

    @property
    def dim(self) -> int:
        """Number of parameters ``p``."""
        return len(self.names)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` independent draws ``(n, p)``."""
        return rng.uniform(self.low, self.high, size=(n, self.dim))

    def log_prob(self, theta: Any) -> Any:
        """Log density ``(...)`` of ``theta`` ``(..., p)``; ``-inf`` outside the box."""
        lo, hi = jnp.asarray(self.low), jnp.asarray(self.high)
        inside = jnp.all((theta >= lo) & (theta <= hi), axis=-1)
        return jnp.where(inside, -jnp.sum(jnp.log(hi - lo)), -jnp.inf)

    def to_unbounded(self, theta: Any) -> tuple[Any, Any]:
        """``(z, log|dz/dtheta|)``: the logit of each coordinate's position in its range,
        ``z`` ``(..., p)``, and the log Jacobian ``(...)``."""
        lo, hi = jnp.asarray(self.low), jnp.asarray(self.high)
        u = jnp.clip((theta - lo) / (hi - lo), 1e-7, 1 - 1e-7)
        z = jnp.log(u) - jnp.log1p(-u)
        log_jac = jnp.sum(-jnp.log(u) - jnp.log1p(-u) - jnp.log(hi - lo), axis=-1)
        return z, log_jac

    def from_unbounded(self, z: Any) -> Any:
        """Inverse of :meth:`to_unbounded`: ``theta`` ``(..., p)`` inside the box."""
        lo, hi = jnp.asarray(self.low), jnp.asarray(self.high)
        return lo + (hi - lo) * (1.0 / (1.0 + jnp.exp(-z)))

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON, TOML, HDF5 attributes); :func:`prior_from_dict` inverts it."""
        return {
            "kind": "box",
            "names": list(self.names),
            "low": list(self.low),
            "high": list(self.high),
        }


@dataclasses.dataclass(frozen=True)
class GaussianPrior:
    """Multivariate normal prior ``N(mean, cov)``.

    Attributes:
        names: parameter names ``(p,)``.
        mean: ``(p,)``; cov: ``(p, p)`` symmetric positive definite, as nested tuples.
    """

    names: tuple[str, ...]
    mean: tuple[float, ...]
    cov: tuple[tuple[float, ...], ...]

    def __post_init__(self) -> None:
        names = _names(self.names)
        mean = np.asarray(self.mean, float)
        cov = np.asarray(self.cov, float)
        if mean.shape != (len(names),) or cov.shape != (len(names),) * 2:
            raise ValueError(
                f"mean {mean.shape} and cov {cov.shape} must be ({len(names)},) and "
                f"({len(names)}, {len(names)}) for names {list(names)}"
            )
        if not np.allclose(cov, cov.T) or np.any(np.linalg.eigvalsh(cov) <= 0):
            raise ValueError("cov is invalid: must be symmetric positive definite")
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "mean", tuple(mean.tolist()))
        object.__setattr__(self, "cov", tuple(tuple(r) for r in cov.tolist()))

    @property
    def dim(self) -> int:
        """Number of parameters ``p``."""
        return len(self.names)

    @property
    def _chol(self) -> np.ndarray:
        return np.linalg.cholesky(np.asarray(self.cov))

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` independent draws ``(n, p)``."""
        return np.asarray(self.mean) + rng.standard_normal((n, self.dim)) @ self._chol.T

    def log_prob(self, theta: Any) -> Any:
        """Log density ``(...)`` of ``theta`` ``(..., p)``."""
        z, log_jac = self.to_unbounded(theta)
        return log_jac - 0.5 * jnp.sum(z**2, axis=-1) - 0.5 * self.dim * math.log(2 * math.pi)

    def to_unbounded(self, theta: Any) -> tuple[Any, Any]:
        """``(z, log|dz/dtheta|)`` with ``z = L^-1 (theta - mean)`` whitened, ``cov = L L^T``."""
        chol_inv = jnp.asarray(np.linalg.inv(self._chol))
        z = (theta - jnp.asarray(self.mean)) @ chol_inv.T
        log_jac = -float(np.sum(np.log(np.diag(self._chol))))
        return z, jnp.full(jnp.shape(z)[:-1], log_jac)

    def from_unbounded(self, z: Any) -> Any:
        """Inverse of :meth:`to_unbounded`."""
        return jnp.asarray(self.mean) + z @ jnp.asarray(self._chol).T

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON, TOML, HDF5 attributes); :func:`prior_from_dict` inverts it."""
        return {
            "kind": "gaussian",
            "names": list(self.names),
            "mean": list(self.mean),
            "cov": [list(r) for r in self.cov],
        }


Prior = BoxPrior | GaussianPrior

#: Default prior of ``cosmolaw sbi simulate``: wide ranges around Planck 2018.
DEFAULT_BOUNDS: dict[str, tuple[float, float]] = {"Omega_m": (0.2, 0.45), "sigma8": (0.6, 1.0)}


def prior_from_dict(table: Mapping[str, Any]) -> Prior:
    """The prior stored by ``to_dict``."""
    if table["kind"] == "box":
        return BoxPrior(tuple(table["names"]), tuple(table["low"]), tuple(table["high"]))
    if table["kind"] == "gaussian":
        return GaussianPrior(
            tuple(table["names"]), tuple(table["mean"]), tuple(map(tuple, table["cov"]))
        )
    raise ValueError(f"prior kind={table['kind']!r} is not allowed (allowed: box, gaussian)")


def box_prior(bounds: Mapping[str, tuple[float, float]]) -> BoxPrior:
    """A :class:`BoxPrior` from ``{name: (low, high)}``."""
    return BoxPrior(
        tuple(bounds), tuple(b[0] for b in bounds.values()), tuple(b[1] for b in bounds.values())
    )
