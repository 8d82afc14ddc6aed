"""``cosmolaw discover`` end to end, and bad input refused with an error naming the parameter."""

import json

import numpy as np
import pytest
import sympy as sp

from cosmolaw.cli import main
from discovery import discover, equivalent


def test_cli_writes_discoveries_json(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.uniform(1, 3, (128, 3))
    y = 3.0 * X[:, 0] * X[:, 1] ** 2 / X[:, 2]
    data = tmp_path / "table.csv"
    np.savetxt(data, np.column_stack([X, y]), delimiter=",", header="m,v,r,F", comments="")
    out = tmp_path / "run"
    code = main(
        [
            "discover",
            "--data",
            str(data),
            "--target",
            "F",
            "--out",
            str(out),
            "--budget-s",
            "4",
            "--clock",
            "work",
            "--operators",
            "add,sub,mul,div,sqrt,square",
            "--seed",
            "1",
        ]
    )
    assert code == 0
    result = json.loads((out / "discoveries.json").read_text())
    m, v, r = sp.symbols("m v r", positive=True)
    law = sp.sympify(result["best"]["expression"], locals={"m": m, "v": v, "r": r})
    assert equivalent(law, m * v**2 / r, [m, v, r], X)
    header = (out / "pareto_front.csv").read_text().splitlines()[0]
    assert header == "complexity,loss,score,description_length,equation"


def test_cli_bad_target_exits_2(tmp_path, capsys):
    data = tmp_path / "t.csv"
    np.savetxt(data, np.ones((10, 2)), delimiter=",", header="a,b", comments="")
    code = main(["discover", "--data", str(data), "--target", "zz", "--out", str(tmp_path / "o")])
    assert code == 2
    assert "--target" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


X = np.random.default_rng(1).uniform(1, 2, (40, 2))
Y = X[:, 0] * X[:, 1]


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"X": np.where(X > 1.9, np.nan, X)}, "X"),
        ({"y": np.where(Y > 3, np.inf, Y)}, "y"),
        ({"y": Y[:-1]}, "y"),
        ({"X": X[:5], "y": Y[:5]}, "rows"),
        ({"operators": "add,frobnicate"}, "operators"),
        ({"units": {"x0": "furlongs"}}, "units"),
        ({"variables": ["a"]}, "variables"),
        ({"backend": "magic"}, "backend"),
        ({"budget_s": -1}, "budget_s"),
    ],
)
def test_bad_input_is_refused(kwargs, name):
    args = {"X": X, "y": Y, **kwargs}
    with pytest.raises(ValueError, match=name):
        discover(args.pop("X"), args.pop("y"), **args)
