"""Laws chosen with the data's uncertainties: sigma, pruning of undetermined constants, and
snapping that writes exact numbers only where the data demand them.

Every assertion compares with the law that generated the data, never with a stored output.
"""

import json

import numpy as np
import pytest
import sympy as sp

from cosmolaw.cli import main
from discovery import discover, equivalent
from discovery.fit import IRRATIONALS, refit
from discovery.postprocess import _BASES, prune, round_off

OPS = "add,sub,mul,div,exp,log,sqrt,square"
X1 = np.random.default_rng(0).uniform(1, 3, 200)


def _irrational_factors(expr: sp.Expr) -> int:
    """Largest number of irrational factors (pi, E, surds, with multiplicity) of one exact
    number of ``expr``: ``8/pi**2`` has two, ``sqrt(2)/3`` one, ``0.81`` none."""
    most = 0
    numbers = [a for a in sp.preorder_traversal(expr) if a.is_number]
    numbers += [
        sp.Mul(*[f for f in a.args if f.is_number])
        for a in sp.preorder_traversal(expr)
        if isinstance(a, sp.Mul)
    ]
    for number in numbers:
        count = 0
        for base, exp in (f.as_base_exp() for f in sp.Mul.make_args(number)):
            if base.is_NumberSymbol:
                count += int(sp.ceiling(abs(exp)))
            elif base.is_Integer and not exp.is_Integer:
                count += 1
        most = max(most, count)
    return most


@pytest.mark.parametrize(
    ("sigma", "problem"),
    [
        (0.0, "positive"),
        (-1.0, "positive"),
        (np.nan, "positive"),
        (np.ones(7), "shape"),
        (np.where(np.arange(40) == 3, 0.0, 1.0), "sigma\\[3\\]"),
        ("big", "not numeric"),
    ],
)
def test_bad_sigma_is_refused_before_any_search(sigma, problem):
    X = np.random.default_rng(1).uniform(1, 2, (40, 1))
    with pytest.raises(ValueError, match=f"sigma.*{problem}|{problem}.*sigma"):
        discover(X, X[:, 0] ** 2, sigma=sigma, budget_s=1)


def test_cli_refuses_an_unknown_sigma_column(tmp_path, capsys):
    data = tmp_path / "t.csv"
    np.savetxt(data, np.ones((10, 2)), delimiter=",", header="a,b", comments="")
    out = tmp_path / "o"
    code = main(
        ["discover", "--data", str(data), "--target", "b", "--out", str(out)]
        + [
            "--sigma",
            "err",
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "--sigma" in err and "'err'" in err
    assert not out.exists()


def test_cli_sigma_column_sets_the_chi_square(tmp_path):
    """--sigma names a column: it is no input, and chi2 is that of the law on it."""
    y = 3.0 * X1**2
    err = np.full_like(X1, 0.5)
    data = tmp_path / "t.csv"
    np.savetxt(data, np.column_stack([X1, err, y]), delimiter=",", header="x,e,F", comments="")
    out = tmp_path / "run"
    args = ["discover", "--data", str(data), "--target", "F", "--out", str(out)]
    assert (
        main([*args, "--sigma", "e", "--budget-s", "3", "--clock", "work", "--operators", OPS]) == 0
    )
    best = json.loads((out / "discoveries.json").read_text())["best"]
    x = sp.Symbol("x", positive=True)
    law = sp.sympify(best["expression"], locals={"x": x})
    assert law.free_symbols == {x} and equivalent(law, 3 * x**2, [x], X1[:, None])
    prediction = sp.lambdify(x, law)(X1)
    assert best["chi2"] == pytest.approx(np.sum(((prediction - y) / err) ** 2), abs=1e-6)


def test_sigma_decides_whether_a_correction_is_a_law():
    """y = 2 x + 0.03 x**2: within a noise ten times the correction, the law is a line
    through the origin; when the correction is 5 sigma, it is the whole law."""
    y = 2.0 * X1 + 0.03 * X1**2
    x = sp.Symbol("x", positive=True)
    scale = np.sum(X1 * y) / np.sum(X1**2)
    off = float(np.sqrt(np.mean((y - scale * X1) ** 2)))  # rms of the correction
    within = discover(
        X1[:, None], y, ["x"], operators=OPS, budget_s=4, clock="work", sigma=10 * off
    )
    law = within.best("mdl")
    assert equivalent(law.expression, x, [x], X1[:, None], rtol=1e-9), law.expression
    assert law.chi2 is not None and law.chi2 < len(y)
    off5 = discover(X1[:, None], y, ["x"], operators=OPS, budget_s=4, clock="work", sigma=off / 5)
    law = off5.best("mdl")
    assert equivalent(law.expression, 2 * x + 0.03 * x**2, [x], X1[:, None]), law.expression


def test_a_constant_larger_than_its_uncertainty_is_pruned():
    """y = 2 x + 0.001 with sigma = 0.1: the offset's one-sigma is about 20 times its value."""
    rng = np.random.default_rng(3)
    y = 2.0 * X1 + 0.001 + 0.1 * rng.normal(size=X1.size)
    x = sp.Symbol("x", positive=True)
    ((law, fit),) = refit([sp.Float(1.9) * x + sp.Float(0.01)], [x], X1[:, None], y)
    pruned, _, fixed = prune(law, fit, [x], X1[:, None], y, 0.1, known=0.1)
    assert equivalent(pruned, x, [x], X1[:, None], rtol=1e-9), pruned  # c x, no offset
    assert [(f.how, float(f.exact)) for f in fixed] == [("pruned", 0.0)]
    assert fixed[0].uncertainty > abs(fixed[0].fitted)


def test_snapping_leaves_a_measured_constant_a_float(tmp_path):
    """y = c x**2 with c = 8/pi**2 known to about 1%: the float describes the data as well,
    so no exact number with two irrational factors appears; the chosen law is the true
    form, its constant within three sigma of c, and the JSON says what was fixed."""
    assert IRRATIONALS == len(_BASES)
    c = 8 / np.pi**2
    rng = np.random.default_rng(5)
    sigma = 0.01 * c * X1**2
    y = c * X1**2 + sigma * rng.normal(size=X1.size)
    front = discover(X1[:, None], y, ["x"], operators=OPS, budget_s=4, clock="work", sigma=sigma)
    x = sp.Symbol("x", positive=True)
    for cand in front.candidates:
        assert _irrational_factors(cand.expression) < 2, cand.expression
        assert _irrational_factors(round_off(cand.expression)) < 2
    law = front.best("mdl")
    assert equivalent(law.expression, x**2, [x], X1[:, None], rtol=1e-9), law.expression
    ((value, err),) = law.constants
    assert abs(value - c) < 3 * err < 0.3 * value
    record = json.loads(json.dumps(front.to_dict("mdl")))["best"]["constants"]
    assert record[0]["status"] == "fitted" and record[0]["uncertainty"] == err
