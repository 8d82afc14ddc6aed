"""Experiment ``velocity-density``: the nonlinear relation between velocity divergence and density.

Data: PM simulations (``simulator.pipeline.simulate``). The particles' velocities
``vel = dx/dlna`` are painted with CIC as momentum and divided by the painted mass; the
velocity field is volume-weighted (each cell's mean velocity, from a one-cell Gaussian
smoothing where a cell holds too little mass). Density and velocity are smoothed with a
spherical top-hat of radius R and the scaled divergence ``-theta / f = -div(vel) / f`` is
taken spectrally; in linear theory ``-theta / f = delta``.

The law is searched on the conditional mean of ``-theta / f`` in quantile bins of the
smoothed density ``rho = 1 + delta`` (in units of the mean) of one simulation and checked
on a simulation with another seed.
Reference: Bernardeau (1992), ``-theta / f = (3/2) [(1 + delta)^(2/3) - 1]`` for top-hat
smoothing in the quasi-linear regime.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

NAME = "velocity-density"
QUESTION = (
    "How does the smoothed velocity divergence theta depend on the smoothed density contrast "
    "delta beyond linear theory (-theta/f = delta)? Reference: Bernardeau (1992), "
    "-theta/f = 1.5 [(1 + delta)^(2/3) - 1]."
)
QUICK: dict[str, Any] = {
    "mesh": 64,
    "ptcl_grid": 32,
    "box": 200.0,
    "steps": 10,
    "analysis_mesh": 32,
    "radius": 10.0,
    "n_bins": 40,
    "train_seeds": [0],
    "test_seeds": [1],
    "operators": "add,sub,mul,div,pow",
    "max_complexity": 5,
    "budget_s": 120.0,
    "criterion": "mdl",
    "backend": "exhaustive",
    "seed": 0,
}
FULL: dict[str, Any] = {
    **QUICK,
    "mesh": 256,
    "ptcl_grid": 128,
    "box": 500.0,
    "steps": 20,
    "analysis_mesh": 128,
    "radius": 8.0,
    "n_bins": 80,
    "train_seeds": [0, 1, 2, 3],
    "test_seeds": [4, 5],
    "operators": "add,sub,mul,div,pow,exp,log,sqrt",
    "backend": "auto",
    "max_complexity": 15,
    "budget_s": 300.0,
}
LATEX_NAMES = {"rho": r"\rho/\bar\rho", "minus_theta_over_f": r"-\theta/f"}


def _smooth(field: np.ndarray, window: np.ndarray) -> np.ndarray:
    n = field.shape[0]
    return np.fft.irfftn(np.fft.rfftn(field) * window, s=(n, n, n), axes=(0, 1, 2))


def tophat_window(kr: np.ndarray) -> np.ndarray:
    """Fourier transform of a unit-volume spherical top-hat, ``3 (sin x - x cos x) / x^3``."""
    x = np.where(kr > 1e-4, kr, 1e-4)
    return np.where(kr > 1e-4, 3.0 * (np.sin(x) - x * np.cos(x)) / x**3, 1.0 - kr**2 / 10.0)


def smoothed_fields(
    pos: np.ndarray, vel: np.ndarray, box: float, n: int, radius: float
) -> tuple[np.ndarray, np.ndarray]:
    """Top-hat smoothed density contrast and velocity divergence of particles.

    Args:
        pos: particle positions in Mpc/h, ``(N, 3)`` (any periodic image).
        vel: particle velocities ``dx/dlna`` in Mpc/h, ``(N, 3)``.
        box: box side in Mpc/h; n: analysis mesh cells per side; radius: top-hat radius in
            Mpc/h.

    Returns:
        ``(delta, theta)``, each ``(n, n, n)``; ``theta = div(vel)`` (dimensionless) of the
        volume-weighted velocity field.
    """
    import jax.numpy as jnp

    from simulator import cic
    from simulator.fourier import wavenumbers

    cells = jnp.asarray(pos * (n / box))
    mass = np.asarray(cic.paint(cells, n)) * (n**3 / pos.shape[0])
    mom = np.asarray(cic.paint(cells, n, jnp.asarray(vel))) * (n**3 / pos.shape[0])
    kx, ky, kz = (np.asarray(k, float) for k in wavenumbers(n, box))
    k = np.sqrt(kx**2 + ky**2 + kz**2)
    cell = np.exp(-0.5 * (k * box / n) ** 2)
    fallback = np.stack([_smooth(mom[..., i], cell) for i in range(3)], -1)
    fallback /= np.maximum(_smooth(mass, cell), 1e-6)[..., None]
    filled = mass > 0.2
    u = np.where(filled[..., None], mom / np.where(filled, mass, 1.0)[..., None], fallback)
    window = tophat_window(k * radius)
    delta = _smooth(mass, window) - 1.0
    div_k = sum(1j * g * np.fft.rfftn(u[..., i]) * window for i, g in enumerate((kx, ky, kz)))
    theta = np.fft.irfftn(div_k, s=(n, n, n), axes=(0, 1, 2))
    return delta, theta


def binned_mean(
    x: np.ndarray, y: np.ndarray, n_bins: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean of ``x`` and of ``y`` in ``n_bins`` quantile bins of ``x``, with the standard error
    of the mean of ``y``; each of shape ``(n_bins,)``."""
    x, y = np.ravel(x), np.ravel(y)
    edges = np.quantile(x, np.linspace(0.0, 1.0, n_bins + 1))
    idx = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, n_bins - 1)
    count = np.bincount(idx, minlength=n_bins)
    xm = np.bincount(idx, x, n_bins) / count
    ym = np.bincount(idx, y, n_bins) / count
    var = np.bincount(idx, y**2, n_bins) / count - ym**2
    return xm, ym, np.sqrt(np.maximum(var, 0.0) / count)


