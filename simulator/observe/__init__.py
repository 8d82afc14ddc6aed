"""The observation model: what a survey sees of the matter field.

The dynamics (``simulator.ic``, ``lpt``, ``nbody``) end in particles; this package turns
them into galaxy counts, the layer ``inference`` builds its likelihoods on. One module per
step of the data flow ``particles -> RSD -> CIC density -> bias law -> selection -> noise``:

- ``rsd``: redshift-space displacements (plane-parallel or radial line of sight);
- ``bias``: bias laws ``F(delta)`` (linear, quadratic, power law, Neyrinck et al. 2014,
  broken power law), each a parameter dataclass and a pure function; add a law here;
- ``selection``: survey masks and radial selection functions;
- ``noise``: count likelihoods (Poisson, Gaussian, negative binomial); add a noise model here;
- ``mock``: the whole chain, ``make_mock`` / ``write_mock`` / ``read_mock`` (``DIR/mock.h5``),
  and the expected counts and log-likelihood shared with ``inference``;
- ``halos``: friends-of-friends haloes of a particle set;
- ``cli``: ``cosmolaw mock``.
"""

from simulator.observe.bias import BiasLaw, get_bias_law
from simulator.observe.mock import (
    Mock,
    Observation,
    counts_log_likelihood,
    expected_counts,
    make_mock,
    read_mock,
    write_mock,
)
from simulator.observe.noise import make_noise
from simulator.observe.rsd import RSDConfig

__all__ = [
    "BiasLaw",
    "Mock",
    "Observation",
    "RSDConfig",
    "counts_log_likelihood",
    "expected_counts",
    "get_bias_law",
    "make_mock",
    "make_noise",
    "read_mock",
    "write_mock",
]
