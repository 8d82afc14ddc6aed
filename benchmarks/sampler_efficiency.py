"""Sampler efficiency on field-level posteriors: cosmolaw vs BlackJAX NUTS and MCLMC, and the
control that isolates what is cosmolaw's own.

Posteriors (``--posterior``, several may be given; chosen before any run, never retuned):

- ``default`` (the development posterior: cosmolaw's configuration below was chosen on it):
  white noise ``s`` on a 16^3 mesh (box 256 Mpc/h) given Poisson galaxy counts of a 1LPT field
  at a = 0.5 with linear bias b1 = 1.5 and nbar = 2 galaxies per cell, bias and cosmology fixed
  at the truth;
- held out (nobody tuned on them): ``nbar5``, the same with nbar = 5 per cell; ``b1_sampled``,
  the same with the linear bias b1 sampled jointly with the field (Gaussian prior 1.5 +- 0.75);
  ``pm32``, the 10-step PM model (2LPT from a = 0.1, FastPM kick-drift-kick to a = 0.5) on a
  32^3 mesh of the same box (8 Mpc/h cells), nbar 2, b1 = 1.5 fixed.

Each mock is drawn through its posterior's own forward model (white noise -> LPT or PM -> CIC
-> ``nbar F(delta)`` -> Poisson). In one process, with the same number of chains and steps:

- ``nuts``: BlackJAX NUTS with its default window adaptation, in the raw parameters;
- ``mclmc``: BlackJAX MCLMC tuned by ``mclmc_find_L_and_step_size`` with its defaults
  (diagonal preconditioning included), raw parameters, prior starts;
- ``control``: the same BlackJAX tuner and kernel, with their defaults, on cosmolaw's
  preconditioned latent log density (:func:`inference.precondition.latent_logdensity` with the
  very mass matrix cosmolaw's leg uses) from cosmolaw's starting points: whatever cosmolaw
  gains over it is its own tuning and kernel, not the preconditioner;
- ``cosmolaw``: cosmolaw's best configuration measured on ``default`` (``cosmolaw infer
  --sampler mclmc --mass-matrix hessian --large-scale-speedup 2 --energy-variance 3e-4``):
  MCLMC in the latent space preconditioned by the observed Hessian's Fourier diagonal at a
  typical point near the MAP
  (latent curvature 0.85-1.2 in every k-shell, where the expected Fisher information leaves it
  at 3.4 in the lowest), with the latent widths of the three lowest k-shells halved so that
  trajectories cross them twice as fast, started next to the MAP, and tuned by
  :func:`inference.samplers.mclmc.pooled_warmup` (``L`` pooled over the chains,
  ``mclmc.L_PER_WIDTH`` = 6 times the root of the summed latent variances; each chain's step
  size from a bounded energy-error statistic that the rare huge errors at the Poisson
  likelihood's walls cannot swing; the figures under "Measured" below had one step size shared
  by the chains and ``L`` 2.5 times that root), rejecting the steps
  whose energy error exceeds 30 times its typical size (a trajectory thrown back by such a wall,
  which, kept, widens the low-k P(k) posterior 1.4-1.8x). ``--sampler``,
  ``--mass-matrix`` and ``--large-scale-speedup`` select another configuration, e.g. the exact
  kernel ``quarter_hmc`` with ``--mass-matrix adapted`` (the Hessian's, rescaled per k-shell by
  a pilot run whose gradients count as warm-up).

For each: bulk ESS per 1000 gradient evaluations (sampling phase, all chains) of the P(k)
amplitudes of the three lowest-k bins of ``s``, of 20 random Fourier modes and of the sampled
scalars, split-Rhat, and the posterior mean and standard deviation of the three P(k)
amplitudes (all samplers target the same posterior, so a sampler's bias shows as a
disagreement). The charged ratios divide the same ESS by every gradient a leg spent: for the
BlackJAX legs their tuner's (two per MCLMC step, one per NUTS leapfrog step); for cosmolaw its
warm-up, its pilot run and its set-up, counted as the forward-model evaluations of
:func:`inference.driver.prepare` (the MAP's L-BFGS iterations and line-search trials, the
preconditioners' Hessian-vector products, each a central difference of two gradients, the
scalars' curvature, the impulse responses and the likelihood-only curvature probes) plus the
likelihood evaluations, each charged as a whole gradient (an upper bound, see
:func:`counted_prepare`).

Each posterior ends with a line ``posterior=NAME ess_ratio_pk_vs_nuts=...
ess_ratio_pk_vs_mclmc=... ess_ratio_modes_vs_mclmc=... rhat_max=... ess_ratio_pk_vs_control=...
ess_ratio_pk_vs_mclmc_charged=... ess_ratio_pk_vs_control_charged=...`` (ratios cosmolaw /
peer, of the means over the quantities; ``rhat_max`` is cosmolaw's, over every quantity), and
the last line gathers ``ratio_vs_control_NAME= ratio_vs_mclmc_NAME= ..._charged_NAME=
rhat_max_NAME=`` for every posterior that ran.

Measured (2 shared CPU cores, load 7-18; 4 chains x 6000 steps, warm-up 500, NUTS 100 + 200):
cosmolaw / control in ESS per 1000 gradients of the low-k P(k) 2.66 on ``default``, 2.31 on
``nbar5``, 4.88 on ``b1_sampled`` (charged 3.26, 2.84, 5.98); cosmolaw / raw MCLMC 2.88, 4.13,
707 (raw MCLMC does not converge with b1 sampled: chains in the sign-flipped mode b1 < 0).
Split-Rhat of cosmolaw 1.0026, 1.0029, 1.0196 (the last on b1, ESS/1000 of b1 5.3). On
``pm32`` the Hessian preconditioner's per-shell information came out 0 to 0.4 times the
expected Fisher information in the 3rd to 5th k-shells (latent widths there up to the
prior's, many times the posterior's); the warm-up's first steps (0.25 sqrt(d) = 45 latent
units) threw them far out and the chains froze (2 chains x 300 steps: split-Rhat of the low-k
P(k) 3.0, the 3rd bin's P(k) 10-18 times the prior's). With the information floored at the
expected Fisher information (:data:`inference.precondition.INFORMATION_FLOOR`), 2 chains x 200
steps (warm-up 150, no NUTS; load 4): the chains agree on the low-k P(k) (means 743, 447,
497), ``rhat_max`` 1.33 (too short to resolve more), cosmolaw / control 1.76 (charged 1.17),
cosmolaw / raw MCLMC 5.65, whose chains stay apart (1st bin 2660 +- 1213).
"""