def simulate_fields(config: dict[str, Any], seed: int) -> dict[str, np.ndarray]:
    """Run one PM simulation; return smoothed delta, -theta/f and their binned means."""
    from simulator.config import SimConfig
    from simulator.cosmology import Cosmology
    from simulator.gravity import lattice
    from simulator.growth import growth_at, growth_table
    from simulator.pipeline import simulate

    cosmo = Cosmology.planck18()
    conf = SimConfig(
        mesh=config["mesh"],
        box=float(config["box"]),
        ptcl_grid=config["ptcl_grid"],
        steps=config["steps"],
    )
    res = simulate(cosmo, conf, seed)
    # Half an analysis cell off the particle lattice: CIC weights of lattice-aligned particles
    # are then linear in their displacements (no one-sided differences).
    pos = (
        np.asarray(lattice(conf) + res.state.disp, float) + 0.5 * conf.box / config["analysis_mesh"]
    )
    f = float(growth_at(growth_table(cosmo), float(res.state.a)).f1)
    delta, theta = smoothed_fields(
        pos, np.asarray(res.state.vel, float), conf.box, config["analysis_mesh"], config["radius"]
    )
    y = -theta / f
    dm, ym, err = binned_mean(delta, y, config["n_bins"])
    return {
        "delta": delta,
        "minus_theta_over_f": y,
        "delta_bin": dm,
        "y_bin": ym,
        "y_err": err,
        "f": f,
    }


def _bernardeau(X: np.ndarray) -> np.ndarray:
    """Bernardeau (1992) as a function of ``X[:, 0] = rho = 1 + delta``."""
    return 1.5 * (X[:, 0] ** (2.0 / 3.0) - 1.0)


def _power_family_exponent(predict, rho: np.ndarray) -> tuple[float, float]:
    """Fit alpha (rho^beta - 1) to a law's curve on ``rho``: ``(alpha, beta)`` (NaN when the
    fit does not converge)."""
    from scipy.optimize import curve_fit

    curve = predict(rho[:, None])
    try:
        (alpha, beta), _ = curve_fit(lambda r, a, b: a * (r**b - 1), rho, curve, p0=[1.5, 0.6])
    except (RuntimeError, ValueError):
        return float("nan"), float("nan")
    return float(alpha), float(beta)


def _derivative_at(expr, symbol, order: int, value: float) -> float:
    """``d^order expr / d symbol^order`` at ``value`` as a float (NaN when not real)."""
    import sympy as sp

    result = complex(sp.diff(expr, symbol, order).subs(symbol, value).evalf())
    return result.real if result.imag == 0 else float("nan")


