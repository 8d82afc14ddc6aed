"""Experiment ``bias-law``: the law relating halo number density to the smoothed matter density.

Data: PM simulations (``simulator.pipeline.simulate``); friends-of-friends haloes
(``simulator.observe.halos``, linking length ``b`` times the mean interparticle separation, at least
``min_members`` particles). Particles and halo centres are painted (CIC) on an analysis mesh
and both fields are smoothed with a spherical top-hat of radius R; the halo field is in units
of its mean, ``n_h / <n_h>``, the matter field is ``rho = 1 + delta``.

The run, one stage per step:

1. Data: one simulation per training and held-out seed (``simulate_fields``), with the
   conditional mean of ``n_h / <n_h>`` in quantile bins of ``rho`` and the noise of each
   binned mean from a jackknife over sub-cubes of the box (smoothed cells are correlated,
   so the scatter within a bin would understate it); written to ``haloes.h5``.
2. Search: a law ``n_h / <n_h> (rho)`` on the bins of the training simulations with the
   chi-square likelihood of their jackknife errors (one ``sigma`` per bin), in the engine's
   default operator basis up to 15 nodes.
3. Comparison (``_compare``): on the same binned data and with the same errors, in
   description length (``discovery.fit.description_length``, the engine's criterion), and
   on the held-out simulations, with two literature laws fitted by least squares:

   - linear bias, ``n_h / <n_h> = 1 + b delta``;
   - the power law with an exponential cut-off at low density of Neyrinck et al. (2014),
     ``n_h / <n_h> = A rho^alpha exp(-(rho / rho_c)^(-epsilon))``
     (``simulator.observe.bias.neyrinck`` with an amplitude ``A``, since the law is not
     normalised to unit mean).
4. Checks (``_checks``): the law shorter than linear bias, increasing with rho, accurate on
   the held-out simulations, and the haloes biased (b > 1).
5. Result (``_result``): the law, the checks, where the data came from, seeds and the key
   numbers.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

if TYPE_CHECKING:
    from experiments.core.html_report import Check
    from experiments.core.law_search import Search
    from experiments.core.laws import Law
    from experiments.core.registry import ExperimentResult

NAME = "bias-law"
QUESTION = (
    "How does the number density of friends-of-friends haloes, n_h/<n_h>, depend on the "
    "smoothed matter density rho = 1 + delta? Is a discovered law shorter, in description "
    "length, than linear bias (1 + b delta) and than the power law with exponential cut-off "
    "of Neyrinck et al. (2014), A rho^alpha exp(-(rho/rho_c)^-epsilon)?"
)
QUICK: dict[str, Any] = {
    "mesh": 128,
    "ptcl_grid": 64,
    "box": 128.0,
    "steps": 10,
    "linking_b": 0.2,
    "min_members": 10,
    "analysis_mesh": 32,
    "radius": 8.0,
    "n_bins": 16,
    "jackknife": 2,
    "train_seeds": [0],
    "test_seeds": [1],
    # None: the engine's default basis (discovery.operators.DEFAULT_OPERATORS), and laws
    # of up to 15 nodes: a space that does not know the answer; 25 s as before.
    "operators": None,
    "max_complexity": 15,
    "budget_s": 25.0,
    "clock": "work",  # the search's budget counts work: the same law on any machine
    "criterion": "mdl",
    "backend": "auto",
    "seed": 0,
    "tolerance": 0.1,
}
FULL: dict[str, Any] = {
    **QUICK,
    "mesh": 256,
    "ptcl_grid": 128,
    "box": 256.0,
    "steps": 20,
    "analysis_mesh": 64,
    "radius": 6.0,
    "n_bins": 40,
    "jackknife": 4,
    "train_seeds": [0, 1, 2],
    "test_seeds": [3],
    "budget_s": 120.0,
    "tolerance": 0.08,
}
LATEX_NAMES = {"rho": r"\rho/\bar\rho", "n_h": r"n_h/\langle n_h\rangle"}
#: Starting point of the Neyrinck et al. (2014) fit: A, alpha, rho_c, epsilon.
_NEYRINCK_P0 = (1.0, 1.5, 0.4, 1.5)


def smoothed_density(cells: np.ndarray, n: int, radius: float, box: float) -> np.ndarray:
    """CIC density of points, in units of its mean, smoothed with a spherical top-hat.

    Args:
        cells: point positions in analysis-mesh cell units, shape ``(N, 3)`` (any image).
        n: analysis mesh cells per side; radius: top-hat radius in Mpc/h; box: box side in
            Mpc/h.

    Returns:
        The smoothed density over its mean, shape ``(n, n, n)`` (mean 1).
    """
    import jax.numpy as jnp

    from experiments.velocity_density import tophat_window
    from simulator import cic
    from simulator.fourier import k_norm

    counts = np.asarray(cic.paint(jnp.asarray(cells, jnp.float32), n), float)
    window = tophat_window(np.asarray(k_norm(n, box), float) * radius)
    return np.fft.irfftn(np.fft.rfftn(counts / counts.mean()) * window, s=(n, n, n), axes=(0, 1, 2))


def jackknife_binned_mean(
    x: np.ndarray, y: np.ndarray, n_bins: int, blocks: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Means of ``x`` and ``y`` in quantile bins of ``x``, and the jackknife error of ``y``'s.

    Args:
        x, y: fields on a mesh, shape ``(n, n, n)``.
        n_bins: number of quantile bins of ``x`` (>= 1).
        blocks: sub-cubes per side, in ``[2, n]``; the error comes from the ``blocks^3``
            delete-one means (unbiased when a sub-cube is much larger than the correlation
            length of ``y``, an underestimate otherwise).

    Returns:
        ``(x_mean, y_mean, y_err)``, each of shape ``(n_bins,)``.
    """
    n = x.shape[0]
    if x.shape != (n, n, n) or y.shape != x.shape:
        raise ValueError(f"x, y shapes {x.shape}, {y.shape}: must both be (n, n, n)")
    if not 2 <= blocks <= n:
        raise ValueError(f"blocks={blocks!r} is invalid: must be an integer in [2, {n}]")
    if n_bins < 1:
        raise ValueError(f"n_bins={n_bins!r} is invalid: must be an integer >= 1")
    edges = np.quantile(x, np.linspace(0.0, 1.0, n_bins + 1))
    bins = np.clip(np.searchsorted(edges, x.ravel(), side="right") - 1, 0, n_bins - 1)
    side = np.arange(n) * blocks // n
    block = (side[:, None, None] * blocks**2 + side[None, :, None] * blocks + side).ravel()
    flat = block * n_bins + bins
    shape = (blocks**3, n_bins)
    count = np.bincount(flat, minlength=shape[0] * shape[1]).reshape(shape)
    sum_x = np.bincount(flat, x.ravel(), shape[0] * shape[1]).reshape(shape)
    sum_y = np.bincount(flat, y.ravel(), shape[0] * shape[1]).reshape(shape)
    total = count.sum(0)
    y_mean = sum_y.sum(0) / total
    leave_out = (sum_y.sum(0) - sum_y) / np.maximum(total - count, 1)
    m = blocks**3
    y_err = np.sqrt((m - 1) / m * np.sum((leave_out - leave_out.mean(0)) ** 2, axis=0))
    return sum_x.sum(0) / total, y_mean, y_err


