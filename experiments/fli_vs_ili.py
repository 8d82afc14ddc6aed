"""Experiment ``fli-vs-ili``: field-level against implicit-likelihood inference, one mock.

One mock survey, four posteriors of (Omega_m, sigma8) from it, and the Fisher limit:

1. Mock (``simulate_mock``): white noise -> linear field (Planck 2018) -> LPT to a = 1 ->
   redshift-space CIC density -> galaxy counts, Poisson with mean ``nbar_cell F(1 + delta)``
   (Neyrinck et al. 2014 bias law) times a selection (a masked slab of the box and an overall
   completeness).
2. Field-level inference (``infer_field_level``, ``inference.driver.run_chains``): the
   posterior of the white noise and of (Omega_m, sigma8) given the counts, through the
   mock's own forward model; Gaussian priors on the cosmology with the mean and standard
   deviation of the implicit legs' box prior. The chains move the field partially centred on
   the cosmology (``inference.precondition``: the data-dominated modes in units of the linear
   power at the prior mean), so that a step in sigma8 or Omega_m does not have to rescale
   every well-measured mode of the white noise; the chain file holds (Omega_m, sigma8) and
   the white noise themselves. The bias law, ``nbar_cell`` and the selection are known in
   every leg.
3. Training set (``simulate_training``, ``inference.implicit.training_set``): ``n_train``
   mocks with (Omega_m, sigma8) drawn from the box prior, through the same forward model,
   bias law, selection and Poisson noise as the mock; their galaxy P(k) to the Nyquist
   frequency.
4. Implicit-likelihood inference on P(k) (``infer_implicit``): an ensemble of normalizing
   flows (``inference.implicit.flows.NeuralPosterior``) trained on ``log P(k)`` of the
   training set, (b) to ``k_max = 0.15 h/Mpc`` and (c) to the Nyquist frequency, evaluated on
   the mock's P(k); and (d) (``infer_imnn``) on the summaries of an IMNN trained on the
   counts themselves (``experiments.core.imnn_summary``: a periodic CNN on the counts summed
   over blocks of ``imnn_pool^3`` cells, with its own fiducial and finite-difference
   simulations at the prior's centre), its summaries of the training set's counts and of the
   mock's.
5. Fisher limit (``fisher_forecast``): ``F_ij = sum_cells d_i lam d_j lam / lam`` of the
   Poisson likelihood of the counts at the true (Omega_m, sigma8) and the mock's own white
   noise (initial conditions known), ``d lam / d theta`` by forward-mode autodiff
   (``jax.jacfwd``) through the forward model. Knowing the initial conditions adds
   information, so no posterior of the unknown-field problem can be narrower on average.
6. Comparison (``compare``): each posterior's area ``sqrt(det C)`` of its draws' covariance
   ``C`` (and the Fisher ``sqrt(det F^-1)``), its information gain over (b) ``ln(A_b / A)``,
   the truth's distance from its mean in its own covariance's metric, and what it cost:
   simulations, gradient evaluations of the forward model and seconds.
7. Checks, data file and report (``_checks``, ``_write_data``, ``_result``): every
   posterior covers the truth at 2 sigma (Gaussian approximation: ``d^2 <= 6.18``, the
   95.45% region of two parameters), the field-level area is below the P(k < 0.15) one, the
   Fisher area is below every posterior's; ``fli_vs_ili.h5``, ``mock.h5``, the training set,
   the chains and ``contours.png`` (GetDist).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

NAME = "fli-vs-ili"
QUESTION = (
    "How much tighter is the posterior of (Omega_m, sigma8) from field-level inference of a "
    "galaxy survey than from implicit-likelihood inference on its power spectrum to "
    "k = 0.15 h/Mpc or to the Nyquist frequency, or on IMNN summaries of its counts, what "
    "does each cost in simulations, gradients and seconds, and how close does each come to "
    "the Fisher limit of the full field computed by autodiff through the simulator?"
)
QUICK: dict[str, Any] = {
    "mesh": 32,
    "box": 256.0,
    "model": "lpt1",
    "bias": "neyrinck",
    "bias_params": {"beta": 1.5, "rho_g": 0.4, "epsilon": 1.5},
    "nbar_cell": 5.0,
    "masked_fraction": 0.125,
    "completeness": 0.9,
    "mock_seed": 0,
    "prior": {"Omega_m": [0.2, 0.45], "sigma8": [0.6, 1.0]},
    "sampler": "mclmc",
    "samples": 300,
    "warmup": 100,
    "chains": 2,
    "thin": 100,
    "burn_fraction": 0.2,
    "inference_seed": 0,
    "n_train": 800,
    "train_seed": 1,
    "kmax": 0.15,
    "ensemble": 2,
    "max_epochs": 200,
    "patience": 20,
    "flow_seed": 0,
    "draws": 4000,
    "fisher_tolerance": 1.2,
    "imnn_pool": 2,
    "imnn_channels": [4, 8],
    "imnn_sims": 64,
    "imnn_steps": 110,
    "imnn_patience": 50,
    "imnn_learning_rate": 3e-3,
    "imnn_seed": 2,
}
FULL: dict[str, Any] = {
    **QUICK,
    "mesh": 64,
    "box": 512.0,
    "model": "lpt2",
    "samples": 2000,
    "warmup": 500,
    "chains": 4,
    "thin": 100,
    "n_train": 5000,
    "ensemble": 5,
    "max_epochs": 500,
    "patience": 30,
    "draws": 20000,
    "imnn_channels": [4, 8, 16],
    "imnn_sims": 100,
    "imnn_steps": 300,
    "imnn_patience": 60,
}
PARAMETERS = ("Omega_m", "sigma8")
#: ``d^2 = (mean - truth)^T C^-1 (mean - truth)`` inside which a two-parameter Gaussian holds
#: 95.45% of its mass (the 2-sigma probability of one parameter): ``-2 ln(1 - 0.9545)``.
COVERAGE_D2 = float(-2.0 * np.log(1.0 - 0.9545))


@dataclass(frozen=True)
class Cost:
    """What a posterior cost.

    Attributes:
        simulations: forward simulations run for it (training sets; 0 for field-level).
        gradients: gradient (or forward-mode derivative) evaluations of the forward model.
        seconds: wall-clock seconds of its steps (compilation included).
        note: what the numbers count, for the report.
    """

    simulations: int
    gradients: int
    seconds: float
    note: str = ""


@dataclass(frozen=True)
class Posterior:
    """Draws of (Omega_m, sigma8) from one method.

    Attributes:
        key: short name (``fli``, ``ili_pk_kmax``, ...); label: the legend's name.
        draws: ``(n, 2)`` draws of (Omega_m, sigma8) (dimensionless).
        cost: what the posterior cost.
        details: further numbers (convergence, training), for the summary.
    """

    key: str
    label: str
    draws: np.ndarray
    cost: Cost
    details: dict[str, Any]

    @property
    def mean(self) -> np.ndarray:
        """Posterior mean ``(2,)``."""
        return self.draws.mean(axis=0)

    @property
    def covariance(self) -> np.ndarray:
        """Posterior covariance ``(2, 2)``."""
        return np.cov(self.draws, rowvar=False)

    @property
    def area(self) -> float:
        """``sqrt(det C)``: the posterior's area up to a constant factor (pi times it is the
        1-sigma ellipse of a Gaussian)."""
        return float(np.sqrt(np.linalg.det(self.covariance)))

    def distance2(self, truth: np.ndarray) -> float:
        """``(mean - truth)^T C^-1 (mean - truth)``: the truth's squared distance from the
        mean in units of the posterior's covariance."""
        diff = self.mean - truth
        return float(diff @ np.linalg.solve(self.covariance, diff))


