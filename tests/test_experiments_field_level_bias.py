"""``field-level-bias`` and the main job ``quickstart`` (the same pipeline).

Fast tests check the pieces against independent references: a bias law built from a sympy
expression against the hand-written JAX law of ``simulator.observe.bias`` (values, gradients,
and the whole posterior log density), binned means of a known relation, the Poisson deviance against
its closed form. The slow tests run ``cosmolaw run field-level-bias --quick`` and assert the
science: the law discovered from the posterior fields follows the mock's true bias law over
the data range, and put back as the bias model it fits the counts as well as the hand-written
law (posterior predictive deviance). ``cosmolaw run quickstart --quick`` then runs in the same
directory: it resumes the finished chains of the same posteriors (the checkpoint of
``inference.driver``; the search's budget counts work, so it finds the same law and the
closed-loop posterior resumes too), redoes the mock, discovery and report, prints the
report's path and passes its checks.
"""

from __future__ import annotations

import json

import h5py
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sympy as sp

from cosmolaw.cli import main
from experiments.field_level_bias import (
    QUICK,
    BinnedPosterior,
    Discovery,
    binned_curves,
    compare_with_form,
    poisson_deviance,
    pooled_curve,
    true_expression,
)
from inference.symbolic_bias import symbolic_bias_law
from simulator.observe.bias import BIAS_LAWS, NeyrinckBias

NEYRINCK = {"beta": 1.5, "rho_g": 0.4, "epsilon": 1.5}


def _symbolic_neyrinck():
    x, beta, rho_g, epsilon = sp.symbols("x beta rho_g epsilon", positive=True)
    template = true_expression("neyrinck", {"beta": beta, "rho_g": rho_g, "epsilon": epsilon}, x)
    return symbolic_bias_law(template, "x", NEYRINCK, name="neyrinck (sympy)")


def test_symbolic_law_matches_hand_written_law_and_its_gradient():
    law = _symbolic_neyrinck()
    delta = jax.random.normal(jax.random.PRNGKey(0), (6, 6, 6)) * 0.8
    delta = jnp.clip(delta, -1.2, 5.0)  # includes empty cells (floored like the built-in law)
    params = law.params_type(beta=1.3, rho_g=0.5, epsilon=1.2)
    ref = NeyrinckBias(beta=1.3, rho_g=0.5, epsilon=1.2)
    np.testing.assert_allclose(law(delta, params), BIAS_LAWS["neyrinck"](delta, ref), rtol=2e-5)
    grad = jax.grad(lambda p: jnp.sum(law(delta, p)))(params)
    grad_ref = jax.grad(lambda p: jnp.sum(BIAS_LAWS["neyrinck"](delta, p)))(ref)
    for name in NEYRINCK:
        np.testing.assert_allclose(getattr(grad, name), getattr(grad_ref, name), rtol=1e-4)
    assert law.params_type() == law.params_type(**NEYRINCK)  # fitted values are the defaults


def test_posterior_with_symbolic_law_equals_posterior_with_builtin_law():
    from inference.models import counts_posterior
    from simulator.config import SimConfig
    from simulator.cosmology import Cosmology
    from simulator.observe.mock import Observation

    conf = SimConfig(mesh=8, box=64.0, a_stop=1.0, lpt_order=1)
    obs = Observation(bias="neyrinck", bias_params=NEYRINCK, nbar_cell=3.0)
    rng = np.random.default_rng(2)
    counts = rng.poisson(3.0, (8, 8, 8)).astype(np.float32)
    args = (counts, np.ones_like(counts), conf, Cosmology.planck18(), obs, "lpt1")
    priors = {"beta": (1.4, 0.3), "epsilon": (1.6, 0.5)}
    builtin = counts_posterior(*args, bias_priors=priors)
    symbolic = counts_posterior(*args, bias_priors=priors, bias_law=_symbolic_neyrinck())
    assert symbolic.scalar_names == builtin.scalar_names == ["bias/beta", "bias/epsilon"]
    params = builtin.initial_params(jnp.asarray(rng.normal(size=(8, 8, 8)), jnp.float32))
    params["bias"] = {"beta": jnp.float32(1.45), "epsilon": jnp.float32(1.7)}
    fields = jax.jit(builtin.fields)(params)  # the forward model is shared, not the bias law
    np.testing.assert_allclose(
        symbolic.loglik(fields, params["bias"], {}),
        builtin.loglik(fields, params["bias"], {}),
        rtol=1e-6,
    )
    np.testing.assert_allclose(symbolic.log_prior(params), builtin.log_prior(params))


