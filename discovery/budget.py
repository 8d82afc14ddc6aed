"""The time budget of one :func:`discovery.discover` call: stage deadlines and bookkeeping.

The budget starts after a one-off warm-up (imports, JAX compilation). The search stages
end at :data:`SEARCH_SHARE` of it, the post-processing at its end, or
:data:`POST_MIN_SHARE` of it after the search when the search ran over. Each stage's wall time is
recorded, and so is, one sentence each, whatever the budget cut short.

Two clocks read the deadlines (:data:`CLOCKS`). ``"wall"`` is elapsed time: a slower or
busier machine gets through less of the search. ``"work"`` counts the work done instead:
each unit of search work (a tree built, a batch of trees fitted, a family fitted, a
candidate refitted, an Operon evaluation) charges its cost (:data:`COST_S`,
:func:`batch_seconds`), the seconds it takes on the reference machine, and the deadlines
read the sum; the stage timings stay wall seconds. The same call then
returns the same front on any machine under any load: what tests, papers and comparisons
between machines need.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar

#: Share of ``budget_s`` given to the search stages; post-processing gets the rest.
SEARCH_SHARE = 0.7
#: Share of ``budget_s`` the post-processing gets even when the search ran over its share.
POST_MIN_SHARE = 0.15
#: The clocks a budget can read (module docstring).
CLOCKS = ("wall", "work")
#: Seconds one unit of each kind of work takes on the reference machine (2 cores of a
#: 2026 x86 server, unloaded), charged under the ``"work"`` clock: the total wall time
#: over the total units in the searches of the twelve cosmology development laws
#: (``shared/data/cosmo_dev.csv``, 256 rows, 8 s each), except the kernels measured apart
#: (:func:`batch_seconds`, Operon). ``benchmarks/discovery_clock.py`` checks them on the
#: Feynman laws.
COST_S = {
    "tree": 6e-5,  # one tree built by the enumeration
    "family fit": 0.0018,  # one fit of a family of laws (discovery.families)
    "refit": 0.03,  # one candidate refitted on all rows
    "least squares": 0.02,  # one constant held and the others refitted (prune, snap)
    "operon evaluation": 1e-5,  # one residual or Jacobian evaluation of Operon
}
#: Seconds of one batch of the fitting kernel (:func:`discovery.fit.fit_nodes`: 128
#: programs of up to 8 instructions on :data:`BATCH_ROWS` rows, 30 Levenberg-Marquardt
#: iterations) in the basis add, sub, mul, div ...
FIT_BATCH_S = 0.065
#: ... and what each further operator adds to it: the kernel evaluates every operator of
#: the basis at every instruction, and transcendental functions dominate.
OPERATOR_S = {
    "pow": 0.26,
    "neg": 0.014,
    "exp": 0.033,
    "log": 0.11,
    "sqrt": 0.028,
    "square": 0.019,
    "cube": 0.003,
    "inv": 0.001,
    "sin": 0.3,
    "cos": 0.3,
    "tan": 0.41,
    "asin": 0.12,
    "acos": 0.12,
    "atan": 0.26,
    "sinh": 0.2,
    "cosh": 0.06,
    "tanh": 0.046,
    "abs": 0.03,
}
#: Rows and Levenberg-Marquardt iterations of the batch :data:`FIT_BATCH_S` times.
BATCH_ROWS = 256
BATCH_ITERATIONS = 30


def batch_seconds(rows: int, operators: Sequence[str], iterations: int) -> float:
    """Reference seconds of one batch of the fitting kernel on ``rows`` rows with the
    operator basis ``operators`` and ``iterations`` Levenberg-Marquardt steps (0: the
    constant-free trees, evaluated once): one pass per iteration plus one, and in the rows
    a fixed part (a fifth) and a linear one."""
    per_pass = (FIT_BATCH_S + sum(OPERATOR_S.get(o, 0.0) for o in operators)) / (
        BATCH_ITERATIONS + 1
    )
    return (iterations + 1) * per_pass * (0.2 + 0.8 * rows / BATCH_ROWS)


_work: ContextVar[list[float] | None] = ContextVar("discovery_work_charged", default=None)


@contextmanager
def clock(name: str) -> Iterator[None]:
    """Read the deadlines set inside the block off the clock ``name`` (:data:`CLOCKS`)."""
    token = _work.set([0.0] if name == "work" else None)
    try:
        yield
    finally:
        _work.reset(token)


def counts_work() -> bool:
    """Whether the deadlines read the ``"work"`` clock."""
    return _work.get() is not None


def now() -> float:
    """The time the deadlines compare with: ``time.monotonic()`` under the ``"wall"`` clock,
    the reference seconds charged so far under the ``"work"`` clock."""
    charged = _work.get()
    return time.monotonic() if charged is None else charged[0]


def charge(kind: str, units: float = 1.0) -> None:
    """Charge ``units`` of work of ``kind`` (a key of :data:`COST_S`) to the work clock."""
    charge_seconds(COST_S[kind] * units)


def charge_seconds(seconds: float) -> None:
    """Charge ``seconds`` of the reference machine to the work clock."""
    charged = _work.get()
    if charged is not None:
        charged[0] += seconds


def past(deadline: float | None, kind: str | None = None, units: float = 1.0) -> bool:
    """Charge ``units`` of ``kind`` (the work done since the last check), then say whether
    ``deadline`` (None: none) has passed."""
    if kind is not None:
        charge(kind, units)
    return deadline is not None and now() > deadline


class Budget:
    """Deadlines and bookkeeping of one :func:`discovery.discover` call.

    ``search_end`` and ``end`` (:func:`now`) bound the search and the whole call;
    :meth:`stage` starts a named stage (closing the previous one into ``timings``) and
    drives the optional progress bar; :meth:`cut` records what the budget cut short.
    """

    def __init__(self, budget_s: float, progress: bool = False):
        self.start = time.monotonic()
        self.budget_s = budget_s
        self.begin_budget()
        self.timings: dict[str, float] = {}
        self.truncated: list[str] = []
        self._current: tuple[str, float] | None = None
        self._bar = None
        if progress:
            from cosmolaw.progress import progress_bar

            self._bar = progress_bar(unit="stage", desc="discover", file=sys.stderr)

    def stage(self, name: str | None) -> None:
        """Start stage ``name`` now (``None``: end the call and record ``"total"``)."""
        now = time.monotonic()
        if self._current is not None:
            prev, since = self._current
            self.timings[prev] = self.timings.get(prev, 0.0) + now - since
        self._current = None if name is None else (name, now)
        if self._bar is not None:
            if name is None:
                self._bar.close()
            else:
                self._bar.set_postfix_str(name)
                self._bar.update(1)
        if name is None:
            self.timings["total"] = now - self.start

    def begin_budget(self) -> None:
        """Start the budget now (after the one-off warm-up)."""
        start = now()
        self.search_end = start + SEARCH_SHARE * self.budget_s
        self.end = start + self.budget_s

    def post_end(self) -> float:
        """End of the post-processing: the budget's end, but at least
        :data:`POST_MIN_SHARE` of the budget from now (when the search ran over)."""
        return max(self.end, now() + POST_MIN_SHARE * self.budget_s)

    def left(self, until: float) -> float:
        """Seconds (of the clock the deadlines read) from now until ``until`` (negative
        when it has passed)."""
        return until - now()

    def cut(self, what: str) -> None:
        """Record, in one sentence, something the budget cut short."""
        self.truncated.append(what)
