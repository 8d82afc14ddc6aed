"""Noise models of galaxy counts: draw a mock, and the log-likelihood of counts.

Each model is a frozen pytree dataclass whose fields are its (differentiable) parameters, with
class attributes ``name`` and ``discrete`` (whether counts are integers), and

- ``sample(key, lam) -> counts``: a draw given the expected counts ``lam`` per cell;
- ``log_likelihood(counts, lam, mask=None) -> scalar``: ``ln p(counts | lam)`` summed over the
  cells where ``mask`` is true (all cells by default), normalisation constants included.

``lam`` is the expected count per cell ``nbar_cell * selection * F(delta)`` (dimensionless,
any shape, ``> 0`` where ``mask`` is true; it may be 0 outside the mask). The log-likelihoods
are pure JAX and differentiable in ``lam`` (hence in ``delta`` and the bias parameters) and
in the noise parameters.

- ``poisson``: ``counts ~ Poisson(lam)``;
- ``gaussian``: ``counts ~ Normal(lam, sigma^2)``, ``sigma`` in counts per cell;
- ``negbinom``: negative binomial of mean ``lam`` and variance ``lam + lam^2 / r`` (a Poisson
  draw of a Gamma-distributed rate), tending to Poisson as ``r -> inf``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import gammaln

from cosmolaw.pytree import pytree_dataclass
from simulator.observe.bias import POSITIVE, Domain, check_domain


def _masked_sum(terms: jax.Array, mask: jax.Array | None) -> jax.Array:
    return jnp.sum(terms if mask is None else jnp.where(mask, terms, 0.0))


def _safe_rate(lam: jax.Array, mask: jax.Array | None) -> jax.Array:
    """``lam`` with cells outside the mask set to 1, so that logs there stay finite."""
    return lam if mask is None else jnp.where(mask, lam, 1.0)


@pytree_dataclass
class PoissonNoise:
    """Poisson counts of mean ``lam`` (no parameter)."""

    name = "poisson"
    discrete = True

    def sample(self, key: jax.Array, lam: jax.Array) -> jax.Array:
        """Integer counts (int32), same shape as ``lam``."""
        return jax.random.poisson(key, lam, dtype=jnp.int32)

    def log_likelihood(
        self, counts: jax.Array, lam: jax.Array, mask: jax.Array | None = None
    ) -> jax.Array:
        """``sum(n ln lam - lam - ln n!)`` over the masked cells."""
        lam = _safe_rate(lam, mask)
        n = jnp.asarray(counts, lam.dtype)
        return _masked_sum(n * jnp.log(lam) - lam - gammaln(n + 1.0), mask)


@pytree_dataclass
class GaussianNoise:
    """Gaussian scatter of standard deviation ``sigma > 0`` [counts per cell] around ``lam``."""

    sigma: float = 1.0
    name = "gaussian"
    discrete = False
    DOMAIN: ClassVar[Domain] = {"sigma": POSITIVE}

    def sample(self, key: jax.Array, lam: jax.Array) -> jax.Array:
        """Real-valued counts, same shape and dtype as ``lam``."""
        return lam + self.sigma * jax.random.normal(key, lam.shape, lam.dtype)

    def log_likelihood(
        self, counts: jax.Array, lam: jax.Array, mask: jax.Array | None = None
    ) -> jax.Array:
        """``sum(-(n - lam)^2 / (2 sigma^2) - ln sigma - ln(2 pi) / 2)`` over the masked cells."""
        z = (jnp.asarray(counts, lam.dtype) - lam) / self.sigma
        return _masked_sum(-0.5 * z**2 - jnp.log(self.sigma) - 0.5 * np.log(2 * np.pi), mask)


@pytree_dataclass
class NegativeBinomialNoise:
    """Negative binomial counts: mean ``lam``, variance ``lam + lam^2 / r``, ``r > 0``."""

    r: float = 10.0
    name = "negbinom"
    discrete = True
    DOMAIN: ClassVar[Domain] = {"r": POSITIVE}

    def sample(self, key: jax.Array, lam: jax.Array) -> jax.Array:
        """Integer counts (int32): Poisson draws of Gamma(r, lam / r) rates."""
        key_rate, key_counts = jax.random.split(key)
        rate = jax.random.gamma(key_rate, self.r, lam.shape, lam.dtype) * (lam / self.r)
        return jax.random.poisson(key_counts, rate, dtype=jnp.int32)

    def log_likelihood(
        self, counts: jax.Array, lam: jax.Array, mask: jax.Array | None = None
    ) -> jax.Array:
        """``sum(ln G(n+r) - ln G(r) - ln n! + r ln(r/(r+lam)) + n ln(lam/(r+lam)))``."""
        lam = _safe_rate(lam, mask)
        n = jnp.asarray(counts, lam.dtype)
        r = self.r
        log_total = jnp.log(r + lam)
        terms = (
            gammaln(n + r)
            - gammaln(r)
            - gammaln(n + 1.0)
            + r * (jnp.log(r) - log_total)
            + n * (jnp.log(lam) - log_total)
        )
        return _masked_sum(terms, mask)


NoiseModel = PoissonNoise | GaussianNoise | NegativeBinomialNoise

#: Noise models by name.
NOISE_MODELS: dict[str, type] = {
    "poisson": PoissonNoise,
    "gaussian": GaussianNoise,
    "negbinom": NegativeBinomialNoise,
}


def make_noise(name: str, values: Mapping[str, float] | None = None) -> NoiseModel:
    """The noise model ``name`` with parameters ``values`` (defaults for those not given).

    Raises ``ValueError`` naming ``noise`` for an unknown model, or the parameter that is
    unknown or out of its domain.
    """
    if name not in NOISE_MODELS:
        raise ValueError(
            f"noise={name!r} is not a known noise model (allowed: {list(NOISE_MODELS)})"
        )
    cls = NOISE_MODELS[name]
    values = dict(values or {})
    known = [f for f in cls.__dataclass_fields__]
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ValueError(
            f"noise parameter {unknown[0]!r} is not a parameter of the {name!r} model "
            f"(its parameters: {', '.join(known) or 'none'})"
        )
    return check_domain(f"noise model {name}", cls(**{k: float(v) for k, v in values.items()}))
