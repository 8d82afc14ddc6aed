"""Run several chains of a field-level posterior: set-up, warm-up, sampling with checkpoints.

Sequence: preconditioner at the prior mean -> MAP (L-BFGS) in latent space -> preconditioner
at the MAP -> chain starts (MAP plus a latent standard-normal draw, or prior draws) -> warm-up
(vmapped over chains) -> sampling in chunks of ``thin`` steps, vmapped over chains and compiled
once, with the thinned fields stored at the end of each chunk -> ``chain.h5`` rewritten
atomically every ``checkpoint_every`` steps. The set-up is checkpointed too (file attribute
``stage = "set-up"``), so a run stopped during the warm-up resumes without redoing the MAP and
the preconditioner; the set-up and the warm-up show their forward-model runs as they happen.
Keys are derived from the seed, the chain index and the step index only, so a resumed run is
identical to an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from cosmolaw.progress import progress_bar
from cosmolaw.pytree import to_dict
from inference.call_counter import counted_posterior
from inference.chain_file import read_arrays, read_attrs, read_tree, write_chain_file
from inference.convergence import BURN_FRACTION, assess
from inference.fields import bin_centres, fft_hooks, power_in_shells, shell_index, shell_mean
from inference.optimize import find_map
from inference.posterior import FieldPosterior, Params
from inference.precondition import (
    Preconditioner,
    fisher_preconditioner,
    hessian_preconditioner,
    latent_logdensity,
    latent_scalar_conditional,
    prior_preconditioner,
    rescale_shells,
    speed_up_large_scales,
)
from inference.samplers import BLOCKS, CHAIN_AXIS, SAMPLERS, Sampler, StepInfo, make_sampler
from inference.samplers.mclmc import DESIRED_ENERGY_VAR

MASS_MATRICES = ("fisher", "hessian", "adapted", "prior")
INITS = ("map", "prior")
FIELD_NAMES = ("s", "delta_L", "delta")
#: What selects a run's compiled sampler: ``(sampler, blocks, energy_variance)``.
Kind = tuple[str, str, float]


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """How to run the chains.

    Attributes:
        sampler: one of :data:`inference.samplers.SAMPLERS`; with ``blocks="gibbs"`` the
            kernel of the field block.
        num_samples: sampling steps per chain after warm-up (>= 4).
        num_warmup: warm-up (tuning) steps per chain (>= 10).
        num_chains: chains run in parallel with ``vmap`` (>= 1).
        thin: store the fields every ``thin`` steps (scalars and P(k) are stored every step).
        checkpoint_every: rewrite ``chain.h5`` after at least this many steps.
        seed: integer seed of every random choice.
        mass_matrix: ``"fisher"`` (prior + expected data Fisher information), ``"hessian"``
            (observed curvature at a typical point near the MAP, from Hessian-vector products),
            ``"adapted"`` (``"hessian"`` rescaled per k-shell to the latent variance of a pilot
            run of ``num_warmup`` warm-up and ``num_warmup`` sampling steps, see
            :func:`adapt_mass_matrix`) or ``"prior"``.
        init: ``"map"`` (MAP plus a latent N(0, 1) draw per chain) or ``"prior"`` (prior draws).
        map_steps: L-BFGS iterations of the MAP search of the field.
        fisher_probes: Hutchinson probes of the field Hessian (``fisher``, ``hessian``).
        blocks: ``"joint"`` (one sampler for all parameters) or ``"gibbs"`` (the field by
            ``sampler`` alternating with a random walk on the bias/cosmology/noise scalars).
        large_scale_speedup: divide the latent widths of the field modes in the
            ``large_scale_shells`` lowest k-shells by this factor (>= 1), so that trajectories
            cross them this many times faster (:func:`inference.precondition.
            speed_up_large_scales`); 1 leaves the mass matrix as ``mass_matrix`` makes it.
        large_scale_shells: number of k-shells of width k_f sped up (>= 1).
        energy_variance: unadjusted MCLMC's target variance of the energy error per latent
            dimension (> 0): larger gives larger steps and more bias. 3e-4 with
            ``mass_matrix="hessian"`` and ``large_scale_speedup=2`` is the configuration of
            ``benchmarks/sampler_efficiency.py`` (bias fixed there); with sampled bias, the
            larger warm-up steps can land a chain in the sign-flipped mode ``b1 < 0``.
    """

    sampler: str = "mclmc"
    num_samples: int = 1000
    num_warmup: int = 300
    num_chains: int = 4
    thin: int = 10
    checkpoint_every: int = 100
    seed: int = 0
    mass_matrix: str = "fisher"
    init: str = "map"
    map_steps: int = 50
    fisher_probes: int = 8
    blocks: str = "joint"
    large_scale_speedup: float = 1.0
    large_scale_shells: int = 3
    energy_variance: float = DESIRED_ENERGY_VAR

    def __post_init__(self) -> None:
        checks = [
            ("sampler", self.sampler in SAMPLERS, f"one of {SAMPLERS}"),
            ("num_samples", self.num_samples >= 4, "an integer >= 4"),
            ("num_warmup", self.num_warmup >= 10, "an integer >= 10"),
            ("num_chains", self.num_chains >= 1, "an integer >= 1"),
            (
                "thin",
                self.thin >= 1 and self.num_samples % self.thin == 0,
                "a divisor of num_samples",
            ),
            ("checkpoint_every", self.checkpoint_every >= 1, "an integer >= 1"),
            ("mass_matrix", self.mass_matrix in MASS_MATRICES, f"one of {MASS_MATRICES}"),
            ("init", self.init in INITS, f"one of {INITS}"),
            ("map_steps", self.map_steps >= 1, "an integer >= 1"),
            ("fisher_probes", self.fisher_probes >= 1, "an integer >= 1"),
            ("blocks", self.blocks in BLOCKS, f"one of {BLOCKS}"),
            ("large_scale_speedup", self.large_scale_speedup >= 1.0, "a number >= 1"),
            ("large_scale_shells", self.large_scale_shells >= 1, "an integer >= 1"),
            ("energy_variance", 0 < self.energy_variance < np.inf, "a positive number"),
        ]
        for name, ok, allowed in checks:
            if not ok:
                raise ValueError(f"{name}={getattr(self, name)!r} is not allowed: use {allowed}")


@dataclasses.dataclass
class _Setup:
    """What a run's compiled functions need: the posterior, configuration, preconditioner."""

    posterior: FieldPosterior
    config: RunConfig
    precond: Preconditioner


