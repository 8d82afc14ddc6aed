"""cosmolaw: equation discovery atop a differentiable particle-mesh simulator.

The distribution installs four packages with one-way data flow:

- ``simulator``: the forward model (linear theory, LPT, PM, observation model);
- ``inference``: field-level Bayesian inference (imports ``simulator``);
- ``discovery``: compressors and symbolic regression (imports neither);
- ``experiments``: end-to-end reproductions wiring the three together.

This package holds only what all of them share: pytree dataclasses, atomic file
writing and the command-line dispatcher.
"""

__version__ = "0.1.0"
