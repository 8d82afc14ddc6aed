"""Galaxy bias laws: the galaxy density in units of nbar_g as a function of the matter density.

Every law is a pure JAX function ``F(delta, params) -> array`` of the matter density contrast
``delta`` (a mesh of shape ``(n, n, n)``, dimensionless) and a parameter pytree, returning the
dimensionless ratio ``rho_g / nbar_g`` on the same mesh. The laws are differentiable in
``delta`` and in every parameter; the expected galaxy count in a cell is then
``nbar_cell * selection * F(delta)`` (see :func:`simulator.observe.mock.expected_counts`).

Laws (``x = 1 + delta``, floored at :data:`DENSITY_FLOOR` so that powers of empty cells stay
finite; the floor stops the gradient only in cells that are empty to within the floor):

- ``linear``: ``1 + b1 delta`` (not clipped: it is negative where ``b1 delta < -1``; the
  expected counts are floored smoothly, see :func:`simulator.observe.mock.expected_counts`);
- ``quadratic`` (alias ``b1b2bs2``): ``1 + b1 delta + b2/2 (delta^2 - <delta^2>)
  + bs2/2 (s^2 - <s^2>)`` (McDonald & Roy 2009 convention), with ``s^2 = s_ij s_ij`` the square
  of the tidal field ``s_ij = (k_i k_j / k^2 - delta_ij / 3) delta`` and ``<.>`` the mean over the
  mesh, so that the mean of F is ``1 + b1 <delta>``;
- ``power_law``: ``x^alpha``;
- ``neyrinck``: ``x^beta exp(-(x / rho_g)^(-epsilon))``, the power law with an exponential
  cut-off at low density of Neyrinck et al. (2014) used by BORG; it tends to ``x^beta`` as
  ``rho_g -> 0``;
- ``broken_power_law``: ``x^alpha_low (1 + (x / x_break)^(1/smoothness))^((alpha_high -
  alpha_low) smoothness)``, slope ``alpha_low`` below the break density ``x_break`` and
  ``alpha_high`` above it, the transition sharpening as ``smoothness -> 0``;
- any user-supplied JAX function ``F(delta, params)`` with a pytree of parameters: this is how a
  law found by symbolic regression returns to the forward model.

The power laws are not normalised to unit mean: ``nbar`` is then the amplitude of the law (as in
BORG), not the mean galaxy density.

Parameter domains are checked by :meth:`BiasLaw.make_params` and :func:`check_domain` (on
concrete values, before anything is compiled), raising ``ValueError`` that names the
parameter, its value and its domain.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from cosmolaw.pytree import pytree_dataclass

#: Lower bound applied to ``1 + delta`` inside the power laws (dimensionless).
DENSITY_FLOOR = 1e-6

BiasFunction = Callable[[jax.Array, Any], jax.Array]


def _is_concrete(value: Any) -> bool:
    """True for Python/NumPy numbers and concrete JAX arrays (not tracers or placeholders)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float | np.ndarray | np.generic):
        return True
    return isinstance(value, jax.Array) and not isinstance(value, jax.core.Tracer)


def check_scalar(
    owner: str, name: str, value: Any, ok: Callable[[float], bool], allowed: str
) -> None:
    """Raise ``ValueError`` if a concrete parameter ``value`` is not a finite scalar passing ``ok``.

    Tracers and other placeholders (parameters rebuilt inside ``jit``) are not checked.
    ``owner`` names the law or model the parameter belongs to, ``allowed`` its domain.
    """
    if not _is_concrete(value):
        return
    arr = np.asarray(value, dtype=float)
    if arr.ndim != 0 or not np.isfinite(arr) or not ok(float(arr)):
        raise ValueError(
            f"parameter {name}={np.asarray(value).tolist()!r} of {owner} is out of its "
            f"domain: must be a finite scalar {allowed}"
        )


#: A parameter domain: a predicate on the value and the words that describe it.
Domain = dict[str, tuple[Callable[[float], bool], str]]
POSITIVE = (lambda v: v > 0, "> 0")
REAL = (lambda v: True, "")


def check_domain(owner: str, params: Any) -> Any:
    """Check each field of the dataclass ``params`` listed in its class's ``DOMAIN``.

    Returns ``params``; raises ``ValueError`` naming the first parameter out of its domain.
    Parameter objects are not checked when built (gradients and optimiser updates rebuild
    them with any values), so call this, or :meth:`BiasLaw.make_params`, at the boundary.
    """
    for name, (ok, allowed) in getattr(type(params), "DOMAIN", {}).items():
        check_scalar(owner, name, getattr(params, name), ok, allowed)
    return params


@pytree_dataclass
class LinearBias:
    """Parameters of the linear law ``1 + b1 delta``; ``b1 > 0``."""

    b1: float = 1.5
    DOMAIN: ClassVar[Domain] = {"b1": POSITIVE}


