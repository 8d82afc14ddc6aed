"""Command-line sub-commands of ``simulator``: ``cosmolaw simulate``."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from simulator.config import SimConfig
    from simulator.cosmology import Cosmology


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add this package's sub-commands to the ``cosmolaw`` parser."""
    p = subparsers.add_parser(
        "simulate",
        help="run a particle-mesh simulation and write DIR/sim.h5",
        description="Run a FastPM particle-mesh simulation from a white-noise seed and write "
        "DIR/sim.h5 (linear and final density fields, particles, power spectra, snapshots) "
        "and DIR/config.toml.",
    )
    p.add_argument("--mesh", type=int, default=32, help="mesh cells per side (even; default 32)")
    p.add_argument("--box", type=float, default=128.0, help="box side in Mpc/h (default 128)")
    p.add_argument("--steps", type=int, default=10, help="FastPM steps (default 10)")
    p.add_argument("--seed", type=int, default=0, help="white-noise seed (default 0)")
    p.add_argument("--out", default="runs/simulate", help="output directory")
    p.add_argument("--a-start", type=float, default=0.1, help="initial scale factor")
    p.add_argument("--a-stop", type=float, default=1.0, help="final scale factor")
    p.add_argument(
        "--ptcl-grid", type=int, default=None, help="particles per side (divides --mesh)"
    )
    p.add_argument("--lpt-order", type=int, default=2, help="1 or 2 (default 2)")
    p.add_argument("--step-spacing", default="a", help="'a' or 'loga' (default 'a')")
    p.add_argument("--snapshots", default="", help="comma-separated scale factors, e.g. 0.5,1.0")
    add_cosmology_arguments(p)
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    from simulator.distributed.cli import add_ensemble_arguments

    add_ensemble_arguments(p)
    p.set_defaults(func=run_simulate)


def add_cosmology_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--cosmology``, ``--omega-m`` and ``--sigma8`` (shared by the simulator commands)."""
    parser.add_argument("--cosmology", default="planck18", help="preset name (default planck18)")
    parser.add_argument("--omega-m", type=float, default=None, help="override Omega_m")
    parser.add_argument("--sigma8", type=float, default=None, help="override sigma8")


def cosmology_from_args(args: argparse.Namespace) -> Cosmology:
    """The validated ``Cosmology`` of the preset and overrides given on the command line."""
    from simulator.cosmology import Cosmology

    overrides = {"Omega_m": args.omega_m, "sigma8": args.sigma8}
    cosmo = Cosmology.from_name(
        args.cosmology, **{k: v for k, v in overrides.items() if v is not None}
    )
    return cosmo.validate()


def sim_config_from_args(args: argparse.Namespace, **fields: Any) -> SimConfig:
    """The validated ``SimConfig`` of the mesh, box, particle and time-stepping options;
    ``fields`` set or override further ``SimConfig`` fields."""
    from simulator.config import SimConfig

    options = dict(
        mesh=args.mesh,
        box=args.box,
        ptcl_grid=args.ptcl_grid,
        a_start=args.a_start,
        a_stop=args.a_stop,
        steps=args.steps,
        lpt_order=args.lpt_order,
    )
    return SimConfig(**{**options, **fields})


def _snapshots(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise ValueError(
            f"snapshots={text!r} is invalid: must be comma-separated scale factors"
        ) from None


def run_simulate(args: argparse.Namespace) -> int:
    """Validate the options, run the simulation and write the run directory."""
    cosmo = cosmology_from_args(args)
    conf = sim_config_from_args(
        args, step_spacing=args.step_spacing, snapshots=_snapshots(args.snapshots)
    )
    if args.seed < 0:
        raise ValueError(f"seed={args.seed} is invalid: must be a non-negative integer")
    if args.ensemble is not None:
        from simulator.distributed.cli import run_ensemble_command

        return run_ensemble_command(args, cosmo, conf)

    from simulator.output import write_sim
    from simulator.pipeline import simulate

    result = simulate(cosmo, conf, args.seed, progress=not args.no_progress)
    path = write_sim(args.out, result, cosmo, conf, args.seed)
    print(f"wrote {path}")
    return 0
