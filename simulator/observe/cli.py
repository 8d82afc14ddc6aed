"""``cosmolaw mock``: draw a mock galaxy survey from the forward model, with its truth.

Writes ``DIR/mock.h5`` (``data/counts``, ``data/selection``, optional
``data/galaxy_positions``; ``truth/white_noise``, ``truth/delta_linear``, ``truth/delta``,
``truth/delta_observed``, ``truth/expected_counts``, ``truth/bias/<name>``; the configuration as
file attributes) and ``DIR/config.toml``. ``--nbar`` is in galaxies per cell: the amplitude of
the bias law, the mean count before selection for laws of unit mean (linear, quadratic).
Everything is validated before the forward model is compiled; bad input exits with status 2,
names the parameter and writes nothing.
"""

from __future__ import annotations

import argparse
from typing import Any

from simulator.cli import add_cosmology_arguments, cosmology_from_args, sim_config_from_args

AXES = {"x": 0, "y": 1, "z": 2}


def _key_values(items: list[str] | None, option: str) -> dict[str, float]:
    """Parse ``["name=value", ...]`` into floats; ValueError names ``option`` otherwise."""
    out: dict[str, float] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or not name.strip():
            raise ValueError(f"{option} {item!r} must be NAME=NUMBER")
    return out


def _observer(text: str | None) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        return tuple(float(x) for x in text.split(","))
    except ValueError:
        raise ValueError(f"--observer {text!r} must be three numbers X,Y,Z in Mpc/h") from None


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``mock`` sub-command."""
    p = subparsers.add_parser(
        "mock",
        help="draw a mock galaxy survey (counts on the mesh) with its truth",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--out", required=True, help="output directory (created)")
    p.add_argument("--seed", type=int, default=0, help="seed of the initial conditions and draws")
    p.add_argument("--mesh", type=int, default=32, help="mesh cells per side (even)")
    p.add_argument("--box", type=float, default=256.0, help="box side in Mpc/h")
    p.add_argument("--model", choices=("lpt1", "lpt2", "pm"), default="pm")
    p.add_argument("--steps", type=int, default=10, help="PM steps (--model pm)")
    p.add_argument("--a-start", type=float, default=0.1, help="scale factor of the PM start")
    p.add_argument("--a-stop", type=float, default=1.0, help="scale factor of the survey")
    p.add_argument(
        "--ptcl-grid", type=int, default=None, help="particles per side (divides --mesh)"
    )
    p.add_argument("--lpt-order", type=int, default=2, help="LPT order of the PM start (1, 2)")
    add_cosmology_arguments(p)
    p.add_argument(
        "--bias",
        default="neyrinck",
        help="bias law: linear, quadratic (b1b2bs2), power_law, neyrinck, broken_power_law",
    )
    p.add_argument(
        "--bias-param",
        action="append",
        metavar="NAME=VALUE",
        help="bias parameter (repeatable), e.g. --bias-param rho_g=0.3",
    )
    p.add_argument("--nbar", type=float, default=2.0, help="galaxies per cell (law amplitude)")
    p.add_argument("--noise", choices=("poisson", "gaussian", "negbinom"), default="poisson")
    p.add_argument(
        "--noise-param",
        action="append",
        metavar="NAME=VALUE",
        help="noise parameter: sigma (gaussian, counts per cell; default sqrt(nbar)) or "
        "r (negbinom, default 10)",
    )
    p.add_argument("--rsd", choices=("none", "plane-parallel", "radial"), default="none")
    p.add_argument("--los", choices=tuple(AXES), default="z", help="plane-parallel sight line")
    p.add_argument(
        "--observer", default=None, help="radial RSD observer X,Y,Z in Mpc/h (default: centre)"
    )
    p.add_argument("--selection", default=None, help="HDF5 file with the selection grid")
    p.add_argument("--selection-dataset", default="data/selection", help="dataset in that file")
    p.add_argument("--completeness", type=float, default=1.0, help="overall completeness")
    p.add_argument("--positions", action="store_true", help="also sample galaxy positions")
    p.add_argument("--no-progress", action="store_true", help="hide the PM progress bar")
    p.set_defaults(func=run)


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    """Validated configuration objects from the arguments (nothing compiled yet)."""
    from simulator.observe.mock import Observation
    from simulator.observe.rsd import RSDConfig
    from simulator.observe.selection import load_selection, survey_selection

    conf = sim_config_from_args(
        args, lpt_order={"lpt1": 1, "lpt2": 2}.get(args.model, args.lpt_order)
    )
    cosmo = cosmology_from_args(args)
    noise_params = _key_values(args.noise_param, "--noise-param")
    if args.noise == "gaussian" and args.nbar > 0:
        noise_params.setdefault("sigma", args.nbar**0.5)
    observer = _observer(args.observer)
    if args.rsd == "radial" and observer is None:
        observer = (conf.box / 2,) * 3
    rsd = RSDConfig(args.rsd, los=AXES[args.los], observer=observer)
    obs = Observation(
        bias=args.bias,
        bias_params=_key_values(args.bias_param, "--bias-param"),
        nbar_cell=args.nbar,
        noise=args.noise,
        noise_params=noise_params,
        rsd=rsd,
    )
    shape = (conf.mesh,) * 3
    mask = None
    if args.selection is not None:
        mask = load_selection(args.selection, shape, args.selection_dataset)
    selection = survey_selection(shape, mask=mask, completeness=args.completeness)
    return {"conf": conf, "cosmo": cosmo, "obs": obs, "selection": selection}


def run(args: argparse.Namespace) -> int:
    """Validate, run the forward model, draw the mock and write ``mock.h5`` + ``config.toml``."""
    from pathlib import Path

    from cosmolaw import __version__
    from cosmolaw.io import write_toml
    from cosmolaw.pytree import to_dict
    from simulator.observe.mock import make_mock, write_mock

    s = _settings(args)
    conf, cosmo, obs = s["conf"], s["cosmo"], s["obs"]
    print(f"cosmolaw mock: {args.model} on {conf.mesh}^3 in {conf.box} Mpc/h, bias {obs.bias}")
    mock, truth = make_mock(
        args.seed,
        cosmo,
        conf,
        args.model,
        obs,
        s["selection"],
        positions=args.positions,
        progress=not args.no_progress,
    )
    attrs = {
        "cosmolaw_version": __version__,
        "seed": args.seed,
        "model": args.model,
        "sim": to_dict(conf),
        "cosmology": to_dict(cosmo),
        "observation": {
            "nbar_density": obs.nbar_cell / conf.cell_size**3,
            "completeness": args.completeness,
            "selection_file": args.selection,
        },
    }
    out = Path(args.out)
    write_mock(out / "mock.h5", mock, truth, obs, attrs)
    write_toml(
        out / "config.toml", {**attrs, "observation": {**attrs["observation"], **obs.to_dict()}}
    )
    total = int(mock.counts.sum()) if mock.counts.dtype.kind == "i" else float(mock.counts.sum())
    print(f"cosmolaw mock: {total} galaxies in {int((mock.selection > 0).sum())} cells -> {out}")
    return 0
