"""The Feynman symbolic-regression benchmark: problems in AI Feynman's CSV format, their data,
and SRBench's judgement of a discovered law.

A problem is one row of the CSV (columns ``Filename``, ``Formula``, ``# variables`` and
``v{i}_name``, ``v{i}_low``, ``v{i}_high``): the true law as a sympy expression of positive
symbols and a uniform sampling range per variable. :func:`solve` samples training and
held-out rows, runs :func:`discovery.discover` and judges the selected law three ways:

- ``recovered``: SRBench's exact symbolic recovery, the difference or the ratio of the law
  and the truth is a constant (:func:`discovery.postprocess.equivalent`);
- ``clean``: the law has exact constants only and is sympy-identical to the truth;
- ``recovered_wide``: recovered also on rows drawn from ranges twice as wide (in ratio,
  or in width for a range through zero), so that a fit with enough free constants to
  match the truth to 1e-6 inside the sampled range (a broken power law standing in for
  an ``asinh``) is not counted as the law;
- ``r2``: the coefficient of determination on the noiseless held-out rows.

Shared by ``benchmarks/feynman.py`` (the recovery counts) and the ``feynman`` experiment.
"""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import sympy as sp
from sympy.parsing.sympy_parser import parse_expr

from discovery.front import Candidate, ParetoFront
from discovery.postprocess import equivalent, identical
from discovery.search import discover


@dataclass(frozen=True)
class Problem:
    """One equation: ``name`` (the CSV's Filename), ``truth`` in ``symbols`` (positive, named
    ``names``) and the sampling range ``(low, high)`` of each variable."""

    name: str
    truth: sp.Expr
    names: tuple[str, ...]
    symbols: tuple[sp.Symbol, ...]
    ranges: tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class Outcome:
    """A solved problem: the front, the selected law, the verdicts and the held-out rows.

    ``noise`` is the noise standard deviation in units of ``rms(y)``; ``seconds`` the wall
    time of :func:`discovery.discover`; ``X_train``/``y_train`` ``(n, d)``/``(n,)`` the
    (noisy) training rows, ``X_test``/``y_test`` ``(m, d)``/``(m,)`` noiseless held-out rows.
    """

    problem: Problem
    noise: float
    front: ParetoFront
    law: Candidate
    recovered: bool
    clean: bool
    r2: float
    seconds: float
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    recovered_wide: bool = False


def load(path: str | Path) -> list[Problem]:
    """The equations of an AI Feynman CSV, in file order.

    The variables are the non-empty ``v{i}_name`` columns (the official file undercounts
    ``# variables`` of I.18.12).
    """
    problems = []
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            n = 0
            while (row.get(f"v{n + 1}_name") or "").strip():
                n += 1
            names = tuple(row[f"v{i}_name"] for i in range(1, n + 1))
            ranges = tuple(
                (float(row[f"v{i}_low"]), float(row[f"v{i}_high"])) for i in range(1, n + 1)
            )
            symbols = tuple(sp.Symbol(v, positive=True) for v in names)
            local = {str(s): s for s in symbols} | {"arcsin": sp.asin, "ln": sp.log, "pi": sp.pi}
            truth = parse_expr(row["Formula"], local_dict=local)
            problems.append(Problem(row["Filename"], truth, names, symbols, ranges))
    return problems


def select(problems: list[Problem], names: list[str] | str) -> list[Problem]:
    """The problems called ``names`` (in that order), or all of them for ``"all"``."""
    if names == "all":
        return list(problems)
    by_name = {p.name: p for p in problems}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise ValueError(f"problems={list(names)!r}: {unknown} are not in the CSV")
    return [by_name[n] for n in names]


def sample(problem: Problem, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` rows uniform in the variable ranges ``(n, d)`` and the noiseless target ``(n,)``."""
    X = np.stack([rng.uniform(lo, hi, n) for lo, hi in problem.ranges], axis=1)
    f = sp.lambdify(problem.symbols, problem.truth, "numpy")
    return X, np.broadcast_to(np.asarray(f(*X.T), float), (n,)).copy()


def solve(
    problem: Problem,
    *,
    rows: int = 500,
    noise: float = 0.0,
    budget_s: float = 60.0,
    backend: str = "auto",
    criterion: str = "mdl",
    seed: int = 0,
    data_seed: int = 0,
    n_test: int = 1000,
    clock: str = "wall",
) -> Outcome:
    """Sample ``rows`` training rows (seeded by ``data_seed``) with Gaussian noise of
    ``noise * rms(y)``, search for ``budget_s`` seconds of the clock ``clock``
    (:mod:`discovery.budget`) with that noise as the rows' sigma (noiseless rows: the
    engine estimates it) and judge the law chosen by ``criterion`` on
    ``n_test`` noiseless held-out rows."""
    if noise < 0:
        raise ValueError(f"noise={noise!r}; allowed: >= 0 (in units of rms(y))")
    rng = np.random.default_rng(data_seed)
    X, y = sample(problem, rows, rng)
    Xt, yt = sample(problem, n_test, rng)
    scale = noise * np.sqrt(np.mean(y**2))
    y_train = y + scale * rng.normal(size=y.shape)
    start = time.monotonic()
    target = next(t for t in ("y", "f", "target") if t not in problem.names)
    front = discover(
        X,
        y_train,
        variables=list(problem.names),
        budget_s=budget_s,
        backend=backend,
        seed=seed,
        target=target,
        sigma=scale if noise > 0 else None,  # the noise the rows were given is known
        clock=clock,
    )
    seconds = time.monotonic() - start
    law = front.best(criterion)
    with np.errstate(all="ignore"):
        pred = law.numpy(front.variables)(Xt)
    finite = np.all(np.isfinite(pred))
    r2 = float(1 - np.mean((yt - pred) ** 2) / np.var(yt)) if finite else -np.inf
    rec = equivalent(law.expression, problem.truth, problem.symbols, Xt)
    clean = rec and identical(law.expression, problem.truth)
    wide = rec and equivalent(law.expression, problem.truth, problem.symbols, _wide(problem, rng))
    return Outcome(problem, noise, front, law, rec, clean, r2, seconds, X, y_train, Xt, yt, wide)


def _wide(problem: Problem, rng: np.random.Generator, n: int = 1000) -> np.ndarray:
    """``n`` rows ``(n, d)`` from the ranges widened: ``(lo/2, 2 hi)`` for a positive range,
    half its width added on each side for the others."""
    cols = []
    for lo, hi in problem.ranges:
        if lo > 0:
            cols.append(np.exp(rng.uniform(np.log(lo / 2), np.log(2 * hi), n)))
        else:
            cols.append(rng.uniform(lo - (hi - lo) / 2, hi + (hi - lo) / 2, n))
    return np.stack(cols, axis=1)
