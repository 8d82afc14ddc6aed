"""Linear score compression and MOPED (Heavens, Jimenez & Lahav 2000; Alsing & Wandelt 2018).

For data with mean ``mu(theta)`` and covariance ``C`` near the fiducial point, the linear score
``t = dmu^T C^-1 (x - mu)`` keeps all the Fisher information of Gaussian data. MOPED's
Gram-Schmidt vectors span the same space with uncorrelated, unit-variance summaries; here they
are ``t = L^-1 dmu^T C^-1 (x - mu)`` with ``F = L L^T`` (Cholesky), the same construction.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from cosmolaw.pytree import pytree_dataclass
from discovery.compress.fisher import fisher_stats


@pytree_dataclass
class LinearCompressor:
    """Summaries ``t = weights @ (x - mean)``; ``mean`` (n_data,), ``weights`` (n_theta, n_data)."""

    mean: jax.Array
    weights: jax.Array

    def __call__(self, x: jax.Array) -> jax.Array:
        """Compress data ``x`` of shape (..., n_data) to (..., n_theta)."""
        return (x - self.mean) @ self.weights.T


def score_compressor(mean: jax.Array, dmu: jax.Array, cov: jax.Array) -> LinearCompressor:
    """Linear score compression for mean derivative ``dmu`` (n_data, n_theta), covariance ``cov``
    (n_data, n_data) and fiducial mean ``mean`` (n_data,)."""
    return LinearCompressor(jnp.asarray(mean), jnp.linalg.solve(cov, dmu).T)


def moped_compressor(mean: jax.Array, dmu: jax.Array, cov: jax.Array) -> LinearCompressor:
    """MOPED: the score orthonormalised so the summaries have unit covariance (inputs as
    ``score_compressor``)."""
    score = score_compressor(mean, dmu, cov)
    chol = jnp.linalg.cholesky(score.weights @ dmu)
    return LinearCompressor(
        score.mean, jax.scipy.linalg.solve_triangular(chol, score.weights, lower=True)
    )


def fit_moped(fiducial: jax.Array, derivative: jax.Array) -> LinearCompressor:
    """MOPED from simulations: ``fiducial`` (n_s, n_data) and ``derivative`` (n_d, n_theta,
    n_data) data vectors (e.g. P(k) bins) at the fiducial parameters."""
    n_s, n_data = fiducial.shape
    if n_s <= n_data + 2:
        raise ValueError(f"n_s={n_s}: need more than n_data + 2 = {n_data + 2} simulations")
    stats = fisher_stats(fiducial, derivative)
    return moped_compressor(stats.mean, stats.dmu, stats.cov)
