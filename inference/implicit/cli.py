"""``cosmolaw sbi``: implicit-likelihood inference on summaries of simulated surveys.

- ``cosmolaw sbi simulate --n 2000 --out DIR [--like mock.h5]``: a training set
  (``DIR/training_set.h5``, ``DIR/config.toml``) of parameters drawn from the prior
  (``--prior NAME=LOW,HIGH``, default Omega_m in [0.2, 0.45] and sigma8 in [0.6, 1.0]) and
  simulated with the observation model of ``mock.h5`` (or of ``--mesh/--box/--model/--nbar``);
  rerun the same command to continue an interrupted set; ``mpiexec -n P`` shares it.
- ``cosmolaw sbi train --data DIR --summary pk|moped|imnn --out DIR``: an ensemble of flows on
  ``log P(k)`` to ``--kmax`` (h/Mpc or ``nyquist``), on its MOPED compression, or on the
  summaries of an IMNN trained on the counts themselves (``--imnn-sims`` fiducial simulations
  per set, at most ``--imnn-steps`` steps; saved as ``DIR/imnn.h5``), with TARP and SBC on a
  held-out share of the set (``DIR/diagnostics.json``).
- ``cosmolaw sbi infer --model DIR --data mock.h5 --out DIR``: posterior draws
  (``posterior.h5``), ``summary.json`` (means, spreads, the out-of-distribution check and a
  posterior predictive check) and GetDist contours (``contours.png``).
- ``cosmolaw sbi bolfi --data mock.h5 --budget 200 --out DIR``: for expensive simulators, the
  posterior of the mock's ``log P(k)`` to ``--kmax`` from ``--budget`` simulations placed by
  BOLFI (``inference.implicit.bolfi``: Gaussian processes emulate the summaries) with the
  mock's own model, observation and selection, over ``--prior``; the same outputs as ``infer``
  plus the simulations (``posterior.h5``: ``simulations/theta``, ``simulations/summaries``).

Bad input is refused with the parameter, its value and what is allowed, before anything is
compiled or written.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

SUMMARIES = ("pk", "moped")
MODEL_FILE = "model.json"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``sbi`` and its sub-commands ``simulate``, ``train``, ``infer`` and ``bolfi``."""
    parser = subparsers.add_parser(
        "sbi",
        help="implicit-likelihood inference on summaries",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="sbi_command", metavar="STEP", required=True)

    p = sub.add_parser("simulate", help="simulate a training set over the prior")
    p.add_argument("--n", type=int, required=True, help="number of simulations")
    p.add_argument("--out", required=True, help="run directory")
    p.add_argument("--like", help="mock.h5 whose model, observation and selection to copy")
    p.add_argument("--mesh", type=int, default=32, help="mesh cells per side (without --like)")
    p.add_argument("--box", type=float, default=256.0, help="box side in Mpc/h (without --like)")
    p.add_argument("--model", default="lpt2", help="lpt1, lpt2 or pm (without --like)")
    p.add_argument("--nbar", type=float, default=2.0, help="galaxies per cell (without --like)")
    _add_prior_option(p)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--chunk", type=int, default=50, help="simulations per resumable part")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run_simulate)

    p = sub.add_parser("train", help="train a neural posterior on a training set")
    p.add_argument("--data", required=True, help="directory of training_set.h5")
    p.add_argument("--summary", default="pk", help="pk, moped or imnn")
    p.add_argument("--out", required=True, help="model directory")
    p.add_argument("--kmax", default="0.15", help="largest k in h/Mpc, or 'nyquist'")
    p.add_argument("--flow", default="maf", help="maf or coupling")
    p.add_argument("--ensemble", type=int, default=3, help="flows in the ensemble")
    p.add_argument("--heldout", type=float, default=0.1, help="share held out for coverage")
    p.add_argument(
        "--imnn-sims", type=int, default=200, help="IMNN fiducial simulations per set (imnn)"
    )
    p.add_argument("--imnn-steps", type=int, default=1000, help="IMNN training steps at most")
    p.add_argument(
        "--imnn-pool",
        type=int,
        default=1,
        help="the IMNN sees the counts summed over blocks of POOL^3 cells (must divide the mesh)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run_train)

    p = sub.add_parser("infer", help="posterior of an observed mock")
    p.add_argument("--model", required=True, help="model directory from cosmolaw sbi train")
    p.add_argument("--data", required=True, help="mock.h5 from cosmolaw mock")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--samples", type=int, default=10000, help="posterior draws")
    p.add_argument("--ppc", type=int, default=50, help="posterior predictive simulations")
    p.add_argument(
        "--compare", metavar="CHAIN", help="field-level chain.h5 whose contours to overlay"
    )
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run_infer)

    p = sub.add_parser("bolfi", help="posterior of a mock from a few hundred simulations")
    p.add_argument("--data", required=True, help="mock.h5 from cosmolaw mock")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--budget", type=int, default=200, help="simulations in all")
    p.add_argument("--initial", type=int, default=40, help="prior draws before acquisitions")
    p.add_argument("--batch", type=int, default=10, help="simulations per acquisition")
    p.add_argument("--kmax", default="0.15", help="largest k in h/Mpc, or 'nyquist'")
    _add_prior_option(p)
    p.add_argument("--samples", type=int, default=10000, help="posterior draws")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run_bolfi)