def simulate_fields(config: dict[str, Any], seed: int) -> dict[str, np.ndarray]:
    """One PM simulation: its FoF haloes, smoothed ``rho`` and ``n_h / <n_h>`` and their
    binned means (``rho_bin``, ``y_bin``, ``y_err``)."""
    from simulator.config import SimConfig
    from simulator.cosmology import Cosmology
    from simulator.gravity import lattice
    from simulator.observe.halos import friends_of_friends
    from simulator.pipeline import simulate

    cosmo = Cosmology.planck18()
    conf = SimConfig(
        mesh=config["mesh"],
        box=float(config["box"]),
        ptcl_grid=config["ptcl_grid"],
        steps=config["steps"],
    )
    res = simulate(cosmo, conf, seed)
    pos = np.asarray(lattice(conf) + res.state.disp, float)
    cat = friends_of_friends(
        pos, conf.box, b=float(config["linking_b"]), min_members=config["min_members"], cosmo=cosmo
    )
    if cat.members.size < 2:
        raise ValueError(
            f"seed {seed}: {cat.members.size} haloes with >= {config['min_members']} members; "
            "allowed: a box, particle grid and min_members giving at least 2"
        )
    n, radius = config["analysis_mesh"], float(config["radius"])
    scale = n / conf.box
    rho = smoothed_density(pos * scale, n, radius, conf.box)
    n_h = smoothed_density(cat.positions * scale, n, radius, conf.box)
    rho_bin, y_bin, y_err = jackknife_binned_mean(rho, n_h, config["n_bins"], config["jackknife"])
    return {
        "rho": rho,
        "n_h": n_h,
        "halo_positions": cat.positions,
        "halo_members": cat.members,
        "halo_mass": cat.mass,
        "rho_bin": rho_bin,
        "y_bin": y_bin,
        "y_err": y_err,
    }