def prepare(
    posterior: FieldPosterior, config: RunConfig, key: jax.Array
) -> tuple[Preconditioner, Params, Params]:
    """Preconditioner at the field's MAP, that MAP, and the latent starts of the chains.

    The MAP is over ``s`` at the scalars' prior means; chains start at it plus a latent
    standard-normal draw (close to a posterior draw when the preconditioner is good).

    Returns:
        ``(preconditioner, map_params, starts)``; ``starts`` has a leading chain axis.
    """
    key_pre, key_pre2, key_init = jax.random.split(key, 3)
    params0 = posterior.initial_params()
    # The Hessian is taken at a typical point, never at s = 0 or at the MAP, where the
    # particles sit near the mesh nodes and the CIC kernel's kinks make it meaningless.
    curvature = config.mass_matrix in ("hessian", "adapted")
    first = "fisher" if curvature else config.mass_matrix
    precond = _preconditioner(posterior, first, config, params0, key_pre)
    # The field's MAP at the scalars' prior means: a joint MAP would trade the amplitude of
    # s against the bias (the mode of a high-dimensional posterior is not typical of it).
    x0 = precond.to_latent(params0)
    xs_map = _map_fn(posterior, config.map_steps)(precond, x0)
    map_params = precond.to_params({**x0, "s": xs_map})
    precond = _preconditioner(posterior, first, config, map_params, key_pre2)
    if curvature:
        latent = _add_normal(jax.random.fold_in(key_pre2, 1), precond.to_latent(map_params), 1.0)
        typical = {**map_params, "s": precond.to_params(latent)["s"]}
        precond = _preconditioner(posterior, "hessian", config, typical, key_pre2)
    center = precond.to_latent(map_params)
    keys = jax.random.split(key_init, config.num_chains)
    if config.init == "map":
        starts = jax.vmap(lambda k: _add_normal(k, center, 1.0))(keys)
    else:
        starts = jax.vmap(lambda k: precond.to_latent(prior_draw(k, posterior)))(keys)
    fast = _speed_up(precond, config)
    if fast is not precond:
        starts = jax.vmap(lambda x: fast.to_latent(precond.to_params(x)))(starts)
    return fast, map_params, starts


