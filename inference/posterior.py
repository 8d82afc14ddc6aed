"""The field-level posterior: white noise, bias, optional cosmology and noise parameters.

Parameters are a pytree (a dict) ``{"s": (m, m, m), "bias": {...}, "cosmo": {...}, "noise":
{...}}``; the field leaf ``s`` has its mesh axes leading, so it can be sharded, and a chain axis
can be stacked in front of every leaf with ``vmap``. Scalar groups may be empty. The log density
is

    log p = log L(data | evolve(linear(s, cosmo), cosmo), bias, noise) - |s|^2 / 2
            + sum of Gaussian log priors of the scalars

up to a constant. Everything is a pure JAX function: compile it once inside a sampler.

A posterior built with a device mesh (``devices``, e.g. :func:`inference.models.counts_posterior`
with ``devices=N``) runs its forward model on the sharded particle mesh of
``simulator.distributed``: ``s``, the fields and the gradient in ``s`` are split along their
first axis over the devices (slabs of ``m / N`` planes), so one chain uses several devices.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
from jax import Array
from jax.sharding import Mesh, NamedSharding

Params = dict[str, Any]
#: Groups of scalar parameters, in storage order.
SCALAR_GROUPS = ("bias", "cosmo", "noise")

FieldFn = Callable[[Array, Mapping[str, Array]], Array]
LoglikFn = Callable[[Mapping[str, Array], Mapping[str, Array], Mapping[str, Array]], Array]


@dataclasses.dataclass(frozen=True, eq=False)
class FieldPosterior:
    """Posterior of the initial white noise and scalar parameters given data on a mesh.

    Attributes:
        mesh: cells per side of the white noise ``s`` (shape ``(mesh,)*3``).
        box: comoving box side [Mpc/h].
        linear: ``(s, cosmo) -> delta_L``, the linear density contrast ``(m, m, m)`` (cheap).
        evolve: ``(delta_L, cosmo) -> delta``, the final density contrast ``(m, m, m)`` at the
            observation time (the forward model: LPT or PM).
        loglik: ``(fields, bias, noise) -> scalar`` log-likelihood of the data given
            ``fields = {"delta_L": ..., "delta": ...}``.
        priors: ``{group: {name: (mean, std)}}`` Gaussian priors of the sampled scalars; the
            groups are ``bias``, ``cosmo``, ``noise`` (missing groups are not sampled).
        name: short description of the data and forward model, stored in outputs.
        devices: ``None`` (one device), or the 1D device mesh of the slab decomposition
            (``simulator.distributed.mesh.device_mesh``) that ``linear`` and ``evolve`` run
            on; ``s`` and the fields are then sharded along axis 0 (:attr:`field_sharding`).
        unobserved: ``None`` (the data cover every cell), or a boolean ``(m, m, m)`` array,
            true on the cells the data say nothing about (zero selection, a survey mask),
            which the curvature preconditioners take into account
            (:mod:`inference.precondition`).
    """

    mesh: int
    box: float
    linear: FieldFn
    evolve: FieldFn
    loglik: LoglikFn
    priors: Mapping[str, Mapping[str, tuple[float, float]]]
    name: str = "field posterior"
    devices: Mesh | None = None
    unobserved: Array | None = None

    def __post_init__(self) -> None:
        if self.mesh < 2:
            raise ValueError(f"mesh={self.mesh} is not allowed: need at least 2 cells per side")
        if not self.box > 0:
            raise ValueError(f"box={self.box} is not allowed: need a positive size in Mpc/h")
        for group, table in self.priors.items():
            if group not in SCALAR_GROUPS:
                raise ValueError(
                    f"prior group {group!r} is not allowed: use one of {SCALAR_GROUPS}"
                )
            for pname, (_, std) in table.items():
                if not std > 0:
                    raise ValueError(f"prior std of {group}/{pname}={std} must be positive")

    @property
    def field_sharding(self) -> NamedSharding | None:
        """Sharding of ``s`` and the fields ``(m, m, m)`` over :attr:`devices` (slabs along
        axis 0); ``None`` on one device."""
        if self.devices is None:
            return None
        from simulator.distributed.mesh import real_sharding

        return real_sharding(self.devices)

    def shard_field(self, field: Array) -> Array:
        """``field`` ``(m, m, m)`` constrained to :attr:`field_sharding` (itself on one
        device); works inside ``jit`` and ``vmap`` and outside them."""
        if self.devices is None:
            return field
        return jax.lax.with_sharding_constraint(field, self.field_sharding)

    @property
    def scalar_names(self) -> list[str]:
        """Names ``group/param`` of the sampled scalar parameters, in storage order."""
        return [f"{g}/{n}" for g in SCALAR_GROUPS for n in self.priors.get(g, {})]

    def initial_params(self, s: Array | None = None) -> Params:
        """Parameters with scalars at their prior means and ``s`` (zeros by default)."""
        if s is None:
            s = jnp.zeros((self.mesh,) * 3, jnp.float32)
        params: Params = {"s": self.shard_field(jnp.asarray(s, jnp.float32))}
        for g in SCALAR_GROUPS:
            params[g] = {n: jnp.float32(m) for n, (m, _) in self.priors.get(g, {}).items()}
        return params

    def fields(self, params: Params) -> dict[str, Array]:
        """Linear and final density fields ``{"delta_L", "delta"}`` of ``params``."""
        cosmo = params.get("cosmo", {})
        delta_l = self.linear(self.shard_field(params["s"]), cosmo)
        return {"delta_L": delta_l, "delta": self.evolve(delta_l, cosmo)}

    def log_prior(self, params: Params) -> Array:
        """Gaussian log prior of ``s`` (unit white noise) and of the scalars, up to a constant."""
        return -0.5 * jnp.sum(jnp.square(params["s"])) + self.scalar_log_prior(params)

    def scalar_log_prior(self, params: Params) -> Array:
        """Gaussian log prior of the sampled scalars of ``params``, up to a constant."""
        lp = jnp.zeros((), jnp.float32)
        for g, table in self.priors.items():
            for n, (mean, std) in table.items():
                lp = lp - 0.5 * jnp.square((params[g][n] - mean) / std)
        return lp

    def scalar_conditional(self, params: Params) -> Callable[[Params], Array]:
        """``scalars -> log p`` at the field ``s`` of ``params``, up to a function of ``s``.

        ``scalars`` holds the scalar groups (``{"bias": {...}, ...}``). Without sampled
        cosmology the fields do not depend on the scalars: the forward model runs once, here,
        and every call only evaluates the likelihood and the priors on those fields.
        """
        if "cosmo" in self.priors:
            return lambda scalars: self.logdensity({**params, **scalars})
        fields = self.fields(params)

        def logdensity(scalars: Params) -> Array:
            full = {**params, **scalars}
            ll = self.loglik(fields, full.get("bias", {}), full.get("noise", {}))
            return ll + self.scalar_log_prior(full)

        return logdensity

    def logdensity(self, params: Params) -> Array:
        """Unnormalised log posterior density of ``params`` (a scalar)."""
        fields = self.fields(params)
        ll = self.loglik(fields, params.get("bias", {}), params.get("noise", {}))
        return ll + self.log_prior(params)

    def scalar_vector(self, params: Params) -> Array:
        """The sampled scalars stacked in the order of :attr:`scalar_names`, shape ``(n,)``."""
        values = [params[g][n] for g in SCALAR_GROUPS for n in self.priors.get(g, {})]
        if not values:
            return jnp.zeros((0,), jnp.float32)
        return jnp.stack([jnp.asarray(v, jnp.float32) for v in values])


def value_and_grad(posterior: FieldPosterior) -> Callable[[Params], tuple[Array, Params]]:
    """The compiled ``params -> (log p, d log p / d params)`` of ``posterior``."""
    return jax.jit(jax.value_and_grad(posterior.logdensity))