def _add_prior_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--prior",
        action="append",
        metavar="NAME=LOW,HIGH",
        help="uniform prior of a parameter (repeatable; default Omega_m=0.2,0.45 and "
        "sigma8=0.6,1.0)",
    )


def _require_int(name: str, value: Any, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name}={value!r} is invalid: must be an integer >= {low}")


def _priors(items: list[str] | None) -> Any:
    from inference.implicit.prior import DEFAULT_BOUNDS, box_prior

    if not items:
        return box_prior(DEFAULT_BOUNDS)
    bounds = {}
    for item in items:
        name, _, rest = item.partition("=")
        try:
            low, high = (float(v) for v in rest.split(","))
        except ValueError:
            raise ValueError(f"--prior {item!r} is invalid: must be NAME=LOW,HIGH") from None
        bounds[name.strip()] = (low, high)
    return box_prior(bounds)


def _spec(args: argparse.Namespace) -> Any:
    """The validated training-set specification of ``sbi simulate``'s arguments."""
    from inference.implicit.training_set import TrainingSetSpec

    _require_int("--n", args.n, 1)
    _require_int("--chunk", args.chunk, 1)
    _require_int("--seed", args.seed, 0)
    prior = _priors(args.prior)
    if args.like is not None:
        from inference.data import load_counts

        model = _model_of(load_counts(args.like))
    else:
        from simulator.config import SimConfig
        from simulator.cosmology import Cosmology
        from simulator.observe.mock import Observation

        model = {
            "conf": SimConfig(mesh=args.mesh, box=args.box),
            "cosmo": Cosmology(),
            "obs": Observation(nbar_cell=args.nbar),
            "model": args.model,
            "selection": None,
        }
    return TrainingSetSpec(count=args.n, prior=prior, seed=args.seed, chunk=args.chunk, **model)


def _model_of(data: Any) -> dict[str, Any]:
    """The simulator configuration, cosmology, observation model, forward model and selection
    of a mock (``inference.data.load_counts``), as keywords of ``TrainingSetSpec``."""
    from inference.data import model_from_attrs

    conf, cosmo, obs, model = model_from_attrs(data.attrs)
    return {"conf": conf, "cosmo": cosmo, "obs": obs, "model": model, "selection": data.selection}


def run_simulate(args: argparse.Namespace) -> int:
    """``cosmolaw sbi simulate``."""
    from inference.implicit.training_set import simulate_training_set

    spec = _spec(args)
    path = simulate_training_set(spec, args.out, progress=not args.no_progress)
    if path is not None:
        print(
            f"cosmolaw sbi simulate: {spec.count} simulations ({spec.model}, "
            f"{spec.conf.mesh}^3) over {list(spec.prior.names)} -> {path}"
        )
    return 0


def _train_options(args: argparse.Namespace) -> dict[str, Any]:
    from inference.implicit.flows import FlowSettings
    from inference.implicit.summaries import FIELD_SUMMARIES, parse_kmax

    allowed = [*SUMMARIES, *FIELD_SUMMARIES]
    if args.summary == "imnn" and "imnn" not in FIELD_SUMMARIES:
        raise ValueError(
            "--summary 'imnn' is not registered: it trains with discovery.compress, which "
            "inference may not import; run it through the cosmolaw command (or import "
            "experiments.core.imnn_summary first)"
        )
    if args.summary not in allowed:
        raise ValueError(f"--summary {args.summary!r} is not allowed (allowed: {allowed})")
    if not 0 < args.heldout < 0.5:
        raise ValueError(f"--heldout={args.heldout!r} is invalid: must be in (0, 0.5)")
    _require_int("--imnn-sims", args.imnn_sims, 8)
    _require_int("--imnn-steps", args.imnn_steps, 1)
    _require_int("--imnn-pool", args.imnn_pool, 1)
    settings = FlowSettings(flow=args.flow, ensemble=args.ensemble, seed=args.seed)
    return {"kmax": parse_kmax(args.kmax), "settings": settings}