def adapt_mass_matrix(
    posterior: FieldPosterior, config: RunConfig, precond: Preconditioner, starts: Params, key
) -> tuple[Preconditioner, Params, jax.Array]:
    """Pilot run for ``mass_matrix="adapted"``: rescale the field's preconditioner per k-shell.

    Every chain is warmed up and then sampled for ``num_warmup`` steps each; the latent
    variance of the field's Fourier modes over those samples, averaged over k-shells, rescales
    ``w(k)`` (:func:`inference.precondition.rescale_shells`): a few thousand draws of a
    handful of shell variances, where the curvature at one point (CIC kinks, non-Gaussianity)
    is off by a factor of a few on the largest scales. Identity for other mass matrices.

    Returns:
        ``(preconditioner, starts, num_grads)``: the new preconditioner, the chains' last pilot
        positions in its latent space, and the pilot's gradient evaluations per chain.
    """
    if config.mass_matrix != "adapted":
        return precond, starts, jnp.zeros(config.num_chains, jnp.int32)
    keys = jax.random.split(key, config.num_chains)
    ends, power, grads = _pilot_fn(posterior, _kind(config), config.num_warmup)(
        precond, keys, starts
    )
    new = _speed_up(rescale_shells(precond, jnp.mean(power, axis=0)), config)
    starts = jax.vmap(lambda x: new.to_latent(precond.to_params(x)))(ends)
    return new, starts, grads


@functools.cache
def _pilot_fn(posterior: FieldPosterior, kind: Kind, num_steps: int) -> Callable:
    """Compiled ``(precond, keys, starts) -> (ends, latent power, grads)`` over chains."""

    def one(precond, key, position):
        sampler = _sampler(posterior, kind, precond)
        key_warm, key_run = jax.random.split(key)
        state, tuning, grads = sampler.warmup(key_warm, position, num_steps)
        n_cells = posterior.mesh**3

        def body(carry, k):
            state, total, square, grads = carry
            state, info = sampler.step(k, state, tuning)
            xk = fft_hooks(posterior.devices)["rfftn"](sampler.position(state)["s"])
            return (state, total + xk, square + jnp.abs(xk) ** 2, grads + info.num_grads), None

        zero = jnp.zeros(precond.field_scale.shape, jnp.float32)
        carry = (state, zero.astype(jnp.complex64), zero, grads)
        (state, total, square, grads), _ = jax.lax.scan(
            body, carry, jax.random.split(key_run, num_steps)
        )
        mean = total / num_steps
        power = (square / num_steps - jnp.abs(mean) ** 2) / n_cells
        return sampler.position(state), power, grads

    return jax.jit(jax.vmap(one, in_axes=(None, 0, 0), axis_name=CHAIN_AXIS))


def _speed_up(precond: Preconditioner, config: RunConfig) -> Preconditioner:
    return speed_up_large_scales(precond, config.large_scale_speedup, config.large_scale_shells)