@dataclass(frozen=True)
class Fisher:
    """The Fisher limit: ``matrix`` ``(2, 2)`` in (Omega_m, sigma8), its cost, and the
    forward-mode derivative evaluations (one per parameter)."""

    matrix: np.ndarray
    cost: Cost

    @property
    def covariance(self) -> np.ndarray:
        """``F^-1`` ``(2, 2)``."""
        return np.linalg.inv(self.matrix)

    @property
    def area(self) -> float:
        """``sqrt(det F^-1)``."""
        return float(1.0 / np.sqrt(np.linalg.det(self.matrix)))


@dataclass(frozen=True)
class MockData:
    """The survey: ``SimConfig``, ``Cosmology`` (the truth), ``Observation``, the ``Mock``
    (counts and selection) and its true fields (``simulator.observe.mock.make_mock``)."""

    conf: Any
    cosmo: Any
    obs: Any
    mock: Any
    truth: dict[str, np.ndarray]

    @property
    def theta(self) -> np.ndarray:
        """The true (Omega_m, sigma8) ``(2,)``."""
        return np.array([getattr(self.cosmo, n) for n in PARAMETERS], float)


def survey_selection(config: dict[str, Any]) -> np.ndarray:
    """Selection grid ``(m, m, m)``: zero on the first ``masked_fraction`` of the cells along
    x (a slab, as a survey mask cuts the sky), ``completeness`` elsewhere."""
    from simulator.observe.selection import survey_selection as combine

    m = int(config["mesh"])
    mask = np.ones((m,) * 3, np.float32)
    mask[: int(round(float(config["masked_fraction"]) * m))] = 0.0
    return combine(mask.shape, mask=mask, completeness=float(config["completeness"]))


