"""Linear preconditioning: the sampler moves a latent ``x`` with ``params = loc + A x``.

For the field, ``A`` is diagonal in Fourier space, ``s = irfft(rfft(x_s) * w(k))``, i.e. HMC in
whitened Fourier space with mass matrix ``w(k)^-2`` as BORG runs it. ``w = 1`` is the prior mass
matrix (the prior of ``s`` is the identity). ``w = (1 + F(k))^-1/2`` uses prior + data Fisher
(:func:`fisher_preconditioner`). Scalars get ``loc`` and a scale each.
Because ``A`` is constant, the latent log density is the posterior one up to a constant.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax import Array
from jax.flatten_util import ravel_pytree

from cosmolaw.pytree import pytree_dataclass
from inference.fields import fourier_filter
from inference.posterior import SCALAR_GROUPS, FieldPosterior, Params
from inference.samplers.gibbs import ScalarConditional


@pytree_dataclass
class Preconditioner:
    """Affine map between latent and physical parameters.

    Attributes:
        field_scale: rfft-shaped ``(m, m, m//2+1)`` real multiplier ``w(k)`` of the field modes.
        loc: scalars' offsets ``{group: {name: value}}``.
        scale: scalars' scales ``{group: {name: value}}`` (posterior standard deviation guess).
    """

    field_scale: Array
    loc: dict
    scale: dict

    def to_params(self, latent: Params) -> Params:
        """Physical parameters of a latent point (the field leaf ``s`` may be absent)."""
        out: Params = {}
        if "s" in latent:
            out["s"] = fourier_filter(latent["s"], self.field_scale)
        for g in SCALAR_GROUPS:
            if g in latent:
                out[g] = {n: self.loc[g][n] + self.scale[g][n] * v for n, v in latent[g].items()}
        return out

    def to_latent(self, params: Params) -> Params:
        """Latent point of physical parameters."""
        out: Params = {"s": fourier_filter(params["s"], 1.0 / self.field_scale)}
        for g in SCALAR_GROUPS:
            if g in params:
                out[g] = {n: (v - self.loc[g][n]) / self.scale[g][n] for n, v in params[g].items()}
        return out


def prior_preconditioner(posterior: FieldPosterior, params: Params) -> Preconditioner:
    """Mass matrix from the prior: identity for the whitened field, prior std for the scalars."""
    m = posterior.mesh
    loc = {g: dict(params[g]) for g in SCALAR_GROUPS if g in params}
    scale = {
        g: {n: jnp.float32(posterior.priors[g][n][1]) for n in params[g]}
        for g in SCALAR_GROUPS
        if g in params
    }
    return Preconditioner(jnp.ones((m, m, m // 2 + 1), jnp.float32), loc, scale)


def fisher_preconditioner(
    posterior: FieldPosterior,
    params: Params,
    key: Array,
    num_probes: int = 8,
    eps: float = 1e-2,
) -> Preconditioner:
    """Mass matrix from prior + data Fisher information, diagonal in Fourier space.

    Field: ``h(k) = 1 + I_delta |J(k)|^2`` with ``J(k)`` the linear response of the final
    density to the white-noise mode ``k`` around ``s = 0`` (exact in Fourier space for a
    translation-invariant forward model: the response to a unit impulse), and ``I_delta`` the
    mean over cells of the likelihood's curvature in ``delta`` at ``delta(s = 0)``, i.e. the
    expected information at the mean density (BORG's choice). Both are finite differences,
    so they work through any forward model, adjoint gradients included. Scalars: the
    diagonal curvature of ``-log p`` at ``params`` (e.g. the MAP), at least the prior's.

    Args:
        posterior: the posterior.
        params: point for the scalars' curvature (its cosmology also sets the field's).
        key: PRNG key of the Hutchinson probes of ``I_delta``.
        num_probes: Rademacher probes of the likelihood curvature in ``delta``.
        eps: finite-difference step (units of the prior std of ``s``, and of the scalars'
            prior std).

    Returns:
        ``Preconditioner`` with ``w(k) = h(k)^-1/2`` and scalar scales ``H_ii^-1/2``.
    """
    if num_probes < 1:
        raise ValueError(f"num_probes={num_probes} is not allowed: need at least 1")
    prior = prior_preconditioner(posterior, params)
    h, scalar_curv = _curvature_fn(posterior, num_probes, eps)(params, prior.scale, key)
    scale = jax.tree.map(
        lambda curv, prior_std: (1.0 / jnp.sqrt(jnp.maximum(curv, prior_std**-2))).astype(
            jnp.float32
        ),
        scalar_curv,
        prior.scale,
    )
    return Preconditioner((1.0 / jnp.sqrt(h)).astype(jnp.float32), prior.loc, scale)


@functools.cache
def _curvature_fn(posterior: FieldPosterior, num_probes: int, eps: float) -> Callable:
    """Compiled ``(params, prior_scale, key) -> (h(k), scalar_curvatures)`` of ``-log p``."""
    grad = jax.grad(posterior.logdensity)

    @jax.jit
    def run(params, prior_scale, key):
        cosmo = params.get("cosmo", {})
        bias, noise = params.get("bias", {}), params.get("noise", {})
        shape = params["s"].shape
        impulse = jnp.zeros(shape, jnp.float32).at[0, 0, 0].set(eps)

        def final(s):
            return posterior.evolve(posterior.linear(s, cosmo), cosmo)

        response = jnp.fft.rfftn((final(impulse) - final(-impulse)) / (2.0 * eps))
        delta0 = final(jnp.zeros(shape, jnp.float32))
        fields0 = {"delta_L": jnp.zeros(shape, jnp.float32)}

        def loglik_grad(delta):
            return jax.grad(lambda d: posterior.loglik({**fields0, "delta": d}, bias, noise))(delta)

        def probe(z):
            hz = -(loglik_grad(delta0 + eps * z) - loglik_grad(delta0 - eps * z)) / (2.0 * eps)
            return jnp.mean(z * hz)

        zs = jax.random.rademacher(key, (num_probes, *shape), jnp.float32)
        info_delta = jnp.maximum(jnp.mean(jax.lax.map(probe, zs)), 0.0)
        h = 1.0 + info_delta * jnp.abs(response) ** 2

        flat, unravel = ravel_pytree({g: params[g] for g in prior_scale})
        steps = eps * ravel_pytree(prior_scale)[0]

        def scalar_grad(shift):
            g = grad({**params, **unravel(flat + shift)})
            return ravel_pytree({k: g[k] for k in prior_scale})[0]

        def scalar_curvature(i):
            shift = jnp.zeros_like(flat).at[i].set(steps[i])
            return -(scalar_grad(shift)[i] - scalar_grad(-shift)[i]) / (2.0 * steps[i])

        curv = jax.vmap(scalar_curvature)(jnp.arange(flat.size)) if flat.size else flat
        return h, unravel(curv)

    return run


def latent_logdensity(
    posterior: FieldPosterior, precond: Preconditioner
) -> Callable[[Params], Array]:
    """Log density of the latent variables (the posterior's, up to a constant)."""

    def logdensity(latent: Params) -> Array:
        return posterior.logdensity(precond.to_params(latent))

    return logdensity


def latent_scalar_conditional(
    posterior: FieldPosterior, precond: Preconditioner
) -> ScalarConditional:
    """The scalar block's latent log density for Gibbs sweeps, given the latent field.

    Uses :meth:`FieldPosterior.scalar_conditional`: without sampled cosmology, one forward run
    per sweep (charged as one gradient) and likelihood-only evaluations (charged as none);
    with it, a forward run per evaluation (charged as one gradient each).
    """

    def build(latent: Params) -> Callable[[Params], Array]:
        conditional = posterior.scalar_conditional(precond.to_params(latent))
        return lambda scalars: conditional(precond.to_params(scalars))

    if "cosmo" in posterior.priors:
        return ScalarConditional(build, 0, 1)
    return ScalarConditional(build, 1, 0)
