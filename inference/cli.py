"""``cosmolaw infer``: field-level inference of initial conditions and bias from galaxy counts.

``cosmolaw infer --data mock.h5 --sampler mclmc --samples 1000 --out DIR`` writes
``DIR/config.toml``, ``DIR/chain.h5`` (checkpointed), ``DIR/summary.json``,
``DIR/posterior.h5`` and ``DIR/summary.png``; ``cosmolaw infer --resume DIR`` continues an
interrupted run (even after ``kill -9``) and gives the chain an uninterrupted run would have.
``--blocks gibbs`` alternates the ``--sampler`` kernel on the field with a random walk on the
bias (and cosmology, noise) parameters; the default ``--blocks joint`` moves all at once.
``--devices N`` runs each chain's forward model on the sharded particle mesh over N devices
(``jax.sharding``: slab FFT and CIC halo exchange of ``simulator.distributed``), with the field,
its gradient and the chain's state split in slabs of MESH/N planes.
Bad data (NaN or negative counts, a mask whose shape disagrees with the counts, an empty mask)
is refused before anything is compiled. When the chains have not converged (split-Rhat of
the low-k P(k) and the scalars, effective sample sizes; ``summary.json``'s ``convergence``) a
warning with what to change is printed to stderr.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

#: Options stored in ``config.toml`` and restored by ``--resume``.
RUN_OPTIONS = (
    "sampler",
    "samples",
    "warmup",
    "chains",
    "thin",
    "checkpoint_every",
    "seed",
    "mass_matrix",
    "init",
    "map_steps",
    "blocks",
    "large_scale_speedup",
    "large_scale_shells",
    "energy_variance",
)
MODEL_OPTIONS = (
    "data",
    "model",
    "steps",
    "bias_prior",
    "fix_bias",
    "sample_cosmology",
    "devices",
    "halo",
)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``infer`` sub-command to the ``cosmolaw`` parser."""
    from inference.driver import MASS_MATRICES, RunConfig
    from inference.samplers import BLOCKS, SAMPLERS

    p = subparsers.add_parser(
        "infer",
        help="sample initial conditions, bias (and cosmology) given galaxy counts",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", help="mock.h5 from cosmolaw mock (data/counts, data/selection)")
    src.add_argument("--resume", metavar="DIR", help="continue the run in DIR")
    p.add_argument("--out", help="run directory (with --data)")
    p.add_argument("--sampler", choices=SAMPLERS, default="mclmc")
    p.add_argument(
        "--blocks",
        choices=BLOCKS,
        default="joint",
        help="joint: SAMPLER moves all parameters; gibbs: SAMPLER moves the field, alternating "
        "with a random walk on bias/cosmology/noise",
    )
    p.add_argument("--samples", type=int, default=1000, help="sampling steps per chain")
    p.add_argument("--warmup", type=int, default=300, help="warm-up (tuning) steps per chain")
    p.add_argument("--chains", type=int, default=4, help="chains run in parallel (vmap)")
    p.add_argument("--thin", type=int, default=10, help="store the fields every THIN steps")
    p.add_argument("--checkpoint-every", type=int, default=100, help="steps between checkpoints")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--mass-matrix",
        choices=MASS_MATRICES,
        default="fisher",
        help="fisher: prior + expected data Fisher information; hessian: observed curvature "
        "near the MAP; adapted: hessian rescaled per k-shell by a pilot run; prior: identity",
    )
    p.add_argument(
        "--large-scale-speedup",
        type=float,
        default=RunConfig.large_scale_speedup,
        help="divide the latent widths of the modes in the lowest k-shells by this (>= 1): "
        "they mix that many times faster (2 with --sampler mclmc --mass-matrix hessian "
        "--energy-variance 3e-4 is the configuration of benchmarks/sampler_efficiency.py)",
    )
    p.add_argument(
        "--large-scale-shells",
        type=int,
        default=RunConfig.large_scale_shells,
        help="k-shells sped up (width k_f)",
    )
    p.add_argument(
        "--energy-variance",
        type=float,
        default=RunConfig.energy_variance,
        help="mclmc: target variance of the energy error per dimension (larger: larger steps, "
        "more bias; 3e-4 in benchmarks/sampler_efficiency.py)",
    )
    p.add_argument("--init", choices=("map", "prior"), default="map", help="chain starts")
    p.add_argument("--map-steps", type=int, default=50, help="L-BFGS iterations for the MAP")
    p.add_argument(
        "--model", choices=("lpt1", "lpt2", "pm"), default=None, help="default: the mock's"
    )
    p.add_argument("--steps", type=int, default=None, help="PM steps (default: the mock's)")
    p.add_argument(
        "--bias-prior",
        action="append",
        metavar="NAME=MEAN,STD",
        help="Gaussian prior of a bias parameter (repeatable; default: broad, around the "
        "law's default values)",
    )
    p.add_argument("--fix-bias", action="store_true", help="keep the bias at the mock's values")
    p.add_argument(
        "--sample-cosmology",
        action="store_true",
        help="also sample Omega_m and sigma8 (Gaussian priors of 10%% around the mock's values)",
    )
    p.add_argument(
        "--devices",
        type=int,
        default=None,
        metavar="N",
        help="run each chain's forward model sharded over N devices (slabs of MESH/N planes; "
        "N divides the mesh and the particle grid, N <= jax.device_count(); on CPU set "
        "XLA_FLAGS=--xla_force_host_platform_device_count=N); default: one device, unsharded",
    )
    p.add_argument(
        "--halo",
        type=int,
        default=None,
        metavar="CELLS",
        help="with --devices: mesh planes painted beyond each slab (default MESH/8); must "
        "exceed how far particles move out of their slab, redshift-space shift included",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _bias_priors(items: list[str] | None) -> dict[str, tuple[float, float]] | None:
    if not items:
        return None
    out = {}
    for item in items:
        name, _, rest = item.partition("=")
        try:
            mean, std = (float(v) for v in rest.split(","))
        except ValueError:
            raise ValueError(f"--bias-prior {item!r} must be NAME=MEAN,STD") from None
        if not std > 0:
            raise ValueError(f"--bias-prior {item!r}: STD={std} must be > 0")
        out[name.strip()] = (mean, std)
    return out


def _options(args: argparse.Namespace) -> dict[str, Any]:
    """The options of a new run, or those stored in ``DIR/config.toml`` for ``--resume``."""
    if args.resume is None:
        if args.out is None:
            raise ValueError("--out is required with --data")
        opts = {name: getattr(args, name) for name in RUN_OPTIONS + MODEL_OPTIONS}
        opts["data"] = str(Path(args.data).resolve())
        opts["out"] = args.out
        return opts
    import tomllib

    config = Path(args.resume) / "config.toml"
    if not config.is_file():
        raise ValueError(f"--resume {args.resume!r}: no config.toml there, nothing to resume")
    stored = tomllib.loads(config.read_text())
    opts = {**stored["run"], **stored["model"], "out": args.resume}
    opts.setdefault("bias_prior", None)
    opts.setdefault("model", None)
    opts.setdefault("steps", None)
    opts.setdefault("blocks", "joint")
    opts.setdefault("devices", None)
    opts.setdefault("halo", None)
    # Options added after a run was started take their defaults.
    from inference.driver import RunConfig

    opts.setdefault("large_scale_speedup", RunConfig.large_scale_speedup)
    opts.setdefault("large_scale_shells", RunConfig.large_scale_shells)
    opts.setdefault("energy_variance", RunConfig.energy_variance)
    return opts


def build_posterior(opts: dict[str, Any]):
    """Posterior and truth from the data file and model options (validates the data first)."""
    import dataclasses

    from inference.data import load_counts, model_from_attrs
    from inference.models import counts_posterior

    data = load_counts(opts["data"])
    conf, cosmo, obs, mock_model = model_from_attrs(data.attrs)
    if opts.get("steps"):
        conf = dataclasses.replace(conf, steps=int(opts["steps"]))
    model = opts.get("model") or mock_model
    bias_priors = _bias_priors(opts.get("bias_prior"))
    if opts.get("fix_bias"):
        bias_priors = {}
    cosmo_priors = None
    if opts.get("sample_cosmology"):
        cosmo_priors = {
            name: (float(getattr(cosmo, name)), 0.1 * float(getattr(cosmo, name)))
            for name in ("Omega_m", "sigma8")
        }
    posterior = counts_posterior(
        data.counts,
        data.selection,
        conf,
        cosmo,
        obs,
        model,
        bias_priors,
        cosmo_priors,
        devices=opts.get("devices"),
        halo=opts.get("halo"),
    )
    truth = {k: v for k, v in data.truth.items() if k in ("s", "delta_L", "delta")}
    return posterior, truth


def run(args: argparse.Namespace) -> int:
    """Validate, build the posterior, sample (or resume), and write the diagnostics."""
    from cosmolaw.io import write_toml
    from inference.driver import RunConfig, run_chains
    from inference.parallel import CHAINS_DIR, run_chains_mpi
    from inference.report import digest, write_report
    from simulator.distributed.multihost import mpi_rank_and_size

    opts = _options(args)
    config = RunConfig(
        sampler=opts["sampler"],
        num_samples=int(opts["samples"]),
        num_warmup=int(opts["warmup"]),
        num_chains=int(opts["chains"]),
        thin=int(opts["thin"]),
        checkpoint_every=int(opts["checkpoint_every"]),
        seed=int(opts["seed"]),
        mass_matrix=opts["mass_matrix"],
        init=opts["init"],
        map_steps=int(opts["map_steps"]),
        blocks=opts["blocks"],
        large_scale_speedup=float(opts["large_scale_speedup"]),
        large_scale_shells=int(opts["large_scale_shells"]),
        energy_variance=float(opts["energy_variance"]),
    )
    out = Path(opts["out"])
    if args.resume is None and (out / "chain.h5").exists():
        raise ValueError(f"--out {str(out)!r} already holds a chain.h5: use --resume {out}")
    posterior, truth = build_posterior(opts)
    rank, size = mpi_rank_and_size()
    if args.resume is None and rank == 0:
        write_toml(
            out / "config.toml",
            {
                "run": {k: opts[k] for k in RUN_OPTIONS},
                "model": {k: opts[k] for k in MODEL_OPTIONS if opts[k] is not None},
            },
        )
    if rank == 0:
        print(
            f"cosmolaw infer: {posterior.name}, {config.sampler} ({config.blocks}) "
            f"x{config.num_chains} over {size} process(es) -> {out}"
        )
    # Under mpiexec the chains are shared among the ranks (one seeded run per chain, merged
    # by rank 0); a run started that way resumes the same way.
    use_mpi = size > 1 or (out / CHAINS_DIR).is_dir()
    runner = run_chains_mpi if use_mpi else run_chains
    path = runner(
        posterior,
        config,
        out,
        truth=truth or None,
        posterior_attrs={"name": posterior.name, "data": opts["data"]},
        progress=not args.no_progress,
    )
    if rank != 0:
        return 0
    summary = write_report(path)
    print(digest(summary))
    verdict = summary["convergence"]
    if not verdict["converged"]:
        import sys

        advice = "".join(f"\n  - {item}" for item in verdict["advice"])
        print(
            f"cosmolaw infer: WARNING: the chains have not converged (split-Rhat max "
            f"{verdict['rhat_max']:.4g} of {verdict['rhat_max_of']}, limit "
            f"{verdict['rhat_limit']}; smallest ESS {verdict['ess_bulk_min']:.0f} bulk, "
            f"{verdict['ess_tail_min']:.0f} tail, need {verdict['min_ess']}): do not use these "
            f"draws as posterior samples yet. What to change:{advice}",
            file=sys.stderr,
        )
    return 0
