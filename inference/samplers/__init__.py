"""Samplers of the field-level posterior, each a BlackJAX-style module.

- :mod:`~inference.samplers.borg_hmc`: HMC with randomised step size and number of steps;
- :mod:`~inference.samplers.nuts`: NUTS with window adaptation (BlackJAX);
- :mod:`~inference.samplers.mclmc`: MCLMC and Metropolis-adjusted MCLMC with auto-tuning.

All of them sample the field and the scalar parameters jointly.
"""

from __future__ import annotations

from collections.abc import Callable

from jax import Array

from inference.samplers.base import Sampler, StepInfo

#: Sampler names accepted by :func:`make_sampler` and ``cosmolaw infer --sampler``.
SAMPLERS = ("mclmc", "adjusted_mclmc", "borg_hmc", "nuts")


def make_sampler(name: str, logdensity_fn: Callable[..., Array]) -> Sampler:
    """The sampler called ``name`` (one of :data:`SAMPLERS`) on a latent log density."""
    from inference.samplers import borg_hmc, mclmc, nuts

    builders = {
        "mclmc": mclmc.sampler,
        "adjusted_mclmc": mclmc.adjusted_sampler,
        "borg_hmc": borg_hmc.sampler,
        "nuts": nuts.sampler,
    }
    if name not in builders:
        raise ValueError(f"sampler={name!r} is not allowed: use one of {SAMPLERS}")
    return builders[name](logdensity_fn)


__all__ = ["SAMPLERS", "Sampler", "StepInfo", "make_sampler"]
