"""Exact recovery of the Feynman equations (AI Feynman CSV format), SRBench-style.

For each equation the script samples its variables uniformly in the given ranges,
runs ``discovery.discover`` and judges the selected law (:mod:`discovery.feynman`):

- recovered: SRBench's exact symbolic recovery, the difference or the ratio of the law
  and the truth is a constant (:func:`discovery.equivalent`);
- clean: the law has exact constants only and is sympy-identical to the truth;
- r2_0999: R^2 > 0.999 on fresh noiseless rows.

Run without arguments it uses the whole pipeline on ``benchmarks/data/feynman_dev.csv``
at 60 s per problem. The last line reads
``recovered=K/N recovered_wide=V/N clean=C/N r2_0999=M/N budget_s=T clock=wall|work
wall_s=W backend=NAME``
(``V``: recovered also on rows from ranges twice as wide, see :mod:`discovery.feynman`),
where ``W`` is
the wall time of the whole script (imports, JAX compilation and warm-ups included)
divided by the number of equations. ``--csv ../shared/data/cosmo_dev.csv`` runs the
twelve cosmology laws of the development set instead. ``--only NAME,NAME``
runs some equations (with the data seeds of the full run) and ``--out FILE.jsonl``
writes one JSON record per equation (truth, law, verdicts, seconds, front, stage
timings, what the budget cut short) to study the failures. An equation that runs past
``--stall-s`` (default ``max(120, 3 x budget)``; sympy simplification can stall) counts
as not recovered, and the Python stack at that moment is printed on stderr.
"""

from __future__ import annotations

import time

_START = time.monotonic()  # before the heavy imports: wall_s counts them

import argparse  # noqa: E402
import faulthandler  # noqa: E402
import json  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

from cosmolaw.io import write_text  # noqa: E402
from discovery import feynman  # noqa: E402
from discovery.budget import CLOCKS  # noqa: E402

DATA = Path(__file__).parent / "data" / "feynman_dev.csv"


def _record(out: feynman.Outcome) -> dict:
    """One JSON line of the per-equation record."""
    return {
        "name": out.problem.name,
        "truth": str(out.problem.truth),
        "law": str(out.law.expression),
        "recovered": bool(out.recovered),
        "recovered_wide": bool(out.recovered_wide),
        "clean": bool(out.clean),
        "r2": float(out.r2),
        "seconds": round(out.seconds, 2),
        "front": [[c.complexity, c.loss, str(c.expression)] for c in out.front.candidates],
        "timings": {k: round(v, 2) for k, v in out.front.timings.items()},
        "truncated": list(out.front.truncated),
    }


class Stalled(Exception):
    """An equation ran past its ``--stall-s`` limit."""


def _stall(signum, frame):
    raise Stalled


def solve_with_limit(problem: feynman.Problem, limit_s: float, **options) -> feynman.Outcome | None:
    """``feynman.solve`` stopped after ``limit_s`` wall seconds (``None`` then); the stack
    is dumped on stderr when the limit passes, to show where the time went."""
    previous = signal.signal(signal.SIGALRM, _stall)
    faulthandler.dump_traceback_later(limit_s, exit=False)
    signal.setitimer(signal.ITIMER_REAL, limit_s + 1.0)
    try:
        return feynman.solve(problem, **options)
    except Stalled:
        return None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0.0)
        faulthandler.cancel_dump_traceback_later()
        signal.signal(signal.SIGALRM, previous)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", default=str(DATA), help="equations in AI Feynman format")
    parser.add_argument("--backend", default="auto", help="auto, operon, exhaustive or pysr")
    parser.add_argument("--budget-s", type=float, default=60.0, help="search seconds per problem")
    parser.add_argument(
        "--clock",
        default="wall",
        choices=CLOCKS,
        help="what the budget counts (discovery.budget): work gives the same laws on any machine",
    )
    parser.add_argument("--noise", type=float, default=0.0, help="noise std in units of rms(y)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N equations")
    parser.add_argument("--only", default="all", help="comma-separated equation names (Filename)")
    parser.add_argument("--out", default=None, help="JSON-lines file, one record per equation")
    parser.add_argument("--rows", type=int, default=500, help="training rows per problem")
    parser.add_argument("--criterion", default="mdl", help="accuracy, score, best or mdl")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--stall-s", type=float, default=None, help="per-equation limit (max(120, 3 x budget))"
    )
    args = parser.parse_args(argv)
    if args.noise < 0:
        raise SystemExit(f"--noise={args.noise}: must be >= 0")
    problems = feynman.load(Path(args.csv))
    seeds = {p.name: args.seed + k for k, p in enumerate(problems)}  # as in the full run
    only = "all" if args.only == "all" else [n.strip() for n in args.only.split(",")]
    problems = feynman.select(problems, only)[: args.limit]
    recovered = clean = good_fit = wide = 0
    records: list[str] = []
    limit_s = args.stall_s or max(120.0, 3.0 * args.budget_s)
    for problem in problems:
        out = solve_with_limit(
            problem,
            limit_s,
            rows=args.rows,
            noise=args.noise,
            budget_s=args.budget_s,
            backend=args.backend,
            criterion=args.criterion,
            seed=args.seed,
            data_seed=seeds[problem.name],
            clock=args.clock,
        )
        if out is None:
            print(f"{problem.name:>10} rec=0 clean=0 stalled after {limit_s:.0f}s", flush=True)
            records.append(json.dumps({"name": problem.name, "stalled_s": limit_s}))
        else:
            recovered += out.recovered
            wide += out.recovered_wide
            clean += out.clean
            good_fit += out.r2 > 0.999
            cut = f" truncated={len(out.front.truncated)}" if out.front.truncated else ""
            print(
                f"{problem.name:>10} rec={int(out.recovered)} wide={int(out.recovered_wide)} "
                f"clean={int(out.clean)} "
                f"r2={out.r2:.6f} t={out.seconds:.0f}s{cut} law={out.law.expression}",
                flush=True,
            )
            records.append(json.dumps(_record(out)))
        if args.out:  # rewritten whole after each equation, so a partial run is readable
            write_text(args.out, "\n".join(records) + "\n")
    n = len(problems)
    wall = (time.monotonic() - _START) / max(n, 1)
    print(
        f"recovered={recovered}/{n} recovered_wide={wide}/{n} clean={clean}/{n} "
        f"r2_0999={good_fit}/{n} "
        f"budget_s={args.budget_s:g} clock={args.clock} wall_s={wall:.1f} backend={args.backend}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
