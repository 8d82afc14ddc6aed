"""The time budget of one :func:`discovery.discover` call: stage deadlines and bookkeeping.

The budget starts after a one-off warm-up (imports, JAX compilation). The search stages
end at :data:`SEARCH_SHARE` of it, the post-processing at its end, or
:data:`POST_MIN_SHARE` of it after the search when the search ran over. Each stage's wall time is
recorded, and so is, one sentence each, whatever the budget cut short.
"""

from __future__ import annotations

import sys
import time

#: Share of ``budget_s`` given to the search stages; post-processing gets the rest.
SEARCH_SHARE = 0.7
#: Share of ``budget_s`` the post-processing gets even when the search ran over its share.
POST_MIN_SHARE = 0.15


class Budget:
    """Deadlines and bookkeeping of one :func:`discovery.discover` call.

    ``search_end`` and ``end`` (``time.monotonic()``) bound the search and the whole call;
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
        now = time.monotonic()
        self.search_end = now + SEARCH_SHARE * self.budget_s
        self.end = now + self.budget_s

    def post_end(self) -> float:
        """End of the post-processing: the budget's end, but at least
        :data:`POST_MIN_SHARE` of the budget from now (when the search ran over)."""
        return max(self.end, time.monotonic() + POST_MIN_SHARE * self.budget_s)

    def left(self, until: float) -> float:
        """Seconds from now until ``until`` (negative when it has passed)."""
        return until - time.monotonic()

    def cut(self, what: str) -> None:
        """Record, in one sentence, something the budget cut short."""
        self.truncated.append(what)
