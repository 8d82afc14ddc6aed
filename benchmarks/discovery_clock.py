"""The two clocks of ``discovery.discover``'s budget, on a quiet machine and a busy one.

For each law of a CSV (AI Feynman format; default: laws 13 to 24 of
``benchmarks/data/feynman_dev.csv``, held out: the work clock's costs come from
``shared/data/cosmo_dev.csv`` and kernels timed apart, and laws 1 to 12 were looked at while
setting them) the script searches the same rows four times:
under the ``"wall"`` and the ``"work"`` clock, each once on a quiet machine and once while
``--load`` busy processes compete for the cores. It prints, per law, whether the front
found under load is the one found without (the same laws and losses to 9 digits,
``ParetoFront.signature``) and the wall time
over the budget, then the last line

``identical_work=K/N identical_wall=M/N searched=S identical_work_searched=KS/S
identical_wall_searched=MS/S wall_over_budget_work=R wall_over_budget_work_loaded=L
wall_over_budget_wall=W budget_s=B load=P``

``K`` should be ``N`` (the work clock's promise: the same front on any machine, under any
load). The ``searched`` laws are those whose quiet wall-clock search used more than half
the budget (the others, power laws, are solved exactly in a fraction of a second by either
clock); the ratios are medians over them: ``R`` says how well the work clock's costs
(``discovery.budget``) track this machine's seconds when it is quiet, ``L`` how much longer
a busy machine takes for the same search, ``W`` is the wall clock's own overrun (its stages
overrun their deadlines by a little). The JAX compilations, once per process, are run before
timing.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from discovery import feynman
from discovery.search import discover

DATA = Path(__file__).parent / "data" / "feynman_dev.csv"


class _Load:
    """``n`` busy processes (Python spinning) for the duration of a ``with`` block."""

    def __init__(self, n: int):
        self.n = n
        self.procs: list[subprocess.Popen] = []

    def __enter__(self):
        spin = [sys.executable, "-c", "while True: pass"]
        self.procs = [subprocess.Popen(spin) for _ in range(self.n)]
        return self

    def __exit__(self, *exc):
        for p in self.procs:
            p.kill()
            p.wait()


def _run(problem, X, y, budget_s: float, clock: str) -> tuple[tuple, float]:
    """The front's signature (``ParetoFront.signature``) and the wall seconds of one search."""
    target = next(t for t in ("y", "f", "target") if t not in problem.names)
    start = time.monotonic()
    front = discover(
        X, y, variables=list(problem.names), budget_s=budget_s, seed=0, target=target, clock=clock
    )
    seconds = time.monotonic() - start
    return front.signature(), seconds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--csv", default=str(DATA), help="laws in AI Feynman's CSV format")
    parser.add_argument("--start", type=int, default=12, help="laws from this index (0-based)")
    parser.add_argument("--n", type=int, default=12, help="number of laws")
    parser.add_argument("--budget-s", type=float, default=5.0, help="budget of each search")
    parser.add_argument("--rows", type=int, default=256, help="rows per law")
    parser.add_argument("--load", type=int, default=2, help="busy processes during loaded runs")
    args = parser.parse_args(argv)
    for name in ("budget_s", "n", "rows"):
        value = getattr(args, name)
        if not value > 0:
            raise SystemExit(f"--{name.replace('_', '-')}={value} is invalid: must be > 0")
    problems = feynman.load(args.csv)[args.start : args.start + args.n]
    same: dict[str, list[bool]] = {"work": [], "wall": []}
    ratios: dict[str, list[float]] = {"work": [], "work loaded": [], "wall": []}
    for i, problem in enumerate(problems, start=args.start):
        X, y = feynman.sample(problem, args.rows, np.random.default_rng(i))
        _run(problem, X, y, 0.5, "work")  # this row count's compilations, outside the timing
        line = [problem.name]
        for clock in ("work", "wall"):
            quiet, quiet_s = _run(problem, X, y, args.budget_s, clock)
            with _Load(args.load):
                busy, busy_s = _run(problem, X, y, args.budget_s, clock)
            same[clock].append(quiet == busy)
            ratios[clock].append(quiet_s / args.budget_s)
            if clock == "work":
                ratios["work loaded"].append(busy_s / args.budget_s)
            line.append(
                f"{clock}: same front under load {quiet == busy}, "
                f"{quiet_s:.1f} s quiet, {busy_s:.1f} s loaded"
            )
        print("  ".join(line), flush=True)
    n = len(problems)
    searched = np.array(ratios["wall"]) > 0.5
    s = int(searched.sum())

    def median(key: str) -> float:
        return float(np.median(np.array(ratios[key])[searched])) if s else float("nan")

    work, wall = np.array(same["work"]), np.array(same["wall"])
    print(
        f"identical_work={work.sum()}/{n} identical_wall={wall.sum()}/{n} searched={s} "
        f"identical_work_searched={work[searched].sum()}/{s} "
        f"identical_wall_searched={wall[searched].sum()}/{s} "
        f"wall_over_budget_work={median('work'):.2f} "
        f"wall_over_budget_work_loaded={median('work loaded'):.2f} "
        f"wall_over_budget_wall={median('wall'):.2f} "
        f"budget_s={args.budget_s:g} load={args.load}"
    )


if __name__ == "__main__":
    main()
