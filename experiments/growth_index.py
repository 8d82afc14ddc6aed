"""Experiment ``growth-index``: rediscover f = Omega_m(a)^gamma and how gamma depends on w.

Data: the simulator's linear growth ODE (``simulator.growth``), solved in float64 for flat
matter + dark-energy universes (no radiation) with constant w, vmapped over cosmologies.
For constant w the growth rate f = dlnD/dlna is a function of Omega_m(a) and w alone, so
the table samples several Omega_m today and many scale factors in [a_min, 1].

The run, one stage per step:

1. Data (``_simulate``): f and Omega_m(a) on training grids of Omega_m today, w and a, and
   on held-out random draws, for LCDM and wCDM; written to ``growth.h5``.
2. LCDM (``_lcdm_law``): a symbolic search for f(Omega_m(a)); the chosen form's constants
   are refitted on the relative error (the accuracy a growth rate is quoted at). Known
   answer: f = Omega_m(a)^gamma with gamma ~ 0.55 to better than 0.5% (Linder 2005).
3. wCDM (``_gamma_of_w``): the LCDM form refitted at each w in [-1.3, -0.7], then a symbolic
   search for gamma(w). Literature: Linder (2005) gamma = 0.55 + 0.05 (1 + w) for w > -1 and
   0.55 + 0.02 (1 + w) below; Wang & Steinhardt (1998) gamma = 3 (1 - w) / (5 - 6 w).
4. The two combined (``_combined``), f = A Omega_m(a)^gamma(w), with A from step 2, on
   held-out wCDM cosmologies. Steps 3 and 4 run only when step 2 found a power law.
5. Checks (``_checks``): A and gamma against f = 1 in matter domination and gamma = 0.55,
   gamma(w) and its slope at w = -1, and the held-out errors of the three laws.
6. Result (``_result``): the laws, the checks, where the data came from, seeds and the key
   numbers.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

if TYPE_CHECKING:
    import sympy as sp

    from experiments.core.html_report import Check
    from experiments.core.laws import Law
    from experiments.core.registry import ExperimentResult

NAME = "growth-index"
QUESTION = (
    "What closed form gives the linear growth rate f = dlnD/dlna as a function of the "
    "matter density Omega_m(a) in LCDM, and how does it change with a constant dark-energy "
    "equation of state w in [-1.3, -0.7]? (Known answer: f = Omega_m(a)^gamma, gamma ~ 0.55, "
    "Linder 2005.)"
)
_SEARCH = {
    # None: the engine's default basis (discovery.operators.DEFAULT_OPERATORS), and laws
    # of up to 15 nodes: a space that does not know the answer.
    "operators": None,
    "max_complexity": 15,
    "backend": "auto",
    "criterion": "mdl",
    "seed": 0,
    # Accuracy asked of the laws (the standard deviation of the chi-square; the ODE's
    # output has no statistical error): the growth rate to 0.2% rms (0.5% at worst), the
    # growth index to 5e-4.
    "noise_f": 2e-3,
    "noise_gamma": 5e-4,
}
QUICK: dict[str, Any] = {
    "omega_m0": [0.30, 0.3111, 0.32],
    "a_min": 0.1,
    "n_a": 40,
    "w_min": -1.3,
    "w_max": -0.7,
    "n_w": 9,
    "n_held_out": 300,
    "budget_s": 15.0,
    "clock": "work",  # the search's budget counts work: the same law on any machine
    **_SEARCH,
}
FULL: dict[str, Any] = {
    **QUICK,
    "omega_m0": [0.30, 0.305, 0.3111, 0.315, 0.32],
    "n_a": 200,
    "n_w": 61,
    "n_held_out": 3000,
    "budget_s": 300.0,
}

#: LaTeX names of the variables in the report.
LATEX_NAMES = {"Omega_m_a": r"\Omega_m(a)", "f": "f", "gamma": r"\gamma", "w": "w"}


def growth_rates(
    omega_m0: np.ndarray, w: np.ndarray, a: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Omega_m(a) and f(a) from the growth ODE, in float64, for flat w-CDM without radiation.

    Args:
        omega_m0: matter density today of each cosmology, shape ``(m,)``.
        w: constant dark-energy equation of state of each cosmology, shape ``(m,)``.
        a: scale factors, shape ``(m, k)`` (one row per cosmology).

    Returns:
        ``(omega_m_a, f)``, each of shape ``(m, k)``.
    """
    import jax
    import jax.numpy as jnp

    from simulator.cosmology import Cosmology, omega_m_a
    from simulator.growth import growth_at, growth_table

    def one(om0, w0, a_row):
        cosmo = Cosmology(Omega_m=om0, w0=w0, radiation=False)
        return omega_m_a(a_row, cosmo), growth_at(growth_table(cosmo), a_row).f1

    with jax.enable_x64(True):
        om, f = jax.jit(jax.vmap(one))(
            jnp.asarray(omega_m0, jnp.float64), jnp.asarray(w, jnp.float64), jnp.asarray(a)
        )
        return np.asarray(om), np.asarray(f)