def _preconditioner(posterior, kind: str, config, params, key) -> Preconditioner:
    if kind == "prior":
        return prior_preconditioner(posterior, params)
    build = {"fisher": fisher_preconditioner, "hessian": hessian_preconditioner}
    return build[kind](posterior, params, key, num_probes=config.fisher_probes)


def _add_normal(key: jax.Array, tree: Any, scale: float) -> Any:
    leaves, treedef = jax.tree.flatten(tree)
    keys = jax.random.split(key, len(leaves))
    noisy = [
        x + scale * jax.random.normal(k, jnp.shape(x), jnp.float32)
        for x, k in zip(leaves, keys, strict=True)
    ]
    return jax.tree.unflatten(treedef, noisy)


def prior_draw(key: jax.Array, posterior: FieldPosterior) -> Params:
    """A draw of every sampled parameter from the prior: ``s ~ N(0, 1)`` per cell, scalars
    from their Gaussian priors (works under ``jit``/``vmap``)."""
    key_s, key_p = jax.random.split(key)
    params = posterior.initial_params(jax.random.normal(key_s, (posterior.mesh,) * 3, jnp.float32))
    names = posterior.scalar_names
    z = jax.random.normal(key_p, (len(names),), jnp.float32)
    for i, name in enumerate(names):
        g, n = name.split("/")
        mean, std = posterior.priors[g][n]
        params[g][n] = jnp.float32(mean) + jnp.float32(std) * z[i]
    return params


def _pk_linear(posterior: FieldPosterior, params: Params) -> jax.Array:
    delta_l = posterior.linear(params["s"], params.get("cosmo", {}))
    nbins = posterior.mesh // 2
    index = shell_index(posterior.mesh, posterior.box)
    return power_in_shells(delta_l, posterior.box, index, nbins, posterior.devices)


