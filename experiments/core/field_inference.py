"""Field-level inference as experiments run it: chains of a posterior in a run directory.

An experiment's configuration names the sampler and its lengths (``sampler``, ``samples``,
``warmup``, ``chains``, ``thin``, ``inference_seed``); :func:`run_config` turns them into the
driver's ``RunConfig`` (and so validates them), and :func:`sample_chains` runs the chains of
one posterior into a directory named after a digest of the posterior's description, so that
a rerun of the same posterior resumes its chains and another posterior gets its own
directory. ``field-level-bias`` and ``fli-vs-ili`` call both.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np


def run_config(config: dict[str, Any]):
    """The ``inference.driver.RunConfig`` of an experiment's ``config``.

    Args:
        config: ``sampler`` (a name of ``inference.samplers.SAMPLERS``), ``samples`` and
            ``warmup`` (steps per chain), ``chains``, ``thin`` (fields stored every ``thin``
            steps; a checkpoint every ``10 thin`` steps) and ``inference_seed``.

    Raises:
        ValueError: a value outside its domain (from ``RunConfig``).
    """
    from inference.driver import RunConfig

    return RunConfig(
        sampler=config["sampler"],
        num_samples=int(config["samples"]),
        num_warmup=int(config["warmup"]),
        num_chains=int(config["chains"]),
        thin=int(config["thin"]),
        checkpoint_every=int(config["thin"]) * 10,
        seed=int(config["inference_seed"]),
    )


def sample_chains(
    posterior: Any,
    config: dict[str, Any],
    out: Path,
    truth: dict[str, np.ndarray],
    model: dict[str, Any],
) -> Path:
    """Sample ``posterior`` into ``out-<digest>/chain.h5`` (``inference.driver.run_chains``).

    Args:
        posterior: an ``inference.posterior.FieldPosterior`` (``inference.models``).
        config: the experiment's configuration, read by :func:`run_config`.
        out: the run directory's path without its digest (``.../chains/field``).
        truth: the mock's true fields (``simulator.observe.mock.make_mock``), each
            ``(m, m, m)``: ``white_noise`` (unit variance), ``delta_linear`` and
            ``delta_observed`` (density contrasts, dimensionless); stored in the chain file
            as ``truth/s``, ``truth/delta_L`` and ``truth/delta``.
        model: JSON-able description of the posterior beyond ``posterior.name`` (data,
            priors, observation); ``digest`` is the first 10 hex digits of the SHA-1 of it
            with the name, and it is stored as the chain file's ``posterior`` attribute.

    Returns:
        Path of ``chain.h5``: resumed if the directory holds the same posterior's chains.
    """
    from inference.driver import run_chains

    described = json.loads(json.dumps({"name": posterior.name, **model}))
    digest = hashlib.sha1(json.dumps(described, sort_keys=True).encode()).hexdigest()[:10]
    fields = {
        "s": truth["white_noise"],
        "delta_L": truth["delta_linear"],
        "delta": truth["delta_observed"],
    }
    return run_chains(
        posterior,
        run_config(config),
        out.with_name(f"{out.name}-{digest}"),
        truth=fields,
        posterior_attrs=described,
    )