def run_train(args: argparse.Namespace) -> int:
    """``cosmolaw sbi train``."""
    import dataclasses

    import numpy as np

    from cosmolaw.io import write_json, write_toml
    from inference.implicit.diagnostics import sbc_ranks, tarp_coverage
    from inference.implicit.flows import NeuralPosterior
    from inference.implicit.summaries import FIELD_SUMMARIES, LinearCompression, PowerSummary
    from inference.implicit.training_set import read_training_set

    opts = _train_options(args)
    data = read_training_set(args.data)
    base = PowerSummary(tuple(data.k), opts["kmax"])
    n = len(data.theta)
    held = max(1, int(round(args.heldout * n)))
    if n - held < 20:
        raise ValueError(f"--data {args.data!r} holds {n} simulations: at least 20 are needed")
    order = np.random.default_rng(args.seed).permutation(n)
    test, train = order[:held], order[held:]
    summary = base
    if args.summary in FIELD_SUMMARIES:
        counts = data.read_counts()  # refuses a set stored without counts, before training
        summary = FIELD_SUMMARIES[args.summary].train(
            data, args.imnn_sims, args.imnn_steps, args.seed, not args.no_progress, args.imnn_pool
        )
        x = summary(counts)
    else:
        if args.summary == "moped":
            summary = LinearCompression.fit(base, data.theta[train], data.pk[train])
        x = summary(data.pk)
    posterior = NeuralPosterior(data.prior, opts["settings"], progress=not args.no_progress)
    posterior.fit(data.theta[train], x[train])
    draws = posterior.sample_many(x[test], 500, seed=args.seed + 1)
    tarp = tarp_coverage(draws, data.theta[test], seed=args.seed)
    sbc = sbc_ranks(draws, data.theta[test])
    out = Path(args.out)
    posterior.save(out)
    if args.summary in FIELD_SUMMARIES:
        summary.save(out)
    training = {k: v for k, v in data.attrs.items() if k != "signature"}
    write_json(
        out / MODEL_FILE,
        {
            "summary": summary.to_dict(),
            "names": list(data.names),
            "training": training,
            "data": str(Path(args.data).resolve()),
        },
    )
    diagnostics = {
        "heldout": held,
        "tarp_error": tarp["error"],
        "tarp_mean_error": tarp["mean_error"],
        "tarp_alpha": tarp["alpha"],
        "tarp_ecp": tarp["ecp"],
        "sbc_pvalues": dict(zip(data.names, sbc["pvalues"].tolist(), strict=True)),
    }
    write_json(out / "diagnostics.json", diagnostics)
    write_toml(
        out / "config.toml",
        {
            "summary": args.summary,
            "kmax": opts["kmax"],
            "data": str(Path(args.data).resolve()),
            "heldout": args.heldout,
            "imnn_sims": args.imnn_sims,
            "imnn_steps": args.imnn_steps,
            "imnn_pool": args.imnn_pool,
            "settings": dataclasses.asdict(opts["settings"]),
        },
    )
    print(
        f"cosmolaw sbi train: {len(train)} pairs, summary {args.summary} ({x.shape[1]} values); "
        f"held-out {held}: TARP error {tarp['error']:.3f}, SBC p-values "
        f"{np.round(sbc['pvalues'], 3).tolist()} -> {out}"
    )
    return 0


def _load_model(model_dir: str) -> dict[str, Any]:
    path = Path(model_dir) / MODEL_FILE
    if not path.is_file():
        raise ValueError(f"--model {model_dir!r} is invalid: no {MODEL_FILE} (run sbi train)")
    return json.loads(path.read_text())


def _check_mock(attrs: dict[str, Any], training: dict[str, Any]) -> None:
    """Refuse a mock whose mesh, box, model or observation differ from the training set's."""
    keys = [k for k in training if k.startswith(("sim/", "observation/")) or k == "model"]
    keys = [k for k in keys if k not in ("sim/steps",) or training.get("model") == "pm"]
    for key in keys:
        have, want = attrs.get(key), training[key]
        if have is None or json.dumps(_plain(have)) != json.dumps(_plain(want)):
            raise ValueError(
                f"--data: {key}={_plain(have)!r} differs from the training set's "
                f"{_plain(want)!r}: simulate a training set --like this mock"
            )


