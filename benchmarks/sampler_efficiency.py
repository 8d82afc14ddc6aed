"""Sampler efficiency on a field-level posterior: cosmolaw vs BlackJAX NUTS and MCLMC.

Posterior: white noise ``s`` on an ``N^3`` mesh given Poisson galaxy counts of a 1LPT field at
a = 0.5 with linear bias b1 = 1.5 and nbar = 2 galaxies per cell (bias and cosmology fixed at
the truth). In one process, with the same number of chains and steps:

- ``nuts``: BlackJAX NUTS with its default window adaptation, in the raw ``s`` coordinates;
- ``mclmc``: BlackJAX MCLMC tuned by ``mclmc_find_L_and_step_size`` with its defaults
  (diagonal preconditioning included), raw coordinates;
- ``cosmolaw``: cosmolaw's best configuration measured so far (``cosmolaw infer --sampler
  mclmc --mass-matrix hessian --large-scale-speedup 2 --energy-variance 3e-4``): MCLMC in the
  latent space preconditioned by the observed Hessian's Fourier diagonal at a typical point
  near the MAP
  (latent curvature 0.85-1.2 in every k-shell, where the expected Fisher information leaves it
  at 3.4 in the lowest), with the latent widths of the three lowest k-shells halved so that
  trajectories cross them twice as fast, started next to the MAP, and tuned by
  :func:`inference.samplers.mclmc.pooled_warmup` (one step size and ``L`` for all chains, from
  a bounded energy-error statistic that the rare huge errors at the Poisson likelihood's walls
  cannot swing; ``L`` 2.5 times the latent width, about a quarter period), rejecting the steps
  whose energy error exceeds 30 times its typical size (a trajectory thrown back by such a wall,
  which, kept, widens the low-k P(k) posterior 1.4-1.8x). ``--sampler``,
  ``--mass-matrix`` and ``--large-scale-speedup`` select another configuration, e.g. the exact
  kernel ``quarter_hmc`` with ``--mass-matrix adapted`` (the Hessian's, rescaled per k-shell by
  a pilot run whose gradients count as warm-up).

For each: bulk ESS per 1000 gradient evaluations (sampling phase, all chains) of the P(k)
amplitudes of the three lowest-k bins of ``s`` and of 20 random Fourier modes, split-Rhat, and
the posterior mean and standard deviation of the three P(k) amplitudes (all samplers target
the same posterior, so a sampler's bias shows as a disagreement);
warm-up gradients (cosmolaw's include its pilot run; the MAP search and the preconditioner's
Hessian-vector products are listed apart) are printed beside. Last line:
``ess_ratio_pk_vs_nuts=... ess_ratio_pk_vs_mclmc=... ess_ratio_modes_vs_mclmc=... rhat_max=...``
(ratios cosmolaw / peer, of the means over the quantities; rhat_max is
cosmolaw's).
"""

from __future__ import annotations

import argparse
import time

import blackjax
import jax
import jax.numpy as jnp
import numpy as np

from inference.diagnostics import ess_bulk, split_rhat
from inference.driver import MASS_MATRICES, RunConfig, adapt_mass_matrix, prepare
from inference.fields import power_in_shells, shell_index
from inference.models import counts_posterior, mock_counts
from inference.precondition import latent_logdensity
from inference.samplers import CHAIN_AXIS, make_sampler
from simulator.config import SimConfig
from simulator.cosmology import Cosmology
from simulator.observe.mock import Observation

NUM_MODES = 20


def build(mesh: int, box: float, seed: int):
    """The posterior and its truth (the mock is drawn through the posterior's own forward
    model: white noise -> 1LPT -> CIC -> ``nbar (1 + b1 delta)`` -> Poisson)."""
    conf = SimConfig(mesh=mesh, box=box, a_stop=0.5, lpt_order=1)
    cosmo = Cosmology.planck18()
    obs = Observation(bias="linear", bias_params={"b1": 1.5}, nbar_cell=2.0, noise="poisson")
    counts, truth = mock_counts(conf, cosmo, obs, "lpt1", jax.random.PRNGKey(seed))
    shape = (mesh,) * 3
    posterior = counts_posterior(counts, np.ones(shape), conf, cosmo, obs, "lpt1", {})
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
    """Warm up and sample every chain (vmapped); return observables, sampling gradients,
    seconds and warm-up gradients."""

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
    (pk, modes), grads, warm_grads = jax.vmap(one, axis_name=CHAIN_AXIS)(starts, keys)
    jax.block_until_ready(pk)
    seconds = time.perf_counter() - t0
    return np.asarray(pk), np.asarray(modes), float(np.sum(grads)), seconds, warm_grads


def nuts_peer(logdensity):
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