@pytree_dataclass
class QuadraticBias:
    """Parameters of the second-order local law (b1 > 0; b2 and bs2 any finite value)."""

    b1: float = 1.5
    b2: float = 0.5
    bs2: float = -0.3
    DOMAIN: ClassVar[Domain] = {"b1": POSITIVE, "b2": REAL, "bs2": REAL}


@pytree_dataclass
class PowerLawBias:
    """Parameters of the power law ``(1 + delta)^alpha``; ``alpha > 0``."""

    alpha: float = 1.5
    DOMAIN: ClassVar[Domain] = {"alpha": POSITIVE}


@pytree_dataclass
class NeyrinckBias:
    """Parameters of the Neyrinck et al. (2014) law: exponent ``beta > 0``, cut-off density
    ``rho_g > 0`` (in units of the mean matter density) and cut-off steepness ``epsilon > 0``."""

    beta: float = 1.5
    rho_g: float = 0.4
    epsilon: float = 1.5
    DOMAIN: ClassVar[Domain] = {"beta": POSITIVE, "rho_g": POSITIVE, "epsilon": POSITIVE}


@pytree_dataclass
class BrokenPowerLawBias:
    """Parameters of the smoothly broken power law: slopes ``alpha_low > 0`` and
    ``alpha_high > 0``, break density ``x_break > 0`` (units of the mean matter density) and
    ``smoothness > 0`` (width of the transition in ln x)."""

    alpha_low: float = 2.0
    alpha_high: float = 1.0
    x_break: float = 1.0
    smoothness: float = 0.5
    DOMAIN: ClassVar[Domain] = {
        "alpha_low": POSITIVE,
        "alpha_high": POSITIVE,
        "x_break": POSITIVE,
        "smoothness": POSITIVE,
    }


def _log_density(delta: jax.Array) -> jax.Array:
    """``ln max(1 + delta, DENSITY_FLOOR)``."""
    return jnp.log(jnp.maximum(1.0 + delta, DENSITY_FLOOR))


def linear(delta: jax.Array, params: LinearBias) -> jax.Array:
    """``1 + b1 delta`` on the mesh ``delta`` (any shape); dimensionless."""
    return 1.0 + params.b1 * delta


@jax.jit
def tidal_field_squared(delta: jax.Array) -> jax.Array:
    """``s^2 = s_ij s_ij`` with ``s_ij = IFFT[(k_i k_j / k^2 - delta_ij / 3) FFT[delta]]``.

    ``delta``: mesh of shape ``(n0, n1, n2)`` with cubic cells (the result does not depend on
    the cell size). The ``k = 0`` mode is dropped. Returns a mesh of the same shape.
    """
    shape = delta.shape
    delta_k = jnp.fft.rfftn(delta)
    freqs = [np.fft.fftfreq(n) for n in shape[:-1]] + [np.fft.rfftfreq(shape[-1])]
    kvec = [
        jnp.asarray(f.reshape([-1 if a == i else 1 for a in range(len(shape))]), delta.dtype)
        for i, f in enumerate(freqs)
    ]
    k2 = sum(k**2 for k in kvec)
    inv_k2 = jnp.where(k2 > 0, 1.0 / jnp.where(k2 > 0, k2, 1.0), 0.0)
    s2 = jnp.zeros(shape, delta.dtype)
    for i in range(3):
        for j in range(i, 3):
            kernel = kvec[i] * kvec[j] * inv_k2 - (1.0 / 3.0 if i == j else 0.0) * (k2 > 0)
            s_ij = jnp.fft.irfftn(kernel * delta_k, s=shape)
            s2 = s2 + (1.0 if i == j else 2.0) * s_ij**2
    return s2


@jax.jit
def quadratic(delta: jax.Array, params: QuadraticBias) -> jax.Array:
    """Second-order local bias with tidal term on the mesh ``delta`` of shape ``(n, n, n)``."""
    d2 = delta**2
    s2 = tidal_field_squared(delta)
    return (
        1.0
        + params.b1 * delta
        + 0.5 * params.b2 * (d2 - jnp.mean(d2))
        + 0.5 * params.bs2 * (s2 - jnp.mean(s2))
    )


def power_law(delta: jax.Array, params: PowerLawBias) -> jax.Array:
    """``(1 + delta)^alpha`` (any shape); dimensionless."""
    return jnp.exp(params.alpha * _log_density(delta))


def neyrinck(delta: jax.Array, params: NeyrinckBias) -> jax.Array:
    """``(1 + delta)^beta exp(-((1 + delta) / rho_g)^(-epsilon))`` (any shape)."""
    log_x = _log_density(delta)
    cutoff = jnp.exp(params.epsilon * (jnp.log(params.rho_g) - log_x))
    return jnp.exp(params.beta * log_x - cutoff)


