"""Imitation: symbolic regression and neural compressors turning tables into closed-form laws.

The symbolic engine: :func:`discover` (search, select, verify), :func:`assess` (a law of
one's own on the search's footing), :class:`ParetoFront` and :class:`Candidate` (selection
criteria and exports), :class:`LawRegressor` (an estimator facade), :func:`equivalent` /
:func:`identical` (SRBench-style checks) and the PySR readers :func:`read_hall_of_fame` /
:func:`from_pysr`. Names are imported lazily so that
``import discovery`` (and the ``cosmolaw`` command line) does not start JAX.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "discover": "discovery.search",
    "assess": "discovery.search",
    "ParetoFront": "discovery.front",
    "Candidate": "discovery.front",
    "LawRegressor": "discovery.estimator",
    "equivalent": "discovery.postprocess",
    "identical": "discovery.postprocess",
    "read_hall_of_fame": "discovery.pysr_backend",
    "from_pysr": "discovery.pysr_backend",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'discovery' has no attribute {name!r}")
