"""Experiment ``field-level-bias``: a bias law discovered from posterior fields, and back.

1. Mock (``simulator.observe.mock.make_mock``): white noise -> linear field -> LPT to ``a_stop`` ->
   CIC density ``delta`` -> galaxy counts, Poisson with mean ``nbar_cell F(1 + delta)``,
   ``F`` a hand-written law (by default Neyrinck et al. 2014, the power law with an
   exponential cut-off at low density that BORG uses).
2. Inference (``inference.driver.run_chains``): the posterior of the white noise and of the
   hand-written law's parameters given the counts, through the same forward model.
3. Discovery: each stored posterior sample of the final density is paired with the data;
   the counts divided by ``nbar_cell`` are averaged in quantile bins of ``x = 1 + delta``
   (bins shared by all samples), on the cells of one parity ``(i + j + k) % 2 = 0``. The law
   ``F(x)`` is searched on the mean over samples of these binned curves with the
   chi-square likelihood of their errors (the scatter between samples and the Poisson
   error of the counts: the posterior says how well the curve is known), in the engine's
   default operator basis; its constants are then refitted to every sample's curve, so
   their uncertainties hold the posterior scatter of the field (added in quadrature to the
   counts' own). The other parity is held out. The hand-written law's form is fitted to
   the discovered law (is it the same form?) and to the posterior curves (are its
   parameters the mock's?), and its description length set beside the discovered law's.
4. Closing the loop: the discovered law becomes the bias model
   (``inference.symbolic_bias.symbolic_bias_law``; its constants fixed at their fitted
   values, or sampled with priors around them with ``sample_constants``), the inference is
   run again, and the posterior predictive fit of each law is measured by the Poisson
   deviance of the counts per cell over the posterior samples (the hand-written law's
   parameters are sampled: the comparison favours it).
5. Checks and report: the discovered law against the mock's true law over the central
   quantiles of the posterior densities, the deviance of the closed loop against the
   hand-written law's, the posterior mean density against the true density; the binned
   curves, constants and deviances go to ``field_level_bias.h5``.

Why the pairs recover ``F``: a posterior sample and the data it was drawn from are jointly
distributed as the truth and the data (averaged over data sets), so the mean count in a bin
of a sample's density is ``nbar_cell F`` of that density, up to cosmic variance.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

NAME = "field-level-bias"
QUESTION = (
    "Which bias law F, <N_gal> = nbar F(1 + delta), links the galaxy counts of a survey to "
    "the matter density inferred at the field level, with the posterior scatter of the "
    "field propagated into the law's constants; and does the discovered law, put back as "
    "the bias model, fit the counts as well as the hand-written law (Neyrinck et al. 2014)?"
)
QUICK: dict[str, Any] = {
    "mesh": 32,
    "box": 256.0,
    "a_stop": 1.0,
    "model": "lpt1",
    "bias": "neyrinck",
    "bias_params": {"beta": 1.5, "rho_g": 0.4, "epsilon": 1.5},
    "nbar_cell": 5.0,
    "mock_seed": 0,
    "sampler": "mclmc",
    "samples": 500,
    "warmup": 150,
    "chains": 2,
    "thin": 5,
    "burn_fraction": 0.2,
    "inference_seed": 0,
    "n_bins": 48,
    "range_quantiles": [0.02, 0.98],
    "operators": None,  # the engine's default basis
    "max_complexity": 15,
    "budget_s": 30.0,
    "clock": "work",  # the search's budget counts work: the same law on any machine
    "criterion": "mdl",
    "backend": "auto",
    "search_seed": 0,
    "close_loop": True,
    "sample_constants": False,
    "curve_tolerance": 0.05,
    "fit_tolerance_spread": 2.0,
}
FULL: dict[str, Any] = {
    **QUICK,
    "mesh": 64,
    "box": 256.0,
    "model": "lpt2",
    "samples": 2000,
    "warmup": 500,
    "chains": 4,
    "thin": 20,
    "n_bins": 64,
    "max_complexity": 20,
    "budget_s": 300.0,
    "backend": "auto",
    "curve_tolerance": 0.03,
}
#: Hand-written laws a mock may be drawn from (their sympy forms: ``true_expression``).
TRUE_LAWS = ("neyrinck", "power_law", "broken_power_law")
LATEX_NAMES = {"x": r"\rho_m/\bar\rho_m", "F": r"\langle N_g\rangle/\bar n"}


@dataclass(frozen=True)
class PosteriorSamples:
    """Stored posterior samples of one chain file, burn-in removed.

    Attributes:
        delta: final (observed) matter density contrast per sample, ``(S, m, m, m)``.
        bias: sampled bias parameters, ``{name: (S,)}`` (empty when none is sampled).
    """

    delta: np.ndarray
    bias: dict[str, np.ndarray]


def read_posterior(path: str | Path, burn_fraction: float) -> PosteriorSamples:
    """The stored samples of ``chain.h5`` after the first ``burn_fraction`` of the steps.

    Each stored field is paired with the bias parameters of the same step.
    """
    from inference.chain_file import read_arrays

    arrays, attrs = read_arrays(path)
    steps = np.asarray(arrays["fields/step"])
    keep = np.flatnonzero(steps > burn_fraction * int(attrs["config"]["num_samples"]))
    fields = np.asarray(arrays["fields/delta"])[:, keep]
    scalars = np.asarray(arrays["samples/scalars"])[:, steps[keep] - 1]
    bias = {
        name.split("/", 1)[1]: scalars[..., i].reshape(-1)
        for i, name in enumerate(attrs["scalar_names"])
        if name.startswith("bias/")
    }
    return PosteriorSamples(fields.reshape(-1, *fields.shape[2:]), bias)


def parity_mask(mesh: int) -> np.ndarray:
    """Boolean ``(mesh,)*3`` mask of the cells with ``(i + j + k)`` even (the training cells)."""
    i = np.indices((mesh,) * 3).sum(axis=0)
    return i % 2 == 0


def binned_curves(
    x: np.ndarray, counts: np.ndarray, edges: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-sample bin means of ``x`` and of ``counts``, with the standard error of the latter.

    Args:
        x: densities ``1 + delta`` of the samples, ``(S, n)`` (n cells).
        counts: data on the same ``n`` cells, ``(n,)`` (or ``(S, n)``).
        edges: ``B + 1`` increasing bin edges; values outside go to the end bins.

    Returns:
        ``(x_mean, y_mean, y_err)``, each ``(S, B)``; empty bins give NaN.
    """
    x = np.atleast_2d(x)
    counts = np.broadcast_to(counts, x.shape)
    n_samples, n_bins = x.shape[0], len(edges) - 1
    idx = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, n_bins - 1)
    flat = (idx + n_bins * np.arange(n_samples)[:, None]).ravel()
    size = n_samples * n_bins

    def total(w):
        return np.bincount(flat, np.ravel(w), size).reshape(n_samples, n_bins)

    with np.errstate(invalid="ignore", divide="ignore"):
        n = total(np.ones_like(x))
        x_mean = total(x) / n
        y_mean = total(counts) / n
        var = total(counts**2) / n - y_mean**2
        err = np.sqrt(np.maximum(var, 0.0) / np.maximum(n - 1, 1))
    return x_mean, y_mean, err


