"""Experiment ``compressed-summary``: a learned, then distilled, summary of (Omega_m, sigma8).

Data: small simulations (2LPT at a = 1 when ``steps = 0``, else 2LPT + FastPM; Planck 2018
apart from Omega_m and sigma8) reduced to their binned power spectrum P(k) (one shell per
fundamental frequency up to the mesh Nyquist frequency, ``simulator.measure``).

The run, one stage per step:

1. Data (``_simulate``): three sets of ``n_sims`` simulations at the fiducial
   (Omega_m, sigma8), each with the exact derivatives ``dP(k) / d(Omega_m, sigma8)`` by
   forward-mode autodiff through the simulator (``discovery.compress.simulate_fisher_set``):
   training, validation and held out.
2. Fisher matrix by autodiff: ``F = J^T C^-1 J`` with ``J`` the mean derivative of the P(k)
   bins and ``C`` their covariance over the held-out simulations (Hartlap-debiased).
3. Compressor (``_compress``): an IMNN (``discovery.compress.train_imnn``) maps the P(k)
   bins to two summaries, trained on the training set with early stopping on the validation
   set; its Fisher matrix is measured on the held-out set.
4. Distillation (``_distill``, ``discovery.compress.distill``): each summary as a closed
   form of a few coarse band powers ``lnP_i`` (``coarse_log_power``), fitted on simulations
   with (Omega_m, sigma8) drawn uniformly in the fiducial values times ``1 +- spread`` and
   checked on held-out ones drawn the same way (there the summaries vary with the
   parameters, not only by noise); the Fisher matrix of the laws' summaries on the held-out
   set.
5. Checks (``_checks``): the degeneracy direction (eigenvector of the smallest eigenvalue of
   F, in (Omega_m, sigma8)) of the compressed summaries and of the distilled laws against
   that of the autodiff Fisher matrix of P(k); the laws against the network held out; the
   IMNN's det F against that of P(k).
6. Files and result (``_write_data``, ``_laws``, ``_result``): ``summaries.h5`` and
   ``compressor.h5``, one law per summary, the checks and the key numbers.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

if TYPE_CHECKING:
    from experiments.core.html_report import Check
    from experiments.core.laws import Law
    from experiments.core.registry import ExperimentResult

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
    # None: the engine's default basis (discovery.operators.DEFAULT_OPERATORS), and laws
    # of up to 15 nodes: a space that does not know the answer.
    "operators": None,
    "max_complexity": 15,
    "budget_s": 5.0,
    "clock": "work",  # the search's budget counts work: the same law on any machine
    "backend": "auto",
    "criterion": "mdl",
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


def run(config: dict[str, Any], out_dir: Path) -> ExperimentResult:
    """Run the experiment: the numbered steps of the module docstring. Returns an
    ``ExperimentResult``."""
    from discovery.compress import fisher_stats
    from experiments.core.stages import seeds_of

    seeds = seeds_of(config, simulations="seed", network="seed", search="seed")
    # 1. Data: three sets of fiducial simulations with their derivatives.
    sets = _simulate(config, seeds["simulations"])
    # 2. The Fisher matrix of P(k) by autodiff through the simulator.
    f_pk = fisher_stats(sets.test.fiducial, sets.test.derivative, hartlap=True).fisher
    # 3. The IMNN compressor of the P(k) bins.
    net = _compress(sets, config, seeds["network"])
    # 4. Distillation on coarse band powers.
    distilled = _distill(net, sets.test, config, seeds)
    fishers = _Fishers(np.asarray(f_pk, float), net.fisher, distilled.fisher)
    # 5. Checks.
    checks = _checks(fishers, distilled)
    # 6. Data files and result.
    _write_data(out_dir, config, sets, fishers, net, distilled)
    return _result(_laws(distilled, fishers), checks, fishers, net, distilled, config, seeds)


class _Sets(NamedTuple):
    """Step 1's simulations at the fiducial ``theta`` ``(2,)`` (Omega_m, sigma8), each a
    ``discovery.compress.FisherSet`` (P(k) bins ``(n, bins)`` and their derivatives
    ``(n, 2, bins)``): the IMNN's training set, its validation set (early stopping) and the
    held-out set (Fisher matrices, checks)."""

    theta: Any
    train: Any
    val: Any
    test: Any


def _simulate(config: dict[str, Any], seed: int) -> _Sets:
    """Step 1: ``n_sims`` simulations per set, from three keys split off ``seed``."""
    import jax
    import jax.numpy as jnp

    from discovery.compress import simulate_fisher_set

    sim_config(config).validate()
    simulator = power_simulator(config)
    theta = jnp.array([config["omega_m"], config["sigma8"]], jnp.float32)
    n = int(config["n_sims"])
    keys = jax.random.split(jax.random.key(seed), 3)
    return _Sets(theta, *(simulate_fisher_set(simulator, theta, k, n, n, 50) for k in keys))


class _Network(NamedTuple):
    """Step 3: the trained IMNN ``model`` (built from ``spec``), its training ``history``
    and the Fisher matrix ``(2, 2)`` of its summaries on the held-out set."""

    model: Any
    spec: dict[str, Any]
    history: dict[str, Any]
    fisher: np.ndarray


def _compress(sets: _Sets, config: dict[str, Any], seed: int) -> _Network:
    """Step 3: an IMNN mapping the P(k) bins to two summaries, trained on the training set
    with early stopping on the validation set."""
    from discovery.compress import (
        IMNNConfig,
        build_network,
        compressor_fisher,
        fit_input_scaling,
        train_imnn,
    )

    spec = {"kind": "mlp", "n_in": int(config["mesh"]) // 2, "n_out": 2,
            "hidden": list(config["hidden"])}  # fmt: skip
    model = build_network(spec, seed=seed)
    fit_input_scaling(model, sets.train.fiducial)
    imnn = IMNNConfig(
        float(config["learning_rate"]), int(config["max_steps"]), int(config["patience"])
    )
    history = train_imnn(model, sets.train, sets.val, imnn, seed=seed, progress=False)
    return _Network(
        model, spec, history, np.asarray(compressor_fisher(model, sets.test).fisher, float)
    )


class _Distilled(NamedTuple):
    """Step 4: the distilled laws and the data they were fitted and held out on.

    Attributes:
        symbolic: the laws (``discovery.compress.SymbolicSummaries``), one per summary.
        variables: their inputs, the coarse ln band powers ``lnP_i``.
        k, modes: the P(k) shells, ``(bins,)`` each (h/Mpc, number of modes).
        theta: (Omega_m, sigma8) of the spread simulations ``(m, 2)``; power: their P(k)
            bins ``(m, bins)``; x: their coarse ln band powers ``(m, n_bands)``; t: their
            IMNN summaries ``(m, 2)``. The first half fitted the laws, the second is held out.
        t_sym: the laws' summaries of the held-out half ``(m - m // 2, 2)``.
        fisher: the Fisher matrix ``(2, 2)`` of the laws' summaries on the held-out set.
    """

    symbolic: Any
    variables: tuple[str, ...]
    k: np.ndarray
    modes: np.ndarray
    theta: np.ndarray
    power: np.ndarray
    x: np.ndarray
    t: np.ndarray
    t_sym: np.ndarray
    fisher: np.ndarray

    @property
    def x_test(self) -> np.ndarray:
        """Held-out band powers ``(m - m // 2, n_bands)``."""
        return self.x[len(self.x) // 2 :]

    @property
    def t_test(self) -> np.ndarray:
        """Held-out IMNN summaries ``(m - m // 2, 2)``."""
        return self.t[len(self.t) // 2 :]

    @property
    def error(self) -> np.ndarray:
        """Held-out rms of law minus network over the summary's standard deviation, ``(2,)``."""
        return np.sqrt(np.mean((self.t_sym - self.t_test) ** 2, axis=0)) / np.std(
            self.t_test, axis=0
        )


def _distill(net: _Network, test: Any, config: dict[str, Any], seeds: dict[str, int]) -> _Distilled:
    """Step 4: each IMNN summary as a closed form of ``n_bands`` coarse ln band powers,
    fitted on the first half of ``n_spread`` simulations with (Omega_m, sigma8) spread around
    the fiducial values (``spread_set``), held out on the second half; the Fisher matrix of
    the laws' summaries on the held-out fiducial set ``test``."""
    import jax
    import jax.numpy as jnp

    from discovery.compress import (
        coarse_log_power,
        distill,
        fisher_stats,
        neighbour_noise,
        summarise,
        summary_derivatives,
    )

    k_shells, counts = shells(config)
    n_bands = int(config["n_bands"])
    variables = [f"lnP{i}" for i in range(n_bands)]

    def coarse(batch):
        return coarse_log_power(batch, counts, n_bands)

    simulator = power_simulator(config)
    theta, power = spread_set(config, simulator, jax.random.key(seeds["simulations"] + 1))
    half = len(theta) // 2
    x = np.asarray(coarse(power), float)
    t = np.asarray(summarise(net.model, power), float)
    symbolic = distill(
        x[:half],
        t[:half],
        variables,
        operators=config["operators"],
        max_complexity=int(config["max_complexity"]),
        budget_s=float(config["budget_s"]),
        criterion=config["criterion"],
        seed=seeds["search"],
        backend=config["backend"],
        sigma=neighbour_noise(x[:half], t[:half]),
        clock=config["clock"],
    )

    def law_of_data(batch):
        return symbolic(coarse(batch))

    stats = fisher_stats(
        law_of_data(test.fiducial), summary_derivatives(law_of_data, test), hartlap=True
    )
    t_sym = np.asarray(symbolic(jnp.asarray(x[half:])), float)
    return _Distilled(
        symbolic,
        tuple(variables),
        k_shells,
        counts,
        theta,
        power,
        x,
        t,
        t_sym,
        np.asarray(stats.fisher, float),
    )


class _Fishers(NamedTuple):
    """The Fisher matrices ``(2, 2)`` in (Omega_m, sigma8) on the held-out set: of P(k) by
    autodiff (step 2), of the IMNN summaries (step 3) and of the distilled laws' (step 4)."""

    pk: np.ndarray
    network: np.ndarray
    symbolic: np.ndarray

    def direction(self, name: str) -> np.ndarray:
        """The degeneracy direction ``(2,)`` of the matrix ``name`` (a field name)."""
        return degeneracy_direction(getattr(self, name))

    def angle(self, name: str) -> float:
        """Angle in degrees between the degeneracy directions of ``name`` and of P(k)."""
        return angle_deg(self.direction(name), self.direction("pk"))

    def det_ratio(self, name: str) -> float:
        """``det F(name) / det F(P(k))``."""
        return float(np.linalg.det(getattr(self, name))) / float(np.linalg.det(self.pk))


def _checks(fishers: _Fishers, distilled: _Distilled) -> list[Check]:
    """Step 5: the degeneracy directions of the IMNN's and of the laws' summaries against
    that of P(k), the laws against the network held out, and the IMNN's information."""
    from experiments.core.stages import below, between

    return [
        below(
            "angle between the IMNN's and the P(k) Fisher degeneracy directions [deg]",
            fishers.angle("network"),
            ANGLE_TOL_DEG,
        ),
        below(
            "angle between the distilled laws' and the P(k) Fisher degeneracy directions [deg]",
            fishers.angle("symbolic"),
            ANGLE_TOL_DEG,
        ),
        below(
            "distilled law vs network, held out: max rms / std of the summaries",
            float(np.max(distilled.error)),
            DISTILL_TOL,
        ),
        between(
            "det F(IMNN) / det F(P(k) by autodiff), held out",
            fishers.det_ratio("network"),
            0.5,
            1.2,
            "a compression of P(k) cannot hold more, up to estimation noise",
        ),
    ]


def _write_data(
    out_dir: Path,
    config: dict[str, Any],
    sets: _Sets,
    fishers: _Fishers,
    net: _Network,
    distilled: _Distilled,
) -> None:
    """Step 6: ``summaries.h5`` (the held-out set, the spread simulations, their summaries
    and laws' summaries, the shells, the Fisher matrices, the IMNN's training history) and
    the network as ``compressor.h5``."""
    from discovery.compress import save_network
    from experiments.core.stages import Dataset, write_data_file

    test, d = sets.test, distilled
    datasets = {
        "test/power": Dataset(test.fiducial, "(Mpc/h)^3", "P(k) bins of the held-out simulations"),
        "test/power_derivative": Dataset(test.derivative, "(Mpc/h)^3",
                                         "dP(k)/d(Omega_m, sigma8) by autodiff, (n, 2, bins)"),
        "spread/theta": Dataset(d.theta, "1", "(Omega_m, sigma8) of each simulation"),
        "spread/power": Dataset(d.power, "(Mpc/h)^3", "P(k) bins (first half: distillation "
                                "training set, second half: held out)"),
        "spread/band_log_power": Dataset(d.x, "ln (Mpc/h)^3", "coarse ln band powers lnP_i"),
        "spread/summaries": Dataset(d.t, "1", "IMNN summaries"),
        "spread/symbolic_summaries": Dataset(d.t_sym, "1", "distilled laws' summaries, held out"),
        "k": Dataset(d.k, "h/Mpc", "mode-weighted mean |k| per shell"),
        "modes": Dataset(d.modes, "1", "modes per shell"),
        "fisher/pk": Dataset(fishers.pk, "1",
                             "Fisher matrix of P(k) by autodiff (Omega_m, sigma8)"),
        "fisher/network": Dataset(fishers.network, "1", "Fisher matrix of the IMNN summaries"),
        "fisher/symbolic": Dataset(fishers.symbolic, "1",
                                   "Fisher matrix of the distilled summaries"),
        **{f"history/{name}": data for name, data in net.history.items()},
    }  # fmt: skip
    write_data_file(out_dir / "summaries.h5", NAME, config, datasets)
    save_network(
        out_dir / "compressor.h5", net.model, net.spec, attrs={"theta_fid": np.asarray(sets.theta)}
    )


def _laws(distilled: _Distilled, fishers: _Fishers) -> list[Law]:
    """Step 6: the report's law of each summary, held out, with the P(k) Fisher matrix as
    its literature entry (numbers on the first: degeneracy angles and determinants)."""
    from experiments.core.law_search import plain
    from experiments.core.laws import Law, Literature

    variables = distilled.variables
    omega_m_axis = np.array([1.0, 0.0])
    fisher_numbers = [
        ("degeneracy angle from the Omega_m axis [deg]",
         angle_deg(fishers.direction("symbolic"), omega_m_axis),
         angle_deg(fishers.direction("pk"), omega_m_axis)),
        ("det F (distilled summaries vs P(k) by autodiff)",
         float(np.linalg.det(fishers.symbolic)), float(np.linalg.det(fishers.pk))),
    ]  # fmt: skip
    laws = []
    fronts = zip(distilled.symbolic.fronts, distilled.symbolic.laws, strict=True)
    for j, (front, cand) in enumerate(fronts):
        laws.append(
            Law(
                title=f"IMNN summary t{j} as a law of coarse ln band powers",
                target=f"t{j}",
                variables=variables,
                expression=plain(cand.expression, variables),
                X_test=distilled.x_test,
                y_test=distilled.t_test[:, j],
                predict=_predictor(cand, front.variables),
                constants={
                    f"c{i}": (float(v), float(s)) for i, (v, s) in enumerate(cand.constants)
                },
                front=_front_points(front),
                chosen=next((i for i, c in enumerate(front.candidates) if c is cand), None),
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
    return laws


def _result(
    laws: list[Law],
    checks: list[Check],
    fishers: _Fishers,
    net: _Network,
    distilled: _Distilled,
    config: dict[str, Any],
    seeds: dict[str, int],
) -> ExperimentResult:
    """Step 6: the ``ExperimentResult``: the laws, checks, where the data came from, seeds
    and the key numbers (Fisher matrices, directions, angles, determinant ratios)."""
    from experiments.core.laws import accuracy
    from experiments.core.registry import ExperimentResult

    t_test, t_sym = distilled.t_test, distilled.t_sym
    return ExperimentResult(
        laws=laws,
        checks=checks,
        data={
            "source": "simulator (2LPT at a = 1)"
            if int(config["steps"]) == 0
            else f"simulator.pipeline.forward (2LPT + {config['steps']} FastPM steps)",
            "data file": "summaries.h5 (and compressor.h5)",
            "simulations": f"3 sets x {int(config['n_sims'])} at (Omega_m, sigma8) = "
            f"({config['omega_m']}, {config['sigma8']}), each with exact derivatives (jax.jacfwd)",
            "sets": "training (IMNN), validation (early stopping), held out (Fisher, checks)",
            "mesh": f"{config['mesh']}^3 cells and particles, box {config['box']} Mpc/h",
            "summary": f"P(k) in {int(config['mesh']) // 2} shells; "
            f"{len(distilled.variables)} coarse bands",
            "search": f"operators {config['operators'] or 'the engine default'}, up to "
            f"{config['max_complexity']} nodes, {config['budget_s']} s "
            f"of the {config['clock']} clock per summary; the "
            "chi-square and description length use each summary's scatter at fixed bands, "
            "estimated from nearest neighbours in band space (independent of any law)",
            "held-out accuracy of the laws": ", ".join(
                f"t{j}: {accuracy(t_test[:, j], t_sym[:, j])['rmse']:.3g} rms" for j in range(2)
            ),
        },
        seeds=seeds,
        summary={
            "laws": distilled.symbolic.expressions(),
            "fisher_pk": fishers.pk.tolist(),
            "fisher_network": fishers.network.tolist(),
            "fisher_symbolic": fishers.symbolic.tolist(),
            "direction_pk": fishers.direction("pk").tolist(),
            "direction_network": fishers.direction("network").tolist(),
            "direction_symbolic": fishers.direction("symbolic").tolist(),
            "angle_network_deg": fishers.angle("network"),
            "angle_symbolic_deg": fishers.angle("symbolic"),
            "distill_rms_over_std": distilled.error.tolist(),
            "det_ratio_network": fishers.det_ratio("network"),
            "det_ratio_symbolic": fishers.det_ratio("symbolic"),
            "imnn_best_step": int(net.history["best_step"]),
        },
    )