def simulate_mock(config: dict[str, Any]) -> MockData:
    """Step 1: the mock of ``config`` at Planck 2018 (Omega_m, sigma8)."""
    from simulator.config import SimConfig
    from simulator.cosmology import Cosmology
    from simulator.observe.mock import Observation, make_mock

    model = config["model"]
    conf = SimConfig(
        mesh=int(config["mesh"]), box=float(config["box"]), lpt_order=2 if model == "lpt2" else 1
    )
    obs = Observation(
        bias=config["bias"],
        bias_params=dict(config["bias_params"]),
        nbar_cell=float(config["nbar_cell"]),
        noise="poisson",
    )
    cosmo = Cosmology.planck18()
    mock, truth = make_mock(
        int(config["mock_seed"]), cosmo, conf, model, obs, survey_selection(config)
    )
    return MockData(conf, cosmo, obs, mock, truth)


def box_prior(config: dict[str, Any]):
    """The implicit legs' prior: uniform in ``config["prior"]`` (``inference.implicit.prior``)."""
    from inference.implicit.prior import box_prior as make

    return make({n: tuple(config["prior"][n]) for n in PARAMETERS})


def gaussian_prior(config: dict[str, Any]) -> dict[str, tuple[float, float]]:
    """The field-level leg's prior ``{name: (mean, std)}``: the box prior's mean and standard
    deviation (``(high - low) / sqrt(12)``)."""
    return {
        n: (0.5 * (lo + hi), (hi - lo) / np.sqrt(12.0))
        for n, (lo, hi) in ((n, config["prior"][n]) for n in PARAMETERS)
    }


def field_posterior(data: MockData, config: dict[str, Any], conf: Any = None) -> Any:
    """The field-level leg's ``inference.posterior.FieldPosterior``: the white noise and
    (Omega_m, sigma8) under :func:`gaussian_prior` given the mock's counts, its bias law,
    nbar and selection known; ``conf`` replaces the mock's ``SimConfig`` (e.g. its gradient
    method)."""
    from inference.models import counts_posterior

    return counts_posterior(
        data.mock.counts,
        data.mock.selection,
        data.conf if conf is None else conf,
        data.cosmo,
        data.obs,
        config["model"],
        bias_priors={},
        cosmo_priors=gaussian_prior(config),
    )


def infer_field_level(data: MockData, config: dict[str, Any], out_dir: Path) -> Posterior:
    """Step 2: chains of the white noise and (Omega_m, sigma8) in
    ``out_dir/chains/field-<digest>`` (``experiments.core.field_inference.sample_chains``:
    resumed if there); the draws after the first ``burn_fraction`` of each chain."""
    from experiments.core.field_inference import sample_chains
    from inference.chain_file import read_arrays
    from inference.diagnostics import ess_bulk, split_rhat

    t0 = time.perf_counter()
    posterior = field_posterior(data, config)
    model = {
        "mock": data.obs.to_dict(),
        "mock_seed": int(config["mock_seed"]),
        "box": float(config["box"]),
        "selection": [config["masked_fraction"], config["completeness"]],
        "cosmo_priors": gaussian_prior(config),
        "parametrisation": "white noise partially centred on the cosmology",
    }
    path = sample_chains(posterior, config, out_dir / "chains" / "field", data.truth, model)
    arrays, attrs = read_arrays(path)
    names = [str(n).split("/", 1)[-1] for n in attrs["scalar_names"]]
    scalars = np.asarray(arrays["samples/scalars"], float)[
        ..., [names.index(n) for n in PARAMETERS]
    ]
    kept = scalars[:, int(float(config["burn_fraction"]) * scalars.shape[1]) :]
    grads = int(np.sum(arrays["info/num_grads"]) + np.sum(arrays["warmup/num_grads"]))
    cost = Cost(
        0,
        grads,
        time.perf_counter() - t0,
        "gradients of the warm-up and sampling steps of every chain (the MAP search and the "
        "preconditioner's probes come on top)",
    )
    details = {
        "split_rhat": dict(zip(PARAMETERS, split_rhat(kept).tolist(), strict=True)),
        "ess_bulk": dict(zip(PARAMETERS, ess_bulk(kept).tolist(), strict=True)),
        "chains": int(kept.shape[0]),
        "draws_per_chain": int(kept.shape[1]),
    }
    return Posterior("fli", "field level", kept.reshape(-1, 2), cost, details)


