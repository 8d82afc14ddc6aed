"""The budget of ``discover``: elapsed time per stage is recorded, and what a tiny budget
cuts short is reported on the front (and in its JSON) instead of overrunning silently."""

import json

import numpy as np

from discovery import ParetoFront, discover

N_ROWS = 128
OPS = "add,sub,mul,div,exp,sqrt,square"


def _data():
    rng = np.random.default_rng(7)
    X = rng.uniform(0.5, 3.0, (N_ROWS, 2))
    noise = 1 + 0.01 * rng.normal(size=N_ROWS)
    return X, (np.exp(-X[:, 0] / X[:, 1]) + X[:, 0]) * noise  # no power law, no tiny tree


def _stage_sum(front):
    return sum(v for k, v in front.timings.items() if k != "total")


def test_tiny_budget_reports_what_was_truncated():
    X, y = _data()
    front = discover(X, y, operators=OPS, budget_s=0.3, seed=0, clock="work")
    assert front.budget_s == 0.3
    # the search share (0.21 s) cannot hold Operon's whole-second time limit
    assert any(t.startswith("operon") and "skipped" in t for t in front.truncated)
    assert "operon" not in front.timings
    assert {"power-law reduction", "refit", "total"} <= set(front.timings)
    assert abs(_stage_sum(front) - front.timings["total"]) < 1e-6 + 1e-3 * front.timings["total"]
    back = ParetoFront.from_dict(json.loads(json.dumps(front.to_dict("mdl"))))
    assert back.truncated == front.truncated and back.timings == front.timings


def test_sufficient_budget_truncates_nothing():
    rng = np.random.default_rng(8)
    X = rng.uniform(1, 3, (N_ROWS, 3))
    y = 3.0 * X[:, 0] * X[:, 1] ** 2 / X[:, 2]  # a power law: reduction solves it exactly
    front = discover(X, y, operators=OPS, budget_s=4, seed=0, clock="work")
    assert front.truncated == ()
    assert "operon" not in front.timings  # an exact law stops the search early
    assert front.timings["total"] > 0 and front.budget_s == 4
