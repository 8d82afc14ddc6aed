"""Exact recovery of the Feynman equations (AI Feynman CSV format), SRBench-style.

For each equation the script samples its variables uniformly in the given ranges,
runs ``discovery.discover`` and judges the selected law:

- recovered: SRBench's exact symbolic recovery, the difference or the ratio of the law
  and the truth is a constant (:func:`discovery.equivalent`);
- clean: the law has exact constants only and is sympy-identical to the truth;
- r2_0999: R^2 > 0.999 on fresh noiseless rows.

Run without arguments it uses the whole pipeline on ``benchmarks/data/feynman_dev.csv``
at 60 s per problem. The last line reads
``recovered=K/N clean=C/N r2_0999=M/N budget_s=T backend=NAME``.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np
import sympy as sp
from sympy.parsing.sympy_parser import parse_expr

from discovery import discover, equivalent, identical

DATA = Path(__file__).parent / "data" / "feynman_dev.csv"


def load(path: Path) -> list[dict]:
    """Equations of an AI Feynman CSV: name, formula (sympy), variables and ranges."""
    rows = []
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            n = int(row["# variables"])
            names = [row[f"v{i}_name"] for i in range(1, n + 1)]
            ranges = [(float(row[f"v{i}_low"]), float(row[f"v{i}_high"])) for i in range(1, n + 1)]
            symbols = [sp.Symbol(v, positive=True) for v in names]
            local = {str(s): s for s in symbols} | {"arcsin": sp.asin, "ln": sp.log, "pi": sp.pi}
            rows.append(
                {
                    "name": row["Filename"],
                    "truth": parse_expr(row["Formula"], local_dict=local),
                    "names": names,
                    "symbols": symbols,
                    "ranges": ranges,
                }
            )
    return rows


def sample(eq: dict, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` rows uniform in the variable ranges and the noiseless target."""
    X = np.stack([rng.uniform(lo, hi, n) for lo, hi in eq["ranges"]], axis=1)
    f = sp.lambdify(eq["symbols"], eq["truth"], "numpy")
    return X, np.broadcast_to(np.asarray(f(*X.T), float), (n,))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", default=str(DATA), help="equations in AI Feynman format")
    parser.add_argument("--backend", default="auto", help="auto, operon, exhaustive or pysr")
    parser.add_argument("--budget-s", type=float, default=60.0, help="search seconds per problem")
    parser.add_argument("--noise", type=float, default=0.0, help="noise std in units of rms(y)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N equations")
    parser.add_argument("--rows", type=int, default=500, help="training rows per problem")
    parser.add_argument("--criterion", default="mdl", help="accuracy, score, best or mdl")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.noise < 0:
        raise SystemExit(f"--noise={args.noise}: must be >= 0")
    eqs = load(Path(args.csv))[: args.limit]
    recovered = clean = good_fit = 0
    for k, eq in enumerate(eqs):
        rng = np.random.default_rng(args.seed + k)
        X, y = sample(eq, args.rows, rng)
        Xt, yt = sample(eq, 1000, rng)
        y_train = y + args.noise * np.sqrt(np.mean(y**2)) * rng.normal(size=y.shape)
        start = time.monotonic()
        front = discover(
            X,
            y_train,
            variables=eq["names"],
            budget_s=args.budget_s,
            backend=args.backend,
            seed=args.seed,
        )
        law = front.best(args.criterion)
        pred = law.numpy(front.variables)(Xt)
        r2 = 1 - np.mean((yt - pred) ** 2) / np.var(yt) if np.all(np.isfinite(pred)) else -np.inf
        rec = equivalent(law.expression, eq["truth"], eq["symbols"], Xt)
        cln = rec and identical(law.expression, eq["truth"])
        recovered += rec
        clean += cln
        good_fit += r2 > 0.999
        print(
            f"{eq['name']:>10} rec={int(rec)} clean={int(cln)} r2={r2:.6f} "
            f"t={time.monotonic() - start:.0f}s law={law.expression}",
            flush=True,
        )
    n = len(eqs)
    print(
        f"recovered={recovered}/{n} clean={clean}/{n} r2_0999={good_fit}/{n} "
        f"budget_s={args.budget_s:g} backend={args.backend}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