def description_length(expr, X: np.ndarray, y: np.ndarray, sigma: np.ndarray | float) -> float:
    """The engine's description length (nats) of a law with numeric constants on data
    ``X`` ``(n, 1)``, ``y`` ``(n,)`` with standard deviations ``sigma`` ``(n,)`` (or one for
    all rows): the chi-square likelihood, and the information on each constant
    ``sum_i (d law(X_i) / d constant)^2 / sigma_i^2``, as the engine's fits compute them."""
    import sympy as sp

    from discovery.expressions import parametrize
    from discovery.fit import Noise
    from discovery.fit import description_length as engine_dl

    noise = Noise.of(np.broadcast_to(np.asarray(sigma, float), y.shape))
    w = np.ones_like(y) if noise.weights is None else noise.weights
    rho = next((s for s in expr.free_symbols if s.name == "rho"), sp.Symbol("rho"))
    template, params, values = parametrize(expr)
    law = sp.lambdify([rho, *params], template, "numpy")
    mse = float(np.mean((w * (np.broadcast_to(law(X[:, 0], *values), y.shape) - y)) ** 2))
    info = {}
    for p, v in zip(params, values, strict=True):
        grad = sp.lambdify([rho, *params], sp.diff(template, p), "numpy")(X[:, 0], *values)
        info[float(v)] = float(np.sum((w * np.broadcast_to(grad, y.shape)) ** 2))
    return engine_dl(expr, mse, len(y), noise.scale, info, log_norm=noise.log_norm)


def fit_linear_bias(rho: np.ndarray, y: np.ndarray) -> float:
    """Least-squares ``b`` of ``y = 1 + b (rho - 1)``; rho, y of shape ``(n,)``."""
    d = rho - 1.0
    return float(np.sum(d * (y - 1.0)) / np.sum(d**2))


def neyrinck_law(rho: np.ndarray, p: np.ndarray) -> np.ndarray:
    """``A rho^alpha exp(-(rho / rho_c)^(-epsilon))`` for ``p = (A, alpha, rho_c, epsilon)``."""
    amp, alpha, rho_c, eps = p
    return amp * rho**alpha * np.exp(-((rho / rho_c) ** (-eps)))