@pytest.mark.parametrize(
    ("expression", "constants", "match"),
    [
        ("x**a * exp(-b / x)", {"a": 1.5}, "neither"),
        ("log(x - 1)", {}, "not finite"),
        ("x**a", {"a": float("inf")}, "finite number"),
        ("x**a", {"x": 1.0}, "must not contain"),
    ],
)
def test_symbolic_law_refuses_bad_input(expression, constants, match):
    with pytest.raises(ValueError, match=match):
        symbolic_bias_law(sp.sympify(expression), "x", constants)


def test_counts_posterior_refuses_law_without_parameter_type():
    from inference.models import counts_posterior
    from simulator.config import SimConfig
    from simulator.cosmology import Cosmology
    from simulator.observe.bias import get_bias_law
    from simulator.observe.mock import Observation

    shape = (8, 8, 8)
    with pytest.raises(ValueError, match="bias_law"):
        counts_posterior(
            np.ones(shape),
            np.ones(shape),
            SimConfig(mesh=8, box=64.0),
            Cosmology.planck18(),
            Observation(),
            bias_law=get_bias_law(lambda d, p: 1.0 + d),
        )


def test_binned_curves_recover_a_known_mean_relation():
    rng = np.random.default_rng(1)
    x = rng.lognormal(0.0, 0.5, size=(3, 20000))
    counts = rng.poisson(4.0 * x**1.5) / 4.0  # the same "data" relation in every sample
    edges = np.quantile(x, np.linspace(0, 1, 11))
    xm, ym, err = binned_curves(x, counts, edges)
    assert xm.shape == ym.shape == err.shape == (3, 10)
    # Bin means of x^1.5 are above (mean x)^1.5 (Jensen), within the bin's spread.
    assert np.all(np.abs(ym - xm**1.5) < 5 * err + 0.05 * xm**1.5)
    X, y, e = pooled_curve(xm, ym, err)
    np.testing.assert_allclose(X, xm.mean(0))
    assert np.all(e >= err.mean(0) * 0.99)


def _neyrinck_curves(rng, samples=12, bins=30):
    """Per-sample binned curves ``(S, B)`` of Neyrinck's law with its true parameters."""
    x = np.geomspace(0.05, 4.0, bins) * rng.lognormal(0.0, 0.01, (samples, bins))
    truth = x ** NEYRINCK["beta"] * np.exp(-((x / NEYRINCK["rho_g"]) ** -NEYRINCK["epsilon"]))
    err = 0.01 + 0.02 * truth
    return x, truth + err * rng.normal(size=x.shape), err


@pytest.mark.parametrize(
    ("law", "same_form"),
    [("x**1.5*exp(-0.253*x**(-1.5))", True), ("0.8*x + 0.3*x**2", False)],
)
def test_form_comparison_recognises_the_hand_written_form(law, same_form):
    from types import SimpleNamespace

    from simulator.observe.mock import Observation

    curves = _neyrinck_curves(np.random.default_rng(4))
    binned = BinnedPosterior(None, None, curves, curves, None, None, (0.05, 4.0))
    expr = sp.sympify(law, locals={"x": sp.Symbol("x")})
    n_constants = len(expr.atoms(sp.Float))
    found = Discovery(
        expr, None, ["c"] * n_constants, None, None, None,
        SimpleNamespace(details={"description_length": 0.0}),
    )  # fmt: skip
    obs = Observation(bias="neyrinck", bias_params=NEYRINCK, nbar_cell=3.0)
    form = compare_with_form(found, binned, obs, (0.05, 4.0))
    assert form.same_form is same_form
    # the form's parameters fitted to the curves are the generating ones, whatever was found
    assert form.max_pull() < 3
    assert set(form.parameters) == set(NEYRINCK)


