"""Forward model: a differentiable particle-mesh N-body simulator in JAX.

Linear theory lives in ``cosmology`` (parameters, background), ``growth``
(D1, D2, f1, f2) and ``linear_power`` (Eisenstein & Hu P(k)); the dynamics in
``ic``, ``lpt``, ``cic``, ``gravity`` and ``nbody``; measurements in ``measure``;
the observation model in ``bias``, ``rsd``, ``selection``, ``noise`` and ``mock``.
"""

from simulator.cosmology import PRESETS, Cosmology, E, dlnE_dlna, omega_m_a
from simulator.growth import (
    Growth,
    GrowthTable,
    growth_at,
    growth_factor,
    growth_rate,
    growth_table,
)
from simulator.linear_power import TabulatedTransfer, linear_power, sigma_r, transfer_function

__all__ = [
    "PRESETS",
    "Cosmology",
    "E",
    "Growth",
    "GrowthTable",
    "TabulatedTransfer",
    "dlnE_dlna",
    "growth_at",
    "growth_factor",
    "growth_rate",
    "growth_table",
    "linear_power",
    "omega_m_a",
    "sigma_r",
    "transfer_function",
]
