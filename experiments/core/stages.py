"""Helpers an experiment's ``run`` outline calls: its checks, its data file and its seeds.

An experiment's ``run(config, out_dir)`` reads as its module docstring's numbered steps,
one named stage per step (data, search, checks, report); the plumbing those stages share
lives here:

- :func:`below`, :func:`above`, :func:`within`, :func:`between`: one scientific check
  each, with the criterion written out the way the report and ``discoveries.json`` show it;
- :class:`Dataset` and :func:`write_data_file`: the experiment's HDF5 file, written
  atomically, the configuration as file attributes and units and descriptions on datasets;
  :func:`simulations_by_seed`: the training and held-out simulations of an experiment,
  one group per seed of that file;
- :func:`seeds_of`: the seeds of a run by role, read from its configuration.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from experiments.core.html_report import Check


def below(name: str, value: float, limit: float, note: str = "") -> Check:
    """The check ``value < limit``; ``note`` (e.g. the literature value) follows the criterion."""
    return Check(name, float(value), _criterion(f"< {limit:g}", note), bool(value < limit))


def above(name: str, value: float, limit: float, note: str = "") -> Check:
    """The check ``value > limit``."""
    return Check(name, float(value), _criterion(f"> {limit:g}", note), bool(value > limit))


def within(name: str, value: float, target: float, tolerance: float, note: str = "") -> Check:
    """The check ``|value - target| <= tolerance``."""
    passed = bool(abs(value - target) <= tolerance)
    return Check(name, float(value), _criterion(f"{target:g} +- {tolerance:g}", note), passed)


def _criterion(text: str, note: str) -> str:
    return f"{text} ({note})" if note else text


@dataclass(frozen=True)
class Dataset:
    """An array of an experiment's data file with its ``units`` and ``description``."""

    data: Any
    units: str = "1"
    description: str = ""


def write_data_file(
    path: str | Path,
    experiment: str,
    config: Mapping[str, Any],
    datasets: Mapping[str, Any],
    attrs: Mapping[str, Any] | None = None,
    *,
    group_attrs: Mapping[str, Mapping[str, Any]] | None = None,
) -> Path:
    """Write an experiment's HDF5 data file atomically.

    Args:
        path: the file (``out_dir / "<name>.h5"``).
        experiment: the experiment's name, stored as the ``experiment`` attribute.
        config: its configuration, stored as file attributes (nested keys as ``a/b``).
        datasets: ``{"group/name": array or Dataset}``; a :class:`Dataset` also stores its
            ``units`` and ``description`` as attributes of the HDF5 dataset.
        attrs: further file attributes (a list of strings, for example).
        group_attrs: attributes of groups, ``{"group": {name: value}}`` (nested keys as
            ``a/b``); a group not made by ``datasets`` is created.

    Returns:
        ``path``.
    """
    from cosmolaw.io import atomic_h5, set_attrs

    with atomic_h5(path) as h5:
        set_attrs(h5, {"experiment": experiment, **config, **(attrs or {})})
        for name, entry in datasets.items():
            described = entry if isinstance(entry, Dataset) else Dataset(entry)
            ds = h5.create_dataset(name, data=np.asarray(described.data))
            if isinstance(entry, Dataset):
                ds.attrs["units"] = described.units
                ds.attrs["description"] = described.description
        for group, values in (group_attrs or {}).items():
            set_attrs(h5.require_group(group), values)
    return Path(path)


def seeds_of(config: Mapping[str, Any], **roles: str) -> dict[str, int]:
    """The run's seeds by role: ``seeds_of(config, mock="mock_seed")`` is
    ``{"mock": int(config["mock_seed"])}``."""
    return {role: int(config[key]) for role, key in roles.items()}


def between(name: str, value: float, low: float, high: float, note: str = "") -> Check:
    """The check ``low <= value <= high``, written ``in [low, high]``."""
    passed = bool(low <= value <= high)
    return Check(name, float(value), _criterion(f"in [{low:g}, {high:g}]", note), passed)


def simulations_by_seed(
    simulate: Callable[[Mapping[str, Any], int], Mapping[str, Any]],
    config: Mapping[str, Any],
    path: str | Path,
    experiment: str,
) -> dict[int, Mapping[str, Any]]:
    """One simulation per seed of ``config["train_seeds"]`` then ``config["test_seeds"]``.

    Args:
        simulate: ``simulate(config, seed)`` -> the simulation's arrays by name.
        config: the experiment's configuration, with the two seed lists.
        path: the data file; each simulation is its group ``seed_<seed>``, one dataset per
            array (written by :func:`write_data_file`, without units).
        experiment: the experiment's name.

    Returns:
        The simulations by seed, training seeds first.
    """
    sims = {s: simulate(config, s) for s in [*config["train_seeds"], *config["test_seeds"]]}
    datasets = {
        f"seed_{s}/{name}": value for s, fields in sims.items() for name, value in fields.items()
    }
    write_data_file(path, experiment, config, datasets)
    return sims