from __future__ import annotations

import argparse
import time
from typing import NamedTuple

import blackjax
import jax
import jax.numpy as jnp
import numpy as np

from inference.call_counter import counted_posterior
from inference.diagnostics import ess_bulk, split_rhat
from inference.driver import MASS_MATRICES, RunConfig, adapt_mass_matrix, prepare, prior_draw
from inference.fields import power_in_shells, shell_index
from inference.models import counts_posterior, mock_counts
from inference.precondition import latent_logdensity
from inference.samplers import CHAIN_AXIS, make_sampler
from simulator.config import SimConfig
from simulator.cosmology import Cosmology
from simulator.observe.mock import Observation

NUM_MODES = 20


class PosteriorSpec(NamedTuple):
    """A benchmark posterior: forward model, mesh, observation and which bias is sampled."""

    mesh: int
    box: float
    model: str
    a_stop: float
    nbar: float
    b1: float
    sample_bias: bool
    description: str


#: The development posterior and the held-out ones (see the module docstring).
POSTERIORS = {
    "default": PosteriorSpec(16, 256.0, "lpt1", 0.5, 2.0, 1.5, False, "development"),
    "nbar5": PosteriorSpec(16, 256.0, "lpt1", 0.5, 5.0, 1.5, False, "held out: nbar 5"),
    "b1_sampled": PosteriorSpec(16, 256.0, "lpt1", 0.5, 2.0, 1.5, True, "held out: b1 sampled"),
    "pm32": PosteriorSpec(32, 256.0, "pm", 0.5, 2.0, 1.5, False, "held out: 10-step PM, 32^3"),
}


