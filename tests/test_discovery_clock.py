"""The work clock of ``discover``'s budget: the same front on a slower machine.

Under ``clock="work"`` the deadlines count the work done (``discovery.budget.COST_S``), not
the seconds it took, so a search cut short by its budget must stop at the same place, with
the same laws, when every fit takes longer (a slower or busier machine, simulated here by
sleeping in the fitting kernel).
"""

import time

import numpy as np
import pytest

from discovery import ParetoFront, discover, operon_backend, programs
from discovery.expressions import make_symbols

N_ROWS = 128  # as in test_discovery_laws, so that the compiled fitting kernels are shared
OPS = "add,sub,mul,div,exp,sqrt,square"


def _problem():
    rng = np.random.default_rng(2)
    X = np.stack(
        [rng.uniform(1, 5, N_ROWS), rng.uniform(1, 2, N_ROWS), rng.uniform(3, 10, N_ROWS)], 1
    )
    return X, X[:, 0] / np.sqrt(1 - X[:, 1] ** 2 / X[:, 2] ** 2)


def test_work_clock_gives_the_same_front_on_a_slower_machine(monkeypatch):
    X, y = _problem()
    kwargs = dict(variables=["m", "v", "c"], operators=OPS, budget_s=2, seed=0, clock="work")
    quick = discover(X, y, **kwargs)
    assert quick.truncated, "the budget must cut this search short for the test to mean much"
    fit_batch = programs.fit_batch
    slowed = []

    def slow_fit_batch(*args, **kw):
        slowed.append(0.1)
        time.sleep(0.1)
        return fit_batch(*args, **kw)

    monkeypatch.setattr(programs, "fit_batch", slow_fit_batch)
    slow = discover(X, y, **kwargs)
    assert sum(slowed) >= 0.5  # a quarter of the budget's seconds lost to the slowdown
    assert slow.signature() == quick.signature()
    assert slow.truncated == quick.truncated
    restored = ParetoFront.from_dict(slow.to_dict())
    assert restored.clock == "work" and restored.budget_s == 2


def test_operon_with_an_evaluation_budget_repeats_itself():
    rng = np.random.default_rng(0)
    X = rng.uniform(1, 3, (N_ROWS, 2))
    y = X[:, 0] * np.exp(-X[:, 1])
    symbols = make_symbols(["a", "b"], X)
    runs = [
        operon_backend.search(
            X, y, symbols, OPS.split(","), budget_s=1, seed=3, max_evaluations=20_000
        )
        for _ in range(2)
    ]
    assert runs[0] and runs[0] == runs[1]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"clock": "cpu"}, "clock='cpu'; allowed: wall, work"),
        ({"clock": "work", "backend": "pysr"}, "clock='work' with backend='pysr'"),
    ],
)
def test_bad_clock_is_refused_with_what_is_allowed(kwargs, message):
    X, y = _problem()
    with pytest.raises(ValueError, match=message):
        discover(X, y, budget_s=1, **kwargs)