@dataclass(frozen=True)
class TrainingData:
    """Step 3: the training set (``inference.implicit.training_set.TrainingSet``), the
    observed galaxy P(k) of the mock ``(nbins,)`` [(Mpc/h)^3] and the seconds its simulations
    took (also when it was read back from an earlier run's directory)."""

    data: Any
    observed_pk: np.ndarray
    seconds: float


def simulate_training(data: MockData, config: dict[str, Any], out_dir: Path) -> TrainingData:
    """Step 3: ``n_train`` simulations over the box prior with the mock's forward model,
    observation and selection, in ``out_dir/training`` (resumed if interrupted)."""
    from inference.implicit.summaries import galaxy_power
    from inference.implicit.training_set import (
        TrainingSetSpec,
        read_training_set,
        simulate_training_set,
    )

    t0 = time.perf_counter()
    spec = TrainingSetSpec(
        count=int(config["n_train"]),
        prior=box_prior(config),
        conf=data.conf,
        cosmo=data.cosmo,
        obs=data.obs,
        model=config["model"],
        selection=data.mock.selection,
        seed=int(config["train_seed"]),
    )
    path = simulate_training_set(spec, out_dir / "training")
    _, observed = galaxy_power(data.mock.counts, data.mock.selection, data.conf.box)
    training = read_training_set(path)
    seconds = training.simulation_seconds
    if not np.isfinite(seconds):  # a set simulated before the seconds were stored
        seconds = time.perf_counter() - t0
    return TrainingData(training, observed, seconds)


def infer_implicit(
    training: TrainingData, kmax: float | None, key: str, label: str, config: dict[str, Any]
) -> Posterior:
    """Step 4 (b, c): an ensemble of flows trained on ``log P(k)`` to ``kmax`` [h/Mpc]
    (``None``: the Nyquist frequency) of the training set, and its draws given the mock's
    P(k)."""
    from inference.implicit.summaries import PowerSummary

    t0 = time.perf_counter()
    data = training.data
    summary = PowerSummary(tuple(data.k), kmax)
    draws, details = _flow_posterior(
        training, summary(data.pk), summary(training.observed_pk), config
    )
    cost = Cost(
        len(data.theta),
        0,
        training.seconds + time.perf_counter() - t0,
        "the training set (shared by the implicit legs, its seconds counted in each) and the flows",
    )
    return Posterior(key, label, draws, cost, {"bins": int(summary.mask.sum()), **details})


def infer_imnn(data: MockData, training: TrainingData, config: dict[str, Any]) -> Posterior:
    """Step 4 (d): an IMNN trained on the counts summed over ``imnn_pool^3`` blocks (its
    fiducial at the prior's centre, its own ``2 (n_s + 4 n_d)`` seed-matched simulations
    through the mock's observation model), then an ensemble of flows on its summaries of the
    training set's counts, and its draws given the summaries of the mock's counts."""
    from discovery.compress.imnn import IMNNConfig
    from experiments.core.imnn_summary import train_imnn_summary

    t0 = time.perf_counter()
    imnn = train_imnn_summary(
        training.data,
        n_s=int(config["imnn_sims"]),
        channels=tuple(config["imnn_channels"]),
        config=IMNNConfig(
            learning_rate=float(config["imnn_learning_rate"]),
            max_steps=int(config["imnn_steps"]),
            patience=int(config["imnn_patience"]),
        ),
        seed=int(config["imnn_seed"]),
        pool=int(config["imnn_pool"]),
    )
    x_train = imnn(training.data.read_counts())
    x_observed = imnn(np.asarray(data.mock.counts))
    draws, details = _flow_posterior(training, x_train, x_observed, config)
    cost = Cost(
        len(training.data.theta) + imnn.simulations,
        0,
        training.seconds + time.perf_counter() - t0,
        "the training set (shared), the IMNN's own fiducial and finite-difference simulations "
        "and its training, and the flows",
    )
    details |= {
        "imnn_fisher": imnn.fisher.tolist(),
        "imnn_fisher_area": float(1.0 / np.sqrt(np.linalg.det(imnn.fisher))),
        "imnn_best_step": imnn.best_step,
        "imnn_simulations": imnn.simulations,
    }
    pool = int(config["imnn_pool"])
    label = "ILI IMNN" + (f" (counts in {pool}^3 blocks)" if pool > 1 else "")
    return Posterior("ili_imnn", label, draws, cost, details)