def prior_pk_linear(posterior: FieldPosterior, params: Params) -> np.ndarray:
    """Prior expectation of the binned P(k) of delta_L [(Mpc/h)^3] at the scalars of ``params``.

    ``linear`` is a Fourier filter of ``s``: its response to a unit impulse is the filter
    ``T(k)``, and ``<P(k)> = V_box |T(k)|^2 / N_cells`` for unit white noise.
    """
    m = posterior.mesh
    impulse = jnp.zeros((m,) * 3, jnp.float32).at[0, 0, 0].set(1.0)
    tk = fft_hooks(posterior.devices)["rfftn"](posterior.linear(impulse, params.get("cosmo", {})))
    index = shell_index(m, posterior.box)
    mean_t2 = shell_mean(jnp.abs(tk) ** 2, index, m // 2)
    return np.asarray(mean_t2 * posterior.box**3 / m**3)


def _sampler(posterior: FieldPosterior, kind: Kind, precond: Preconditioner) -> Sampler:
    """The sampler ``kind = (name, blocks, energy_variance)`` on the latent posterior of
    ``precond``."""
    name, blocks, energy_variance = kind
    conditional = latent_scalar_conditional(posterior, precond) if blocks == "gibbs" else None
    logdensity = latent_logdensity(posterior, precond)
    return make_sampler(name, logdensity, blocks, conditional, energy_variance)


@functools.cache
def _map_fn(posterior: FieldPosterior, num_steps: int) -> Callable:
    """Compiled ``(precond, x0) -> latent MAP of s`` at the scalars of ``x0``."""

    @jax.jit
    def run(precond, x0):
        logdensity = latent_logdensity(posterior, precond)
        xs, _ = find_map(lambda xs: logdensity({**x0, "s": xs}), x0["s"], num_steps)
        return xs

    return run


@functools.cache
def _warmup_fn(posterior: FieldPosterior, kind: Kind, num_warmup: int) -> Callable:
    """Compiled ``(precond, keys, starts) -> (states, tunings, grads)``, vmapped over chains."""

    def one(precond, key, position):
        return _sampler(posterior, kind, precond).warmup(key, position, num_warmup)

    return jax.jit(jax.vmap(one, in_axes=(None, 0, 0), axis_name=CHAIN_AXIS))


@functools.cache
def _chunk_fn(posterior: FieldPosterior, kind: Kind, length: int) -> Callable:
    """Compiled ``(precond, states, tunings, chain_keys, start) -> (states, records, fields)``."""

    # The scalar block's acceptance exists only for Gibbs sweeps.
    stored = [k for k in StepInfo._fields if k != "scalar_acceptance" or kind[1] == "gibbs"]

    def one_chain(precond, state, tuning, chain_key, start):
        sampler = _sampler(posterior, kind, precond)

        def body(state, i):
            state, info = sampler.step(jax.random.fold_in(chain_key, start + i), state, tuning)
            params = precond.to_params(sampler.position(state))
            record = {
                "scalars": posterior.scalar_vector(params),
                "logdensity": state.logdensity,
                "pk_linear": _pk_linear(posterior, params),
                **{f"info/{k}": v for k, v in info._asdict().items() if k in stored},
            }
            return state, record

        state, records = jax.lax.scan(body, state, jnp.arange(length))
        params = precond.to_params(sampler.position(state))
        fields = {"s": params["s"], **posterior.fields(params)}
        return state, records, fields

    return jax.jit(jax.vmap(one_chain, in_axes=(None, 0, 0, 0, None)))


def _kind(config: RunConfig) -> Kind:
    return config.sampler, config.blocks, config.energy_variance


def _keys(seed: int, num_chains: int) -> dict[str, jax.Array]:
    root = jax.random.PRNGKey(seed)
    key_prep, key_warm, key_sample = jax.random.split(root, 3)
    return {
        "prepare": key_prep,
        "warmup": jax.random.split(key_warm, num_chains),
        "sample": jax.random.split(key_sample, num_chains),
    }


class ChainRun:
    """The state of a run between chunks: compiled functions, sampler states and traces."""

    def __init__(self, setup: _Setup, states: Any, tunings: Any, arrays: dict, steps_done: int):
        self.setup = setup
        self.states = states
        self.tunings = tunings
        self.arrays = arrays
        self.steps_done = steps_done
        self._chunk = _chunk_fn(setup.posterior, _kind(setup.config), setup.config.thin)

    def advance(self, chain_keys: jax.Array) -> dict[str, np.ndarray]:
        """Run ``thin`` more steps of every chain; append their records and fields."""
        self.states, records, fields = self._chunk(
            self.setup.precond, self.states, self.tunings, chain_keys, self.steps_done
        )
        records = jax.tree.map(np.asarray, records)
        for name, value in records.items():
            _append(self.arrays, f"samples/{name}" if "/" not in name else name, value, axis=1)
        for name, value in fields.items():
            _append(self.arrays, f"fields/{name}", np.asarray(value)[:, None], axis=1)
        self.steps_done += self.setup.config.thin
        _append(self.arrays, "fields/step", np.array([self.steps_done]), axis=0)
        return records

    def save(self, path: Path, attrs: dict[str, Any]) -> None:
        """Write ``chain.h5`` atomically with the current traces and checkpoint."""
        complete = self.steps_done >= self.setup.config.num_samples
        write_chain_file(
            path,
            self.arrays,
            {"state": self.states, "tuning": self.tunings, "precond": self.setup.precond},
            {**attrs, "stage": "sampling", "steps_done": self.steps_done, "complete": complete},
        )


def _append(arrays: dict, name: str, value: np.ndarray, axis: int) -> None:
    arrays[name] = value if name not in arrays else np.concatenate([arrays[name], value], axis)


def run_chains(
    posterior: FieldPosterior,
    config: RunConfig,
    out_dir: str | Path,
    truth: dict[str, np.ndarray] | None = None,
    posterior_attrs: dict[str, Any] | None = None,
    progress: bool = True,
    stop_after: int | None = None,
) -> Path:
    """Sample ``posterior`` into ``out_dir/chain.h5``, resuming from it if it exists.

    Args:
        posterior: the posterior.
        config: run configuration; on resume it must be the one the file was started with.
        out_dir: run directory.
        truth: optional true fields ``{"s", "delta_L", "delta"}``, stored for the report.
        posterior_attrs: JSON-able description of the data/model, stored as an attribute.
        progress: show progress (:func:`cosmolaw.progress.progress_bar`: a bar on a
            terminal, a line per tenth of the steps in a log) with the convergence verdict so
            far, renewed every tenth of the steps; before that, the forward-model runs of the
            set-up and of the warm-up (in a log, a line at the 1st, 2nd, 4th, ... run and one
            at the end).
        stop_after: stop (as an interruption would) once this many steps are done; the
            checkpoint is written first.

    Returns:
        Path of ``chain.h5``.
    """
    out = Path(out_dir)
    path = out / "chain.h5"
    attrs = {
        "config": to_dict(config),
        "posterior": posterior_attrs or {"name": posterior.name},
        "scalar_names": posterior.scalar_names,
        "mesh": posterior.mesh,
        "box": posterior.box,
    }
    keys = _keys(config.seed, config.num_chains)
    if path.exists() and _stored_stage(path) == "sampling":
        run = _resume(posterior, config, path)
    else:
        run = _start(posterior, config, keys, truth, path, attrs, progress)
        run.save(path, attrs)
    target = config.num_samples if stop_after is None else min(stop_after, config.num_samples)
    _sample(run, keys["sample"], path, attrs, target, progress)
    return path


class _ForwardRuns:
    """Routes the forward-model ticks of the compiled set-up and warm-up programs (compiled
    once per posterior, :func:`_counted`) to the progress bar of the stage running now."""

    bar: Any = None

    @classmethod
    def tick(cls) -> None:
        if cls.bar is not None:
            if cls.bar.n == 0:
                cls.bar.set_postfix_str("", refresh=False)
            cls.bar.update(1)


@functools.cache
def _counted(posterior: FieldPosterior) -> FieldPosterior:
    """``posterior`` ticking :class:`_ForwardRuns` at every forward-model run of a chain."""
    return counted_posterior(posterior, on_forward=_ForwardRuns.tick)


@contextlib.contextmanager
def _stage(desc: str, progress: bool, total: int | None = None) -> Iterator[None]:
    """Show a stage's forward-model runs (all chains together) as they happen: the set-up and
    warm-up are single compiled programs that can take many minutes at 64^3 with PM. The
    first line, at once, says the stage is compiling (about 2 minutes for the set-up at 64^3
    with PM before its first run); ``total``, when the stage's number of runs is known, gives
    the bar its percentage and time left."""
    _ForwardRuns.bar = progress_bar(
        total=total, desc=desc, unit="forward runs", disable=not progress
    )
    _ForwardRuns.bar.set_postfix_str("compiling")
    _ForwardRuns.bar.refresh()
    try:
        yield
    finally:
        jax.effects_barrier()
        bar, _ForwardRuns.bar = _ForwardRuns.bar, None
        bar.close()


def _stored_stage(path: Path) -> str:
    """``"set-up"`` for a file checkpointed after the set-up, before the warm-up ended;
    ``"sampling"`` otherwise (files written before stages were recorded included)."""
    return read_attrs(path).get("stage", "sampling")


def _start(posterior, config, keys, truth, path: Path, attrs: dict, progress: bool) -> ChainRun:
    """Set-up (or its checkpoint in ``path``, if a run stopped after it), then the warm-up."""
    counted = _counted(posterior)
    if path.exists():
        precond, starts, arrays = _read_set_up(posterior, config, path)
    else:
        desc = "set-up: MAP, preconditioner" + (
            ", pilot" if config.mass_matrix == "adapted" else ""
        )
        with _stage(desc, progress):
            precond, starts, arrays = _set_up(counted, config, keys["prepare"], truth)
        trees = {"precond": precond, "starts": starts}
        set_up_attrs = {**attrs, "stage": "set-up", "steps_done": 0, "complete": False}
        write_chain_file(path, arrays, trees, set_up_attrs)
    desc = f"warm-up: {config.sampler} ({config.blocks}) x{config.num_chains}"
    with _stage(desc, progress, _warmup_forward_runs(posterior, config, precond)):
        warmup = _warmup_fn(counted, _kind(config), config.num_warmup)
        states, tunings, warm_grads = jax.block_until_ready(warmup(precond, keys["warmup"], starts))
    arrays["warmup/num_grads"] = arrays["warmup/num_grads"] + np.asarray(warm_grads)
    return ChainRun(_Setup(posterior, config, precond), states, tunings, arrays, 0)


def _warmup_forward_runs(
    posterior: FieldPosterior, config: RunConfig, precond: Preconditioner
) -> int | None:
    """Forward-model runs of the warm-up, all chains together, or ``None`` when the sampler
    does not fix them (:attr:`inference.samplers.Sampler.warmup_forward_runs`)."""
    per_chain = _sampler(posterior, _kind(config), precond).warmup_forward_runs
    return None if per_chain is None else config.num_chains * per_chain(config.num_warmup)


def _set_up(
    posterior: FieldPosterior, config: RunConfig, key: jax.Array, truth: dict | None
) -> tuple[Preconditioner, Params, dict[str, np.ndarray]]:
    """Preconditioner, latent starts ``(C, ...)`` and the arrays that describe them: the
    binned P(k) of the prior and of the starts, the MAP fields, the truth and the pilot's
    gradients per chain (``warmup/num_grads``, the warm-up's are added to it)."""
    precond, map_params, starts = prepare(posterior, config, key)
    key_pilot = jax.random.fold_in(key, 1)
    precond, starts, pilot_grads = adapt_mass_matrix(posterior, config, precond, starts, key_pilot)
    init_params = jax.vmap(precond.to_params)(starts)
    arrays: dict[str, np.ndarray] = {
        "k": bin_centres(posterior.mesh, posterior.box),
        "prior/pk_linear": prior_pk_linear(posterior, map_params),
        "init/pk_linear": np.asarray(jax.vmap(partial(_pk_linear, posterior))(init_params)),
        "warmup/num_grads": np.asarray(pilot_grads),
        "map/s": np.asarray(map_params["s"]),
        **{f"map/{k}": np.asarray(v) for k, v in posterior.fields(map_params).items()},
    }
    for name, value in (truth or {}).items():
        arrays[f"truth/{name}"] = np.asarray(value, np.float32)
    return precond, starts, arrays


def _templates(posterior: FieldPosterior, config: RunConfig) -> tuple[Preconditioner, Params]:
    """Shapes of a run's preconditioner and of its chains' latent positions ``(C, ...)``."""
    precond = prior_preconditioner(posterior, posterior.initial_params())
    starts = jax.vmap(lambda _: precond.to_latent(posterior.initial_params()))(
        jnp.arange(config.num_chains)
    )
    return precond, starts


def _check_config(attrs: dict, config: RunConfig, path: Path) -> None:
    # Fields added to RunConfig after a run was started take their defaults.
    stored = {**to_dict(RunConfig()), **attrs.get("config", {})}
    if stored != to_dict(config):
        raise ValueError(
            f"resume: the run configuration differs from the one in {path} "
            f"(stored {attrs.get('config')})"
        )


def _read_checkpoint(posterior, config, path: Path) -> tuple[dict, dict, Preconditioner, Params]:
    """Arrays and attributes of ``path`` (its configuration checked against ``config``), its
    preconditioner, and the shape of the chains' latent positions ``(C, ...)``."""
    arrays, attrs = read_arrays(path)
    _check_config(attrs, config, path)
    template_pre, template_starts = _templates(posterior, config)
    precond = jax.tree.map(jnp.asarray, read_tree(path, "precond", template_pre))
    return arrays, attrs, precond, template_starts


def _read_set_up(posterior, config, path: Path) -> tuple[Preconditioner, Params, dict]:
    """The set-up checkpoint of :func:`_start`: preconditioner, starts and arrays."""
    arrays, _, precond, template_starts = _read_checkpoint(posterior, config, path)
    starts = jax.tree.map(jnp.asarray, read_tree(path, "starts", template_starts))
    return precond, starts, arrays


def _resume(posterior, config, path) -> ChainRun:
    arrays, attrs, precond, start = _read_checkpoint(posterior, config, path)
    keys = _keys(config.seed, config.num_chains)
    warmup = _warmup_fn(posterior, _kind(config), config.num_warmup)
    states_t, tunings_t, _ = jax.eval_shape(warmup, precond, keys["warmup"], start)
    states = jax.tree.map(jnp.asarray, read_tree(path, "state", states_t))
    tunings = jax.tree.map(jnp.asarray, read_tree(path, "tuning", tunings_t))
    setup = _Setup(posterior, config, precond)
    return ChainRun(setup, states, tunings, arrays, int(attrs["steps_done"]))


def _sample(run: ChainRun, chain_keys, path: Path, attrs: dict, target: int, progress: bool):
    """Advance the chains to ``target`` steps with checkpoints; the progress shows the last
    chunk's acceptance, step size and energy error, and the convergence verdict of the draws
    so far (worst split-Rhat, rejection rate, converged or not), renewed every tenth of the
    steps."""
    config = run.setup.config
    last_saved = run.steps_done
    bar = progress_bar(
        total=config.num_samples,
        initial=run.steps_done,
        desc=f"{config.sampler} ({config.blocks}) x{config.num_chains}",
        disable=not progress,
        unit="step",
    )
    grads = int(np.sum(run.arrays.get("info/num_grads", 0))) + int(
        np.sum(run.arrays["warmup/num_grads"])
    )
    # The verdict (about 0.1-1 s at thousands of steps) is renewed every tenth of the steps,
    # as often as a batch log prints a line.
    verdict: dict[str, str] = {}
    judged, tenth = run.steps_done, max(config.num_samples // 10, 1)
    while run.steps_done < target:
        records = run.advance(chain_keys)
        grads += int(np.sum(records["info/num_grads"]))
        postfix = {
            "acc": f"{np.mean(records['info/acceptance']):.2f}",
            "eps": f"{np.mean(records['info/step_size']):.3g}",
            "dH": f"{np.mean(np.abs(records['info/energy_error'])):.3g}",
        }
        if "info/scalar_acceptance" in records:
            postfix["acc_scalars"] = f"{np.mean(records['info/scalar_acceptance']):.2f}"
        if run.steps_done - last_saved >= config.checkpoint_every or run.steps_done >= target:
            run.save(path, attrs)
            last_saved = run.steps_done
        if progress and (run.steps_done - judged >= tenth or run.steps_done >= target):
            verdict, judged = _verdict_postfix(run, attrs), run.steps_done
        bar.set_postfix(**postfix, grads=grads, **verdict)
        bar.update(config.thin)
    bar.close()


def _verdict_postfix(run: ChainRun, attrs: dict) -> dict[str, str]:
    """Worst split-Rhat, rejection rate and convergence so far, for the progress line (empty
    before there are enough steps)."""
    steps = run.steps_done
    burn = int(BURN_FRACTION * steps)
    if steps - burn < 8:
        return {}
    verdict = assess(run.arrays, attrs, burn)
    return {
        "rhat": f"{verdict['rhat_max']:.4g}",
        "rejected": f"{verdict['rejection_rate']:.1%}",
        "converged": "yes" if verdict["converged"] else "no",
    }
