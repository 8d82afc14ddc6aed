"""Where a run came from: package versions, git commit, machine, seeds and timing."""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

#: Distributions whose versions every report records.
PACKAGES = (
    "cosmolaw",
    "jax",
    "jaxlib",
    "numpy",
    "scipy",
    "sympy",
    "pyoperon",
    "matplotlib",
    "h5py",
)


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    """Installed version of each distribution in ``names`` ("not installed" when absent)."""
    versions = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def git_commit(path: str | Path | None = None) -> str | None:
    """Commit hash of the checkout holding ``path`` (default: this package), ``+dirty`` when
    the work tree has changes; None outside a git checkout or without git."""
    where = Path(path) if path is not None else Path(__file__).resolve().parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=10
        )
        if head.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=where,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def jax_devices() -> list[str]:
    """Descriptions of the devices JAX runs on (imports JAX)."""
    import jax

    return [f"{d.platform}:{d.device_kind}" for d in jax.devices()]


def collect(seeds: dict[str, int], started: _dt.datetime, run_time_s: float) -> dict[str, Any]:
    """Provenance record of one run.

    Args:
        seeds: every random seed the run used, by role.
        started: UTC time the run started.
        run_time_s: wall-clock duration of the run in seconds.
    """
    return {
        "versions": package_versions(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "devices": jax_devices(),
        "git_commit": git_commit(),
        "command": " ".join(sys.argv),
        "seeds": dict(seeds),
        "started_utc": started.isoformat(timespec="seconds"),
        "run_time_s": round(float(run_time_s), 2),
    }
