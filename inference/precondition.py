"""Linear preconditioning: the sampler moves a latent ``x`` with ``params = loc + A x``.

For the field, ``A`` is diagonal in Fourier space, ``s = irfft(rfft(x_s) * w(k))``, i.e. HMC in
whitened Fourier space with mass matrix ``w(k)^-2`` as BORG runs it. ``w = 1`` is the prior mass
matrix (the prior of ``s`` is the identity). ``w = (1 + F(k))^-1/2`` uses prior + data Fisher,
with ``F(k)`` the shell average of the likelihood Hessian, estimated by Hutchinson probes and
finite differences of the gradient (so it works through any forward model, including adjoint
gradients that support no forward-mode derivative). Scalars get ``loc`` and a scale each.
Because ``A`` is constant, the latent log density is the posterior one up to a constant.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from jax.flatten_util import ravel_pytree

from cosmolaw.pytree import pytree_dataclass
from inference.fields import fourier_filter, shell_mean
from inference.posterior import SCALAR_GROUPS, FieldPosterior, Params


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
        """Physical parameters of a latent point."""
        out: Params = {"s": fourier_filter(latent["s"], self.field_scale)}
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


def k2_shell_index(mesh: int) -> tuple[np.ndarray, int]:
    """Shells of equal integer ``|n|^2`` (``k = 2 pi n / box``) of the rfft modes, and their count.

    An isotropic operator is constant on each such shell, so averaging over it loses nothing.
    """
    n1 = np.fft.fftfreq(mesh, 1.0 / mesh)
    nz = np.fft.rfftfreq(mesh, 1.0 / mesh)
    k2 = n1[:, None, None] ** 2 + n1[None, :, None] ** 2 + nz[None, None, :] ** 2
    values, index = np.unique(np.rint(k2).astype(np.int64), return_inverse=True)
    return index.reshape(k2.shape).astype(np.int32), int(values.size)


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
    """Mass matrix from prior + data Fisher, estimated at ``params`` (e.g. the MAP).

    Args:
        posterior: the posterior.
        params: point where the Hessian of ``-log p`` is probed.
        key: PRNG key of the Hutchinson probes.
        num_probes: Gaussian probes of the field Hessian (2 gradients each).
        eps: finite-difference step of the probes, in units of the prior std of ``s`` (and
            of the scalars' prior std for their curvature).

    Returns:
        ``Preconditioner`` with ``w(k) = h(k)^-1/2``, ``h(k) >= 1`` the Hessian of ``-log p``
        in the field averaged over shells of equal ``|k|`` (the prior contributes 1), and
        scalar scales ``H_ii^-1/2`` (at most the prior std).
    """
    if num_probes < 1:
        raise ValueError(f"num_probes={num_probes} is not allowed: need at least 1")
    prior = prior_preconditioner(posterior, params)
    index, _ = k2_shell_index(posterior.mesh)
    h_shell, scalar_curv = _curvature_fn(posterior, num_probes, eps)(params, prior.scale, key)
    h = jnp.maximum(h_shell, 1.0)
    field_scale = jnp.asarray(1.0 / jnp.sqrt(h))[jnp.asarray(index)].astype(jnp.float32)
    scale = jax.tree.map(
        lambda curv, prior_std: (1.0 / jnp.sqrt(jnp.maximum(curv, prior_std**-2))).astype(
            jnp.float32
        ),
        scalar_curv,
        prior.scale,
    )
    return Preconditioner(field_scale, prior.loc, scale)


@functools.cache
def _curvature_fn(posterior: FieldPosterior, num_probes: int, eps: float) -> Callable:
    """Compiled ``(params, prior_scale, key) -> (h_shell, scalar_curvatures)`` of ``-log p``."""
    grad = jax.grad(posterior.logdensity)
    index, nbins = k2_shell_index(posterior.mesh)

    @jax.jit
    def run(params, prior_scale, key):
        def probe(z):
            up = grad({**params, "s": params["s"] + eps * z})["s"]
            down = grad({**params, "s": params["s"] - eps * z})["s"]
            zk, hzk = jnp.fft.rfftn(z), -jnp.fft.rfftn(up - down) / (2.0 * eps)
            return (
                shell_mean(jnp.real(jnp.conj(zk) * hzk), index, nbins),
                shell_mean(jnp.abs(zk) ** 2, index, nbins),
            )

        zs = jax.random.normal(key, (num_probes, *params["s"].shape), jnp.float32)
        num, den = jax.lax.map(probe, zs)
        h_shell = jnp.sum(num, 0) / jnp.maximum(jnp.sum(den, 0), 1e-30)

        flat, unravel = ravel_pytree({g: params[g] for g in prior_scale})
        steps = eps * ravel_pytree(prior_scale)[0]

        def scalar_grad(shift):
            g = grad({**params, **unravel(flat + shift)})
            return ravel_pytree({k: g[k] for k in prior_scale})[0]

        def scalar_curvature(i):
            shift = jnp.zeros_like(flat).at[i].set(steps[i])
            return -(scalar_grad(shift)[i] - scalar_grad(-shift)[i]) / (2.0 * steps[i])

        curv = jax.vmap(scalar_curvature)(jnp.arange(flat.size)) if flat.size else flat
        return h_shell, unravel(curv)

    return run


def latent_logdensity(
    posterior: FieldPosterior, precond: Preconditioner
) -> Callable[[Params], Array]:
    """Log density of the latent variables (the posterior's, up to a constant)."""

    def logdensity(latent: Params) -> Array:
        return posterior.logdensity(precond.to_params(latent))

    return logdensity