def _flow_posterior(
    training: TrainingData, x_train: np.ndarray, x_observed: np.ndarray, config: dict[str, Any]
) -> tuple[np.ndarray, dict[str, Any]]:
    """An ensemble of flows on summaries ``x_train`` ``(n, d)`` of the training set: its draws
    ``(draws, 2)`` of (Omega_m, sigma8) given the mock's summary ``x_observed`` ``(d,)``, and
    the epochs and out-of-distribution check of that summary."""
    from inference.implicit.diagnostics import out_of_distribution
    from inference.implicit.flows import FlowSettings, NeuralPosterior

    settings = FlowSettings(
        ensemble=int(config["ensemble"]),
        max_epochs=int(config["max_epochs"]),
        patience=int(config["patience"]),
        seed=int(config["flow_seed"]),
    )
    data = training.data
    flows = NeuralPosterior(data.prior, settings).fit(data.theta, x_train)
    draws = flows.sample(x_observed, int(config["draws"]), seed=int(config["flow_seed"]))
    check = out_of_distribution(x_observed, flows.whitener)
    details = {
        "epochs": [len(loss["val"]) for loss in flows.losses],
        "out_of_distribution": check.to_dict(),
    }
    return draws, details


def fisher_forecast(data: MockData, config: dict[str, Any]) -> Fisher:
    """Step 5: the Fisher matrix of the Poisson likelihood of the counts in (Omega_m, sigma8)
    at the truth with the mock's white noise known, by ``jax.jacfwd`` through the forward
    model of the field-level leg (plain autodiff scatter, which forward mode needs)."""
    import dataclasses

    import jax
    import jax.numpy as jnp

    from simulator.observe.mock import expected_counts

    t0 = time.perf_counter()
    conf = dataclasses.replace(data.conf, gradient="autodiff")
    mock, obs = data.mock, data.obs
    posterior = field_posterior(data, config, conf)
    s = jnp.asarray(data.truth["white_noise"], jnp.float32)
    selection = jnp.asarray(mock.selection, jnp.float32)

    def lam(theta):
        cosmo = dict(zip(PARAMETERS, theta, strict=True))
        delta = posterior.fields({"s": s, "cosmo": cosmo})["delta"]
        law, params = obs.law, obs.bias_parameters()
        return expected_counts(delta, law, params, obs.nbar_cell, selection)

    theta = jnp.asarray(data.theta, jnp.float32)
    value, jac = jax.jit(lambda t: (lam(t), jax.jacfwd(lam)(t)))(theta)
    observed = np.asarray(selection) > 0
    value = np.asarray(value, float)[observed]
    jac = np.asarray(jac, float)[observed]
    matrix = jac.T @ (jac / value[:, None])
    cost = Cost(1, len(PARAMETERS), time.perf_counter() - t0, "one forward-mode pass per parameter")
    return Fisher(matrix, cost)


@dataclass(frozen=True)
class Comparison:
    """Step 6: the posteriors (field level first, then the implicit legs), the Fisher limit,
    the truth ``(2,)``, the box prior's area ``sqrt(det C)`` (widths' product / 12) and the
    reference posterior's key (P(k) to ``k_max``)."""

    posteriors: list[Posterior]
    fisher: Fisher
    truth: np.ndarray
    prior_area: float
    reference: str = "ili_pk_kmax"

    def get(self, key: str) -> Posterior:
        """The posterior ``key``."""
        return next(p for p in self.posteriors if p.key == key)

    def gain(self, area: float) -> float:
        """Information gain ``ln(A_ref / A)`` [nats] of an area over the reference's."""
        return float(np.log(self.get(self.reference).area / area))

    def rows(self) -> list[dict[str, Any]]:
        """One record per posterior and one for the Fisher limit: areas, gains, distances,
        means, standard deviations and costs."""
        out = []
        for p in self.posteriors:
            out.append(
                {
                    "key": p.key,
                    "label": p.label,
                    "mean": p.mean.tolist(),
                    "std": np.sqrt(np.diag(p.covariance)).tolist(),
                    "area": p.area,
                    "gain_nats": self.gain(p.area),
                    "distance2": p.distance2(self.truth),
                    "cost": _cost_record(p.cost),
                }
            )
        f = self.fisher
        out.append(
            {
                "key": "fisher",
                "label": "Fisher limit (initial conditions known)",
                "mean": self.truth.tolist(),
                "std": np.sqrt(np.diag(f.covariance)).tolist(),
                "area": f.area,
                "gain_nats": self.gain(f.area),
                "distance2": 0.0,
                "cost": _cost_record(f.cost),
            }
        )
        return out


def _cost_record(cost: Cost) -> dict[str, Any]:
    return {
        "simulations": cost.simulations,
        "gradients": cost.gradients,
        "seconds": cost.seconds,
        "note": cost.note,
    }