def build(mesh: int, box: float, seed: int, name: str = "default"):
    """The posterior ``name`` of :data:`POSTERIORS` on a ``mesh^3`` mesh of side ``box``, and
    its truth (the mock is drawn through the posterior's own forward model: white noise ->
    1LPT or PM -> CIC -> ``nbar (1 + b1 delta)`` -> Poisson)."""
    spec = POSTERIORS[name]
    conf = SimConfig(
        mesh=mesh,
        box=box,
        a_stop=spec.a_stop,
        steps=10,
        lpt_order=1 if spec.model == "lpt1" else 2,
    )
    cosmo = Cosmology.planck18()
    obs = Observation(
        bias="linear", bias_params={"b1": spec.b1}, nbar_cell=spec.nbar, noise="poisson"
    )
    counts, truth = mock_counts(conf, cosmo, obs, spec.model, jax.random.PRNGKey(seed))
    shape = (mesh,) * 3
    bias_priors = None if spec.sample_bias else {}
    posterior = counts_posterior(counts, np.ones(shape), conf, cosmo, obs, spec.model, bias_priors)
    return posterior, truth


def observables(posterior, mode_index: np.ndarray):
    """``s -> (P(k) of s in the 3 lowest bins, 20 mode coefficients)``."""
    index = shell_index(posterior.mesh, posterior.box)

    def fn(s):
        pk = power_in_shells(s, posterior.box, index, posterior.mesh // 2)[:3]
        modes = jnp.fft.rfftn(s).ravel()[mode_index].real
        return pk, modes

    return fn


def run_chains(warmup, step, to_s, observe, starts, keys, num_warmup, num_samples):
    """Warm up and sample every chain (vmapped); return the observables (one array per output
    of ``observe(to_s(state))``), sampling gradients, seconds and warm-up gradients."""

    @jax.jit
    def one(start, key):
        key_warm, key_run = jax.random.split(key)
        state, tuning, warm_grads = warmup(key_warm, start, num_warmup)

        def body(state, k):
            state, grads = step(k, state, tuning)
            return state, (observe(to_s(state)), grads)

        _, (obs, grads) = jax.lax.scan(body, state, jax.random.split(key_run, num_samples))
        return obs, jnp.sum(grads), warm_grads

    t0 = time.perf_counter()
    obs, grads, warm_grads = jax.vmap(one, axis_name=CHAIN_AXIS)(starts, keys)
    jax.block_until_ready(obs)
    seconds = time.perf_counter() - t0
    return (*(np.asarray(x) for x in obs), float(np.sum(grads)), seconds, warm_grads)


def nuts_peer(logdensity):
    """BlackJAX NUTS with its default window adaptation (one gradient per leapfrog step)."""
    kernel = blackjax.nuts.build_kernel()

    def warmup(key, position, n):
        adapt = blackjax.window_adaptation(
            blackjax.nuts,
            logdensity,
            adaptation_info_fn=blackjax.adaptation.base.get_filter_adapt_info_fn(
                info_keys={"num_integration_steps"}
            ),
        )
        (state, params), info = adapt.run(key, position, n)
        return state, params, jnp.sum(info.info.num_integration_steps)

    def step(key, state, params):
        state, info = kernel(key, state, logdensity, **params)
        return state, info.num_integration_steps

    return warmup, step


def mclmc_peer(logdensity, num_steps):
    """BlackJAX MCLMC with default tuning for a run of ``num_steps`` (its own convention)."""
    kernel = blackjax.mclmc.build_kernel()

    def warmup(key, position, n):
        key_init, key_tune = jax.random.split(key)
        state = blackjax.mclmc.init(position, logdensity, key_init)
        state, params, n_steps = blackjax.mclmc_find_L_and_step_size(
            kernel, num_steps, state, key_tune, logdensity_fn=logdensity
        )
        return state, params, 2 * n_steps

    def step(key, state, params):
        state, _ = kernel(
            key, state, logdensity, params.inverse_mass_matrix, params.L, params.step_size
        )
        return state, 2  # McLachlan integrator: two gradients per step

    return warmup, step


def summarize(
    name, pk, modes, grads, seconds, warm_grads, extra_warm=0.0, scalars=None, setup_grads=0.0
):
    """Print one leg's line and return its ESS per 1000 gradients, split-Rhat and gradients.

    ``extra_warm`` is added to the warm-up gradients (a pilot run), ``setup_grads`` (MAP,
    preconditioner) only to the charged ESS, ``ess_<q>_charged``: ESS per 1000 of all the
    gradients the leg spent. ``scalars`` (chains, draws, n) enter Rhat and ESS when present.
    """
    warm = float(np.sum(warm_grads)) + extra_warm
    total = grads + warm + setup_grads
    out = {"grads": grads, "warm_grads": warm, "setup_grads": setup_grads}
    quantities = {"pk": pk, "modes": modes}
    if scalars is not None and np.shape(scalars)[-1]:
        quantities["scalars"] = scalars
    for label, x in quantities.items():
        ess = ess_bulk(x)
        out[f"ess_{label}"] = float(np.mean(1000.0 * ess / grads))
        out[f"ess_{label}_charged"] = float(np.mean(1000.0 * ess / total))
        out[f"rhat_{label}"] = float(np.max(split_rhat(x)))
    out["rhat_max"] = max(out[f"rhat_{label}"] for label in quantities)
    scalar_text = (
        f"  scalars ESS/1000 {out['ess_scalars']:.2f} rhat {out['rhat_scalars']:.4f} "
        f"mean {np.array2string(np.mean(scalars, axis=(0, 1)), precision=3)}"
        if "scalars" in quantities
        else ""
    )
    print(
        f"{name:>9}: ESS/1000 grads P(k) {out['ess_pk']:8.2f}  modes {out['ess_modes']:8.2f}  "
        f"rhat P(k) {out['rhat_pk']:.4f} modes {out['rhat_modes']:.4f}  "
        f"mean P(k) {np.array2string(np.mean(pk, axis=(0, 1)), precision=0)}  "
        f"sd {np.array2string(np.std(pk, axis=(0, 1)), precision=0)}  "
        f"grads {grads:.0f} (+ warm-up {warm:.0f} + set-up {setup_grads:.0f}; charged "
        f"ESS/1000 P(k) {out['ess_pk_charged']:.2f})  {seconds:.1f} s{scalar_text}",
        flush=True,
    )
    return out


def counted_prepare(posterior, config: RunConfig, key):
    """:func:`inference.driver.prepare` and the evaluations it spent, as gradients to charge.

    Every call of the forward model (``posterior.evolve``) and of the likelihood
    (``posterior.loglik``) ticks a host counter, once per vmapped element. Each tick is charged
    as a whole gradient: a gradient of the log density runs both (charged twice), a
    forward-only run (the preconditioners' impulse responses) and a likelihood-only gradient
    (the expected-information probes in ``delta``) once each, so the charge is an upper bound.

    Returns:
        ``(preconditioner, map_params, starts, counts)``, ``counts`` the ticks
        ``{"forward": ..., "likelihood": ...}``.
    """
    counts = {"forward": 0, "likelihood": 0}

    def counter(name):
        def tick():
            counts[name] += 1

        return tick

    posterior = counted_posterior(posterior, counter("forward"), counter("likelihood"))
    precond, map_params, starts = prepare(posterior, config, key)
    jax.block_until_ready(starts)
    jax.effects_barrier()
    return precond, map_params, starts, counts


def leg(name, sampler, to_params, starts, context, num_warmup, num_samples, **charges):
    """Run one sampler ``(warmup, step)`` on every chain from ``starts`` and summarise it.

    ``to_params`` maps the sampler's state to the physical parameters; ``context`` is
    ``(observe, keys)``; ``charges`` are :func:`summarize`'s ``extra_warm`` / ``setup_grads``.
    """
    observe, keys = context
    pk, modes, scalars, grads, seconds, warm = run_chains(
        *sampler, to_params, observe, starts, keys, num_warmup, num_samples
    )
    return summarize(name, pk, modes, grads, seconds, warm, scalars=scalars, **charges)


def run_posterior(name: str, args) -> dict[str, float]:
    """Every leg on the posterior ``name``; prints the legs and the posterior's ratio line."""
    spec = POSTERIORS[name]
    mesh, box = args.mesh or spec.mesh, args.box or spec.box
    posterior, _ = build(mesh, box, args.seed, name)
    rng = np.random.default_rng(args.seed)
    size = mesh * mesh * (mesh // 2 + 1)
    mode_index = rng.choice(np.arange(1, size), NUM_MODES, replace=False)
    observe_s = observables(posterior, mode_index)

    def observe(params):
        return (*observe_s(params["s"]), posterior.scalar_vector(params))

    context = (observe, jax.random.split(jax.random.PRNGKey(args.seed + 1), args.chains))
    prior_starts = jax.vmap(lambda k: prior_draw(k, posterior))(
        jax.random.split(jax.random.PRNGKey(args.seed + 2), args.chains)
    )
    print(
        f"posterior {name} ({spec.description}): {posterior.name}, box {box:g} Mpc/h, "
        f"{args.chains} chains x {args.samples} steps (warm-up {args.warmup})",
        flush=True,
    )
    config = RunConfig(
        sampler=args.sampler,
        num_chains=args.chains,
        num_warmup=args.warmup,
        seed=args.seed,
        mass_matrix=args.mass_matrix,
        large_scale_speedup=args.large_scale_speedup,
        energy_variance=args.energy_variance,
    )
    key_prepare = jax.random.PRNGKey(args.seed + 3)
    precond, _, starts, counts = counted_prepare(posterior, config, key_prepare)
    setup = counts["forward"] + counts["likelihood"]
    key_pilot = jax.random.PRNGKey(args.seed + 4)
    precond, starts, pilot_grads = adapt_mass_matrix(posterior, config, precond, starts, key_pilot)
    pilot = float(np.sum(pilot_grads))
    print(
        f"cosmolaw set-up: MAP {config.map_steps} L-BFGS iterations, preconditioner "
        f"{config.fisher_probes} probes: {counts['forward']} forward-model and "
        f"{counts['likelihood']} likelihood evaluations, charged {setup} gradients (shared by "
        f"the chains); pilot {pilot:.0f} gradients",
        flush=True,
    )
    latent = latent_logdensity(posterior, precond)
    sampler = make_sampler(args.sampler, latent, energy_variance=config.energy_variance)
    from_latent = lambda state: precond.to_params(state.position)
    raw = lambda state: state.position
    results = {
        "cosmolaw": leg(
            f"cosmolaw/{args.sampler}/{args.mass_matrix}",
            (
                sampler.warmup,
                lambda k, s, t: (lambda out: (out[0], out[1].num_grads))(sampler.step(k, s, t)),
            ),
            lambda state: precond.to_params(sampler.position(state)),
            starts,
            context,
            args.warmup,
            args.samples,
            extra_warm=pilot,
            setup_grads=float(setup),
        ),
        "control": leg(
            "control",
            mclmc_peer(latent, args.samples),
            from_latent,
            starts,
            context,
            args.warmup,
            args.samples,
        ),
        "mclmc": leg(
            "mclmc",
            mclmc_peer(posterior.logdensity, args.samples),
            raw,
            prior_starts,
            context,
            args.warmup,
            args.samples,
        ),
    }
    if args.nuts_samples:
        results["nuts"] = leg(
            "nuts",
            nuts_peer(posterior.logdensity),
            raw,
            prior_starts,
            context,
            args.nuts_warmup,
            args.nuts_samples,
        )
    ours = results["cosmolaw"]
    ratios = {
        f"ess_ratio_pk_vs_{peer}{charged}": ours[f"ess_pk{charged}"]
        / results[peer][f"ess_pk{charged}"]
        for peer in ("nuts", "mclmc", "control")
        for charged in ("", "_charged")
        if peer in results
    }
    line = {
        "ess_ratio_pk_vs_nuts": ratios.get("ess_ratio_pk_vs_nuts"),
        "ess_ratio_pk_vs_mclmc": ratios["ess_ratio_pk_vs_mclmc"],
        "ess_ratio_modes_vs_mclmc": ours["ess_modes"] / results["mclmc"]["ess_modes"],
        "rhat_max": ours["rhat_max"],
        "ess_ratio_pk_vs_control": ratios["ess_ratio_pk_vs_control"],
        "ess_ratio_pk_vs_mclmc_charged": ratios["ess_ratio_pk_vs_mclmc_charged"],
        "ess_ratio_pk_vs_control_charged": ratios["ess_ratio_pk_vs_control_charged"],
        "ess_pk_per_kgrad": ours["ess_pk"],
        "ess_pk_per_kgrad_control": results["control"]["ess_pk"],
        "ess_pk_per_kgrad_mclmc": results["mclmc"]["ess_pk"],
        "rhat_max_control": results["control"]["rhat_max"],
        "rhat_max_mclmc": results["mclmc"]["rhat_max"],
    }
    print(
        f"posterior={name} "
        + " ".join(f"{key}={_fmt(value)}" for key, value in line.items() if value is not None),
        flush=True,
    )
    return line


def _fmt(value: float) -> str:
    return f"{value:.4f}" if abs(value) < 10 else f"{value:.4g}"


def main() -> None:
    """Parse the options, run each posterior asked for, print the summary line last."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--posterior",
        nargs="+",
        default=["default"],
        choices=list(POSTERIORS),
        help="posteriors to run, in order (default: the development posterior)",
    )
    parser.add_argument("--mesh", type=int, default=None, help="override the posterior's mesh")
    parser.add_argument("--box", type=float, default=None, help="override its box [Mpc/h]")
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument(
        "--samples",
        type=int,
        default=6000,
        help="MCLMC steps per chain (long enough for split-Rhat to resolve 1.01 on the lowest "
        "k-bin, whose ESS is about 500 per chain at 6000 steps)",
    )
    parser.add_argument(
        "--nuts-samples", type=int, default=100, help="NUTS steps per chain (0: no NUTS leg)"
    )
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument(
        "--nuts-warmup",
        type=int,
        default=200,
        help="NUTS window-adaptation steps (its trees are deep: capped to keep the run short)",
    )
    parser.add_argument("--sampler", default="mclmc", help="cosmolaw sampler")
    parser.add_argument("--mass-matrix", default="hessian", choices=MASS_MATRICES)
    parser.add_argument(
        "--large-scale-speedup",
        type=float,
        default=2.0,
        help="cosmolaw's speed-up of the 3 lowest k-shells (1: the mass matrix alone)",
    )
    parser.add_argument(
        "--energy-variance",
        type=float,
        default=3e-4,
        help="cosmolaw mclmc's target energy-error variance per dimension (BlackJAX's default "
        "tuning targets 5e-4)",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for name, value, low in (("chains", args.chains, 2), ("samples", args.samples, 20)):
        if value < low:
            parser.error(f"--{name}={value} is not allowed: need at least {low}")

    lines = {name: run_posterior(name, args) for name in args.posterior}
    summary = {}
    for name, line in lines.items():
        summary[f"ratio_vs_control_{name}"] = line["ess_ratio_pk_vs_control"]
        summary[f"ratio_vs_mclmc_{name}"] = line["ess_ratio_pk_vs_mclmc"]
        summary[f"ratio_vs_control_charged_{name}"] = line["ess_ratio_pk_vs_control_charged"]
        summary[f"ratio_vs_mclmc_charged_{name}"] = line["ess_ratio_pk_vs_mclmc_charged"]
        summary[f"rhat_max_{name}"] = line["rhat_max"]
    print(" ".join(f"{key}={_fmt(value)}" for key, value in summary.items()))


if __name__ == "__main__":
    main()