def summarize(name, pk, modes, grads, seconds, warm_grads, extra_warm=0.0):
    out = {}
    for label, x in (("pk", pk), ("modes", modes)):
        ess = ess_bulk(x)
        out[f"ess_{label}"] = float(np.mean(1000.0 * ess / grads))
        out[f"rhat_{label}"] = float(np.max(split_rhat(x)))
    print(
        f"{name:>9}: ESS/1000 grads P(k) {out['ess_pk']:8.2f}  modes {out['ess_modes']:8.2f}  "
        f"rhat P(k) {out['rhat_pk']:.4f} modes {out['rhat_modes']:.4f}  "
        f"mean P(k) {np.array2string(np.mean(pk, axis=(0, 1)), precision=0)}  "
        f"sd {np.array2string(np.std(pk, axis=(0, 1)), precision=0)}  "
        f"grads {grads:.0f} (+ warm-up {float(np.sum(warm_grads)) + extra_warm:.0f})  "
        f"{seconds:.1f} s"
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mesh", type=int, default=16)
    parser.add_argument("--box", type=float, default=256.0)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument(
        "--samples",
        type=int,
        default=6000,
        help="MCLMC steps per chain (long enough for split-Rhat to resolve 1.01 on the lowest "
        "k-bin, whose ESS is about 500 per chain at 6000 steps)",
    )
    parser.add_argument("--nuts-samples", type=int, default=100, help="NUTS steps per chain")
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

    posterior, _ = build(args.mesh, args.box, args.seed)
    logdensity = lambda s: posterior.logdensity({"s": s})
    rng = np.random.default_rng(args.seed)
    size = args.mesh * args.mesh * (args.mesh // 2 + 1)
    mode_index = rng.choice(np.arange(1, size), NUM_MODES, replace=False)
    observe = observables(posterior, mode_index)
    keys = jax.random.split(jax.random.PRNGKey(args.seed + 1), args.chains)
    prior_starts = jax.random.normal(
        jax.random.PRNGKey(args.seed + 2), (args.chains,) + (args.mesh,) * 3
    )
    print(f"posterior: {posterior.name}, {args.chains} chains")
    results = {}

    config = RunConfig(
        sampler=args.sampler,
        num_chains=args.chains,
        num_warmup=args.warmup,
        seed=args.seed,
        mass_matrix=args.mass_matrix,
        large_scale_speedup=args.large_scale_speedup,
        energy_variance=args.energy_variance,
    )
    precond, _, starts = prepare(posterior, config, jax.random.PRNGKey(args.seed + 3))
    key_pilot = jax.random.PRNGKey(args.seed + 4)
    precond, starts, pilot_grads = adapt_mass_matrix(posterior, config, precond, starts, key_pilot)
    print(
        f"cosmolaw set-up: MAP {config.map_steps} L-BFGS iterations, preconditioner "
        f"{config.fisher_probes} probes, pilot {int(np.sum(pilot_grads))} gradients"
    )
    logdensity_latent = latent_logdensity(posterior, precond)
    sampler = make_sampler(args.sampler, logdensity_latent, energy_variance=config.energy_variance)
    results["cosmolaw"] = summarize(
        f"cosmolaw/{args.sampler}/{args.mass_matrix}",
        *run_chains(
            sampler.warmup,
            lambda k, s, t: (lambda out: (out[0], out[1].num_grads))(sampler.step(k, s, t)),
            lambda state: precond.to_params(sampler.position(state))["s"],
            observe,
            starts,
            keys,
            args.warmup,
            args.samples,
        ),
        extra_warm=float(np.sum(pilot_grads)),
    )
    warmup, step = mclmc_peer(logdensity, args.samples)
    results["mclmc"] = summarize(
        "mclmc",
        *run_chains(
            warmup,
            step,
            lambda state: state.position,
            observe,
            prior_starts,
            keys,
            args.warmup,
            args.samples,
        ),
    )
    warmup, step = nuts_peer(logdensity)
    results["nuts"] = summarize(
        "nuts",
        *run_chains(
            warmup,
            step,
            lambda state: state.position,
            observe,
            prior_starts,
            keys,
            args.nuts_warmup,
            args.nuts_samples,
        ),
    )
    ours = results["cosmolaw"]
    print(
        f"ess_ratio_pk_vs_nuts={ours['ess_pk'] / results['nuts']['ess_pk']:.2f} "
        f"ess_ratio_pk_vs_mclmc={ours['ess_pk'] / results['mclmc']['ess_pk']:.2f} "
        f"ess_ratio_modes_vs_mclmc={ours['ess_modes'] / results['mclmc']['ess_modes']:.2f} "
        f"rhat_max={max(ours['rhat_pk'], ours['rhat_modes']):.4f}"
    )


if __name__ == "__main__":
    main()
