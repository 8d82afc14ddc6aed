"""The observation model and mock galaxy catalogues.

Chain from a forward-model result to galaxy counts (every step pure JAX and differentiable,
except the draws):

1. :func:`observed_density`: particles (``disp``, ``vel``) moved to redshift space
   (:mod:`simulator.observe.rsd`) and painted (CIC) into the density contrast ``delta``;
2. :func:`expected_counts`: ``lam = nbar_cell * selection * F_+(delta)`` with ``F`` a bias
   law (:mod:`simulator.observe.bias`, made strictly positive) and the selection grid of
   :mod:`simulator.observe.selection`;
3. a noise model (:mod:`simulator.observe.noise`) draws the counts (:func:`draw_mock`) or
   scores them
   (:func:`counts_log_likelihood`, the data term of a field-level posterior).

:func:`make_mock` runs the whole chain from a seed (forward model :func:`lpt_forward` or
:func:`simulator.pipeline.simulate`) and :func:`write_mock`/:func:`read_mock` store it in
``mock.h5``.

``nbar_cell`` is the amplitude of the bias law in galaxies per cell (for laws with ``<F> = 1``
it is the mean number of galaxies per cell before selection).
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from cosmolaw.io import atomic_h5, set_attrs
from cosmolaw.pytree import to_dict
from simulator import ic, lpt
from simulator.config import SimConfig
from simulator.cosmology import Cosmology
from simulator.gravity import density_contrast, lattice
from simulator.growth import growth_table
from simulator.observe.bias import BiasLaw, get_bias_law
from simulator.observe.noise import NoiseModel, make_noise
from simulator.observe.rsd import RSDConfig, rsd_shift
from simulator.observe.selection import validate_selection
from simulator.pipeline import simulate

#: Forward models a mock can be drawn from.
MODELS = ("lpt1", "lpt2", "pm")

#: Scale of the smooth positivity floor of F in :func:`expected_counts` (dimensionless).
BIAS_FLOOR = 1e-4


def redshift_space_displacement(
    disp: jax.Array, vel: jax.Array, conf: SimConfig, rsd: RSDConfig
) -> jax.Array:
    """Displacements [Mpc/h] ``(N, 3)`` of the particles as seen in redshift space.

    ``disp``, ``vel``: particle state ``(N, 3)`` in Mpc/h (``vel = dx/dln a``); ``conf`` gives
    the lattice and the box; ``rsd.kind == "none"`` returns ``disp`` unchanged.
    """
    if rsd.kind == "none":
        return disp
    if rsd.kind == "plane-parallel":
        return disp + rsd_shift(disp, vel, los=jnp.asarray(rsd.los, disp.dtype))
    pos = jnp.mod(lattice(conf) + disp, conf.box)
    observer = jnp.asarray(rsd.observer_in(conf.box), disp.dtype)
    return disp + rsd_shift(pos, vel, observer=observer)


def observed_density(
    disp: jax.Array,
    vel: jax.Array,
    conf: SimConfig,
    rsd: RSDConfig,
    weights: jax.Array | None = None,
) -> jax.Array:
    """CIC density contrast ``(mesh, mesh, mesh)`` of the particles in redshift space.

    ``weights``: optional per-particle weights ``(N,)`` of mean 1 (e.g. Lagrangian bias).
    """
    return density_contrast(redshift_space_displacement(disp, vel, conf, rsd), conf, weights)


def smooth_positive(f: jax.Array, floor: float = BIAS_FLOOR) -> jax.Array:
    """Smooth positive part ``(f + sqrt(f^2 + 4 e^2)) / 2`` with ``e = floor``.

    It is ``f (1 + O(e^2 / f^2))`` for ``f >> e``, ``e`` at ``f = 0`` and ``~ e^2 / |f|`` for
    ``f << -e``; evaluated without cancellation for either sign, with finite gradients.
    """
    s = jnp.sqrt(f**2 + 4.0 * floor**2)
    return jnp.where(f >= 0, 0.5 * (f + s), 2.0 * floor**2 / (s + jnp.abs(f)))


def expected_counts(
    delta: jax.Array,
    law: BiasLaw,
    bias_params: Any,
    nbar_cell: float | jax.Array,
    selection: jax.Array | None = None,
) -> jax.Array:
    """Expected galaxy count per cell, ``nbar_cell * selection * F_+(delta)``.

    ``delta``: matter density contrast ``(n, n, n)``; ``law``/``bias_params``: the bias law
    and its parameters; ``nbar_cell``: galaxies per cell (> 0); ``selection``: grid in
    ``[0, 1]`` of the same shape (``None``: complete survey). ``F_+ = smooth_positive(F)``
    is F made strictly positive (a relative change below 1e-6 where ``F > 0.1``; about
    ``BIAS_FLOOR^2 / |F|`` where ``F < 0``, as the linear and quadratic laws can be), so the
    Poisson and negative binomial likelihoods stay finite. Differentiable in ``delta``, the
    bias parameters, ``nbar_cell`` and ``selection``.
    """
    lam = nbar_cell * smooth_positive(law(delta, bias_params))
    return lam if selection is None else lam * selection


def counts_log_likelihood(
    counts: jax.Array,
    delta: jax.Array,
    law: BiasLaw,
    bias_params: Any,
    nbar_cell: float | jax.Array,
    noise: NoiseModel,
    selection: jax.Array,
) -> jax.Array:
    """``ln p(counts | delta, bias, nbar, noise)`` summed over the observed cells
    (``selection > 0``): the data term of a field-level posterior. Pure JAX, differentiable in
    ``delta`` ``(n, n, n)``, the bias and noise parameters and ``nbar_cell``."""
    lam = expected_counts(delta, law, bias_params, nbar_cell, selection)
    return noise.log_likelihood(counts, lam, selection > 0)


class Mock(NamedTuple):
    """A mock survey and what produced it.

    Attributes:
        counts: galaxy counts per cell ``(n, n, n)`` (int32; float32 for Gaussian noise).
        expected: expected counts ``lam`` ``(n, n, n)``.
        selection: selection grid ``(n, n, n)`` in [0, 1].
        positions: galaxy positions ``(N_gal, 3)`` in Mpc/h, or ``None``.
    """

    counts: np.ndarray
    expected: np.ndarray
    selection: np.ndarray
    positions: np.ndarray | None


def draw_mock(
    key: jax.Array,
    delta: jax.Array,
    law: BiasLaw,
    bias_params: Any,
    nbar_cell: float,
    noise: NoiseModel,
    selection: np.ndarray,
    box: float | None = None,
) -> Mock:
    """Draw galaxy counts (and, if ``box`` is given, galaxy positions) from a density field.

    ``delta``: the observed matter density contrast ``(n, n, n)`` (e.g. from
    :func:`observed_density`); ``selection``: validated grid of the same shape; ``box``:
    box side [Mpc/h] to also place each galaxy uniformly in the volume of its cell (the cell
    of node ``i`` spans ``[i - 1/2, i + 1/2)`` cells, matching CIC), for integer counts only.
    """
    if box is not None and not noise.discrete:
        raise ValueError(f"positions need integer counts; the {noise.name} noise is real-valued")
    key_counts, key_pos = jax.random.split(key)
    counts, lam = _draw_counts(
        key_counts, delta, law, bias_params, nbar_cell, noise, jnp.asarray(selection)
    )
    counts = np.asarray(counts)
    positions = None if box is None else positions_in_cells(key_pos, counts, box)
    return Mock(counts, np.asarray(lam), np.asarray(selection), positions)


@partial(jax.jit, static_argnames=("law",))
def _draw_counts(key, delta, law, bias_params, nbar_cell, noise, selection):
    lam = expected_counts(delta, law, bias_params, nbar_cell, selection)
    return noise.sample(key, lam), lam


def positions_in_cells(key: jax.Array, counts: np.ndarray, box: float) -> np.ndarray:
    """``counts[i]`` uniform random positions in the cell of node ``i`` [Mpc/h], wrapped into
    ``[0, box)``; ``counts`` is an integer ``(n, n, n)`` array >= 0. Returns ``(sum, 3)``."""
    n = counts.shape[0]
    cells = np.repeat(np.arange(counts.size), counts.reshape(-1))
    nodes = np.stack(np.unravel_index(cells, counts.shape), axis=-1)
    rng = np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel())
    offsets = rng.uniform(-0.5, 0.5, size=nodes.shape)
    return np.mod((nodes + offsets) * (box / n), box).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class Observation:
    """How the survey sees the matter field; validated on construction (concrete values).

    Attributes:
        bias: name of a built-in bias law (:data:`simulator.observe.bias.BIAS_LAWS`).
        bias_params: parameter values of the law; those not given take the law's defaults
            (after construction the mapping holds every parameter).
        nbar_cell: amplitude of the bias law in galaxies per cell (> 0).
        noise: ``"poisson"``, ``"gaussian"`` or ``"negbinom"``.
        noise_params: parameters of the noise model (``sigma`` counts per cell; ``r``).
        rsd: redshift-space settings.
    """

    bias: str = "neyrinck"
    bias_params: Mapping[str, float] = dataclasses.field(default_factory=dict)
    nbar_cell: float = 2.0
    noise: str = "poisson"
    noise_params: Mapping[str, float] = dataclasses.field(default_factory=dict)
    rsd: RSDConfig = dataclasses.field(default_factory=RSDConfig)

    def __post_init__(self) -> None:
        params = self.law.make_params(self.bias_params)
        object.__setattr__(self, "bias_params", to_dict(params))
        if not (isinstance(self.nbar_cell, int | float) and math.isfinite(self.nbar_cell)):
            raise ValueError(f"nbar={self.nbar_cell!r} must be a finite number > 0")
        if self.nbar_cell <= 0:
            raise ValueError(f"nbar={self.nbar_cell!r} must be > 0 (galaxies per cell)")
        noise = make_noise(self.noise, self.noise_params)
        object.__setattr__(self, "noise_params", to_dict(noise))

    @property
    def law(self) -> BiasLaw:
        """The bias law."""
        return get_bias_law(self.bias)

    def bias_parameters(self) -> Any:
        """The bias parameters as the law's pytree."""
        return self.law.make_params(self.bias_params)

    def noise_model(self) -> NoiseModel:
        """The noise model with its parameters."""
        return make_noise(self.noise, self.noise_params)

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, Any]) -> Observation:
        """Rebuild the settings from the flat ``observation/...`` attributes of a ``mock.h5``."""
        pre = "observation/"

        def group(name: str) -> dict[str, Any]:
            head = f"{pre}{name}/"
            return {k[len(head) :]: v for k, v in attrs.items() if k.startswith(head)}

        rsd = group("rsd")
        observer = rsd.get("observer")
        return cls(
            bias=str(attrs[f"{pre}bias"]),
            bias_params={k: float(v) for k, v in group("bias_params").items()},
            nbar_cell=float(attrs[f"{pre}nbar_cell"]),
            noise=str(attrs[f"{pre}noise"]),
            noise_params={k: float(v) for k, v in group("noise_params").items()},
            rsd=RSDConfig(
                str(rsd["kind"]),
                los=tuple(float(x) for x in rsd["los"]),
                observer=None if observer is None else tuple(float(x) for x in observer),
            ),
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (for TOML and HDF5 attributes)."""
        rsd = {"kind": self.rsd.kind, "los": list(self.rsd.los), "observer": self.rsd.observer}
        return {
            "bias": self.law.name,
            "bias_params": dict(self.bias_params),
            "nbar_cell": self.nbar_cell,
            "noise": self.noise,
            "noise_params": dict(self.noise_params),
            "rsd": {k: v for k, v in rsd.items() if v is not None},
        }


@partial(jax.jit, static_argnames=("conf",))
def lpt_forward(seed: int | jax.Array, cosmo: Cosmology, conf: SimConfig) -> dict:
    """The LPT forward model: white noise of ``seed``, linear field and particles moved by
    ``conf.lpt_order`` LPT straight to ``conf.a_stop`` (no PM steps).

    Returns ``white_noise``, ``delta_linear`` (linear density contrast at a = 1) and
    ``delta`` (final CIC density contrast), each ``(mesh, mesh, mesh)``, and the particles
    ``disp``, ``vel`` ``(N, 3)`` in Mpc/h.
    """
    noise = ic.white_noise(seed, conf)
    delta_lin = ic.linear_field(noise, cosmo, conf)
    state = lpt.lpt(delta_lin, growth_table(cosmo), conf, a=conf.a_stop)
    return {
        "white_noise": noise,
        "delta_linear": delta_lin,
        "delta": density_contrast(state.disp, conf),
        "disp": state.disp,
        "vel": state.vel,
    }


def make_mock(
    seed: int,
    cosmo: Cosmology,
    conf: SimConfig,
    model: str,
    obs: Observation,
    selection: np.ndarray | None = None,
    positions: bool = False,
    progress: bool = False,
) -> tuple[Mock, dict[str, np.ndarray]]:
    """Forward model, observation and noise draw for one seed: ``(mock, truth)``.

    ``model``: ``"lpt1"``/``"lpt2"`` (1LPT/2LPT displacements to ``conf.a_stop``, whatever
    ``conf.lpt_order``) or ``"pm"`` (:func:`simulator.pipeline.simulate`: ``conf.lpt_order``
    LPT to ``a_start`` then ``conf.steps`` PM steps; ``progress`` shows a bar over them).
    ``truth`` holds ``white_noise``, ``delta_linear`` (a = 1), ``delta`` (final real-space
    matter density contrast) and ``delta_observed`` (in redshift space, what the bias law
    acts on), each ``(mesh, mesh, mesh)``. The counts are drawn with a key derived from
    ``seed``; ``selection`` defaults to a complete survey. Inputs are validated before any
    compilation.
    """
    if model not in MODELS:
        raise ValueError(f"model={model!r} is not allowed (allowed: {list(MODELS)})")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed={seed!r} is invalid: must be a non-negative integer")
    shape = (conf.mesh,) * 3
    selection = validate_selection(np.ones(shape) if selection is None else selection, shape)
    if positions and not obs.noise_model().discrete:
        raise ValueError(f"positions need integer counts; noise={obs.noise!r} gives real counts")
    if obs.rsd.kind == "radial":
        obs.rsd.observer_in(conf.box)
    cosmo.validate()
    if model == "pm":
        result = simulate(cosmo, conf, seed, progress=progress)
        fields = {
            "white_noise": result.noise,
            "delta_linear": result.delta_linear,
            "delta": result.delta,
            "disp": result.state.disp,
            "vel": result.state.vel,
        }
    else:
        conf = dataclasses.replace(conf, lpt_order=1 if model == "lpt1" else 2)
        fields = lpt_forward(seed, cosmo, conf)
    delta_obs = observed_density(fields["disp"], fields["vel"], conf, obs.rsd)
    key = jax.random.fold_in(jax.random.key(seed), 1)
    mock = draw_mock(
        key,
        delta_obs,
        obs.law,
        obs.bias_parameters(),
        obs.nbar_cell,
        obs.noise_model(),
        selection,
        conf.box if positions else None,
    )
    truth = {k: fields[k] for k in ("white_noise", "delta_linear", "delta")}
    truth["delta_observed"] = delta_obs
    return mock, {k: np.asarray(v) for k, v in truth.items()}


_DATASETS = {
    "data/counts": ("counts", "galaxies per cell", "observed galaxy counts on the mesh"),
    "data/selection": ("selection", "1", "survey selection (mask x radial x completeness)"),
    "data/galaxy_positions": ("positions", "Mpc/h", "galaxy positions (N_gal, 3)"),
    "truth/expected_counts": ("expected", "galaxies per cell", "nbar_cell * selection * F"),
}
_TRUTH = {
    "white_noise": ("1", "unit-variance white noise of the initial conditions"),
    "delta_linear": ("1", "linear density contrast at a = 1"),
    "delta": ("1", "final matter density contrast (real space, CIC)"),
    "delta_observed": ("1", "final matter density contrast in redshift space (CIC)"),
}


def write_mock(
    path: str | os.PathLike,
    mock: Mock,
    truth: Mapping[str, np.ndarray],
    obs: Observation,
    attrs: Mapping[str, Any],
) -> None:
    """Write ``mock.h5`` atomically: ``data/*`` (counts, selection, optional positions),
    ``truth/*`` (fields, expected counts, ``truth/bias/<name>`` scalars) and ``attrs``
    plus the observation settings (under ``observation/``) as file attributes."""
    with atomic_h5(path) as f:
        for name, (field, units, description) in _DATASETS.items():
            value = getattr(mock, field)
            if value is not None:
                f[name] = value
                f[name].attrs.update(units=units, description=description)
        for name, (units, description) in _TRUTH.items():
            f[f"truth/{name}"] = truth[name]
            f[f"truth/{name}"].attrs.update(units=units, description=description)
        for name, value in obs.bias_params.items():
            f[f"truth/bias/{name}"] = value
            f[f"truth/bias/{name}"].attrs.update(
                units="1", description=f"parameter {name} of the {obs.law.name} bias law"
            )
        set_attrs(f, attrs)
        set_attrs(f, obs.to_dict(), prefix="observation/")


def read_mock(path: str | os.PathLike) -> dict[str, Any]:
    """Every dataset of a ``mock.h5`` by its path (``"data/counts"``, ``"truth/bias/b1"``...),
    plus ``"attrs"``: the file attributes."""
    import h5py

    out: dict[str, Any] = {}
    with h5py.File(path, "r") as f:
        f.visititems(
            lambda name, obj: (
                out.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None
            )
        )
        out["attrs"] = dict(f.attrs)
    return out