def pooled_curve(
    x_mean: np.ndarray, y_mean: np.ndarray, y_err: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean over samples of binned curves ``(S, B)``; the error adds the scatter between
    samples to the mean within-sample standard error in quadrature. Returns three ``(B,)``."""
    scatter = np.nanvar(y_mean, axis=0)
    within = np.nanmean(y_err**2, axis=0)
    return np.nanmean(x_mean, axis=0), np.nanmean(y_mean, axis=0), np.sqrt(scatter + within)


def poisson_deviance(counts: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """Poisson deviance per cell, ``2 mean[N ln(N / lam) - (N - lam)]`` over the last three
    axes: counts ``(m, m, m)``, expected counts ``lam`` ``(..., m, m, m)``; returns ``(...)``."""
    from scipy.special import xlogy

    per_cell = 2.0 * (xlogy(counts, counts) - xlogy(counts, lam) - (counts - lam))
    return per_cell.mean(axis=(-3, -2, -1))


def predictive_deviance(
    counts: np.ndarray, posterior: PosteriorSamples, law, nbar: float
) -> np.ndarray:
    """Posterior predictive Poisson deviance per cell of each sample, ``(S,)``.

    Each sample's expected counts are ``nbar F(delta)`` with its own bias parameters (the
    law's defaults for those not sampled).
    """
    import dataclasses

    import jax
    import jax.numpy as jnp

    from simulator.observe.mock import expected_counts

    n = posterior.delta.shape[0]
    defaults = dataclasses.asdict(law.params_type())
    values = {k: np.full(n, v, np.float32) for k, v in defaults.items()}
    values.update({k: np.asarray(v, np.float32) for k, v in posterior.bias.items()})

    @jax.jit
    def lam(delta, vals):
        return expected_counts(delta, law, law.params_type(**vals), nbar)

    lams = np.stack(
        [
            np.asarray(lam(jnp.asarray(d), {k: v[i] for k, v in values.items()}), float)
            for i, d in enumerate(posterior.delta)
        ]
    )
    return poisson_deviance(np.asarray(counts, float), lams)


@dataclass(frozen=True)
class PooledCurve:
    """The mean over posterior samples of the binned curves, on its usable bins.

    Attributes:
        ok: the usable bins among the ``B`` (finite, positive, with errors), ``(B,)``.
        X: their mean ``x``, ``(b, 1)``; y: their mean ``F``, ``(b,)``.
        err: how well the curve is known, ``(b,)``: the scatter between posterior samples
            and the counts' standard error in quadrature.
        within: the counts' standard error alone (mean over samples), ``(b,)``.
    """

    ok: np.ndarray
    X: np.ndarray
    y: np.ndarray
    err: np.ndarray
    within: np.ndarray


def pool(x_mean: np.ndarray, y_mean: np.ndarray, y_err: np.ndarray) -> PooledCurve:
    """The :class:`PooledCurve` of per-sample binned curves ``(S, B)``."""
    X, y, err = pooled_curve(x_mean, y_mean, y_err)
    within = np.sqrt(np.nanmean(y_err**2, axis=0))
    ok = np.isfinite(X) & np.isfinite(y) & (y > 0) & (err > 0) & (within > 0)
    return PooledCurve(ok, X[ok, None], y[ok], err[ok], within[ok])


@dataclass(frozen=True)
class PosteriorFit:
    """Constants of a law fitted to the posterior's binned curves, with uncertainties.

    Attributes:
        law: the fit to the pooled curve (``experiments.core.refit.Refit``: expression,
            template, constant names, values ``(P,)``).
        per_sample: the constants refitted to each sample's curve, ``(S, P)``.
        sigma: total one-sigma uncertainty of each constant, ``(P,)``: the scatter of the
            per-sample fits (the posterior's) and the pooled fit's (the counts') in quadrature.
    """

    law: Any
    per_sample: np.ndarray
    sigma: np.ndarray


def fit_to_posterior(pooled_fit, curve: PooledCurve, x_mean: np.ndarray, y_mean: np.ndarray):
    """Refit ``pooled_fit``'s constants (a ``Refit`` of the pooled curve with the counts'
    errors) to every sample's curve ``(S, B)``; returns the :class:`PosteriorFit`."""
    import sympy as sp

    from experiments.core.refit import refit_like

    x, rows = sp.Symbol("x"), np.flatnonzero(curve.ok)
    per_sample = []
    with np.errstate(all="ignore"):  # trial constants may leave a power's domain
        for xs, ys in zip(x_mean[:, rows], y_mean[:, rows], strict=True):
            good = np.isfinite(xs) & np.isfinite(ys)
            sigma = curve.within[good]
            per_sample.append(refit_like(pooled_fit, [x], xs[good, None], ys[good], sigma=sigma))
    values = np.array([r.values for r in per_sample]).reshape(len(per_sample), -1)
    sigma = np.sqrt(np.var(values, axis=0) + pooled_fit.sigmas**2)
    return PosteriorFit(pooled_fit, values, sigma)


@dataclass(frozen=True)
class Discovery:
    """The discovered law ``F(x)`` and its constants with propagated uncertainties.

    Attributes:
        expression: ``F`` with the constants fitted to the pooled curve (sympy, in ``x``).
        template: ``F`` with the constants as symbols ``names``.
        names: the constants' symbol names; values: their pooled fits, ``(P,)``.
        per_sample: the constants refitted to each sample's curve, ``(S, P)``.
        sigma: total one-sigma uncertainty of each constant, ``(P,)``.
        search: the ``experiments.core.law_search.Search`` of ``F``.
    """

    expression: Any
    template: Any
    names: list[str]
    values: np.ndarray
    per_sample: np.ndarray
    sigma: np.ndarray
    search: Any


def discover_law(
    x_mean: np.ndarray, y_mean: np.ndarray, y_err: np.ndarray, config: dict[str, Any]
) -> Discovery:
    """Search ``F(x)`` on the pooled binned curves ``(S, B)`` and propagate the sample scatter.

    The search fits the pooled curve with the chi-square likelihood of its bins' errors,
    which hold the scatter between posterior samples and the Poisson error of the counts:
    the posterior, not the search, says how well the curve is known. The found law's float
    constants (exact numbers the search chose stay) are then refitted as in
    :func:`fit_to_posterior`.
    """
    import sympy as sp

    from experiments.core.law_search import SEARCH_SETTINGS, search
    from experiments.core.refit import refit

    curve = pool(x_mean, y_mean, y_err)
    found = search(
        curve.X,
        curve.y,
        ["x"],
        target="F",
        sigma=curve.err,
        seed=int(config["search_seed"]),
        **{k: config[k] for k in SEARCH_SETTINGS},
    )
    expr = exp_of_constant_bases(found.expression)
    with np.errstate(all="ignore"):
        law = refit(expr, [sp.Symbol("x")], curve.X, curve.y, sigma=curve.within, floats_only=True)
    fitted = fit_to_posterior(law, curve, x_mean, y_mean)
    return Discovery(
        expression=law.expression,
        template=law.template,
        names=[str(n) for n in law.names],
        values=law.values,
        per_sample=fitted.per_sample,
        sigma=fitted.sigma,
        search=found,
    )


@dataclass(frozen=True)
class FormComparison:
    """The discovered law beside the hand-written law's form (step 3 of the docstring).

    Attributes:
        form: the hand-written law's name (``obs.law.name``).
        same_form: the discovered law is a member of that form (the form fitted to the
            discovered curve over the data range reproduces it to ``FORM_TOLERANCE``)
            with no more constants.
        mismatch: that fit's rms relative difference.
        parameters: the form's parameters fitted to the posterior curves,
            ``{name: (value, sigma)}``; truth: the mock's values.
        description_lengths: nats, ``{"discovered": .., "hand-written form": ..}`` under
            the search's chi-square likelihood.
    """

    form: str
    same_form: bool
    mismatch: float
    parameters: dict[str, tuple[float, float]]
    truth: dict[str, float]
    description_lengths: dict[str, float]

    def max_pull(self) -> float:
        """``max |value - truth| / sigma`` over the parameters."""
        return max(abs(v - self.truth[k]) / s for k, (v, s) in self.parameters.items())


#: rms relative difference below which the discovered law counts as a member of the form.
FORM_TOLERANCE = 1e-3


def compare_with_form(
    found: Discovery, binned: BinnedPosterior, obs, x_range: tuple[float, float]
) -> FormComparison:
    """Fit the hand-written law's form (with its parameters as named constants, starting
    from the law's default values) to the discovered curve and to the posterior curves."""
    import dataclasses

    import sympy as sp

    from discovery import assess
    from experiments.core.law_search import univariate
    from experiments.core.refit import fit_template

    x = sp.Symbol("x")
    defaults = dataclasses.asdict(obs.law.params_type())
    names = tuple(sp.Symbol(n, positive=True) for n in defaults)
    template = true_expression(obs.law.name, dict(zip(defaults, names, strict=True)), x)
    p0 = np.array(list(defaults.values()), float)
    grid = np.linspace(*x_range, 100)[:, None]
    with np.errstate(all="ignore"):
        own = univariate(found.expression, "x")(grid)
        member = fit_template(template, names, p0, [x], grid, own)
        curve = pool(*binned.train)
        pooled = fit_template(
            template, names, member.values, [x], curve.X, curve.y, False, curve.within
        )
    fitted = fit_to_posterior(pooled, curve, *binned.train[:2])
    values = dict(zip(names, pooled.values, strict=True))
    start = template.xreplace({n: sp.Float(v, 15) for n, v in values.items()})
    lengths = {
        "discovered": float(found.search.details["description_length"]),
        "hand-written form": assess(start, curve.X, curve.y, ["x"], curve.err).description_length,
    }
    return FormComparison(
        form=obs.law.name,
        same_form=member.rms < FORM_TOLERANCE and len(found.names) <= len(names),
        mismatch=member.rms,
        parameters={
            str(n): (float(v), float(s))
            for n, v, s in zip(names, pooled.values, fitted.sigma, strict=True)
        },
        truth={k: float(v) for k, v in obs.bias_params.items()},
        description_lengths=lengths,
    )


def exp_of_constant_bases(expr):
    """``expr`` with every power of a positive number ``b**e`` (``e`` not a number) written as
    ``exp(log(b) e)``: the same function, whose constant is then fitted on a log scale."""
    import sympy as sp

    return expr.replace(
        lambda a: a.is_Pow and a.base.is_Number and a.base > 0 and not a.exp.is_Number,
        lambda a: sp.exp(sp.Float(float(sp.log(a.base)), 15) * a.exp),
    )


def curve_deviation(law: np.ndarray, truth: np.ndarray, mean: float) -> float:
    """``max |law - truth| / max(truth, mean)``: the relative error of a bias law where it is
    above the mean galaxy density ``mean``, the error in units of that mean below it."""
    return float(np.max(np.abs(law - truth) / np.maximum(truth, mean)))


@dataclass(frozen=True)
class MockData:
    """The simulated survey: ``SimConfig``, ``Cosmology``, ``Observation``, the ``Mock`` and
    its true fields (``simulator.observe.mock.make_mock``)."""

    conf: Any
    cosmo: Any
    obs: Any
    mock: Any
    truth: dict[str, np.ndarray]


def simulate_mock(config: dict[str, Any]) -> MockData:
    """Draw the mock of ``config`` (mesh, box, a_stop, model, bias, bias_params, nbar_cell,
    mock_seed) with Poisson counts."""
    from simulator.config import SimConfig
    from simulator.cosmology import Cosmology
    from simulator.observe.mock import Observation, make_mock

    model = config["model"]
    conf = SimConfig(
        mesh=int(config["mesh"]),
        box=float(config["box"]),
        a_stop=float(config["a_stop"]),
        lpt_order=2 if model == "lpt2" else 1,
    )
    cosmo = Cosmology.planck18()
    obs = Observation(
        bias=config["bias"],
        bias_params=dict(config["bias_params"]),
        nbar_cell=float(config["nbar_cell"]),
        noise="poisson",
    )
    mock, truth = make_mock(int(config["mock_seed"]), cosmo, conf, model, obs)
    return MockData(conf, cosmo, obs, mock, truth)


def _validate(config: dict[str, Any]) -> None:
    from experiments.core.field_inference import run_config
    from inference.models import FORWARD_MODELS

    if config["model"] not in FORWARD_MODELS or config["model"] == "pm":
        raise ValueError(f"model={config['model']!r} is not allowed: use 'lpt1' or 'lpt2'")
    if config["bias"] not in TRUE_LAWS:
        raise ValueError(f"bias={config['bias']!r} is not allowed: use one of {sorted(TRUE_LAWS)}")
    if not 0 <= float(config["burn_fraction"]) < 1:
        raise ValueError(f"burn_fraction={config['burn_fraction']!r} must be in [0, 1)")
    lo, hi = config["range_quantiles"]
    if not 0 <= lo < hi <= 1:
        raise ValueError(f"range_quantiles={[lo, hi]!r} must satisfy 0 <= lo < hi <= 1")
    if int(config["n_bins"]) < 6:
        raise ValueError(f"n_bins={config['n_bins']!r} must be an integer >= 6")
    run_config(config)


@dataclass(frozen=True)
class BinnedPosterior:
    """The posterior density samples binned against the counts (step 3 of the module docstring).

    Attributes:
        x: ``1 + delta`` of every sample and cell, ``(S, m^3)``.
        edges: the ``B + 1`` quantile bin edges of ``x`` on the training cells.
        train: ``(x_mean, F_mean, F_err)`` per sample on the training (even) cells, each ``(S, B)``.
        held_out: the same on the held-out (odd) cells.
        X_test: pooled held-out bin centres ``(b, 1)``; y_test: their pooled ``F``, ``(b,)``.
        x_range: ``(lo, hi)``, the central ``range_quantiles`` of ``x`` on the training cells.
    """

    x: np.ndarray
    edges: np.ndarray
    train: tuple[np.ndarray, np.ndarray, np.ndarray]
    held_out: tuple[np.ndarray, np.ndarray, np.ndarray]
    X_test: np.ndarray
    y_test: np.ndarray
    x_range: tuple[float, float]


def bin_posterior(
    posterior: PosteriorSamples, counts: np.ndarray, nbar: float, config: dict[str, Any]
) -> BinnedPosterior:
    """Bin every posterior sample's ``x = 1 + delta`` against ``counts / nbar`` (``(m, m, m)``)
    in ``n_bins`` quantile bins shared by all samples, on the training and held-out cells."""
    x = 1.0 + posterior.delta.reshape(posterior.delta.shape[0], -1)
    train = parity_mask(posterior.delta.shape[-1]).ravel()
    y = counts.ravel() / nbar
    edges = np.quantile(x[:, train], np.linspace(0.0, 1.0, int(config["n_bins"]) + 1))
    held_out = binned_curves(x[:, ~train], y[~train], edges)
    X_test, y_test, _ = pooled_curve(*held_out)
    ok = np.isfinite(X_test) & np.isfinite(y_test)
    lo, hi = np.quantile(x[:, train], config["range_quantiles"])
    return BinnedPosterior(
        x=x,
        edges=edges,
        train=binned_curves(x[:, train], y[train], edges),
        held_out=held_out,
        X_test=X_test[ok, None],
        y_test=y_test[ok],
        x_range=(float(lo), float(hi)),
    )


def infer_hand_written(data: MockData, config: dict[str, Any], out_dir: Path) -> PosteriorSamples:
    """Sample the posterior of the white noise and of the mock's own law's parameters."""
    from experiments.core.field_inference import sample_chains
    from inference.models import counts_posterior

    mock = data.mock
    posterior = counts_posterior(
        mock.counts, mock.selection, data.conf, data.cosmo, data.obs, config["model"]
    )
    model = {"mock": data.obs.to_dict()}
    path = sample_chains(posterior, config, out_dir / "chains" / "hand_written", data.truth, model)
    return read_posterior(path, float(config["burn_fraction"]))


@dataclass(frozen=True)
class LoopFit:
    """Posterior predictive Poisson deviance per cell of each sample, ``(S,)``, under the
    hand-written law's posterior and under the discovered law's (step 4)."""

    hand_written: np.ndarray
    discovered: np.ndarray

    def summary(self, spread: float) -> dict[str, Any]:
        """Means and spreads, the excess of the discovered law and its tolerance
        (``spread`` times the hand-written law's spread over samples)."""
        hand, found = self.hand_written, self.discovered
        return {
            "deviance_per_cell_hand_written": [float(np.mean(hand)), float(np.std(hand))],
            "deviance_per_cell_discovered": [float(np.mean(found)), float(np.std(found))],
            "deviance_excess": float(np.mean(found) - np.mean(hand)),
            "deviance_tolerance": spread * float(np.std(hand)),
        }


def close_the_loop(
    found: Discovery, data: MockData, hand: PosteriorSamples, config: dict[str, Any], out_dir: Path
) -> LoopFit:
    """Rerun the inference with the discovered law as the bias model, and measure the
    posterior predictive fit of both laws to the counts."""
    from experiments.core.field_inference import sample_chains
    from inference.models import counts_posterior
    from inference.symbolic_bias import symbolic_bias_law

    values = dict(zip(found.names, found.values.tolist(), strict=True))
    law = symbolic_bias_law(found.template, "x", values, name="discovered")
    priors = {
        n: (float(v), float(max(3.0 * s, 0.1 * abs(v), 0.01)))
        for n, v, s in zip(found.names, found.values, found.sigma, strict=True)
        if config["sample_constants"]
    }
    mock, obs = data.mock, data.obs
    posterior = counts_posterior(
        mock.counts,
        mock.selection,
        data.conf,
        data.cosmo,
        obs,
        config["model"],
        bias_priors=priors,
        bias_law=law,
    )
    model = {"law": str(found.template), "priors": priors, "mock": obs.to_dict()}
    path = sample_chains(posterior, config, out_dir / "chains" / "discovered", data.truth, model)
    discovered = read_posterior(path, float(config["burn_fraction"]))
    counts = np.asarray(mock.counts, float)
    return LoopFit(
        predictive_deviance(counts, hand, obs.law, obs.nbar_cell),
        predictive_deviance(counts, discovered, law, obs.nbar_cell),
    )


def run(config: dict[str, Any], out_dir: Path):
    """Run the experiment: the numbered steps of the module docstring. Returns an
    ``ExperimentResult``."""
    from simulator.observe.mock import write_mock

    _validate(config)
    out_dir = Path(out_dir)
    # 1. Mock.
    data = simulate_mock(config)
    write_mock(out_dir / "mock.h5", data.mock, data.truth, data.obs, config)
    counts = np.asarray(data.mock.counts, float)
    # 2. Inference with the hand-written law, its parameters sampled.
    hand = infer_hand_written(data, config, out_dir)
    # 3. Discovery on the binned posterior samples (training cells), held-out cells kept apart.
    binned = bin_posterior(hand, counts, data.obs.nbar_cell, config)
    found = discover_law(*binned.train, config)
    form = compare_with_form(found, binned, data.obs, binned.x_range)
    # 4. Closing the loop: the discovered law as the bias model.
    loop = close_the_loop(found, data, hand, config, out_dir) if config["close_loop"] else None
    # 5. Checks, data file and the report's inputs.
    steps = Steps(data, hand, binned, found, form, loop)
    checks = _checks(steps, config)
    _write_data(out_dir / "field_level_bias.h5", steps)
    return _result(steps, checks, config)


@dataclass(frozen=True)
class Steps:
    """What the steps of :func:`run` produced: the mock, the hand-written law's posterior,
    the binned posterior, the discovery, its comparison with the hand-written form and the
    closed loop's fit (None when the loop is not closed)."""

    data: MockData
    hand: PosteriorSamples
    binned: BinnedPosterior
    found: Discovery
    form: FormComparison
    loop: LoopFit | None


def _true_curve(obs) -> Callable[[np.ndarray], np.ndarray]:
    """The mock's bias law ``F(x)`` as a function of ``X`` ``(n, 1)`` (x = 1 + delta)."""
    law, params = obs.law, obs.bias_parameters()
    return lambda X: np.asarray(law(np.asarray(X[:, 0] - 1.0, np.float32), params), float)


def _checks(steps: Steps, config: dict[str, Any]) -> list:
    """The law against the true one over the data range, the law itself (:func:`_law_checks`),
    its fit to the counts against the hand-written law's (when the loop was closed), and the
    posterior mean against the truth."""
    from experiments.core.html_report import Check
    from experiments.core.law_search import univariate
    from experiments.core.stages import above, below

    data, binned, found, loop = steps.data, steps.binned, steps.found, steps.loop
    grid = np.linspace(*binned.x_range, 200)[:, None]
    mean = float(np.asarray(data.mock.counts).mean() / data.obs.nbar_cell)
    law = univariate(found.expression, "x")(grid)
    curve_error = curve_deviation(law, _true_curve(data.obs)(grid), mean)
    checks = [
        below(
            "max |F_law - F_true| / max(F_true, <F>) for x = 1 + delta in the central "
            f"{config['range_quantiles']} quantiles of the posterior samples",
            curve_error,
            float(config["curve_tolerance"]),
        ),
        *_law_checks(found, steps.form),
    ]
    if loop is not None:
        fit = loop.summary(float(config["fit_tolerance_spread"]))
        checks.append(
            Check(
                "posterior predictive Poisson deviance per cell, discovered - hand-written law",
                fit["deviance_excess"],
                f"<= {config['fit_tolerance_spread']} x the hand-written law's spread over "
                f"samples ({fit['deviance_tolerance']:.3g})",
                fit["deviance_excess"] <= fit["deviance_tolerance"],
            )
        )
    truth = data.truth["delta_observed"].ravel()
    r_truth = float(np.corrcoef(steps.hand.delta.mean(axis=0).ravel(), truth)[0, 1])
    checks.append(
        above(
            "correlation of the posterior mean density with the true density (per cell)",
            r_truth,
            0.9,
        )
    )
    return checks


#: The most float constants a law may have, and the largest relative one-sigma uncertainty
#: of each, for its constants to count as determined by the data.
MAX_CONSTANTS, MAX_RELATIVE_SIGMA = 4, 0.3


def _law_checks(found: Discovery, form: FormComparison) -> list:
    """The law explains, not just fits: its constants are determined, it has the
    hand-written law's form, and that form's parameters fitted to the posterior curves
    are the mock's."""
    from experiments.core.html_report import Check
    from experiments.core.stages import below

    lengths = form.description_lengths
    relative = np.abs(found.sigma) / np.maximum(np.abs(found.values), 1e-300)
    worst = float(np.max(relative, initial=0.0))
    return [
        Check(
            "largest relative one-sigma uncertainty of the law's float constants",
            worst,
            f"< {MAX_RELATIVE_SIGMA} with at most {MAX_CONSTANTS} constants "
            f"({len(found.names)} here)",
            worst < MAX_RELATIVE_SIGMA and len(found.names) <= MAX_CONSTANTS,
        ),
        Check(
            f"rms relative difference between the law and {form.form}'s form fitted to it "
            "over the data range",
            form.mismatch,
            f"< {FORM_TOLERANCE:g} with no more constants than the form, or the data do not "
            "prefer the form: its description length is not shorter than the law's "
            f"({lengths['hand-written form']:.1f} vs {lengths['discovered']:.1f} nats)",
            form.same_form or lengths["hand-written form"] >= lengths["discovered"],
        ),
        below(
            f"max |parameter - truth| / sigma of {form.form}'s form fitted to the posterior curves",
            form.max_pull(),
            3.0,
        ),
    ]


def _write_data(path: Path, steps: Steps):
    """``field_level_bias.h5``: the binned curves, bin edges, the constants per sample and
    their uncertainties, and the deviances of the closed loop."""
    from experiments.core.stages import write_data_file

    binned, found, loop = steps.binned, steps.found, steps.loop
    datasets = {
        f"{part}/{key}": value
        for part, curves in (("train", binned.train), ("held_out", binned.held_out))
        for key, value in zip(("x", "F", "F_err"), curves, strict=True)
    }
    datasets |= {
        "bin_edges": binned.edges,
        "constants/per_sample": found.per_sample,
        "constants/sigma": found.sigma,
    }
    if loop is not None:
        datasets |= {
            "deviance/hand_written": loop.hand_written,
            "deviance/discovered": loop.discovered,
        }
    write_data_file(path, NAME, {}, datasets, attrs={"constants/names": found.names})


def _result(steps: Steps, checks: list, config: dict[str, Any]):
    """The ``ExperimentResult``: the law with its front, constants and literature, and the
    description of the data for the report."""
    from experiments.core.law_search import univariate
    from experiments.core.laws import FrontPoint, Law
    from experiments.core.registry import ExperimentResult
    from experiments.core.stages import seeds_of

    data, hand, binned, found, form = steps.data, steps.hand, steps.binned, steps.found, steps.form
    conf, obs, loop = data.conf, data.obs, steps.loop
    predict = univariate(found.expression, "x")
    fit_summary = loop.summary(float(config["fit_tolerance_spread"])) if loop else {}
    hand_mean = {k: float(np.mean(v)) for k, v in hand.bias.items()}
    n_samples, burn = int(binned.x.shape[0]), float(config["burn_fraction"])
    law = Law(
        title="galaxy counts per nbar against the inferred matter density x = 1 + delta",
        target="F",
        variables=("x",),
        expression=found.expression,
        X_test=binned.X_test,
        y_test=binned.y_test,
        predict=predict,
        constants={
            n: (float(v), float(s))
            for n, v, s in zip(found.names, found.values, found.sigma, strict=True)
        },
        front=[FrontPoint(p.complexity, p.loss, p.expression) for p in found.search.front],
        loss_name="chi-square per bin of F (posterior scatter and Poisson errors)",
        chosen=found.search.chosen,
        literature=_literature(obs, predict, _true_curve(obs), hand_mean, fit_summary, form),
        template=found.template if found.names else None,
        latex_names=LATEX_NAMES,
        details={**dict(found.search.details), "samples": n_samples},
    )
    return ExperimentResult(
        laws=[law],
        checks=checks,
        data={
            "source": f"simulator.observe.mock.make_mock ({config['model']}), Planck 2018",
            "data file": "mock.h5, field_level_bias.h5, chains/*/chain.h5",
            "mock": f"{conf.mesh}^3 cells, box {conf.box} Mpc/h, a = {conf.a_stop}, "
            f"{obs.law.name} bias {dict(obs.bias_params)}, nbar_cell {obs.nbar_cell}, Poisson",
            "galaxies": int(np.asarray(data.mock.counts).sum()),
            "inference": f"{config['sampler']}, {config['chains']} chains x "
            f"{config['samples']} steps (+{config['warmup']} warm-up), fields every "
            f"{config['thin']} steps, first {burn:.0%} dropped",
            "posterior samples": n_samples,
            "training / held-out cells": "(i + j + k) even / odd",
            "bins": f"{config['n_bins']} quantile bins of x",
        },
        seeds=seeds_of(config, mock="mock_seed", inference="inference_seed", search="search_seed"),
        summary={
            "law": str(found.expression),
            "curve_max_rel_error": checks[0].value,  # the first and last checks of _checks
            "x_range": list(binned.x_range),
            "r_posterior_mean_truth": checks[-1].value,
            "hand_written_posterior_means": hand_mean,
            "true_bias_params": dict(obs.bias_params),
            "hand_written_form": {
                "form": form.form,
                "same_form": form.same_form,
                "mismatch": form.mismatch,
                "parameters": form.parameters,
                "description_lengths": form.description_lengths,
            },
            **fit_summary,
        },
    )


def _literature(
    obs, predict, true_curve, hand_mean: dict, fit_summary: dict, form: FormComparison
) -> list:
    """The laws the discovery is compared with: the mock's true law (curve and values), its
    form fitted to the posterior curves (parameters against the truth, description length
    against the discovered law's) and, after closing the loop, the hand-written law's
    posterior predictive fit."""
    import sympy as sp

    from experiments.core.laws import Literature

    numbers = [
        (f"F({v:g})", float(predict(np.array([[v]]))[0]), float(true_curve(np.array([[v]]))[0]))
        for v in (0.5, 1.0, 2.0)
    ]
    name = obs.law.name
    literature = [
        Literature(
            f"true law of the mock ({name})",
            "Neyrinck et al. (2014), MNRAS 441, 646" if name == "neyrinck" else name,
            true_expression(name, dict(obs.bias_params), sp.Symbol("x")),
            true_curve,
            numbers,
        ),
        Literature(
            f"{name}'s form fitted to the posterior curves",
            f"the discovered law {'is' if form.same_form else 'is not'} of this form "
            f"(rms relative difference {form.mismatch:.2g})",
            numbers=[
                (f"{k} (one sigma {s:.2g})", v, form.truth[k])
                for k, (v, s) in form.parameters.items()
            ]
            + [
                (
                    "description length [nats], discovered vs this form",
                    form.description_lengths["discovered"],
                    form.description_lengths["hand-written form"],
                )
            ],
        ),
    ]
    if fit_summary:
        literature.append(
            Literature(
                "hand-written law, posterior predictive fit",
                f"{name} with sampled parameters (posterior means {hand_mean})",
                numbers=[
                    (
                        "Poisson deviance per cell (discovered vs hand-written)",
                        fit_summary["deviance_per_cell_discovered"][0],
                        fit_summary["deviance_per_cell_hand_written"][0],
                    )
                ],
            )
        )
    return literature


def true_expression(name: str, params: dict[str, float], x):
    """The hand-written law ``name`` (one of :data:`TRUE_LAWS`) with ``params`` as a sympy
    expression of the symbol ``x = 1 + delta`` (same forms as ``simulator.observe.bias``)."""
    import sympy as sp

    p = params
    if name == "neyrinck":
        return x ** p["beta"] * sp.exp(-((x / p["rho_g"]) ** -p["epsilon"]))
    if name == "power_law":
        return x ** p["alpha"]
    s = p["smoothness"]
    return x ** p["alpha_low"] * (1 + (x / p["x_break"]) ** (1 / s)) ** (
        (p["alpha_high"] - p["alpha_low"]) * s
    )
