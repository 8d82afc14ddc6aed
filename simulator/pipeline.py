"""The functional forward model ``white_noise -> linear_field -> lpt -> nbody -> paint`` and
the convenience call ``simulate``."""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
from jax import Array

from simulator.config import SimConfig
from simulator.cosmology import Cosmology
from simulator.gravity import density_contrast
from simulator.growth import growth_table
from simulator.ic import linear_field, white_noise
from simulator.lpt import lpt
from simulator.nbody import State, nbody


class SimResult(NamedTuple):
    """Output of a simulation.

    Attributes:
        noise: white noise ``(mesh, mesh, mesh)``.
        delta_linear: linear density contrast at a = 1, ``(mesh, mesh, mesh)``.
        state: final particles (``disp``, ``vel`` in Mpc/h, ``(N, 3)``) at ``a_stop``.
        delta: final CIC density contrast, ``(mesh, mesh, mesh)``.
        snapshots: one ``State`` per ``conf.snapshots`` entry.
        snapshot_deltas: their density contrasts, each ``(mesh, mesh, mesh)``.
    """

    noise: Array
    delta_linear: Array
    state: State
    delta: Array
    snapshots: tuple[State, ...]
    snapshot_deltas: tuple[Array, ...]


class _ProgressHook:
    """Host-side receiver of per-step callbacks; ``bar`` is set while a run shows progress."""

    bar = None

    @staticmethod
    def tick(step: Array) -> None:
        if _ProgressHook.bar is not None:
            _ProgressHook.bar.update(1)


def forward(
    noise: Array,
    cosmo: Cosmology,
    conf: SimConfig,
    fixed_amplitude: bool = False,
    paired: bool = False,
    progress: bool = False,
) -> SimResult:
    """Differentiable forward model from white noise to the final density field.

    Args:
        noise: white noise ``(mesh, mesh, mesh)`` (see ``white_noise``).
        cosmo: cosmology (traceable; differentiate with respect to any field).
        conf: static configuration.
        fixed_amplitude, paired: see ``linear_modes``.
        progress: report each step to the progress bar of ``simulate`` (host callback).

    Returns:
        ``SimResult``.
    """
    table = growth_table(cosmo)
    delta_lin = linear_field(noise, cosmo, conf, fixed_amplitude, paired)
    init = lpt(delta_lin, table, conf)
    hook = _ProgressHook.tick if progress else None
    final, snaps = nbody(init, cosmo, table, conf, hook)
    deltas = tuple(density_contrast(s.disp, conf) for s in snaps)
    return SimResult(noise, delta_lin, final, density_contrast(final.disp, conf), snaps, deltas)


_forward_jit = jax.jit(forward, static_argnames=("conf", "fixed_amplitude", "paired", "progress"))


@partial(jax.jit, static_argnames=("conf",))
def _noise(seed: Array, conf: SimConfig) -> Array:
    return white_noise(seed, conf)


def simulate(
    cosmo: Cosmology | None = None,
    conf: SimConfig | None = None,
    seed: int = 0,
    *,
    fixed_amplitude: bool = False,
    paired: bool = False,
    progress: bool = False,
) -> SimResult:
    """Run a PM simulation from a seed (validated before anything is compiled).

    Args:
        cosmo: cosmology (default Planck 2018).
        conf: configuration (default ``SimConfig()``: 32^3 mesh and particles, 128 Mpc/h box,
            10 FastPM steps from a = 0.1 with 2LPT initial conditions).
        seed: non-negative integer seed of the white noise.
        fixed_amplitude, paired: see ``linear_modes``.
        progress: show a tqdm progress bar over the time steps.

    Returns:
        ``SimResult`` (final particles, density contrast, linear field, snapshots).
    """
    cosmo = Cosmology.planck18() if cosmo is None else cosmo
    conf = SimConfig() if conf is None else conf
    cosmo.validate()
    conf.validate()
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed={seed!r} is invalid: must be a non-negative integer")
    noise = _noise(seed, conf)
    if not progress:
        return _forward_jit(noise, cosmo, conf, fixed_amplitude, paired, False)
    from cosmolaw.progress import progress_bar

    with progress_bar(total=len(conf.time_grid()) - 1, desc="PM steps", unit="step") as bar:
        _ProgressHook.bar = bar
        try:
            result = jax.block_until_ready(
                _forward_jit(noise, cosmo, conf, fixed_amplitude, paired, True)
            )
            jax.effects_barrier()
        finally:
            _ProgressHook.bar = None
    return result