def test_poisson_deviance_closed_form():
    counts = np.zeros((2, 2, 2))
    counts[0, 0, 0] = 2.0
    lam = np.ones((2, 2, 2))
    # 2 [N ln(N/lam) - (N - lam)]: 2 (2 ln 2 - 1) for N = 2, 2 for each of the 7 empty cells.
    expected = (2 * (2 * np.log(2) - 1) + 7 * 2) / 8
    np.testing.assert_allclose(poisson_deviance(counts, lam), expected)
    np.testing.assert_allclose(poisson_deviance(counts + 1, counts + 1), 0.0, atol=1e-12)


@pytest.mark.parametrize(
    ("key", "value"),
    [("model", "pm"), ("bias", "linear"), ("burn_fraction", 1.0), ("range_quantiles", [0.9, 0.1])],
)
def test_bad_configuration_is_refused_before_any_work(tmp_path, key, value):
    from experiments.field_level_bias import run

    with pytest.raises(ValueError, match=key):
        run({**QUICK, key: value}, tmp_path)
    assert not any(tmp_path.iterdir())


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("field-level-bias")
    assert main(["run", "field-level-bias", "--quick", "--out", str(out)]) == 0
    return out


@pytest.mark.slow
def test_discovered_law_follows_the_true_bias_law(run_dir):
    found = json.loads((run_dir / "discoveries.json").read_text())
    law = sp.sympify(found["best"]["srepr"])
    (x,) = law.free_symbols
    fn = sp.lambdify(x, law, "numpy")
    with h5py.File(run_dir / "field_level_bias.h5") as h5:
        xs = h5["held_out/x"][:]
    with h5py.File(run_dir / "mock.h5") as h5:
        mean_density = h5["data/counts"][:].mean() / QUICK["nbar_cell"]
    lo, hi = np.quantile(xs[np.isfinite(xs)], QUICK["range_quantiles"])
    grid = np.linspace(lo, hi, 100)
    truth = np.asarray(BIAS_LAWS["neyrinck"](jnp.asarray(grid - 1.0), NeyrinckBias(**NEYRINCK)))
    # Relative error where the law is above the mean galaxy density, in units of it below.
    error = np.abs(np.broadcast_to(fn(grid), grid.shape) - truth) / np.maximum(truth, mean_density)
    assert error.max() < QUICK["curve_tolerance"]
    # The shape, not just the slope: the best pure power law misses the low-density cut-off.
    slope, amplitude = np.polyfit(np.log(grid[grid > 0.5]), np.log(truth[grid > 0.5]), 1)
    power_law = np.exp(amplitude) * grid**slope
    assert np.max(np.abs(power_law - truth) / np.maximum(truth, mean_density)) > 2 * error.max()
    # The posterior scatter of the fields reaches the constants' uncertainties.
    constants = found["best"]["constants"]
    fixed = found["best"].get("fixed_constants") or []
    assert (constants or fixed) and all(c["sigma"] > 0 for c in constants.values())
    assert all(c["passed"] for c in found["checks"]), found["checks"]


@pytest.mark.slow
def test_discovered_law_fits_the_counts_as_well_as_the_hand_written_law(run_dir):
    with h5py.File(run_dir / "field_level_bias.h5") as h5:
        hand = h5["deviance/hand_written"][:]
        discovered = h5["deviance/discovered"][:]
    assert hand.size >= 100 and discovered.size == hand.size
    # Poisson deviance per cell near 1 for a fit that is neither broken nor over-fitted.
    assert 0.5 < hand.mean() < 1.5
    assert discovered.mean() - hand.mean() <= QUICK["fit_tolerance_spread"] * hand.std()


@pytest.mark.slow
def test_quickstart_prints_report_and_passes_its_checks(run_dir, capsys):
    hand_chains = sorted(run_dir.glob("chains/hand_written-*/chain.h5"))
    capsys.readouterr()
    assert main(["run", "quickstart", "--quick", "--out", str(run_dir)]) == 0
    printed = capsys.readouterr().out
    report = run_dir / "report.html"
    assert f"report: {report.resolve()}" in printed
    assert "data:image/png;base64," in report.read_text()  # self-contained, with figures
    found = json.loads((run_dir / "discoveries.json").read_text())
    assert found["experiment"] == "quickstart"
    assert len(found["checks"]) == 6 and all(c["passed"] for c in found["checks"])
    # Same mock and posterior: the hand-written law's chains were resumed, not redrawn.
    assert sorted(run_dir.glob("chains/hand_written-*/chain.h5")) == hand_chains
