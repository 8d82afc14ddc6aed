"""The ``cosmolaw compress`` sub-command: train and evaluate a compressor of a Gaussian field.

Nothing heavy is imported at module level; JAX starts only when the command runs.
"""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``compress`` to the ``cosmolaw`` parser."""
    p = subparsers.add_parser(
        "compress",
        help="train an IMNN, regression or MOPED compressor on a power-law Gaussian field",
        description="Simulate 2D Gaussian fields with P(k) = A k^-B, train a compressor, measure "
        "the Fisher information of its summaries against the analytic Fisher matrix, and write "
        "OUT/config.toml, compressor.h5, summaries.h5, training.png (and discoveries.json with "
        "--distill).",
    )
    p.add_argument("--out", required=True, help="run directory to write")
    p.add_argument("--compressor", default="imnn", help="imnn, regression or moped")
    p.add_argument("--network", default="spectral", help="spectral (P(k) bins + MLP) or cnn")
    p.add_argument("--n", type=int, default=32, help="mesh side in cells (even, >= 4)")
    p.add_argument("--theta", type=float, nargs=2, default=(1.0, 0.5), metavar=("A", "B"))
    p.add_argument("--n-sims", type=int, default=1000, help="fiducial simulations per set")
    p.add_argument("--n-deriv", type=int, default=1000, help="simulations with derivatives")
    p.add_argument("--n-bins", type=int, default=16, help="P(k) bins")
    p.add_argument("--hidden", type=int, nargs="*", default=[], help="MLP hidden layer sizes")
    p.add_argument("--steps", type=int, default=1500, help="training steps at most")
    p.add_argument("--patience", type=int, default=200, help="early-stopping patience (steps)")
    p.add_argument("--lr", type=float, default=3e-3, help="Adam learning rate")
    p.add_argument(
        "--distill",
        type=int,
        default=0,
        metavar="N",
        help="fit symbolic laws to the summaries on N coarse ln P(k) bands (0: off)",
    )
    p.add_argument("--distill-budget", type=float, default=20.0, help="seconds per summary")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from discovery.compress.run import CompressConfig, run_compression

    cfg = CompressConfig(
        compressor=args.compressor,
        network=args.network,
        n=args.n,
        amplitude=args.theta[0],
        slope=args.theta[1],
        n_sims=args.n_sims,
        n_deriv=args.n_deriv,
        n_bins=args.n_bins,
        hidden=tuple(args.hidden),
        learning_rate=args.lr,
        max_steps=args.steps,
        patience=args.patience,
        distill_inputs=args.distill,
        distill_budget_s=args.distill_budget,
        seed=args.seed,
    )
    result = run_compression(cfg, args.out, progress=not args.no_progress)
    print(
        f"{cfg.compressor}/{cfg.network}: fisher_fraction={result['fisher_fraction']:.4f} "
        f"train_s={result['train_s']:.1f} -> {args.out}"
    )
    if cfg.distill_inputs:
        print(f"symbolic: fisher_fraction={result['symbolic_fraction']:.4f}")
        for j, text in enumerate(result["symbolic_expressions"]):
            print(f"  t{j} = {text}")
    return 0