def run(config: dict[str, Any], out_dir: Path):
    """Run the experiment: the numbered steps of the module docstring. Returns an
    ``ExperimentResult``."""
    from simulator.observe.mock import write_mock

    _validate(config)
    out_dir = Path(out_dir)
    # 1. Mock.
    data = simulate_mock(config)
    write_mock(out_dir / "mock.h5", data.mock, data.truth, data.obs, config)
    # 2. Field-level inference with (Omega_m, sigma8) sampled.
    field = infer_field_level(data, config, out_dir)
    # 3. Training set over the prior, through the mock's observation model.
    training = simulate_training(data, config, out_dir)
    # 4. Implicit-likelihood inference on P(k) to k_max and to the Nyquist frequency, and on
    #    the summaries of an IMNN trained on the counts.
    kmax = float(config["kmax"])
    implicit = [
        infer_implicit(training, kmax, "ili_pk_kmax", f"ILI P(k < {kmax:g})", config),
        infer_implicit(training, None, "ili_pk_nyquist", "ILI P(k < k_Nyq)", config),
        infer_imnn(data, training, config),
    ]
    # 5. Fisher limit by autodiff.
    fisher = fisher_forecast(data, config)
    # 6. Comparison of areas, information and costs.
    (w_om, w_s8) = (np.ptp(config["prior"][name]) for name in PARAMETERS)
    comparison = Comparison([field, *implicit], fisher, data.theta, w_om * w_s8 / 12.0)
    # 7. Checks, data file and report.
    checks = _checks(comparison, config)
    contours = _contours(comparison, config, out_dir / "contours.png")
    _write_data(out_dir / "fli_vs_ili.h5", comparison, training, config)
    return _result(comparison, checks, contours, data, training, config)


