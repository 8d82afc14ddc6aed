"""Experiment ``compressed-summary``: a learned, then distilled, summary of (Omega_m, sigma8).

Data: small simulations (2LPT at a = 1 when ``steps = 0``, else 2LPT + FastPM; Planck 2018
apart from Omega_m and sigma8) reduced to their binned power spectrum P(k) (one shell per
fundamental frequency up to the mesh Nyquist frequency, ``simulator.measure``). Each set holds
``n_sims`` simulations at the fiducial (Omega_m, sigma8) with the exact derivatives
``dP(k) / d(Omega_m, sigma8)`` by forward-mode autodiff through the simulator
(``discovery.compress.simulate_fisher_set``).

1. Fisher matrix by autodiff: ``F = J^T C^-1 J`` with ``J`` the mean derivative of the P(k)
   bins and ``C`` their covariance over the fiducial simulations (Hartlap-debiased).
2. Compressor: an IMNN (``discovery.compress.train_imnn``) maps the P(k) bins to two summaries,
   trained on one set with early stopping on a second; its Fisher matrix is measured on a third.
3. Distillation (``discovery.compress.distill``): each summary as a closed form of a few coarse
   band powers ``lnP_i`` (``coarse_log_power``), fitted on simulations with (Omega_m, sigma8)
   drawn uniformly in the fiducial values times ``1 +- spread`` and checked on held-out ones
   drawn the same way (there the summaries vary with the parameters, not only by noise).

The check: the degeneracy direction (eigenvector of the smallest eigenvalue of F, in
(Omega_m, sigma8)) of the compressed summaries and of the distilled laws against that of the
autodiff Fisher matrix of P(k).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np

NAME = "compressed-summary"
QUESTION = (
    "Which combination of (Omega_m, sigma8) does a neural compressor of the matter power "
    "spectrum learn, what closed form does its summary take in terms of band powers, and is "
    "its degeneracy direction that of the Fisher matrix computed by autodiff through the "
    "simulator?"
)
QUICK: dict[str, Any] = {
    "mesh": 32,
    "box": 128.0,
    "steps": 0,
    "omega_m": 0.3,
    "sigma8": 0.8,
    "n_sims": 150,
    "n_spread": 160,
    "spread": 0.3,
    "hidden": [],
    "learning_rate": 0.01,
    "max_steps": 400,
    "patience": 100,
    "n_bands": 3,
    "operators": "add,sub,mul",
    "max_complexity": 9,
    "budget_s": 5.0,
    "backend": "auto",
    "criterion": "best",
    "seed": 0,
}
FULL: dict[str, Any] = {
    **QUICK,
    "mesh": 64,
    "box": 256.0,
    "steps": 10,
    "n_sims": 2000,
    "n_spread": 2000,
    "hidden": [32, 32],
    "max_steps": 3000,
    "patience": 300,
    "n_bands": 4,
    "operators": "add,sub,mul,div,log,exp",
    "max_complexity": 15,
    "budget_s": 120.0,
}
PARAMETERS = ("Omega_m", "sigma8")
#: Largest angle (degrees) allowed between a summary's degeneracy direction and that of the
#: autodiff Fisher matrix of P(k); the distilled laws' relative rms error (rms of law minus
#: network over the summary's standard deviation) allowed on held-out simulations.
ANGLE_TOL_DEG = 10.0
DISTILL_TOL = 0.3


def sim_config(config: dict[str, Any]):
    """The ``SimConfig`` of the simulations (particles = mesh cells, forward-mode autodiff)."""
    from simulator.config import SimConfig

    return SimConfig(
        mesh=int(config["mesh"]),
        box=float(config["box"]),
        steps=max(int(config["steps"]), 1),
        gradient="autodiff",
    )


def power_simulator(config: dict[str, Any]):
    """The simulator ``f(theta, key) -> P(k)`` bins ``(mesh // 2,)`` in (Mpc/h)^3 at a = 1.

    ``theta = (Omega_m, sigma8)``; ``key`` a ``jax.random`` key of the white noise. With
    ``config["steps"] == 0`` the particles are displaced by 2LPT to a = 1, otherwise evolved by
    PM from ``a_start``. Differentiable in ``theta`` (forward and reverse mode).
    """
    return _simulator(int(config["mesh"]), float(config["box"]), int(config["steps"]))


@functools.cache
def _simulator(mesh: int, box: float, steps: int):
    """One function object per size, so that its compiled sets are reused."""
    from simulator.cosmology import Cosmology
    from simulator.gravity import density_contrast
    from simulator.growth import growth_table
    from simulator.ic import linear_field, white_noise
    from simulator.lpt import lpt
    from simulator.measure import power_spectrum
    from simulator.pipeline import forward

    conf = sim_config({"mesh": mesh, "box": box, "steps": steps})

    def simulate(theta, key):
        cosmo = Cosmology.planck18(Omega_m=theta[0], sigma8=theta[1])
        noise = white_noise(key, conf)
        if steps == 0:
            state = lpt(linear_field(noise, cosmo, conf), growth_table(cosmo), conf, a=1.0)
            delta = density_contrast(state.disp, conf)
        else:
            delta = forward(noise, cosmo, conf).delta
        return power_spectrum(delta, conf.box).power

    return simulate


def shells(config: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """``(k, modes)`` of the P(k) shells, each ``(mesh // 2,)``: mode-weighted mean |k| in h/Mpc
    and the number of modes (as ``simulator.measure`` bins them)."""
    import jax.numpy as jnp

    from simulator.measure import power_spectrum

    n = int(config["mesh"])
    spec = _jitted(power_spectrum)(jnp.zeros((n, n, n)), float(config["box"]))
    return np.asarray(spec.k, float), np.asarray(spec.modes, float)


def degeneracy_direction(fisher: np.ndarray) -> np.ndarray:
    """Unit eigenvector ``(2,)`` of the smallest eigenvalue of a 2x2 Fisher matrix (sign fixed
    so that its Omega_m component is positive)."""
    _, vectors = np.linalg.eigh(0.5 * (fisher + fisher.T))
    v = vectors[:, 0]
    return v if v[0] >= 0 else -v


def angle_deg(u: np.ndarray, v: np.ndarray) -> float:
    """Angle in degrees between two directions (lines, so in [0, 90])."""
    cos = abs(float(np.dot(u, v))) / (np.linalg.norm(u) * np.linalg.norm(v))
    return float(np.degrees(np.arccos(min(cos, 1.0))))


def spread_set(config: dict[str, Any], simulator, key) -> tuple[np.ndarray, np.ndarray]:
    """``n_spread`` simulations with (Omega_m, sigma8) uniform in fiducial x (1 +- spread).

    Returns ``(theta (n, 2), P(k) bins (n, mesh // 2))`` (float64 and the simulator's float32).
    """
    import jax
    import jax.numpy as jnp

    fid = jnp.array([config["omega_m"], config["sigma8"]], jnp.float32)
    k_theta, k_sim = jax.random.split(key)
    n = int(config["n_spread"])
    width = float(config["spread"])
    theta = jax.random.uniform(k_theta, (n, 2), minval=fid * (1 - width), maxval=fid * (1 + width))
    simulate = _jitted(simulator)
    keys = jax.random.split(k_sim, n)
    power = [np.asarray(simulate(t, k)) for t, k in zip(theta, keys, strict=True)]
    return np.asarray(theta, float), np.asarray(power)


@functools.cache
def _jitted(fn):
    """``jax.jit(fn)``, compiled once per function object."""
    import jax

    return jax.jit(fn)


def _predictor(candidate, symbols):
    """NumPy predict function ``(n, d) -> (n,)`` of a ``discovery`` candidate."""
    fn = candidate.numpy(symbols)
    return lambda X: np.asarray(fn(X), float)


def _front_points(front):
    from experiments.core.law_search import plain
    from experiments.core.laws import FrontPoint

    names = [s.name for s in front.variables]
    return tuple(
        FrontPoint(int(c.complexity), float(c.loss), str(plain(c.expression, names)))
        for c in front.candidates
    )


def run(config: dict[str, Any], out_dir: Path):
    """Run the experiment (see the module docstring); returns an ``ExperimentResult``."""
    import jax
    import jax.numpy as jnp

    from cosmolaw.io import atomic_h5, set_attrs
    from discovery.compress import (
        IMNNConfig,
        build_network,
        coarse_log_power,
        compressor_fisher,
        distill,
        fisher_stats,
        fit_input_scaling,
        save_network,
        simulate_fisher_set,
        summarise,
        summary_derivatives,
        train_imnn,
    )
    from experiments.core.html_report import Check
    from experiments.core.law_search import plain
    from experiments.core.laws import Law, Literature, accuracy
    from experiments.core.registry import ExperimentResult

    sim_config(config).validate()
    simulator = power_simulator(config)
    theta = jnp.array([config["omega_m"], config["sigma8"]], jnp.float32)
    n = int(config["n_sims"])
    keys = jax.random.split(jax.random.key(int(config["seed"])), 3)
    train, val, test = (simulate_fisher_set(simulator, theta, k, n, n, 50) for k in keys)

    # 1. The Fisher matrix of P(k) by autodiff through the simulator.
    f_pk = np.asarray(fisher_stats(test.fiducial, test.derivative, hartlap=True).fisher, float)

    # 2. The IMNN compressor of the P(k) bins.
    spec = {"kind": "mlp", "n_in": int(config["mesh"]) // 2, "n_out": 2,
            "hidden": list(config["hidden"])}  # fmt: skip
    model = build_network(spec, seed=int(config["seed"]))
    fit_input_scaling(model, train.fiducial)
    imnn = IMNNConfig(
        float(config["learning_rate"]), int(config["max_steps"]), int(config["patience"])
    )
    history = train_imnn(model, train, val, imnn, seed=int(config["seed"]), progress=False)
    f_net = np.asarray(compressor_fisher(model, test).fisher, float)

    # 3. Distillation on coarse band powers.
    k_shells, counts = shells(config)
    n_bands = int(config["n_bands"])
    variables = [f"lnP{i}" for i in range(n_bands)]

    def coarse(batch):
        return coarse_log_power(batch, counts, n_bands)

    theta_spread, power_spread = spread_set(
        config, simulator, jax.random.key(int(config["seed"]) + 1)
    )
    half = len(theta_spread) // 2
    x_spread = np.asarray(coarse(power_spread), float)
    t_spread = np.asarray(summarise(model, power_spread), float)
    symbolic = distill(
        x_spread[:half],
        t_spread[:half],
        variables,
        operators=config["operators"],
        max_complexity=int(config["max_complexity"]),
        budget_s=float(config["budget_s"]),
        criterion=config["criterion"],
        seed=int(config["seed"]),
        backend=config["backend"],
    )

    def law_of_data(batch):
        return symbolic(coarse(batch))

    f_sym = np.asarray(
        fisher_stats(
            law_of_data(test.fiducial), summary_derivatives(law_of_data, test), hartlap=True
        ).fisher,
        float,
    )
    x_test, t_test = x_spread[half:], t_spread[half:]
    t_sym = np.asarray(symbolic(jnp.asarray(x_test)), float)
    distill_err = np.sqrt(np.mean((t_sym - t_test) ** 2, axis=0)) / np.std(t_test, axis=0)

    directions = {
        name: degeneracy_direction(f)
        for name, f in (("pk", f_pk), ("network", f_net), ("symbolic", f_sym))
    }
    angle_net = angle_deg(directions["network"], directions["pk"])
    angle_sym = angle_deg(directions["symbolic"], directions["pk"])
    det = {name: float(np.linalg.det(f)) for name, f in (("pk", f_pk), ("network", f_net),
                                                         ("symbolic", f_sym))}  # fmt: skip

    with atomic_h5(out_dir / "summaries.h5") as h5:
        set_attrs(h5, {"experiment": NAME, **config})
        entries = {
            "test/power": (test.fiducial, "(Mpc/h)^3", "P(k) bins of the held-out simulations"),
            "test/power_derivative": (test.derivative, "(Mpc/h)^3",
                                      "dP(k)/d(Omega_m, sigma8) by autodiff, (n, 2, bins)"),
            "spread/theta": (theta_spread, "1", "(Omega_m, sigma8) of each simulation"),
            "spread/power": (power_spread, "(Mpc/h)^3", "P(k) bins (first half: distillation "
                             "training set, second half: held out)"),
            "spread/band_log_power": (x_spread, "ln (Mpc/h)^3", "coarse ln band powers lnP_i"),
            "spread/summaries": (t_spread, "1", "IMNN summaries"),
            "spread/symbolic_summaries": (t_sym, "1", "distilled laws' summaries, held out"),
            "k": (k_shells, "h/Mpc", "mode-weighted mean |k| per shell"),
            "modes": (counts, "1", "modes per shell"),
            "fisher/pk": (f_pk, "1", "Fisher matrix of P(k) by autodiff (Omega_m, sigma8)"),
            "fisher/network": (f_net, "1", "Fisher matrix of the IMNN summaries"),
            "fisher/symbolic": (f_sym, "1", "Fisher matrix of the distilled summaries"),
        }  # fmt: skip
        for name, (data, units, description) in entries.items():
            ds = h5.create_dataset(name, data=np.asarray(data))
            ds.attrs["units"] = units
            ds.attrs["description"] = description
        for name, data in history.items():
            h5.create_dataset(f"history/{name}", data=np.asarray(data))
    save_network(out_dir / "compressor.h5", model, spec, attrs={"theta_fid": np.asarray(theta)})

    laws = []
    for j, (front, cand) in enumerate(zip(symbolic.fronts, symbolic.laws, strict=True)):
        points = _front_points(front)
        expr = plain(cand.expression, variables)
        chosen = next((i for i, c in enumerate(front.candidates) if c is cand), None)
        fisher_numbers = [
            ("degeneracy angle from the Omega_m axis [deg]",
             angle_deg(directions["symbolic"], np.array([1.0, 0.0])),
             angle_deg(directions["pk"], np.array([1.0, 0.0]))),
            ("det F (distilled summaries vs P(k) by autodiff)", det["symbolic"], det["pk"]),
        ]  # fmt: skip
        laws.append(
            Law(
                title=f"IMNN summary t{j} as a law of coarse ln band powers",
                target=f"t{j}",
                variables=tuple(variables),
                expression=expr,
                X_test=x_test,
                y_test=t_test[:, j],
                predict=_predictor(cand, front.variables),
                constants={
                    f"c{i}": (float(v), float(s)) for i, (v, s) in enumerate(cand.constants)
                },
                front=points,
                chosen=chosen,
                literature=[
                    Literature(
                        "Fisher matrix of P(k) by autodiff through the simulator",
                        "F = J^T C^-1 J, J = dP(k)/dtheta by jax.jacfwd, C from fiducial sims",
                        None,
                        None,
                        fisher_numbers if j == 0 else [],
                    )
                ],
                details={
                    "backend": front.backend,
                    "complexity": int(cand.complexity),
                    "loss": float(cand.loss),
                },  # fmt: skip
            )
        )
    checks = [
        Check(
            "angle between the IMNN's and the P(k) Fisher degeneracy directions [deg]",
            angle_net,
            f"< {ANGLE_TOL_DEG}",
            angle_net < ANGLE_TOL_DEG,
        ),
        Check(
            "angle between the distilled laws' and the P(k) Fisher degeneracy directions [deg]",
            angle_sym,
            f"< {ANGLE_TOL_DEG}",
            angle_sym < ANGLE_TOL_DEG,
        ),
        Check(
            "distilled law vs network, held out: max rms / std of the summaries",
            float(np.max(distill_err)),
            f"< {DISTILL_TOL}",
            float(np.max(distill_err)) < DISTILL_TOL,
        ),
        Check(
            "det F(IMNN) / det F(P(k) by autodiff), held out",
            det["network"] / det["pk"],
            "in [0.5, 1.2] (a compression of P(k) cannot hold more, up to estimation noise)",
            0.5 <= det["network"] / det["pk"] <= 1.2,
        ),
    ]
    return ExperimentResult(
        laws=laws,
        checks=checks,
        data={
            "source": "simulator (2LPT at a = 1)"
            if int(config["steps"]) == 0
            else f"simulator.pipeline.forward (2LPT + {config['steps']} FastPM steps)",
            "data file": "summaries.h5 (and compressor.h5)",
            "simulations": f"3 sets x {n} at (Omega_m, sigma8) = ({config['omega_m']}, "
            f"{config['sigma8']}), each with exact derivatives (jax.jacfwd)",
            "sets": "training (IMNN), validation (early stopping), held out (Fisher, checks)",
            "mesh": f"{config['mesh']}^3 cells and particles, box {config['box']} Mpc/h",
            "summary": f"P(k) in {int(config['mesh']) // 2} shells; {n_bands} coarse bands",
            "held-out accuracy of the laws": ", ".join(
                f"t{j}: {accuracy(t_test[:, j], t_sym[:, j])['rmse']:.3g} rms" for j in range(2)
            ),
        },
        seeds={
            "simulations": int(config["seed"]),
            "network": int(config["seed"]),
            "search": int(config["seed"]),
        },  # fmt: skip
        summary={
            "laws": symbolic.expressions(),
            "fisher_pk": f_pk.tolist(),
            "fisher_network": f_net.tolist(),
            "fisher_symbolic": f_sym.tolist(),
            "direction_pk": directions["pk"].tolist(),
            "direction_network": directions["network"].tolist(),
            "direction_symbolic": directions["symbolic"].tolist(),
            "angle_network_deg": angle_net,
            "angle_symbolic_deg": angle_sym,
            "distill_rms_over_std": distill_err.tolist(),
            "det_ratio_network": det["network"] / det["pk"],
            "det_ratio_symbolic": det["symbolic"] / det["pk"],
            "imnn_best_step": int(history["best_step"]),
        },
    )
