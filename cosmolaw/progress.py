"""Progress of long work, for terminals and for batch logs alike.

:func:`progress_bar` is what every package uses to show progress. On a terminal (or in a
Jupyter notebook) it is a tqdm bar. When the stream is not a terminal (stderr redirected to a
file, a batch scheduler's log) it writes one plain line each time another tenth of the work is
done, and a final line when it is closed short of the end, instead of tqdm's every refresh: a
run of any length leaves at most about a dozen lines in the log. Without a known total it
writes a line at the 1st, 2nd, 4th, 8th, ... update and a final one.

Both kinds offer the part of tqdm's interface cosmolaw uses: iteration over a wrapped
iterable, ``update(n)``, ``set_postfix(**values)``, ``set_postfix_str(text)``, ``close()``
and use as a context manager.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import IO, Any

from tqdm import tqdm as _tqdm

#: Fraction of the work between two lines written to a non-terminal stream.
LINE_FRACTION = 0.1


def is_interactive(stream: IO[str]) -> bool:
    """Whether ``stream`` shows a live bar: a terminal, or a Jupyter kernel's output stream."""
    if type(stream).__module__.startswith("ipykernel"):
        return True
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed file
        return False


def progress_bar(
    iterable: Iterable | None = None,
    *,
    total: float | None = None,
    desc: str = "",
    unit: str = "it",
    initial: float = 0,
    disable: bool = False,
    leave: bool = True,
    file: IO[str] | None = None,
) -> Any:
    """A tqdm bar on a terminal, a :class:`LineProgress` on any other stream.

    Args:
        iterable: optional iterable to wrap (its length is the total when it has one).
        total: amount of work (in ``unit``), ``None`` when unknown.
        desc: what the work is, at the start of the bar or line.
        unit: unit of the work (``"step"``, ``"sim"``, ...).
        initial: work already done (a resumed run).
        disable: show nothing at all (iteration still works).
        leave: keep a terminal bar on screen when closed (log lines always stay).
        file: stream to write to (default: ``sys.stderr`` at the time of the call).

    Returns:
        An object with tqdm's ``update``, ``set_postfix``, ``set_postfix_str``, ``refresh``,
        ``close``,
        context-manager protocol and iteration.
    """
    if total is None and iterable is not None and hasattr(iterable, "__len__"):
        total = len(iterable)
    if total is not None and not total >= 0:
        raise ValueError(f"total={total!r} is not allowed: use a number >= 0 or None")
    stream = sys.stderr if file is None else file
    if disable or is_interactive(stream):
        from tqdm.auto import tqdm

        return tqdm(
            iterable,
            total=total,
            desc=desc,
            unit=unit,
            initial=initial,
            disable=disable,
            leave=leave,
            file=stream,
        )
    return LineProgress(iterable, total=total, desc=desc, unit=unit, initial=initial, file=stream)


class LineProgress:
    """Progress as plain lines: one per :data:`LINE_FRACTION` of ``total`` (or at doubling
    counts when ``total`` is ``None``), and a final line at :meth:`close` unless the last line
    already showed the final count. Arguments as :func:`progress_bar`."""

    def __init__(
        self,
        iterable: Iterable | None = None,
        *,
        total: float | None,
        desc: str,
        unit: str,
        initial: float,
        file: IO[str],
    ):
        self.iterable = iterable
        self.total = total
        self.desc = desc
        self.unit = unit
        self.n = initial
        self.file = file
        self.postfix = ""
        self._start = time.monotonic()
        self._tick = self._ticks(initial)
        self._next_count = 1.0
        self._written_at: float | None = None
        self._closed = False

    def _ticks(self, n: float) -> int:
        """Tenths of ``total`` done (with a small tolerance for float totals)."""
        if not self.total:
            return 0
        return min(int(n / self.total / LINE_FRACTION + 1e-9), int(round(1 / LINE_FRACTION)))

    def __iter__(self) -> Iterator:
        if self.iterable is None:
            raise TypeError("this progress bar wraps no iterable")
        try:
            for item in self.iterable:
                yield item
                self.update(1)
        finally:
            self.close()

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def update(self, n: float = 1) -> None:
        """Record ``n`` more units of work; write a line if another tenth is done."""
        self.n += n
        if self.total is None:
            if self.n >= self._next_count:
                while self._next_count <= self.n:
                    self._next_count *= 2
                self._write()
            return
        tick = self._ticks(self.n)
        if tick > self._tick:
            self._tick = tick
            self._write()

    def set_postfix(self, ordered_dict: dict | None = None, refresh: bool = True, **values) -> None:
        """Values shown at the end of the next line (``name=value, ...``)."""
        items = {**(ordered_dict or {}), **values}
        self.postfix = ", ".join(f"{k}={_short(v)}" for k, v in items.items())

    def set_postfix_str(self, text: str = "", refresh: bool = True) -> None:
        """Text shown at the end of the next line."""
        self.postfix = str(text)

    def refresh(self) -> None:
        """Write the current state as a line now (a terminal bar redraws itself): e.g. when a
        stage starts with minutes of compilation before its first unit of work."""
        self._write()

    def close(self) -> None:
        """Write the final line (unless the last line showed the final count)."""
        if self._closed:
            return
        self._closed = True
        if self._written_at != self.n:
            self._write()

    def line(self) -> str:
        """The current state as one line (what :meth:`update` writes)."""
        elapsed = time.monotonic() - self._start
        if self.total:
            fmt = "{desc}: {percentage:3.0f}% {n_fmt}/{total_fmt} {unit} "
            fmt += "[{elapsed}<{remaining}, {rate_fmt}{postfix}]"
        else:
            fmt = "{desc}: {n_fmt} {unit} [{elapsed}, {rate_fmt}{postfix}]"
        return _tqdm.format_meter(
            self.n,
            self.total,
            elapsed,
            prefix=self.desc,
            unit=self.unit,
            postfix=self.postfix,
            bar_format=fmt,
        )

    def _write(self) -> None:
        self._written_at = self.n
        self.file.write(self.line() + "\n")
        self.file.flush()


def _short(value: Any) -> str:
    """A postfix value as tqdm shows it (floats to 3 significant digits)."""
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)
