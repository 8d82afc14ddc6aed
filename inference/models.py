"""Posteriors for concrete data models.

- :func:`linear_gaussian_posterior`: data = delta_L + Gaussian noise, whose posterior is the
  analytic Wiener filter (the reference every sampler is tested against).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from jax.sharding import Mesh

from inference.fields import fourier_filter
from inference.posterior import FieldPosterior
from simulator.config import SimConfig
from simulator.distributed.mesh import num_shards
from simulator.observe.bias import BiasLaw


def linear_gaussian_posterior(data: Array, transfer: Array, box: float, noise_std: float):
    """Posterior of white noise ``s`` given ``data = irfft(rfft(s) * transfer) + noise``.

    Args:
        data: observed field, shape ``(m, m, m)``.
        transfer: rfft-shaped ``(m, m, m//2+1)`` real filter, ``sqrt(P(k) / V_cell)`` for a
            linear density contrast of power spectrum ``P`` [(Mpc/h)^3] on cells of volume
            ``V_cell`` [(Mpc/h)^3].
        box: box side [Mpc/h].
        noise_std: per-cell noise standard deviation (> 0).
    """
    data = jnp.asarray(data, jnp.float32)
    mesh = data.shape[0]
    if data.shape != (mesh,) * 3:
        raise ValueError(f"data shape {data.shape} is not allowed: need a cubic (m, m, m) mesh")
    if np.shape(transfer) != (mesh, mesh, mesh // 2 + 1):
        raise ValueError(
            f"transfer shape {np.shape(transfer)} does not match the data mesh {mesh}: "
            f"need {(mesh, mesh, mesh // 2 + 1)}"
        )
    if not noise_std > 0:
        raise ValueError(f"noise_std={noise_std} is not allowed: need a positive value")
    transfer = jnp.asarray(transfer, jnp.float32)

    def linear(s: Array, cosmo) -> Array:
        return fourier_filter(s, transfer)

    def loglik(fields, bias, noise) -> Array:
        return -0.5 * jnp.sum(jnp.square((data - fields["delta"]) / noise_std))

    return FieldPosterior(
        mesh, box, linear, lambda delta_l, cosmo: delta_l, loglik, priors={}, name="linear Gaussian"
    )


#: Forward models of :func:`counts_posterior` (names shared with ``cosmolaw mock``).
FORWARD_MODELS = ("lpt1", "lpt2", "pm")
#: Cosmological parameters that can be sampled.
COSMO_PARAMS = ("Omega_m", "sigma8")


def default_priors(defaults: dict[str, float], names: list[str]) -> dict[str, tuple[float, float]]:
    """Broad Gaussian priors centred on ``defaults``: std half the value (1 for a zero value)."""
    return {n: (float(defaults[n]), 0.5 * abs(float(defaults[n])) or 1.0) for n in names}


def counts_posterior(
    counts: np.ndarray,
    selection: np.ndarray,
    conf,
    cosmo,
    obs,
    model: str = "lpt1",
    bias_priors: dict[str, tuple[float, float]] | None = None,
    cosmo_priors: dict[str, tuple[float, float]] | None = None,
    noise_priors: dict[str, tuple[float, float]] | None = None,
    bias_law: BiasLaw | None = None,
    devices: int | None = None,
    halo: int | None = None,
) -> FieldPosterior:
    """Posterior of white noise and parameters given galaxy counts on the mesh.

    Forward model: ``s -> delta_L = linear_field(s)`` (a = 1) -> 1LPT/2LPT to ``a_stop``
    (``model = "lpt1"/"lpt2"``) or LPT to ``a_start`` then ``conf.steps`` PM steps with adjoint
    gradients (``"pm"``) -> redshift space and CIC (``obs.rsd``) -> ``delta``. Observation:
    ``lam = nbar_cell * selection * F(delta; bias)``, likelihood ``obs.noise`` over the cells
    with ``selection > 0``.

    Args:
        counts, selection: data on the mesh ``(m, m, m)`` (validated here).
        conf: ``simulator.config.SimConfig`` (mesh, box, times, steps).
        cosmo: ``simulator.cosmology.Cosmology``; parameters not sampled stay fixed.
        obs: ``simulator.observe.mock.Observation`` (bias law, nbar, noise, RSD); its bias and noise
            parameter values are used for those not sampled.
        model: one of :data:`FORWARD_MODELS`.
        bias_priors, cosmo_priors, noise_priors: ``{name: (mean, std)}`` of the sampled
            parameters; ``None`` samples every bias parameter with :func:`default_priors`
            around the law's defaults, and no cosmological or noise parameter.
        bias_law: optional ``simulator.observe.bias.BiasLaw`` used instead of ``obs``'s law (e.g. a
            discovered law from :func:`inference.symbolic_bias.symbolic_bias_law`); its
            ``params_type`` defaults are the values of the parameters not sampled.
        devices: ``None`` runs on one device; ``N`` runs the forward model on the sharded
            particle mesh of ``simulator.distributed`` over the first ``N`` of
            ``jax.devices()`` (all hosts' after ``jax.distributed.initialize``): ``s``, the
            fields, the data and the gradient in ``s`` are split in slabs of ``mesh / N``
            planes, FFTs by all-to-all transposes, CIC with halo exchange. ``N`` must divide
            ``conf.mesh`` and ``conf.ptcl_grid`` (:func:`check_devices`).
        halo: with ``devices``, planes (mesh cells) painted beyond each slab
            (``simulator.distributed.cic``); ``None`` gives ``cic.default_halo`` (``mesh / 8``).
            It must exceed how far any particle moves, redshift-space shift included, out of
            its Lagrangian slab, or the density is wrong there.

    Raises:
        ValueError: naming the argument, for bad data, names, ``model``, ``devices`` or
            ``halo``, before anything is compiled.
    """
    import dataclasses

    from inference.data import compact_counts, validate_counts
    from simulator.growth import growth_table
    from simulator.ic import linear_field
    from simulator.lpt import lpt
    from simulator.nbody import nbody
    from simulator.observe.mock import expected_counts, redshift_space_displacement

    if model not in FORWARD_MODELS:
        raise ValueError(f"model={model!r} is not allowed: use one of {FORWARD_MODELS}")
    validate_counts(counts, selection, conf.mesh)
    grid = sharded_grid(conf, devices, halo)
    law, noise_model = obs.law, obs.noise_model()
    fixed_bias = dict(obs.bias_params)
    if bias_law is not None:
        if bias_law.params_type is None:
            raise ValueError(
                f"bias_law={bias_law.name!r} has no params_type: a law passed to the posterior "
                "needs a parameter dataclass with defaults (see inference.symbolic_bias)"
            )
        law, fixed_bias = bias_law, dataclasses.asdict(bias_law.params_type())
    if bias_priors is None:
        defaults = dataclasses.asdict(law.params_type()) if law.params_type else fixed_bias
        bias_priors = default_priors(defaults, list(fixed_bias))
    cosmo_priors = dict(cosmo_priors or {})
    for name, table in (("bias", bias_priors), ("noise", noise_priors or {})):
        known = fixed_bias if name == "bias" else dict(obs.noise_params)
        for pname in table:
            if pname not in known:
                raise ValueError(f"{name} parameter {pname!r} is unknown: use one of {list(known)}")
    for pname in cosmo_priors:
        if pname not in COSMO_PARAMS:
            raise ValueError(f"cosmology parameter {pname!r} is not allowed: use {COSMO_PARAMS}")
    if model != "pm":
        conf = dataclasses.replace(conf, lpt_order=1 if model == "lpt1" else 2)
    fixed_table = growth_table(cosmo) if not cosmo_priors else None
    # Compact integer counts, and the mask taken from the selection inside the likelihood:
    # no float32 or boolean copies of mesh-sized data (4.3 GB and 1 GB each at 1024^3).
    counts = _on_grid(jnp.asarray(compact_counts(counts, noise_model.discrete)), grid)
    sel = _on_grid(jnp.asarray(selection, jnp.float32), grid)
    ffts, forces, paint = _forward_hooks(conf, grid)

    def cosmology(values):
        return dataclasses.replace(cosmo, **values) if values else cosmo

    def linear(s, cosmo_values):
        return linear_field(s, cosmology(cosmo_values), conf, **ffts)

    def evolve(delta_l, cosmo_values):
        c = cosmology(cosmo_values)
        table = fixed_table if fixed_table is not None else growth_table(c)
        if model == "pm":
            state, _ = nbody(lpt(delta_l, table, conf, **ffts), c, table, conf, forces=forces)
        else:
            state = lpt(delta_l, table, conf, a=conf.a_stop, **ffts)
        return paint(redshift_space_displacement(state.disp, state.vel, conf, obs.rsd))

    def loglik(fields, bias, noise):
        values = {**fixed_bias, **bias}
        bias_params = law.params_type(**values) if law.params_type else values
        lam = expected_counts(fields["delta"], law, bias_params, obs.nbar_cell, sel)
        nm = dataclasses.replace(noise_model, **noise) if noise else noise_model
        return nm.log_likelihood(counts, lam, sel > 0)

    priors = {"bias": bias_priors, "cosmo": cosmo_priors, "noise": dict(noise_priors or {})}
    name = f"{model} + {law.name} bias + {obs.noise} counts on {conf.mesh}^3"
    if grid is not None:
        name += f" over {num_shards(grid[0])} devices"
    sampled = {g: t for g, t in priors.items() if t}
    devices_mesh = None if grid is None else grid[0]
    blind = np.asarray(selection) <= 0
    unobserved = _on_grid(jnp.asarray(blind), grid) if blind.any() else None
    return FieldPosterior(
        conf.mesh, conf.box, linear, evolve, loglik, sampled, name, devices_mesh, unobserved
    )


def allowed_devices(conf: SimConfig) -> list[int]:
    """Device counts a sharded posterior of ``conf`` can use: the divisors of ``conf.mesh``
    and ``conf.ptcl_grid`` up to ``jax.device_count()``."""
    limit = jax.device_count()
    return [n for n in range(1, limit + 1) if conf.mesh % n == 0 and conf.ptcl_grid % n == 0]


def check_devices(devices: int, conf: SimConfig) -> None:
    """Raise ``ValueError`` (naming ``devices``, its value and the allowed counts) unless the
    forward model of ``conf`` can be split over ``devices`` devices; compiles nothing."""
    allowed = allowed_devices(conf)
    if (
        isinstance(devices, bool)
        or not isinstance(devices, int | np.integer)
        or devices not in allowed
    ):
        raise ValueError(
            f"devices={devices!r} is not allowed: use one of {allowed} (divisors of "
            f"mesh={conf.mesh} and ptcl_grid={conf.ptcl_grid} up to jax.device_count()="
            f"{jax.device_count()})"
        )


def sharded_grid(conf: SimConfig, devices: int | None, halo: int | None) -> tuple[Mesh, int] | None:
    """``(device mesh, halo)`` of a posterior run over ``devices`` devices (``None`` for one
    device without sharding); validates both (:func:`check_devices`,
    ``simulator.distributed.pm.check_config``) before anything is compiled."""
    from simulator.distributed import cic
    from simulator.distributed.mesh import device_mesh
    from simulator.distributed.pm import check_config

    if devices is None:
        if halo is not None:
            raise ValueError(f"halo={halo!r} is not allowed without devices: leave it None")
        return None
    check_devices(devices, conf)
    mesh = device_mesh(int(devices))
    halo = cic.default_halo(conf.mesh, mesh) if halo is None else halo
    check_config(conf, mesh, halo)
    return mesh, halo


def _on_grid(field: Array, grid: tuple[Mesh, int] | None) -> Array:
    """A data mesh ``(m, m, m)`` placed in slabs on the grid's devices (as is on one device)."""
    if grid is None:
        return field
    from simulator.distributed.mesh import real_sharding

    return jax.device_put(field, real_sharding(grid[0]))


def _forward_hooks(conf: SimConfig, grid: tuple[Mesh, int] | None) -> tuple[dict, Any, Callable]:
    """What the single-device forward model needs to run on ``grid``: the FFT hooks of
    ``simulator.ic``/``simulator.lpt``, the ``simulator.nbody`` forces (``None``: one device)
    and the CIC density contrast of displacements ``(N, 3)`` [Mpc/h] on the mesh."""
    from simulator.gravity import density_contrast

    if grid is None:
        return {}, None, partial(density_contrast, conf=conf)
    from simulator.distributed import pm

    mesh, halo = grid
    paint = partial(pm.density_contrast, conf=conf, mesh=mesh, halo=halo)
    return pm.fft_hooks(mesh), pm.sharded_forces(conf, mesh, halo), paint


def mock_counts(conf, cosmo, obs, model: str, key: Array) -> tuple[np.ndarray, dict[str, Array]]:
    """Counts drawn through :func:`counts_posterior`'s own forward model (complete survey).

    White noise ``s ~ N(0, 1)`` -> forward ``model`` -> ``nbar_cell F(delta)`` -> ``obs`` noise.
    Returns ``(counts, truth)`` with ``truth = {"s", "delta_L", "delta"}``, each ``(m, m, m)``.
    """
    from simulator.observe.mock import expected_counts

    shape = (conf.mesh,) * 3
    empty = counts_posterior(np.zeros(shape), np.ones(shape), conf, cosmo, obs, model, {})
    key_s, key_n = jax.random.split(key)
    s = jax.random.normal(key_s, shape, jnp.float32)
    truth = {"s": s, **empty.fields({"s": s})}
    lam = expected_counts(truth["delta"], obs.law, obs.bias_parameters(), obs.nbar_cell)
    counts = np.asarray(obs.noise_model().sample(key_n, lam), np.float32)
    return counts, truth
