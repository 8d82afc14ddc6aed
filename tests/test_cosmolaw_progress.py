"""Progress in batch logs (cosmolaw.progress, used by the inference driver and every other
long job): a line per tenth of the work on a stream that is not a terminal."""

import io

import pytest

from cosmolaw.progress import LineProgress, progress_bar


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def _lines(stream):
    return stream.getvalue().splitlines()


@pytest.mark.parametrize(("total", "step"), [(1000, 1), (300, 10), (7, 1), (37, 1)])
def test_a_line_per_tenth_not_per_update(total, step):
    """``total / step`` updates write at most ten lines (one per tenth reached), the last at
    100% with the latest postfix; closing adds no duplicate."""
    stream = io.StringIO()
    bar = progress_bar(total=total, desc="chains", unit="step", file=stream)
    assert isinstance(bar, LineProgress)
    for i in range(total // step):
        bar.set_postfix(rhat=1.0 + i, acc="0.99")
        bar.update(step)
    bar.close()
    lines = _lines(stream)
    assert len(lines) == min(10, total // step)
    assert lines[-1].startswith("chains: 100%") and f" {total}/{total} step " in lines[-1]
    assert f"rhat={1.0 + total // step - 1:.3g}" in lines[-1]


def test_resumed_and_interrupted_work():
    """Started at 40% (a resumed run) and stopped at 75%: lines at 50, 60, 70% and a final
    line with the count reached."""
    stream = io.StringIO()
    with progress_bar(total=100, initial=40, desc="run", file=stream) as bar:
        for _ in range(35):
            bar.update(1)
    lines = _lines(stream)
    assert [line.split()[1] for line in lines] == ["50%", "60%", "70%", "75%"]


def test_iterable_and_unknown_total():
    """Wrapping an iterable takes its length; without a total, lines at doubling counts
    (1, 2, 4, 8, ...) and a final one."""
    stream = io.StringIO()
    assert list(progress_bar(range(50), desc="sims", file=stream)) == list(range(50))
    assert len(_lines(stream)) == 10
    stream = io.StringIO()
    bar = progress_bar(desc="discover", unit="stage", file=stream)
    for name in "abcdefghijkl":
        bar.set_postfix_str(name)
        bar.update(1)
    bar.close()
    counts = [int(line.split()[1]) for line in _lines(stream)]
    assert counts == [1, 2, 4, 8, 12]
    assert _lines(stream)[-1].endswith("l]")


def test_terminal_gets_a_tqdm_bar_and_disable_writes_nothing():
    """On a terminal the helper is tqdm's bar; ``disable`` shows nothing anywhere."""
    from tqdm import tqdm

    bar = progress_bar(total=3, file=_Terminal())
    assert isinstance(bar, tqdm)
    bar.close()
    stream = io.StringIO()
    for _ in progress_bar(range(5), disable=True, file=stream):
        pass
    assert stream.getvalue() == ""
    with pytest.raises(ValueError, match="total"):
        progress_bar(total=-1, file=stream)