def broken_power_law(delta: jax.Array, params: BrokenPowerLawBias) -> jax.Array:
    """Smoothly broken power law of ``1 + delta`` (any shape); see the module docstring."""
    log_x = _log_density(delta)
    u = (log_x - jnp.log(params.x_break)) / params.smoothness
    slope_change = (params.alpha_high - params.alpha_low) * params.smoothness
    return jnp.exp(params.alpha_low * log_x + slope_change * jax.nn.softplus(u))


class BiasLaw(NamedTuple):
    """A named bias law: ``fn(delta, params)`` and the type of its parameters.

    ``params_type`` is ``None`` for a user-supplied function, whose parameters are any pytree
    (e.g. a dict of floats).
    """

    name: str
    fn: BiasFunction
    params_type: type | None

    def __call__(self, delta: jax.Array, params: Any) -> jax.Array:
        return self.fn(delta, params)

    def make_params(self, values: Mapping[str, float] | None = None) -> Any:
        """Validated parameters from ``values`` (defaults filled in for the built-in laws).

        Raises ``ValueError`` naming an unknown parameter or one outside its domain.
        """
        values = dict(values or {})
        if self.params_type is None:
            for name, value in values.items():
                check_scalar(f"bias law {self.name}", name, value, *REAL)
            return {name: float(value) for name, value in values.items()}
        known = [f.name for f in dataclasses.fields(self.params_type)]
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ValueError(
                f"bias parameter {unknown[0]!r} is not a parameter of the {self.name!r} law "
                f"(its parameters: {', '.join(known)})"
            )
        params = self.params_type(**{k: float(v) for k, v in values.items()})
        return check_domain(f"bias law {self.name}", params)


#: Built-in laws by name.
BIAS_LAWS: dict[str, BiasLaw] = {
    "linear": BiasLaw("linear", linear, LinearBias),
    "quadratic": BiasLaw("quadratic", quadratic, QuadraticBias),
    "b1b2bs2": BiasLaw("quadratic", quadratic, QuadraticBias),
    "power_law": BiasLaw("power_law", power_law, PowerLawBias),
    "neyrinck": BiasLaw("neyrinck", neyrinck, NeyrinckBias),
    "broken_power_law": BiasLaw("broken_power_law", broken_power_law, BrokenPowerLawBias),
}


def get_bias_law(spec: str | BiasFunction | BiasLaw) -> BiasLaw:
    """The bias law named ``spec`` (a key of :data:`BIAS_LAWS`), or wrap a JAX function.

    A callable must have the signature ``F(delta, params) -> array`` of the same shape as
    ``delta``; check it on a mesh shape with :func:`check_bias`.
    """
    if isinstance(spec, BiasLaw):
        return spec
    if isinstance(spec, str):
        if spec not in BIAS_LAWS:
            raise ValueError(
                f"bias={spec!r} is not a known bias law (allowed: {sorted(BIAS_LAWS)})"
            )
        return BIAS_LAWS[spec]
    if callable(spec):
        return BiasLaw(getattr(spec, "__name__", "custom"), spec, None)
    raise ValueError(f"bias={spec!r} must be the name of a bias law or a callable F(delta, params)")


def check_bias(law: BiasLaw, params: Any, shape: tuple[int, ...]) -> None:
    """Check that ``law`` with ``params`` maps a mesh of ``shape`` to a real mesh of that shape.

    Checks the parameter domains (:func:`check_domain`), then traces the law abstractly
    (``jax.eval_shape``, nothing is compiled); raises ``ValueError`` naming ``bias`` when it
    fails or returns the wrong shape, and ``bias_params`` when the parameters are not of the
    law's type.
    """
    if law.params_type is not None and not isinstance(params, law.params_type):
        raise ValueError(
            f"bias_params={params!r} must be a {law.params_type.__name__} for the {law.name!r} law"
        )
    check_domain(f"bias law {law.name}", params)
    probe = jax.ShapeDtypeStruct(tuple(shape), jnp.float32)
    try:
        out = jax.eval_shape(law.fn, probe, params)
    except Exception as err:  # any failure of a user function is a bad input
        raise ValueError(f"bias={law.name!r} cannot be evaluated on a mesh {shape}: {err}") from err
    if not isinstance(out, jax.ShapeDtypeStruct) or out.shape != tuple(shape):
        got = getattr(out, "shape", type(out).__name__)
        raise ValueError(f"bias={law.name!r} must return an array of shape {shape}, got {got}")
    if not jnp.issubdtype(out.dtype, jnp.floating):
        raise ValueError(f"bias={law.name!r} must return a real floating array, got {out.dtype}")
