"""PySR interoperability without Julia: hall-of-fame files and fitted-model tables."""

import importlib.util

import jax
import numpy as np
import pandas as pd
import pytest

from discovery import from_pysr, read_hall_of_fame
from discovery.expressions import jax_function, make_symbols

# (PySR equation text, the same law written directly in NumPy)
EQUATIONS = [
    ("x0", lambda x0, x1: x0),
    ("(x0 * 2.5f0) + -1.0f-5", lambda x0, x1: 2.5 * x0 - 1e-5),
    ("square(x1) - cube(neg(x0))", lambda x0, x1: x1**2 + x0**3),
    ("safe_log(x0) * pow_abs(x1, 0.5f0)", lambda x0, x1: np.log(x0) * np.abs(x1) ** 0.5),
    ("exp(inv(x0)) / safe_sqrt(x1 + 1.25e0)", lambda x0, x1: np.exp(1 / x0) / np.sqrt(x1 + 1.25)),
    ("cos(x0 ^ 2) * 3.0f+2", lambda x0, x1: np.cos(x0**2) * 300.0),
]


def _write_hall_of_fame(path):
    lines = ["Complexity,Loss,Equation"]
    for i, (text, _) in enumerate(EQUATIONS):
        lines.append(f'{i + 1},{10.0**-i:.3e},"{text}"')
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("name", ["hall_of_fame.csv", "hall_of_fame.csv.bak"])
def test_hall_of_fame_reader_matches_direct_evaluation(tmp_path, name, x64):
    path = tmp_path / name
    _write_hall_of_fame(path)
    rng = np.random.default_rng(0)
    X = np.stack([rng.uniform(0.5, 2, 50), rng.uniform(-1.2, 2, 50)], axis=1)
    symbols = make_symbols(["x0", "x1"], X)
    rows = read_hall_of_fame(path, symbols)
    assert [r["complexity"] for r in rows] == list(range(1, len(EQUATIONS) + 1))
    assert rows[1]["loss"] == pytest.approx(0.1)
    for row, (_, direct) in zip(rows, EQUATIONS, strict=True):
        f = jax.jit(jax_function(row["expression"], symbols))
        np.testing.assert_allclose(
            np.asarray(f(np.zeros(0), X)), direct(X[:, 0], X[:, 1]), rtol=1e-6, atol=1e-9
        )


def test_from_pysr_reads_the_equations_table():
    class Fitted:  # what a fitted PySRRegressor exposes: its equations_ table
        equations_ = pd.DataFrame(
            {
                "complexity": [1, 5],
                "loss": [0.5, 1e-8],
                "equation": ["x0", "(x0 * 1.5f0) / x1"],
            }
        )

    symbols = make_symbols(["x0", "x1"])
    rows = from_pysr(Fitted(), symbols)
    x0, x1 = symbols
    assert rows[0]["expression"] == x0
    assert (rows[1]["expression"] - 1.5 * x0 / x1).simplify() == 0


@pytest.mark.skipif(importlib.util.find_spec("pysr") is not None, reason="PySR is installed")
def test_pysr_backend_explains_why_it_is_unavailable():
    from discovery import pysr_backend

    with pytest.raises(pysr_backend.PySRUnavailable, match="not installed"):
        pysr_backend.search(
            np.ones((5, 1)), np.ones(5), make_symbols(["x0"]), ["add"], budget_s=1, max_complexity=5
        )
