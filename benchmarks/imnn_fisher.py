"""IMNN on the 128^2 power-law Gaussian field: fraction of the analytic Fisher information kept.

Charnock et al. (2018) report det F_IMNN / det F_analytic = 0.971 on a 128^2 field with
P(k) = A k^-B at (A, B) = (1, 0.5) with n_s = n_d = 5000 simulations. Here the same problem is
run through ``cosmolaw compress``'s workflow; the Fisher matrix of the summaries is measured on an
independent test set of the same size (Hartlap-debiased). Target: fisher_fraction >= 0.97.

The last line printed is ``fisher_fraction=... train_s=...`` (train_s: the optimisation alone;
simulating the three sets is reported separately as simulate_s).
"""

from __future__ import annotations

import argparse

import jax


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=128, help="mesh side")
    parser.add_argument("--n-sims", type=int, default=5000, help="n_s per set")
    parser.add_argument("--n-deriv", type=int, default=5000, help="n_d per set")
    parser.add_argument("--n-bins", type=int, default=24, help="P(k) bins (spectral network)")
    parser.add_argument("--network", default="spectral", help="spectral or cnn")
    parser.add_argument("--hidden", type=int, nargs="*", default=[], help="MLP hidden layers")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--patience", type=int, default=200)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="optional run directory")
    args = parser.parse_args()

    from discovery.compress.run import CompressConfig, run_compression

    cfg = CompressConfig(
        compressor="imnn",
        network=args.network,
        n=args.n,
        n_sims=args.n_sims,
        n_deriv=args.n_deriv,
        n_bins=args.n_bins,
        hidden=tuple(args.hidden),
        learning_rate=args.lr,
        max_steps=args.steps,
        patience=args.patience,
        seed=args.seed,
    )
    print(f"device={jax.devices()[0].platform} config={cfg}")
    result = run_compression(cfg, args.out, progress=False)
    print(f"fisher={result['fisher'].tolist()}")
    print(f"fisher_analytic={result['fisher_analytic'].tolist()}")
    print(f"best_step={int(result['history']['best_step'])} simulate_s={result['simulate_s']:.1f}")
    print(f"fisher_fraction={result['fisher_fraction']:.4f} train_s={result['train_s']:.1f}")


if __name__ == "__main__":
    main()