def _validate(config: dict[str, Any]) -> None:
    from inference.models import FORWARD_MODELS

    if config["model"] not in FORWARD_MODELS or config["model"] == "pm":
        raise ValueError(f"model={config['model']!r} is not allowed: use 'lpt1' or 'lpt2'")
    if set(config["prior"]) != set(PARAMETERS):
        raise ValueError(f"prior={config['prior']!r} must bound exactly {list(PARAMETERS)}")
    if not 0 <= float(config["burn_fraction"]) < 1:
        raise ValueError(f"burn_fraction={config['burn_fraction']!r} must be in [0, 1)")
    if not 0 <= float(config["masked_fraction"]) < 1:
        raise ValueError(f"masked_fraction={config['masked_fraction']!r} must be in [0, 1)")
    if not float(config["kmax"]) > 0:
        raise ValueError(f"kmax={config['kmax']!r} must be > 0 (h/Mpc)")
    if int(config["n_train"]) < 50:
        raise ValueError(f"n_train={config['n_train']!r} must be an integer >= 50")
    pool, blocks = int(config["imnn_pool"]), 2 ** len(config["imnn_channels"])
    if pool < 1 or config["mesh"] % pool or (config["mesh"] // pool) % blocks:
        raise ValueError(
            f"imnn_pool={config['imnn_pool']!r} is not allowed with mesh={config['mesh']} and "
            f"imnn_channels={config['imnn_channels']!r}: need a pool >= 1 dividing the mesh, "
            f"and 2**len(imnn_channels) = {blocks} dividing the pooled mesh"
        )
    from experiments.core.field_inference import run_config

    box_prior(config)
    run_config(config)


def _checks(comparison: Comparison, config: dict[str, Any]) -> list:
    """Coverage of the truth by every posterior, the field level against P(k < k_max) and the
    Fisher limit below every posterior."""
    from experiments.core.stages import below

    truth = comparison.truth
    checks = [
        below(
            f"{p.label}: (mean - truth)^T C^-1 (mean - truth)",
            p.distance2(truth),
            COVERAGE_D2,
            "the truth inside the 2-sigma (95.45%) region, Gaussian approximation",
        )
        for p in comparison.posteriors
    ]
    fli, ref = comparison.get("fli"), comparison.get(comparison.reference)
    checks.append(
        below(
            "field-level area / ILI P(k < k_max) area",
            fli.area / ref.area,
            1.0,
            f"sqrt(det C): {fli.area:.3g} vs {ref.area:.3g}",
        )
    )
    smallest = min(p.area for p in comparison.posteriors)
    tolerance = float(config["fisher_tolerance"])
    checks.append(
        below(
            "Fisher area (initial conditions known) / smallest posterior area",
            comparison.fisher.area / smallest,
            tolerance,
            "the Fisher limit bounds every posterior, up to the noise of the area estimates",
        )
    )
    return checks


def _contours(comparison: Comparison, config: dict[str, Any], path: Path) -> bytes:
    """The posteriors' 68/95% contours overlaid with the truth marked (GetDist triangle plot,
    ``inference.implicit.getdist_export``), written to ``path``; returns the PNG bytes."""
    from inference.implicit.getdist_export import plot_contours, to_mcsamples

    ranges = {n: tuple(config["prior"][n]) for n in PARAMETERS}
    samples = [to_mcsamples(p.draws, PARAMETERS, p.label, ranges) for p in comparison.posteriors]
    plot_contours(samples, path, dict(zip(PARAMETERS, comparison.truth.tolist(), strict=True)))
    return path.read_bytes()


def _write_data(
    path: Path, comparison: Comparison, training: TrainingData, config: dict[str, Any]
) -> None:
    """``fli_vs_ili.h5``: each posterior's draws, mean and covariance, the Fisher matrix, the
    truth, the mock's P(k) and the table of areas, gains and costs (the training set stays in
    ``training/training_set.h5``, the chains in ``chains/``)."""
    from experiments.core.stages import Dataset, write_data_file

    rows = comparison.rows()
    datasets = {}
    for p in comparison.posteriors:
        datasets |= {
            f"posterior/{p.key}/draws": Dataset(p.draws, "1",
                                                f"{p.label}: draws of (Omega_m, sigma8)"),
            f"posterior/{p.key}/mean": Dataset(p.mean, "1", "posterior mean of (Omega_m, sigma8)"),
            f"posterior/{p.key}/covariance": Dataset(p.covariance, "1",
                                                     "posterior covariance of (Omega_m, sigma8)"),
        }  # fmt: skip
    datasets |= {
        "fisher/matrix": Dataset(comparison.fisher.matrix, "1",
                                 "Fisher matrix of the counts' Poisson likelihood in (Omega_m, "
                                 "sigma8) at the truth, initial conditions known (jax.jacfwd)"),
        "truth": Dataset(comparison.truth, "1", "true (Omega_m, sigma8) of the mock"),
        "mock/k": Dataset(training.data.k, "h/Mpc", "mode-weighted mean |k| of each shell"),
        "mock/pk": Dataset(training.observed_pk, "(Mpc/h)^3", "galaxy P(k) of the mock"),
        "table/area": Dataset([r["area"] for r in rows], "1",
                              "sqrt(det C) of (Omega_m, sigma8), rows as table/keys"),
        "table/gain": Dataset([r["gain_nats"] for r in rows], "nats",
                              "ln(area of ILI P(k < k_max) / area)"),
        "table/distance2": Dataset([r["distance2"] for r in rows], "1",
                                   "(mean - truth)^T C^-1 (mean - truth)"),
        "table/simulations": Dataset([r["cost"]["simulations"] for r in rows], "1",
                                     "forward simulations run"),
        "table/gradients": Dataset([r["cost"]["gradients"] for r in rows], "1",
                                   "gradient evaluations of the forward model"),
        "table/seconds": Dataset([r["cost"]["seconds"] for r in rows], "s",
                                 "wall-clock time, compilation included"),
    }  # fmt: skip
    attrs = {"parameters": list(PARAMETERS), "table/keys": [r["key"] for r in rows]}
    write_data_file(path, NAME, config, datasets, attrs=attrs)


def _table_rows(comparison: Comparison) -> list[tuple[Any, ...]]:
    """The report's table: one row per posterior and the Fisher limit."""
    table = []
    for r in comparison.rows():
        (m_om, m_s8), (s_om, s_s8), cost = r["mean"], r["std"], r["cost"]
        table.append(
            (
                r["label"],
                f"{m_om:.4f} +- {s_om:.4f}",
                f"{m_s8:.4f} +- {s_s8:.4f}",
                f"{r['area']:.3g}",
                f"{r['gain_nats']:+.2f}",
                f"{np.sqrt(r['distance2']):.2f}",
                cost["simulations"],
                cost["gradients"],
                f"{cost['seconds']:.0f}",
            )
        )
    return table


def _explanation(comparison: Comparison) -> str:
    """The panel's text: what the table holds and, if the field level is not the tighter,
    why, with the numbers."""
    fli, ref = comparison.get("fli"), comparison.get(comparison.reference)
    imnn = comparison.get("ili_imnn").details
    text = (
        "Area: sqrt(det C) of each posterior's (Omega_m, sigma8) covariance (pi times it is "
        "the 1-sigma ellipse of a Gaussian); gain: ln(area of ILI P(k < k_max) / area) in "
        "nats; distance: the truth's distance from the mean in units of the covariance (2.49 "
        "bounds the 2-sigma region of two parameters). The Fisher row is the limit with the "
        "initial conditions known, its ellipse centred on the truth. Bias law, nbar and "
        "selection are known in every leg. The IMNN's summaries hold a Fisher area of "
        f"{imnn['imnn_fisher_area']:.3g} on its own validation set at the prior's centre "
        f"(finite differences of {imnn['imnn_simulations']} simulations; training kept step "
        f"{imnn['imnn_best_step']}), against {comparison.prior_area:.3g} for the box prior. "
    )
    if fli.area < ref.area:
        return text + (
            f"The field level is {ref.area / fli.area:.1f} times tighter in area than P(k) to "
            f"k_max ({comparison.gain(fli.area):.2f} nats)."
        )
    rhat = max(fli.details["split_rhat"].values())
    ess = min(fli.details["ess_bulk"].values())
    return text + (
        f"The field-level area {fli.area:.3g} is NOT below the P(k < k_max) area {ref.area:.3g}. "
        f"Its chains give split-Rhat {rhat:.3g} and bulk ESS {ess:.0f} for the cosmology: "
        "too short chains overstate or understate the spread; the P(k) legs' flows were "
        f"trained on {ref.cost.simulations} simulations."
    )


def _result(
    comparison: Comparison,
    checks: list,
    contours: bytes,
    data: MockData,
    training: TrainingData,
    config: dict[str, Any],
):
    """The ``ExperimentResult``: no law, the checks, the comparison panel and the key numbers
    (areas, gains, distances and costs by leg)."""
    from experiments.core.html_report import Panel
    from experiments.core.registry import ExperimentResult
    from experiments.core.stages import seeds_of

    conf, obs = data.conf, data.obs
    fli = comparison.get("fli")
    panel = Panel(
        "Posteriors of (Omega_m, sigma8): areas, information over P(k < k_max), costs",
        _explanation(comparison),
        [("GetDist contours of every posterior with the truth", contours)],
        ("posterior", "Omega_m", "sigma8", "area", "gain [nats]", "distance", "simulations",
         "gradients", "seconds"),
        _table_rows(comparison),
    )  # fmt: skip
    rows = comparison.rows()
    return ExperimentResult(
        laws=[],
        checks=checks,
        panels=[panel],
        data={
            "source": f"simulator.observe.mock.make_mock ({config['model']}), Planck 2018",
            "data file": "fli_vs_ili.h5, mock.h5, training/training_set.h5, chains/field-*/"
            "chain.h5, contours.png",
            "mock": f"{conf.mesh}^3 cells, box {conf.box} Mpc/h, {obs.law.name} bias "
            f"{dict(obs.bias_params)}, nbar_cell {obs.nbar_cell}, Poisson, first "
            f"{config['masked_fraction']:.0%} of the box along x masked, completeness "
            f"{config['completeness']}",
            "truth": dict(zip(PARAMETERS, comparison.truth.tolist(), strict=True)),
            "galaxies": int(np.asarray(data.mock.counts).sum()),
            "field level": f"{config['sampler']}, {config['chains']} chains x "
            f"{config['samples']} steps (+{config['warmup']} warm-up), first "
            f"{float(config['burn_fraction']):.0%} dropped; Gaussian priors "
            f"{gaussian_prior(config)}; split-Rhat {fli.details['split_rhat']}",
            "implicit": f"{len(training.data.theta)} simulations over the box prior "
            f"{config['prior']}; flowjax MAF ensembles of {config['ensemble']}, "
            f"{config['draws']} draws each; IMNN on counts in {config['imnn_pool']}^3 blocks, "
            f"CNN channels {config['imnn_channels']}, {config['imnn_sims']} fiducial "
            f"simulations per set, at most {config['imnn_steps']} steps",
            "Fisher": "Poisson likelihood of the counts, jax.jacfwd of the expected counts at "
            "the true cosmology and white noise",
        },
        seeds=seeds_of(
            config,
            mock="mock_seed",
            inference="inference_seed",
            training="train_seed",
            flows="flow_seed",
            imnn="imnn_seed",
        ),
        summary={
            "truth": comparison.truth.tolist(),
            "areas": {r["key"]: r["area"] for r in rows},
            "gains_nats": {r["key"]: r["gain_nats"] for r in rows},
            "distance2": {r["key"]: r["distance2"] for r in rows},
            "costs": {r["key"]: r["cost"] for r in rows},
            "means": {r["key"]: r["mean"] for r in rows},
            "stds": {r["key"]: r["std"] for r in rows},
            "fisher_matrix": comparison.fisher.matrix.tolist(),
            "details": {p.key: p.details for p in comparison.posteriors},
        },
    )
