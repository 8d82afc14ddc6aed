"""Fisher information of summaries estimated from simulations.

With ``n_s`` fiducial summaries ``x`` (covariance ``C``) and ``n_d`` derivatives ``dx/dtheta``
(mean ``dmu``), the Gaussian Fisher matrix of the summaries is ``F = dmu^T C^-1 dmu``.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp


class FisherStats(NamedTuple):
    """Fisher matrix of a set of summaries and the statistics it is built from."""

    fisher: jax.Array  #: (n_theta, n_theta)
    cov: jax.Array  #: (p, p) covariance of the fiducial summaries
    inv_cov: jax.Array  #: (p, p) its inverse (with the Hartlap factor if asked)
    mean: jax.Array  #: (p,) mean fiducial summary
    dmu: jax.Array  #: (p, n_theta) mean derivative of the summaries w.r.t. the parameters


def hartlap_factor(n_sims: int, n_summaries: int) -> float:
    """Debiasing factor ``(n - p - 2) / (n - 1)`` of an inverse sample covariance."""
    if n_sims <= n_summaries + 2:
        raise ValueError(
            f"n_sims={n_sims}: need more than n_summaries + 2 = {n_summaries + 2} simulations"
        )
    return (n_sims - n_summaries - 2) / (n_sims - 1)


def fisher_stats(fiducial: jax.Array, derivative: jax.Array, hartlap: bool = False) -> FisherStats:
    """Fisher statistics from summaries ``fiducial`` (n_s, p) and ``derivative`` (n_d, n_theta, p).

    ``hartlap=True`` debiases the inverse covariance (use it for reported numbers, not in a loss).
    """
    n_s, p = fiducial.shape
    mean = jnp.mean(fiducial, axis=0)
    resid = fiducial - mean
    cov = resid.T @ resid / (n_s - 1)
    inv_cov = jnp.linalg.inv(cov)
    if hartlap:
        inv_cov = inv_cov * hartlap_factor(n_s, p)
    dmu = jnp.mean(derivative, axis=0).T
    fisher = dmu.T @ inv_cov @ dmu
    return FisherStats(0.5 * (fisher + fisher.T), cov, inv_cov, mean, dmu)


def log_det(matrix: jax.Array) -> jax.Array:
    """log |det M| of a square matrix (slogdet)."""
    return jnp.linalg.slogdet(matrix)[1]


def gaussian_fisher(dmu: jax.Array, cov: jax.Array) -> jax.Array:
    """Fisher matrix ``dmu^T C^-1 dmu`` of Gaussian data with mean derivative ``dmu`` (n, n_theta)
    and parameter-independent covariance ``cov`` (n, n)."""
    return dmu.T @ jnp.linalg.solve(cov, dmu)