def fit_neyrinck(rho: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least-squares ``(A, alpha, rho_c, epsilon)`` of :func:`neyrinck_law`, all positive."""
    from scipy.optimize import least_squares

    sol = least_squares(
        lambda p: neyrinck_law(rho, p) - y,
        np.asarray(_NEYRINCK_P0),
        bounds=(1e-6, np.inf),
        method="trf",
        x_scale="jac",
    )
    return np.asarray(sol.x, float)


def _validate(config: dict[str, Any]) -> None:
    """Raise ``ValueError`` naming the first setting of the analysis out of its range (the
    simulation and halo-finder settings are checked by ``simulate`` and the halo finder)."""
    mesh = config["analysis_mesh"]
    rules = [
        ("analysis_mesh", isinstance(mesh, int) and mesh >= 4, "an integer >= 4"),
        ("radius", config["radius"] > 0, "> 0 (Mpc/h)"),
        ("n_bins", isinstance(config["n_bins"], int) and config["n_bins"] >= 3, "an integer >= 3"),
        ("jackknife", config["jackknife"] in range(2, mesh + 1), f"an integer in [2, {mesh}]"),
        ("train_seeds", len(config["train_seeds"]) >= 1, "a non-empty list"),
        ("test_seeds", len(config["test_seeds"]) >= 1, "a non-empty list"),
        ("tolerance", config["tolerance"] > 0, "> 0"),
    ]
    for key, ok, allowed in rules:
        if not ok:
            raise ValueError(f"{key}={config[key]!r} is invalid: must be {allowed}")


def run(config: dict[str, Any], out_dir: Path) -> ExperimentResult:
    """Run the experiment: the numbered steps of the module docstring. Returns an
    ``ExperimentResult``."""
    from experiments.core.law_search import search_with_config, train_test_bins, training_errors
    from experiments.core.stages import simulations_by_seed

    _validate(config)
    # 1. Data.
    sims = simulations_by_seed(simulate_fields, config, out_dir / "haloes.h5", NAME)
    # 2. Search on the training bins, each with its jackknife error as sigma.
    X, y, noise, X_test, y_test = train_test_bins(sims, config, "rho_bin", 0.0)
    bins = _Bins(X, y, training_errors(sims, config), noise, X_test, y_test)
    found = search_with_config(X, y, ["rho"], config, target="n_h", noise=None, sigma=bins.sigma)
    # 3. The law against linear bias and Neyrinck et al. (2014).
    law, compared = _compare(found, bins)
    # 4. Checks.
    checks, numbers = _checks(law, compared, bins, float(config["tolerance"]))
    # 5. Result, with the number of haloes of each simulation.
    haloes = {s: int(fields["halo_members"].size) for s, fields in sims.items()}
    return _result(law, checks, {**compared, **numbers}, haloes, config)


class _Bins(NamedTuple):
    """Step 2's data: training bins ``X`` ``(n, 1)`` (rho) and ``y`` ``(n,)`` (n_h/<n_h>),
    ``sigma`` ``(n,)`` (their jackknife errors) and ``noise`` (its rms), and the held-out
    ``X_test``, ``y_test``."""

    X: np.ndarray
    y: np.ndarray
    sigma: np.ndarray
    noise: float
    X_test: np.ndarray
    y_test: np.ndarray

    @property
    def grid(self) -> np.ndarray:
        """400 values of rho over the data range, training and held out, ``(400,)``."""
        lo = min(self.X.min(), self.X_test.min())
        return np.linspace(lo, max(self.X.max(), self.X_test.max()), 400)


def _compare(found: Search, bins: _Bins) -> tuple[Law, dict[str, Any]]:
    """Step 3: the report's law, held out, beside linear bias and Neyrinck et al. (2014)
    fitted by least squares to the same training bins; the numbers of the comparison
    (description lengths with the same errors, held-out rms errors, the fits) for the summary."""
    import sympy as sp

    from experiments.core.law_search import univariate
    from experiments.core.laws import Literature

    X, y, sigma, noise, X_test, y_test = bins
    r = sp.Symbol("rho")
    law_fn = univariate(found.expression, "rho")
    b1 = fit_linear_bias(X[:, 0], y)
    p = fit_neyrinck(X[:, 0], y)
    p_law = fit_neyrinck(bins.grid, law_fn(bins.grid[:, None]))
    linear_expr = 1 + sp.Float(b1, 15) * (r - 1)
    amp, alpha, rho_c, eps = (sp.Float(v, 15) for v in p)
    neyrinck_expr = amp * r**alpha * sp.exp(-((r / rho_c) ** (-eps)))
    dl = {
        "law": description_length(found.expression, X, y, sigma),
        "linear": description_length(linear_expr, X, y, sigma),
        "neyrinck": description_length(neyrinck_expr, X, y, sigma),
    }
    rms_of = {
        "law": law_fn(X_test),
        "linear": 1 + b1 * (X_test[:, 0] - 1),
        "neyrinck": neyrinck_law(X_test[:, 0], p),
    }
    rms = {k: float(np.sqrt(np.mean((v - y_test) ** 2))) for k, v in rms_of.items()}
    linear = Literature(
        "linear bias",
        "n_h/<n_h> = 1 + b delta, b fitted by least squares to the same binned data",
        linear_expr,
        lambda Xa: 1 + b1 * (Xa[:, 0] - 1),
        [
            ("description length (nats)", dl["law"], dl["linear"]),
            ("held-out rms error", rms["law"], rms["linear"]),
        ],
    )
    neyrinck = Literature(
        "Neyrinck et al. (2014)",
        "M. C. Neyrinck et al., MNRAS 441, 646 (2014), arXiv:1309.6641; fitted by least squares",
        neyrinck_expr,
        lambda Xa: neyrinck_law(Xa[:, 0], p),
        [
            ("description length (nats)", dl["law"], dl["neyrinck"]),
            ("held-out rms error", rms["law"], rms["neyrinck"]),
            *(
                (f"{name} of the form fitted to the law's curve / to the data", a, b)
                for name, a, b in zip(("alpha", "rho_c", "epsilon"), p_law[1:], p[1:], strict=True)
            ),
        ],
    )
    law = found.law(
        title="halo number density n_h/<n_h> against the top-hat smoothed matter density rho",
        target="n_h",
        variables=("rho",),
        X_test=X_test,
        y_test=y_test,
        predict=law_fn,
        literature=[linear, neyrinck],
        latex_names=LATEX_NAMES,
    )
    return law, {
        "law": str(found.expression),
        "noise": noise,
        "description_length_law": dl["law"],
        "description_length_engine": float(found.details["description_length"]),
        "description_length_linear": dl["linear"],
        "description_length_neyrinck": dl["neyrinck"],
        "linear_bias": b1,
        "neyrinck_A_alpha_rho_c_epsilon": [float(v) for v in p],
        "neyrinck_fit_to_law_A_alpha_rho_c_epsilon": [float(v) for v in p_law],
        "held_out_rms_law": rms["law"],
        "held_out_rms_linear": rms["linear"],
        "held_out_rms_neyrinck": rms["neyrinck"],
    }


def _checks(
    law: Law, compared: dict[str, Any], bins: _Bins, tolerance: float
) -> tuple[list[Check], dict[str, float]]:
    """Step 4: the law shorter than linear bias, increasing over the data range and accurate
    held out (rms below ``tolerance``), and the haloes biased (b > 1); with the numbers the
    checks rest on that step 3 did not give."""
    from experiments.core.stages import above, below

    grid = bins.grid
    min_slope = float(np.min(np.diff(law.evaluate(grid[:, None])) / np.diff(grid)))
    rms = float(np.sqrt(np.mean((law.evaluate(bins.X_test) - bins.y_test) ** 2)))
    checks = [
        below(
            "description length of the law minus that of linear bias (nats)",
            compared["description_length_law"] - compared["description_length_linear"],
            0,
        ),
        above(
            f"smallest slope d(n_h/<n_h>)/d rho over rho in [{grid[0]:.2f}, {grid[-1]:.2f}]",
            min_slope,
            0,
            "monotonically increasing",
        ),
        below(
            "held-out rms error of the binned n_h/<n_h>, in units of the mean halo density",
            rms,
            tolerance,
        ),
        above("linear bias b of the haloes (least squares)", compared["linear_bias"], 1),
    ]
    return checks, {"min_slope": min_slope, "held_out_rms": rms}


def _result(
    law: Law,
    checks: list[Check],
    summary: dict[str, Any],
    haloes: dict[int, int],
    config: dict[str, Any],
) -> ExperimentResult:
    """Step 5: the ``ExperimentResult``: the law, checks, where the data came from, seeds
    (one per simulation and the search's) and the summary with ``haloes``, the number of
    haloes of each seed's simulation."""
    from experiments.core.registry import ExperimentResult
    from experiments.core.stages import seeds_of

    seeds = [*config["train_seeds"], *config["test_seeds"]]
    n_haloes = {f"haloes_seed_{s}": haloes[s] for s in seeds}
    return ExperimentResult(
        laws=[law],
        checks=checks,
        data={
            "source": "simulator.pipeline.simulate (2LPT + FastPM), Planck 2018",
            "data file": "haloes.h5",
            "simulations": len(haloes),
            "training seeds": config["train_seeds"],
            "held-out seeds": config["test_seeds"],
            "particles": f"{config['ptcl_grid']}^3",
            "PM mesh": f"{config['mesh']}^3, box {config['box']} Mpc/h, {config['steps']} steps",
            "haloes": f"friends-of-friends, b = {config['linking_b']}, >= "
            f"{config['min_members']} particles; "
            + ", ".join(f"{v} (seed {s})" for s, v in zip(seeds, n_haloes.values(), strict=True)),
            "smoothing": f"top-hat R = {config['radius']} Mpc/h, "
            f"{config['analysis_mesh']}^3 analysis mesh",
            "samples": f"{config['n_bins']} quantile bins of rho per simulation, jackknife "
            f"errors from {config['jackknife']}^3 sub-cubes",
            "search": f"operators {config['operators'] or 'the engine default'}, up to "
            f"{config['max_complexity']} nodes, {config['budget_s']} s "
            f"of the {config['clock']} clock; chi-square with "
            "each bin's jackknife error",
        },
        seeds={f"simulation_{i}": s for i, s in enumerate(seeds)} | seeds_of(config, search="seed"),
        summary={**summary, **n_haloes},
    )