def _table(omega_m0: np.ndarray, w: np.ndarray, a: np.ndarray) -> dict[str, np.ndarray]:
    """Flat table (one row per cosmology and scale factor) of a, Omega_m0, w, Omega_m(a), f."""
    om, f = growth_rates(omega_m0, w, a)
    m, k = a.shape
    return {
        "a": a.ravel(),
        "omega_m0": np.repeat(omega_m0, k),
        "w": np.repeat(w, k),
        "omega_m_a": om.ravel(),
        "f": f.ravel(),
        "cosmology": np.repeat(np.arange(m), k),
    }


def make_data(config: dict[str, Any], rng: np.random.Generator) -> dict[str, dict[str, np.ndarray]]:
    """Training grids and held-out random draws for LCDM and wCDM (see the module docstring)."""
    om_grid = np.asarray(config["omega_m0"], float)
    a_grid = np.geomspace(config["a_min"], 1.0, config["n_a"])
    w_grid = np.linspace(config["w_min"], config["w_max"], config["n_w"])
    om_lo, om_hi = float(om_grid.min()), float(om_grid.max())
    n_test = config["n_held_out"]

    def random_a(m: int) -> np.ndarray:
        return np.exp(rng.uniform(np.log(config["a_min"]), 0.0, (m, 1)))

    lcdm = _table(om_grid, -np.ones_like(om_grid), np.tile(a_grid, (len(om_grid), 1)))
    om_w, w_w = np.meshgrid(om_grid, w_grid, indexing="ij")
    wcdm = _table(om_w.ravel(), w_w.ravel(), np.tile(a_grid, (om_w.size, 1)))
    lcdm_test = _table(rng.uniform(om_lo, om_hi, n_test), -np.ones(n_test), random_a(n_test))
    # Held-out w-CDM: fresh w values on the training grid of Omega_m0 and a, so that gamma
    # refitted at each of them is comparable with the training values.
    w_test = rng.uniform(config["w_min"], config["w_max"], max(n_test // om_w.size, 8))
    om_t, w_t = np.meshgrid(om_grid, w_test, indexing="ij")
    wcdm_test = _table(om_t.ravel(), w_t.ravel(), np.tile(a_grid, (om_t.size, 1)))
    return {"lcdm": lcdm, "wcdm": wcdm, "lcdm_test": lcdm_test, "wcdm_test": wcdm_test}


def power_law(fit, x) -> tuple[float, float, float] | None:
    """``(A, gamma, sigma_gamma)`` when a refitted law is ``A * x**gamma``, else None."""
    import sympy as sp

    amp, exp = sp.Wild("A", exclude=[x]), sp.Wild("g", exclude=[x])
    match = fit.template.match(amp * x**exp)
    if not match or match[exp] not in fit.names or match[amp].free_symbols - set(fit.names):
        return None
    values = dict(zip(fit.names, fit.values, strict=True))
    sigmas = dict(zip(fit.names, fit.sigmas, strict=True))
    a_value = float(match[amp].xreplace(values))
    return a_value, float(values[match[exp]]), float(sigmas[match[exp]])


def _per_w_gamma(law, table: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Refit the LCDM power law at each distinct w of ``table``: ``(w, gamma)``."""
    import sympy as sp

    from experiments.core.refit import refit

    x = sp.Symbol("Omega_m_a")
    ws = np.unique(table["w"])
    gammas = []
    for w in ws:
        rows = table["w"] == w
        fit = refit(law, [x], table["omega_m_a"][rows, None], table["f"][rows], prefix="gamma")
        gammas.append(power_law(fit, x)[1])
    return ws, np.array(gammas)


def run(config: dict[str, Any], out_dir: Path) -> ExperimentResult:
    """Run the experiment: the numbered steps of the module docstring. Returns an
    ``ExperimentResult``."""
    from experiments.core.stages import seeds_of

    seeds = seeds_of(config, data="seed", search="seed")
    # 1. Data.
    data = _simulate(config, seeds["data"], out_dir)
    # 2. LCDM: f(Omega_m(a)).
    lcdm = _lcdm_law(data, config)
    # 3. and 4. wCDM, with the power-law form found in LCDM.
    gamma_w = combined = None
    if lcdm.gamma is not None:
        gamma_w = _gamma_of_w(lcdm, data, config)
        combined = _combined(lcdm, gamma_w, data)
    # 5. Checks.
    checks, summary = _checks(lcdm, gamma_w, combined)
    # 6. Result.
    laws = [law for law in (lcdm.law, gamma_w, combined) if law is not None]
    return _result(laws, checks, summary, data, config, seeds)


#: Description of each column of the tables in ``growth.h5`` (all dimensionless).
_COLUMNS = {
    "a": "scale factor",
    "omega_m0": "matter density today",
    "w": "constant dark-energy equation of state",
    "omega_m_a": "matter density parameter at a",
    "f": "linear growth rate dlnD1/dlna from simulator.growth",
    "cosmology": "index of the cosmology of the row",
}


def _simulate(config: dict[str, Any], seed: int, out_dir: Path) -> dict[str, dict[str, np.ndarray]]:
    """Step 1: the tables of ``make_data`` (draws from ``seed``), written to ``growth.h5``
    as one HDF5 group per table and one dataset per column."""
    from experiments.core.stages import Dataset, write_data_file

    data = make_data(config, np.random.default_rng(seed))
    datasets = {
        f"{group}/{column}": Dataset(values, "", _COLUMNS[column])
        for group, table in data.items()
        for column, values in table.items()
    }
    write_data_file(out_dir / "growth.h5", NAME, config, datasets)
    return data


class _Lcdm(NamedTuple):
    """Step 2: the LCDM law and its reading as ``f = A Omega_m(a)^gamma``.

    Attributes:
        law: the report's law, its constants refitted on the relative error.
        form: the refitted expression of ``Omega_m_a``.
        amplitude: A; gamma and gamma_sigma: the exponent and its one-sigma uncertainty
            (NaN, None and NaN when the form is not a power law).
    """

    law: Law
    form: sp.Expr
    amplitude: float
    gamma: float | None
    gamma_sigma: float


def _lcdm_law(data: dict[str, dict[str, np.ndarray]], config: dict[str, Any]) -> _Lcdm:
    """Step 2: search f(Omega_m(a)) on the LCDM grid, refit the chosen form on the relative
    error and read it as a power law; held out on the LCDM draws."""
    import sympy as sp

    from experiments.core.law_search import search_with_config
    from experiments.core.laws import Literature
    from experiments.core.refit import refit

    x = sp.Symbol("Omega_m_a")
    lcdm, test = data["lcdm"], data["lcdm_test"]
    X = lcdm["omega_m_a"][:, None]
    found = search_with_config(
        X, lcdm["f"], ["Omega_m_a"], config, target="f", noise=config["noise_f"]
    )
    fit = refit(found.expression, [x], X, lcdm["f"], prefix="gamma")
    amplitude, gamma, gamma_sigma = power_law(fit, x) or (np.nan, None, np.nan)
    measured = gamma if gamma is not None else np.nan
    literature = [
        Literature(
            "Linder (2005)",
            _LINDER,
            x**0.55,
            lambda X: X[:, 0] ** 0.55,
            [("gamma", measured, 0.55)],
        ),
        Literature(
            "Wang & Steinhardt (1998)",
            _WANG_STEINHARDT,
            x ** sp.Rational(6, 11),
            lambda X: X[:, 0] ** (6 / 11),
            [("gamma", measured, 6 / 11)],
        ),
    ]
    law = found.law(
        title="LCDM: growth rate f against Omega_m(a)",
        target="f",
        variables=("Omega_m_a",),
        expression=fit.expression,
        X_test=test["omega_m_a"][:, None],
        y_test=test["f"],
        constants={
            str(n): (v, s) for n, v, s in zip(fit.names, fit.values, fit.sigmas, strict=True)
        },
        literature=literature,
        template=fit.template,
        latex_names=LATEX_NAMES,
        details={
            **found.details,
            "search_expression": str(found.expression),
            "refit": "non-integer constants refitted on the relative error",
        },
    )
    return _Lcdm(law, fit.expression, amplitude, gamma, gamma_sigma)


def _gamma_of_w(lcdm: _Lcdm, data: dict[str, dict[str, np.ndarray]], config: dict[str, Any]) -> Law:
    """Step 3: gamma of the LCDM form refitted at each training w, searched as a law of w
    and held out on the w of the held-out draws."""
    import sympy as sp

    from experiments.core.law_search import search_with_config

    w_train, g_train = _per_w_gamma(lcdm.form, data["wcdm"])
    w_test, g_test = _per_w_gamma(lcdm.form, data["wcdm_test"])
    found = search_with_config(
        w_train[:, None], g_train, ["w"], config, target="gamma", noise=config["noise_gamma"]
    )
    return _gamma_of_w_law(found, w_test, g_test, sp.Symbol("w"))


def _combined(lcdm: _Lcdm, gamma_w: Law, data: dict[str, dict[str, np.ndarray]]) -> Law:
    """Step 4: ``f = A Omega_m(a)^gamma(w)`` with A of step 2 and gamma(w) of step 3, held
    out on the held-out wCDM draws."""
    import sympy as sp

    from experiments.core.laws import Law

    x, w = sp.Symbol("Omega_m_a"), sp.Symbol("w")
    amplitude = 1 if lcdm.amplitude == 1.0 else sp.Float(lcdm.amplitude, 8)
    test = data["wcdm_test"]
    return Law(
        title="wCDM: f = A Omega_m(a)^gamma(w), the two laws combined",
        target="f",
        variables=("Omega_m_a", "w"),
        expression=amplitude * x**gamma_w.expression,
        X_test=np.column_stack([test["omega_m_a"], test["w"]]),
        y_test=test["f"],
        literature=_literature_w(x, w, {"linder": [], "wang": []}),
        latex_names=LATEX_NAMES,
    )


def _checks(
    lcdm: _Lcdm, gamma_w: Law | None, combined: Law | None
) -> tuple[list[Check], dict[str, Any]]:
    """Step 5: the checks and the numbers they rest on (the run's summary); those of the
    wCDM laws only when steps 3 and 4 ran."""
    import sympy as sp

    from experiments.core.stages import below, between, within

    lcdm_err = _max_rel_error(lcdm.law)
    checks = [
        within(
            "amplitude A of f = A Omega_m(a)^gamma (LCDM)",
            lcdm.amplitude,
            1,
            0.005,
            "f = 1 in matter domination",
        ),
        within("gamma (LCDM)", lcdm.gamma if lcdm.gamma is not None else np.nan, 0.55, 0.01),
        below("max |relative error| of f (LCDM, held out)", lcdm_err, 0.005),
    ]
    summary: dict[str, Any] = {
        "amplitude_lcdm": lcdm.amplitude,
        "gamma_lcdm": lcdm.gamma,
        "gamma_lcdm_sigma": lcdm.gamma_sigma,
    }
    if gamma_w is None or combined is None:
        return checks, summary
    w = sp.Symbol("w")
    g_m1 = float(gamma_w.expression.subs(w, -1.0))
    slope = float(sp.diff(gamma_w.expression, w).subs(w, -1.0))
    g_err = float(np.max(np.abs(gamma_w.evaluate(gamma_w.X_test) - gamma_w.y_test)))
    w_err = _max_rel_error(combined)
    checks += [
        within("gamma(w=-1) from the w law", g_m1, 0.55, 0.01),
        between("dgamma/dw at w=-1", slope, 0.02, 0.05, "Wang-Steinhardt 0.025 .. Linder 0.05"),
        below("max |gamma(w) error| (held-out w)", g_err, 0.001),
        below("max |relative error| of f (wCDM, held out)", w_err, 0.01),
    ]
    summary.update(
        {
            "gamma_of_w": str(gamma_w.expression),
            "gamma_at_w_minus_1": g_m1,
            "dgamma_dw_at_w_minus_1": slope,
            "max_rel_error_lcdm": lcdm_err,
            "max_rel_error_wcdm": w_err,
        }
    )
    return checks, summary


def _max_rel_error(law: Law) -> float:
    """The largest |relative error| of a law on its held-out data."""
    return float(np.max(np.abs(law.evaluate(law.X_test) / law.y_test - 1.0)))


def _result(
    laws: list[Law],
    checks: list[Check],
    summary: dict[str, Any],
    data: dict[str, dict[str, np.ndarray]],
    config: dict[str, Any],
    seeds: dict[str, int],
) -> ExperimentResult:
    """Step 6: the ``ExperimentResult``: laws, checks, where the data came from, seeds and
    the summary."""
    from experiments.core.registry import ExperimentResult

    rows = {name: len(table["f"]) for name, table in data.items()}
    return ExperimentResult(
        laws=laws,
        checks=checks,
        data={
            "source": "simulator.growth ODE (RK4, float64), flat w-CDM without radiation",
            "data file": "growth.h5",
            "cosmologies": int(sum(len(np.unique(t["cosmology"])) for t in data.values())),
            "training rows (LCDM, wCDM)": f"{rows['lcdm']}, {rows['wcdm']}",
            "held-out rows (LCDM, wCDM)": f"{rows['lcdm_test']}, {rows['wcdm_test']}",
            "Omega_m today": config["omega_m0"],
            "a range": f"[{config['a_min']}, 1]",
            "w range": f"[{config['w_min']}, {config['w_max']}]",
            "seed": seeds["data"],
            "search": f"operators {config['operators'] or 'the engine default'}, up to "
            f"{config['max_complexity']} nodes, {config['budget_s']} s "
            f"of the {config['clock']} clock per law; sigma = the "
            f"accuracy asked ({config['noise_f']} for f, {config['noise_gamma']} for gamma): "
            "the ODE's output has no statistical error",
        },
        seeds=seeds,
        summary=summary,
    )


_LINDER = "E. V. Linder, Phys. Rev. D 72, 043529 (2005), astro-ph/0507263"
_WANG_STEINHARDT = "L. Wang, P. J. Steinhardt, ApJ 508, 483 (1998), astro-ph/9804015"


def _linder_gamma(w: np.ndarray) -> np.ndarray:
    return 0.55 + np.where(w >= -1.0, 0.05, 0.02) * (1.0 + w)


def _ws_gamma(w: np.ndarray) -> np.ndarray:
    return 3.0 * (1.0 - w) / (5.0 - 6.0 * w)


def _literature_w(x, w, numbers: dict[str, list]) -> list:
    """Linder's and Wang & Steinhardt's gamma(w): laws of ``w`` alone when ``x`` is None,
    else of ``(Omega_m_a, w)`` as ``f = Omega_m(a)^gamma(w)``; ``numbers`` by law name."""
    import sympy as sp

    from experiments.core.laws import Literature

    linder = sp.Piecewise((0.55 + 0.05 * (1 + w), w >= -1), (0.55 + 0.02 * (1 + w), True))
    wang = 3 * (1 - w) / (5 - 6 * w)
    if x is None:
        return [
            Literature(
                "Linder (2005)",
                _LINDER,
                linder,
                lambda X: _linder_gamma(X[:, 0]),
                numbers["linder"],
            ),
            Literature(
                "Wang & Steinhardt (1998)",
                _WANG_STEINHARDT,
                wang,
                lambda X: _ws_gamma(X[:, 0]),
                numbers["wang"],
            ),
        ]
    return [
        Literature(
            "Linder (2005)",
            _LINDER,
            x**linder,
            lambda X: X[:, 0] ** _linder_gamma(X[:, 1]),
            numbers["linder"],
        ),
        Literature(
            "Wang & Steinhardt (1998)",
            _WANG_STEINHARDT,
            x**wang,
            lambda X: X[:, 0] ** _ws_gamma(X[:, 1]),
            numbers["wang"],
        ),
    ]


def _gamma_of_w_law(found, w_test: np.ndarray, g_test: np.ndarray, w):
    """The searched gamma(w) law with literature numbers (value at w = -1, slopes)."""
    import sympy as sp

    expr = found.expression
    g = sp.lambdify(w, expr, "numpy")
    numbers = {
        "linder": [
            ("gamma(w=-1)", float(g(-1.0)), 0.55),
            ("mean dgamma/dw on [-1, -0.7]", float((g(-0.7) - g(-1.0)) / 0.3), 0.05),
            ("mean dgamma/dw on [-1.3, -1]", float((g(-1.0) - g(-1.3)) / 0.3), 0.02),
        ],
        "wang": [
            ("gamma(w=-1)", float(g(-1.0)), 6 / 11),
            ("dgamma/dw at w=-1", float(sp.diff(expr, w).subs(w, -1.0)), 3 / 121),
        ],
    }
    return found.law(
        title="wCDM: growth index gamma(w) of the LCDM form refitted at each w",
        target="gamma",
        variables=("w",),
        expression=expr,
        X_test=w_test[:, None],
        y_test=g_test,
        literature=_literature_w(None, w, numbers),
        latex_names=LATEX_NAMES,
    )
