"""Exports of a law (JAX, NumPy, C, LaTeX), JSON round trips, model selection, equivalence."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sympy as sp

from discovery import Candidate, ParetoFront, equivalent, identical
from discovery.expressions import complexity, make_symbols

X = np.random.default_rng(0).uniform(0.5, 2.0, (40, 2))
SYMS = make_symbols(["r", "theta"], X)
r, theta = SYMS
LAW = 1.5 * r**2 * sp.exp(-theta / r) + sp.sin(theta) / sp.sqrt(r)


def _candidate(expr, loss, dl):
    return Candidate(expr, complexity(expr), loss, dl, ((1.5, 0.01),), "test")


def test_jax_export_jits_grads_and_agrees_with_lambdify(x64):
    f = jax.jit(_candidate(LAW, 0.0, 0.0).jax(SYMS))
    ref = sp.lambdify(SYMS, LAW, "numpy")
    np.testing.assert_allclose(np.asarray(f(X)), ref(X[:, 0], X[:, 1]), rtol=1e-12)
    grad = jax.vmap(jax.grad(lambda row: f(row)))(jnp.asarray(X))
    for k, s in enumerate(SYMS):
        d = sp.lambdify(SYMS, sp.diff(LAW, s), "numpy")(X[:, 0], X[:, 1])
        np.testing.assert_allclose(np.asarray(grad[:, k]), d, rtol=1e-10)


def test_parametrised_jax_export_differentiates_in_constants(x64):
    f, params = _candidate(LAW, 0.0, 0.0).jax_with_params(SYMS)
    np.testing.assert_allclose(params, [1.5])
    g = jax.grad(lambda p: jnp.sum(f(p, X)))(jnp.asarray(params))
    direct = np.sum(X[:, 0] ** 2 * np.exp(-X[:, 1] / X[:, 0]))  # d LAW / d 1.5
    np.testing.assert_allclose(float(g[0]), direct, rtol=1e-10)


def test_numpy_and_c_exports():
    cand = _candidate(LAW, 0.0, 0.0)
    ref = sp.lambdify(SYMS, LAW, "numpy")(X[:, 0], X[:, 1])
    np.testing.assert_allclose(cand.numpy(SYMS)(X), ref, rtol=1e-12)
    code = cand.c_code("F")
    assert code.startswith("F = ") and "exp(" in code and "sin(theta)" in code
    assert "\\frac" in cand.latex() or "e^{" in cand.latex()


def _front():
    laws = [
        (r, 1.0, 90.0),
        (1.4 * r**2, 0.2, 50.0),
        (LAW, 1e-4, 10.0),
        (LAW + 1e-3 * theta, 9e-5, 20.0),
    ]
    cands = [_candidate(e, loss, dl) for e, loss, dl in laws]
    return ParetoFront.build(cands, SYMS, target="F", units={"r": "m", "F": "N"}, backend="test")


def test_selection_criteria_follow_their_definitions():
    front = _front()
    c = front.candidates
    for prev, cur in zip(c, c[1:], strict=False):  # PySR's score: -dlog(loss)/dcomplexity
        expected = -(np.log(cur.loss) - np.log(prev.loss)) / (cur.complexity - prev.complexity)
        assert cur.score == pytest.approx(expected)
    assert front.best("accuracy").loss == min(x.loss for x in c)
    assert front.best("mdl").description_length == min(x.description_length for x in c)
    assert front.best("score").score == max(x.score for x in c)
    eligible = [x for x in c if x.loss <= 1.5 * min(y.loss for y in c)]
    assert front.best("best") == max(eligible, key=lambda x: x.score)
    with pytest.raises(ValueError, match="criterion"):
        front.best("fastest")


def test_selection_among_admissible_laws():
    """A constraint (here: no dependence on theta) restricts each criterion to the laws it
    accepts; the front's best law by every criterion depends on theta."""
    front = _front()
    free_of_theta = [c for c in front.candidates if theta not in c.expression.free_symbols]
    assert [str(c.expression) for c in free_of_theta] == ["r", "1.4*r**2"]
    for criterion in ("mdl", "accuracy", "best"):
        assert theta in front.best(criterion).expression.free_symbols
        chosen = front.best(criterion, admissible=lambda c: c in free_of_theta)
        assert chosen.expression == 1.4 * r**2
    with pytest.raises(ValueError, match="admissible"):
        front.best("mdl", admissible=lambda c: False)


def test_json_round_trip():
    front = _front()
    text = json.dumps(front.to_dict("mdl"))
    back = ParetoFront.from_dict(json.loads(text))
    assert json.loads(text)["best"]["expression"] == str(front.best("mdl").expression)
    assert back.variables == front.variables and back.units == front.units
    for a, b in zip(back.candidates, front.candidates, strict=True):
        assert a.expression == b.expression
        assert (a.complexity, a.loss, a.description_length, a.constants) == (
            b.complexity,
            b.loss,
            b.description_length,
            b.constants,
        )


def test_equivalence_checks():
    assert equivalent(r * theta + 2, r * theta, SYMS, X)  # constant offset
    assert not equivalent(3 * r * theta + 2, r * theta, SYMS, X)  # offset and factor
    assert equivalent(sp.Float(0.5) * r / theta, r / (2 * theta), SYMS, X)  # constant factor
    assert not equivalent(r**2, r, SYMS, X)
    assert not equivalent(r ** sp.Float(1.999), r**2, SYMS, X)
    assert identical(sp.sqrt(r**2) * theta, r * theta)
    assert not identical(sp.Float(1.0) * r, r)  # a float is not an exact constant