def run(config: dict[str, Any], out_dir: Path):
    """Run the experiment (see the module docstring); returns an ``ExperimentResult``."""
    import sympy as sp

    from cosmolaw.io import write_groups
    from experiments.core.html_report import Check
    from experiments.core.law_search import search_with_config, train_test_bins, univariate
    from experiments.core.laws import Literature, accuracy
    from experiments.core.registry import ExperimentResult

    sims = {s: simulate_fields(config, s) for s in [*config["train_seeds"], *config["test_seeds"]]}
    groups = {f"seed_{s}": fields for s, fields in sims.items()}
    write_groups(out_dir / "fields.h5", {"experiment": NAME, **config}, groups)
    # noise: the accuracy asked of a law, the rms error of the binned means
    X, y, noise, X_test, y_test = train_test_bins(sims, config, "delta_bin", 1.0)

    found = search_with_config(X, y, ["rho"], config, target="minus_theta_over_f", noise=noise)
    d = sp.Symbol("rho")
    law_fn = univariate(found.expression, "rho")

    grid = np.linspace(float(X_test.min()), float(X_test.max()), 200)
    alpha, beta = _power_family_exponent(law_fn, grid)
    slope = _derivative_at(found.expression, d, 1, 1.0)
    curvature = _derivative_at(found.expression, d, 2, 1.0)
    bernardeau = Literature(
        "Bernardeau (1992)",
        "F. Bernardeau, ApJ 390, L61 (1992)",
        sp.Rational(3, 2) * (d ** sp.Rational(2, 3) - 1),
        _bernardeau,
        [
            ("exponent beta of alpha (rho^beta - 1) fitted to the law", beta, 2 / 3),
            ("amplitude alpha of that fit", alpha, 1.5),
            ("slope d(-theta/f)/d delta at delta = 0", slope, 1.0),
            ("curvature at delta = 0", curvature, -1 / 3),
        ],
    )
    linear = Literature("linear theory", "-theta/f = delta", d - 1, lambda Xa: Xa[:, 0] - 1)
    law = found.law(
        title="-theta/f against the top-hat smoothed density rho = 1 + delta",
        target="minus_theta_over_f",
        variables=("rho",),
        X_test=X_test,
        y_test=y_test,
        predict=law_fn,
        literature=[bernardeau, linear],
        latex_names=LATEX_NAMES,
    )
    mse_law = accuracy(y_test, law_fn(X_test))["rmse"] ** 2
    mse_lin = accuracy(y_test, X_test[:, 0] - 1)["rmse"] ** 2
    mse_ber = accuracy(y_test, _bernardeau(X_test))["rmse"] ** 2
    checks = [
        Check(
            "MSE(law) / MSE(linear theory), held out",
            mse_law / mse_lin,
            "< 0.3",
            mse_law < 0.3 * mse_lin,
        ),
        Check(
            "curvature of the law at delta = 0", curvature, "< 0 (Bernardeau: -1/3)", curvature < 0
        ),
        Check(
            "exponent beta of the law's alpha (rho^beta - 1) fit",
            beta,
            "2/3 +- 0.15 (Bernardeau 1992)",
            abs(beta - 2 / 3) <= 0.15,
        ),
        Check(
            "MSE(Bernardeau) / MSE(linear), held out", mse_ber / mse_lin, "< 1", mse_ber < mse_lin
        ),
    ]
    n_cells = config["analysis_mesh"] ** 3
    return ExperimentResult(
        laws=[law],
        checks=checks,
        data={
            "source": "simulator.pipeline.simulate (2LPT + FastPM), Planck 2018",
            "data file": "fields.h5",
            "simulations": len(sims),
            "training seeds": config["train_seeds"],
            "held-out seeds": config["test_seeds"],
            "particles": f"{config['ptcl_grid']}^3",
            "PM mesh": f"{config['mesh']}^3, box {config['box']} Mpc/h, {config['steps']} steps",
            "smoothing": f"top-hat R = {config['radius']} Mpc/h, "
            f"{config['analysis_mesh']}^3 analysis mesh",
            "samples": f"{n_cells} cells per simulation, {config['n_bins']} quantile bins",
        },
        seeds={f"simulation_{i}": s for i, s in enumerate(sims)} | {"search": int(config["seed"])},
        summary={
            "law": str(found.expression),
            "alpha": alpha,
            "beta": beta,
            "slope_at_0": slope,
            "curvature_at_0": curvature,
            "mse_law": mse_law,
            "mse_linear": mse_lin,
            "mse_bernardeau": mse_ber,
            "f": sims[config["train_seeds"][0]]["f"],
        },
    )