def _plain(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    return value


def _counts_summary(model_dir: str, model: dict[str, Any]) -> Any:
    """``summarise(counts, selection) -> (d,)``: the trained summary of one field of counts
    ``(m, m, m)`` under ``selection`` ``(m, m, m)``, as ``sbi train`` stored it."""
    from inference.implicit.summaries import FIELD_SUMMARIES, galaxy_power, summary_from_dict

    kind = model["summary"]["kind"]
    if kind in FIELD_SUMMARIES:
        field = FIELD_SUMMARIES[kind].load(Path(model_dir))
        return lambda counts, selection: field(counts)
    if kind not in SUMMARIES:
        raise ValueError(
            f"--model {model_dir!r}: summary kind {kind!r} is not registered (known: "
            f"{[*SUMMARIES, *FIELD_SUMMARIES]}); run it through the cosmolaw command"
        )
    summary = summary_from_dict(model["summary"])
    box = float(model["training"]["sim/box"])
    return lambda counts, selection: summary(galaxy_power(counts, selection, box)[1])


def run_infer(args: argparse.Namespace) -> int:
    """``cosmolaw sbi infer``."""
    import numpy as np

    from inference.data import load_counts
    from inference.implicit.diagnostics import out_of_distribution, predictive_check
    from inference.implicit.flows import NeuralPosterior
    from inference.implicit.getdist_export import chain_to_mcsamples
    from inference.implicit.training_set import read_training_set, simulate_counts

    _require_int("--samples", args.samples, 1)
    _require_int("--ppc", args.ppc, 0)
    if 0 < args.ppc < 10:
        raise ValueError(f"--ppc={args.ppc!r} is invalid: must be 0 or >= 10")
    _require_int("--seed", args.seed, 0)
    model = _load_model(args.model)
    data = load_counts(args.data)
    _check_mock(data.attrs, model["training"])
    compare = None if args.compare is None else chain_to_mcsamples(args.compare)
    summarise = _counts_summary(args.model, model)
    posterior = NeuralPosterior.load(args.model)
    observed = summarise(data.counts, data.selection)
    check = out_of_distribution(observed, posterior.whitener)
    draws = posterior.sample(observed, args.samples, seed=args.seed)
    names = model["names"]
    result = {**_moments(names, draws, data.attrs), "out_of_distribution": check.to_dict()}
    if args.ppc:
        spec = read_training_set(model["data"]).spec()
        rng = np.random.default_rng(args.seed)
        picks = draws[rng.choice(len(draws), args.ppc, replace=False)]
        sims = [
            summarise(simulate_counts(spec, t, int(rng.integers(2**31 - 1))), spec.selection)
            for t in picks
        ]
        result["predictive_check"] = predictive_check(observed, np.stack(sims))
    out = Path(args.out)
    attrs = {
        "out_of_distribution": check.outside,
        "model": str(Path(args.model).resolve()),
        "data": str(Path(args.data).resolve()),
    }
    options = {k: getattr(args, k) for k in ("model", "data", "samples", "ppc", "seed", "compare")}
    label = f"ILI ({model['summary']['kind']})"
    _write_posterior(out, draws, posterior.prior, result, attrs, {"infer": options}, label, compare)
    warn = " (OUTSIDE the training distribution)" if check.outside else ""
    stats = _stats_line(names, result)
    print(f"cosmolaw sbi infer: {stats}{warn} -> {out}", file=sys.stdout)
    return 0


def _moments(names: list[str], draws: Any, mock_attrs: dict) -> dict[str, Any]:
    """Means, spreads, covariance and quantiles of ``draws`` ``(n, p)``, and the mock's true
    parameters when it records them."""
    import numpy as np

    result: dict[str, Any] = {
        "names": list(names),
        "mean": draws.mean(0),
        "std": draws.std(0),
        "covariance": np.atleast_2d(np.cov(draws, rowvar=False)),
        "quantiles_16_50_84": np.percentile(draws, [16, 50, 84], axis=0),
    }
    truth = {
        n: float(mock_attrs[f"cosmology/{n}"]) for n in names if f"cosmology/{n}" in mock_attrs
    }
    if truth:
        result["truth"] = truth
    return result


def _stats_line(names: list[str], result: dict[str, Any]) -> str:
    return ", ".join(
        f"{n} = {m:.4f} +- {s:.4f}"
        for n, m, s in zip(names, result["mean"], result["std"], strict=True)
    )


def _write_posterior(
    out: Path,
    draws: Any,
    prior: Any,
    result: dict[str, Any],
    attrs: dict[str, Any],
    options: dict[str, Any],
    label: str,
    compare: Any = None,
    extra: dict[str, tuple[Any, str, str]] | None = None,
) -> None:
    """``out/posterior.h5`` (``samples`` ``(n, p)``, ``attrs`` and ``extra`` datasets given as
    name -> (array, units, description)), ``summary.json`` (``result``), ``config.toml``
    (``options``) and GetDist contours of the draws (``label``; with ``compare``'s, and the
    truth when ``result`` holds it) in ``contours.png``."""
    from cosmolaw.io import atomic_h5, write_json, write_toml
    from inference.implicit.getdist_export import plot_contours, to_mcsamples

    names = result["names"]
    with atomic_h5(out / "posterior.h5") as f:
        dset = f.create_dataset("samples", data=draws)
        dset.attrs.update(names=names, units="1", description="posterior draws (n, p)")
        for name, (values, units, description) in (extra or {}).items():
            f.create_dataset(name, data=values).attrs.update(units=units, description=description)
        f.attrs.update(attrs)
    write_json(out / "summary.json", result)
    write_toml(out / "config.toml", options)
    ranges = (
        {n: (lo, hi) for n, lo, hi in zip(names, prior.low, prior.high, strict=True)}
        if hasattr(prior, "low")
        else None
    )
    contours = [to_mcsamples(draws, names, label, ranges)]
    plot_contours(
        contours + ([compare] if compare else []), out / "contours.png", result.get("truth")
    )


def run_bolfi(args: argparse.Namespace) -> int:
    """``cosmolaw sbi bolfi``."""
    import numpy as np

    from inference.data import load_counts
    from inference.implicit.bolfi import BOLFI
    from inference.implicit.summaries import PowerSummary, galaxy_power, parse_kmax
    from inference.implicit.training_set import TrainingSetSpec, simulate_counts

    for name in ("budget", "initial", "batch", "samples", "seed"):
        _require_int(f"--{name}", getattr(args, name), 0 if name == "seed" else 1)
    kmax = parse_kmax(args.kmax)
    prior = _priors(args.prior)
    data = load_counts(args.data)
    spec = TrainingSetSpec(count=args.budget, prior=prior, seed=args.seed, **_model_of(data))
    box = spec.conf.box
    k, observed_pk = galaxy_power(data.counts, data.selection, box)
    summary = PowerSummary(tuple(k), kmax)
    rng = np.random.default_rng(args.seed)

    def simulate(theta: np.ndarray) -> np.ndarray:
        seeds = rng.integers(2**31 - 1, size=len(theta))
        return np.stack(
            [
                summary(galaxy_power(simulate_counts(spec, t, int(s)), data.selection, box)[1])
                for t, s in zip(theta, seeds, strict=True)
            ]
        )

    bolfi = BOLFI(
        prior,
        simulate,
        summary(observed_pk),
        budget=args.budget,
        initial=args.initial,
        batch=args.batch,
        seed=args.seed,
    )
    bolfi.fit(progress=not args.no_progress)
    draws = bolfi.sample(args.samples, seed=args.seed + 1)
    names = list(prior.names)
    result = {**_moments(names, draws, data.attrs), "simulations": args.budget}
    options = {
        k: getattr(args, k)
        for k in ("data", "budget", "initial", "batch", "samples", "seed", "kmax")
    }
    extra = {
        "simulations/theta": (bolfi.theta_, "1", "parameters of the simulations (n, p)"),
        "simulations/summaries": (
            bolfi.summaries_,
            "log (Mpc/h)^3",
            "log P(k) of the simulations to kmax (n, bins)",
        ),
    }
    out = Path(args.out)
    attrs = {"data": str(Path(args.data).resolve()), "method": "bolfi"}
    _write_posterior(out, draws, prior, result, attrs, {"bolfi": options}, "BOLFI", extra=extra)
    print(f"cosmolaw sbi bolfi: {_stats_line(names, result)} -> {out}", file=sys.stdout)
    return 0
