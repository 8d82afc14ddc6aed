"""Forward model: a differentiable particle-mesh N-body simulator in JAX.

Linear theory lives in ``cosmology`` (parameters, background), ``growth``
(D1, D2, f1, f2) and ``linear_power`` (Eisenstein & Hu P(k)); the dynamics in
``ic``, ``lpt``, ``cic``, ``gravity`` and ``nbody``; measurements in ``measure``;
the observation model (bias, RSD, selection, noise, mocks, haloes) in the subpackage
``simulator.observe``; the scale-out across devices and hosts in ``simulator.distributed``.
The modules ``lpt`` and ``nbody`` keep their names here: call ``simulator.lpt.lpt``
and ``simulator.nbody.nbody``.
"""

from simulator.cic import paint, readout
from simulator.config import SimConfig
from simulator.cosmology import PRESETS, Cosmology, E, dlnE_dlna, omega_m_a
from simulator.gravity import acceleration, density_contrast, force_mesh, lattice
from simulator.growth import (
    Growth,
    GrowthTable,
    growth_at,
    growth_factor,
    growth_rate,
    growth_table,
)
from simulator.ic import linear_field, linear_modes, white_noise
from simulator.linear_power import TabulatedTransfer, linear_power, sigma_r, transfer_function
from simulator.measure import (
    Spectrum,
    correlation_coefficient,
    cross_power,
    field_transfer,
    power_spectrum,
)
from simulator.nbody import State, integrate, integrate_backward, kdk_step, step_factors
from simulator.pipeline import SimResult, forward, simulate

__all__ = [
    "SimConfig",
    "SimResult",
    "Spectrum",
    "State",
    "acceleration",
    "correlation_coefficient",
    "cross_power",
    "density_contrast",
    "field_transfer",
    "force_mesh",
    "forward",
    "integrate",
    "integrate_backward",
    "kdk_step",
    "lattice",
    "linear_field",
    "linear_modes",
    "paint",
    "power_spectrum",
    "readout",
    "simulate",
    "step_factors",
    "white_noise",
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
