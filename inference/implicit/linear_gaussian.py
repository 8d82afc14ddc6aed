"""A linear-Gaussian simulator with an exact posterior: the reference problem of the tests and
of ``benchmarks/sbi_calibration.py``.

Data ``x = A theta + b + eps`` with ``eps ~ N(0, Sigma)`` and prior ``theta ~ N(m0, S0)``; the
posterior is Gaussian with covariance ``S = (S0^-1 + A^T Sigma^-1 A)^-1`` and mean
``S (S0^-1 m0 + A^T Sigma^-1 (x - b))`` (conjugacy). All quantities are dimensionless.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from inference.implicit.prior import GaussianPrior


@dataclasses.dataclass(frozen=True, eq=False)
class LinearGaussian:
    """The problem: ``design`` ``A`` ``(d, p)``, ``offset`` ``b`` ``(d,)``, noise covariance
    ``noise_cov`` ``Sigma`` ``(d, d)`` and the Gaussian ``prior`` over ``p`` parameters."""

    design: np.ndarray
    offset: np.ndarray
    noise_cov: np.ndarray
    prior: GaussianPrior

    def simulate(self, theta: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Data ``(n, d)`` for parameters ``theta`` ``(n, p)``."""
        noise = rng.standard_normal((len(theta), len(self.offset)))
        return theta @ self.design.T + self.offset + noise @ np.linalg.cholesky(self.noise_cov).T

    def posterior(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Exact posterior ``(mean (..., p), cov (p, p))`` given data ``x`` ``(..., d)``."""
        prec0 = np.linalg.inv(np.asarray(self.prior.cov))
        noise_prec = np.linalg.inv(self.noise_cov)
        cov = np.linalg.inv(prec0 + self.design.T @ noise_prec @ self.design)
        info = prec0 @ np.asarray(self.prior.mean) + (x - self.offset) @ noise_prec @ self.design
        return info @ cov, cov

    def posterior_sample(self, x: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` exact posterior draws ``(n, p)`` given one data vector ``x`` ``(d,)``."""
        mean, cov = self.posterior(x)
        return mean + rng.standard_normal((n, len(mean))) @ np.linalg.cholesky(cov).T


def random_problem(num_params: int, num_data: int, seed: int, noise: float = 0.3) -> LinearGaussian:
    """A random instance: ``A`` with standard-normal entries over ``sqrt(d)``, offset ``b``
    standard normal, ``Sigma = noise^2 (I + C C^T / d)`` correlated, and prior ``N(0, I)``."""
    rng = np.random.default_rng(seed)
    design = rng.standard_normal((num_data, num_params)) / np.sqrt(num_data)
    mix = rng.standard_normal((num_data, num_data)) / np.sqrt(num_data)
    noise_cov = noise**2 * (np.eye(num_data) + mix @ mix.T)
    prior = GaussianPrior(
        tuple(f"theta{i}" for i in range(num_params)),
        (0.0,) * num_params,
        tuple(tuple(r) for r in np.eye(num_params).tolist()),
    )
    return LinearGaussian(design, rng.standard_normal(num_data), noise_cov, prior)
