"""Samplers of the field-level posterior, each a BlackJAX-style module.

- :mod:`~inference.samplers.borg_hmc`: HMC with randomised step size and number of steps
  (``borg_hmc``), or with quarter-period trajectories and a jittered step size
  (``quarter_hmc``);
- :mod:`~inference.samplers.nuts`: NUTS with window adaptation (BlackJAX);
- :mod:`~inference.samplers.mclmc`: MCLMC and Metropolis-adjusted MCLMC with auto-tuning;
- :mod:`~inference.samplers.gibbs`: block updates, any of the above on the field alternating
  with a random walk on the bias/cosmology/noise scalars.

``blocks="joint"`` samples the field and the scalar parameters jointly with the named sampler;
``blocks="gibbs"`` uses the named sampler for the field block only.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from jax import Array

from inference.samplers.base import CHAIN_AXIS, Sampler, StepInfo
from inference.samplers.gibbs import ScalarConditional

#: Sampler names accepted by :func:`make_sampler` and ``cosmolaw infer --sampler``.
SAMPLERS = ("mclmc", "adjusted_mclmc", "borg_hmc", "quarter_hmc", "nuts")
#: How the parameters are updated: all at once, or field and scalars alternately.
BLOCKS = ("joint", "gibbs")


def make_sampler(
    name: str,
    logdensity_fn: Callable[..., Array],
    blocks: str = "joint",
    conditional: ScalarConditional | None = None,
    energy_variance: float | None = None,
) -> Sampler:
    """The sampler called ``name`` (one of :data:`SAMPLERS`) on a latent log density.

    Args:
        name: sampler of the joint position (``blocks="joint"``) or of the field block.
        logdensity_fn: latent log density of ``{"s": ..., group: {name: value}}``.
        blocks: one of :data:`BLOCKS`.
        conditional: with ``blocks="gibbs"``, how to evaluate the scalar block's log density
            (default: the joint log density at fixed ``s``).
        energy_variance: ``mclmc``'s target energy-error variance per dimension (default
            :data:`inference.samplers.mclmc.DESIRED_ENERGY_VAR`); ignored by the others.
    """
    from inference.samplers import borg_hmc, gibbs, mclmc, nuts

    builders = {
        "mclmc": partial(
            mclmc.sampler, desired_energy_var=energy_variance or mclmc.DESIRED_ENERGY_VAR
        ),
        "adjusted_mclmc": mclmc.adjusted_sampler,
        "borg_hmc": borg_hmc.sampler,
        "quarter_hmc": borg_hmc.quarter_period_sampler,
        "nuts": nuts.sampler,
    }
    if name not in builders:
        raise ValueError(f"sampler={name!r} is not allowed: use one of {SAMPLERS}")
    if blocks not in BLOCKS:
        raise ValueError(f"blocks={blocks!r} is not allowed: use one of {BLOCKS}")
    if blocks == "gibbs":
        return gibbs.sampler(logdensity_fn, builders[name], conditional)
    return builders[name](logdensity_fn)


__all__ = [
    "BLOCKS",
    "CHAIN_AXIS",
    "SAMPLERS",
    "ScalarConditional",
    "Sampler",
    "StepInfo",
    "make_sampler",
]
