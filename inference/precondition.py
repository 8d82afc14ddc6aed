"""Preconditioning: the sampler moves a latent ``x`` with ``params = loc + A x``.

For the field, ``A`` is diagonal in Fourier space, ``s = irfft(rfft(x_s) * w(k))``, i.e. HMC in
whitened Fourier space with mass matrix ``w(k)^-2`` as BORG runs it. ``w = 1`` is the prior mass
matrix (the prior of ``s`` is the identity). ``w = (1 + F(k))^-1/2`` uses prior + data Fisher
(:func:`fisher_preconditioner`) or the observed Hessian's Fourier diagonal
(:func:`hessian_preconditioner`); :func:`rescale_shells` corrects ``w`` per k-shell from the
latent variance of samples. Scalars get ``loc`` and a scale each.

With sampled cosmology the field's map also depends on it (a partially centred
parametrisation, Papaspiliopoulos, Roberts & Skold 2007): the linear field is
``delta_L(k) = T(k; theta) s(k)`` (``T ~ sigma8 sqrt(P(k; Omega_m))``), so at fixed data every
data-dominated mode of ``s`` must rescale when ``sigma8`` moves, a thin ridge that a diagonal
mass matrix crosses slowly. The curvature preconditioners therefore sample

    s(k) = w(k) (T(k; theta_ref) / T(k; theta))^c(k) x(k),   c(k) = F(k) / (1 + F(k)),

centred (``delta_L`` independent of ``theta`` at fixed ``x``) where the data dominate
(``c -> 1``) and non-centred where the prior does (``c -> 0``); the latent log density then
carries the log-Jacobian ``sum_k c(k) log(T(k; theta_ref) / T(k; theta))`` over the modes of
the full FFT. Otherwise ``A`` is constant and the latent log density is the posterior one up to
a constant.

A survey mask breaks the Fourier diagonal. With the data's information only on the observed
cells (projection ``O``, the unseen ones ``U = 1 - O``), the linearised posterior precision of
``s`` is ``I + G O G`` (``G`` the Fourier filter ``sqrt(h(k) - 1)``, ``h`` from the information
per observed cell) rather than ``W^-2 = I + G^2``, so its covariance is
``W (1 - M)^-1 W`` with ``M = R U R`` and ``R`` the filter ``r(k) = sqrt(1 - 1/h(k))``: the
unseen cells' small scales keep the prior's width, many times what ``W`` gives them where the
data dominate (on issue 16's 64^3 posterior, an eighth of the box masked, a Fourier-diagonal
map left latent variances of 3-8 at k = 0.05-0.2 h/Mpc; on its 32^3 analogue the P(k) mixed
4.7 times more slowly than without the mask, ``benchmarks/mask_mixing.py``, and 2.3 times
with this map). Where the posterior names such cells
(:attr:`FieldPosterior.unobserved`) the curvature preconditioners map
``s = W(theta) p(M) x`` with ``p`` the first :data:`MASK_SERIES_TERMS` terms of the binomial
series of ``(1 - M)^-1/2``: constant, symmetric positive definite (every coefficient is
positive and ``0 <= M < 1``), so the log-Jacobian is the one above plus a constant.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax import Array
from jax.flatten_util import ravel_pytree
from jax.sharding import Mesh

from cosmolaw.pytree import pytree_dataclass, static_field
from inference.fields import fft_hooks, fourier_filter, mode_multiplicity, shell_index, shell_mean
from inference.posterior import SCALAR_GROUPS, FieldPosterior, Params
from inference.samplers.gibbs import ScalarConditional

#: Terms of the binomial series of ``(1 - M)^-1/2`` after the 1 that the mask operator's map
#: keeps (module docstring): each costs two FFT pairs per evaluation of the map.
MASK_SERIES_TERMS = 4
#: The series' coefficients ``binom(2j, j) / 4^j``, ``j = 1 .. MASK_SERIES_TERMS``.
MASK_SERIES = tuple(math.comb(2 * j, j) / 4.0**j for j in range(1, MASK_SERIES_TERMS + 1))


@pytree_dataclass
class Preconditioner:
    """Map between latent and physical parameters: affine, or with :attr:`centring` a field
    map that also depends on the latent cosmology (module docstring).

    Attributes:
        field_scale: rfft-shaped ``(m, m, m//2+1)`` real multiplier ``w(k)`` of the field modes.
        loc: scalars' offsets ``{group: {name: value}}``.
        scale: scalars' scales ``{group: {name: value}}`` (posterior standard deviation guess).
        centring: ``None`` (the field's map does not depend on the cosmology), or the rfft-shaped
            ``(m, m, m//2+1)`` exponent ``c(k)`` in [0, 1] of the partially centred map (module
            docstring); zeros give the plain map.
        log_transfer: with ``centring``, ``log T(k; theta_ref)`` rfft-shaped (0 where ``T = 0``),
            ``T`` the linear field's Fourier filter [dimensionless, per unit white noise] at
            the reference cosmology ``theta_ref``.
        transfer: with ``centring`` (static): ``cosmo -> |T(k; theta)|`` rfft-shaped, the
            posterior's linear filter at the physical cosmological parameters ``cosmo``.
        devices: the posterior's device mesh (:attr:`FieldPosterior.devices`, static): the
            field's Fourier filter then runs on the slab FFT and keeps ``s`` sharded.
        unobserved: ``None``, or the boolean ``(m, m, m)`` cells the data do not see
            (:attr:`FieldPosterior.unobserved`).
        mask_filter: with :attr:`unobserved`, the rfft-shaped ``r(k)`` in [0, 1) of the mask
            operator ``M = R U R`` (module docstring); zeros give the plain map.
    """

    field_scale: Array
    loc: dict
    scale: dict
    centring: Array | None = None
    log_transfer: Array | None = None
    transfer: Callable[[dict], Array] | None = static_field(None)
    devices: Mesh | None = static_field(None)
    unobserved: Array | None = None
    mask_filter: Array | None = None

    def to_params(self, latent: Params) -> Params:
        """Physical parameters of a latent point (the field leaf ``s`` may be absent; with
        :attr:`centring` it needs the latent cosmology)."""
        out: Params = {}
        for g in SCALAR_GROUPS:
            if g in latent:
                out[g] = {n: self.loc[g][n] + self.scale[g][n] * v for n, v in latent[g].items()}
        if "s" in latent:
            kernel = self.field_scale * self._centring_factor(out)
            out["s"] = fourier_filter(self._mask_series(latent["s"]), kernel, self.devices)
        return out

    def to_latent(self, params: Params) -> Params:
        """Latent point of physical parameters (with :attr:`unobserved`, to the precision of
        a conjugate-gradient solve, about 1e-5 relative)."""
        kernel = self.field_scale * self._centring_factor(params)
        field = fourier_filter(params["s"], 1.0 / kernel, self.devices)
        if self.unobserved is not None:
            field, _ = jax.scipy.sparse.linalg.cg(self._mask_series, field, field, maxiter=100)
        out: Params = {"s": field}
        for g in SCALAR_GROUPS:
            if g in params:
                out[g] = {n: (v - self.loc[g][n]) / self.scale[g][n] for n, v in params[g].items()}
        return out

    def _mask_series(self, x: Array) -> Array:
        """``p(M) x`` (module docstring) by Horner's rule; ``x`` without :attr:`unobserved`."""
        if self.unobserved is None:
            return x

        def mask_operator(v: Array) -> Array:
            filtered = fourier_filter(v, self.mask_filter, self.devices)
            return fourier_filter(
                jnp.where(self.unobserved, filtered, 0.0), self.mask_filter, self.devices
            )

        out = MASK_SERIES[-1] * x
        for coefficient in MASK_SERIES[-2::-1]:
            out = coefficient * x + mask_operator(out)
        return x + mask_operator(out)

    def log_jacobian(self, latent: Params) -> Array:
        """``log |det d s / d x_s|`` of the field's map at ``latent``, up to a constant (0
        without :attr:`centring`): ``sum_k c(k) log(T(k; theta_ref) / T(k; theta))`` over the
        modes of the full FFT (``rfftn`` entries weighted by their multiplicity)."""
        if self.centring is None:
            return jnp.zeros((), jnp.float32)
        log_ratio = self._log_ratio(self.to_params({"cosmo": latent["cosmo"]}))
        mesh = self.field_scale.shape[0]
        return jnp.sum(jnp.asarray(mode_multiplicity(mesh)) * self.centring * log_ratio)

    def _log_ratio(self, params: Params) -> Array:
        """``log(T(k; theta_ref) / T(k; theta))`` rfft-shaped at the physical cosmology of
        ``params`` (0 where ``T(k; theta)`` vanishes; ``c(k) = 0`` where ``T(k; theta_ref)``
        does)."""
        if "cosmo" not in params:
            raise ValueError(
                "a preconditioner centred on the cosmology needs the cosmological parameters "
                "with the field: pass the 'cosmo' group"
            )
        t = self.transfer(params["cosmo"])
        live = t > 0
        return jnp.where(live, self.log_transfer - jnp.log(jnp.where(live, t, 1.0)), 0.0)

    def _centring_factor(self, params: Params) -> Array | float:
        """``(T(k; theta_ref) / T(k; theta))^c(k)`` rfft-shaped (1.0 without centring)."""
        if self.centring is None:
            return 1.0
        return jnp.exp(self.centring * self._log_ratio(params))


def prior_preconditioner(posterior: FieldPosterior, params: Params) -> Preconditioner:
    """Mass matrix from the prior: identity for the whitened field, prior std for the scalars.

    With sampled cosmology the field's map is the plain non-centred one (``c(k) = 0``), in the
    layout of the centred preconditioners (so a checkpoint of either reads into it).
    """
    m = posterior.mesh
    loc = {g: dict(params[g]) for g in SCALAR_GROUPS if g in params}
    scale = {
        g: {n: jnp.float32(posterior.priors[g][n][1]) for n in params[g]}
        for g in SCALAR_GROUPS
        if g in params
    }
    ones = jnp.ones((m, m, m // 2 + 1), jnp.float32)
    zeros = jnp.zeros_like(ones)
    fields = {"devices": posterior.devices}
    if posterior.unobserved is not None:
        fields.update(unobserved=posterior.unobserved, mask_filter=zeros)
    if "cosmo" not in posterior.priors:
        return Preconditioner(ones, loc, scale, **fields)
    return Preconditioner(ones, loc, scale, zeros, zeros, linear_transfer(posterior), **fields)


@functools.cache
def linear_transfer(posterior: FieldPosterior) -> Callable[[dict], Array]:
    """``cosmo -> |T(k; cosmo)|``, rfft-shaped ``(m, m, m//2+1)``: the Fourier filter of the
    posterior's ``linear`` (a filter of the white noise, translation invariant), as its
    response to a unit impulse [dimensionless per unit white noise; ``sqrt(P(k) / V_cell)``
    for :func:`inference.models.counts_posterior`]. One function per posterior (cached), so
    compiled samplers keyed on the preconditioner's static fields are reused."""
    rfftn = fft_hooks(posterior.devices)["rfftn"]
    m = posterior.mesh

    def transfer(cosmo: dict) -> Array:
        impulse = jnp.zeros((m,) * 3, jnp.float32).at[0, 0, 0].set(1.0)
        return jnp.abs(rfftn(posterior.linear(posterior.shard_field(impulse), cosmo)))

    return transfer


def fisher_preconditioner(
    posterior: FieldPosterior,
    params: Params,
    key: Array,
    num_probes: int = 8,
    eps: float = 1e-2,
    centre: bool = True,
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
        centre: with sampled cosmology, centre the field's map on it partially with
            ``c(k) = 1 - 1/h(k)`` around the cosmology of ``params`` (module docstring) and
            take the scalars' curvature at fixed latent field; ``False`` keeps ``c = 0``.

    Returns:
        ``Preconditioner`` with ``w(k) = h(k)^-1/2`` and scalar scales ``H_ii^-1/2``.
    """
    return _curvature_preconditioner(posterior, params, key, "fisher", num_probes, eps, centre)


def hessian_preconditioner(
    posterior: FieldPosterior,
    params: Params,
    key: Array,
    num_probes: int = 8,
    eps: float = 1e-2,
    centre: bool = True,
) -> Preconditioner:
    """Mass matrix from the observed curvature of ``-log p`` at ``params`` (e.g. the MAP).

    Field: ``h(k) = 1 + I(|k|) |J(k)|^2``, the Fourier diagonal of the Hessian in ``s``, with
    ``J(k)`` the impulse response of :func:`fisher_preconditioner` (it carries the anisotropy
    of the mass assignment) and ``I(|k|)`` fitted per k-shell to Hutchinson estimates of the
    Hessian's Fourier diagonal: for a real Gaussian probe ``z``,
    ``D_k = Re(conj(z_k) (H z)_k) / |z_k|^2`` averages to ``H_kk`` (the other modes of ``z``
    are independent of ``z_k``) and is exact for a Hessian diagonal in Fourier space. Hessian
    vector products are central differences of the gradient, so they work through any
    forward model. Unlike the expected Fisher information at the mean density, this sees the
    data's actual curvature at the point (stiffer in underdense cells for Poisson counts)
    and the response of the evolved, displaced field there. A shell of few modes can come
    out near zero or negative (probe noise), so ``I(|k|)`` is floored at
    :data:`INFORMATION_FLOOR` times the expected information ``I_delta`` of
    :func:`fisher_preconditioner` (as many probes, Rademacher, from ``fold_in(key, 1)``): no
    shell gets less data curvature than the expected Fisher information. Scalars as in
    :func:`fisher_preconditioner`.

    Args:
        posterior: the posterior.
        params: point of the Hessian.
        key: PRNG key of the Gaussian probes.
        num_probes: probes (Hessian-vector products, two gradients each).
        eps: finite-difference step (units of the prior std of ``s`` and of the scalars).
        centre: as in :func:`fisher_preconditioner`.

    Returns:
        ``Preconditioner`` with ``w(k) = h(k)^-1/2`` and scalar scales ``H_ii^-1/2``.
    """
    return _curvature_preconditioner(posterior, params, key, "hessian", num_probes, eps, centre)


#: Floor of the observed per-shell data information ``I(|k|)`` of
#: :func:`hessian_preconditioner`, as a fraction of the expected Fisher information
#: ``I_delta`` of :func:`fisher_preconditioner` (both per unit ``|J(k)|^2``). On the
#: benchmark's 32^3 PM posterior 8 probes gave the 3rd to 5th k-shells 0 to 0.4 times
#: ``I_delta``: their modes kept up to the prior's width, many times the posterior's, MCLMC's
#: first warm-up steps threw them far out and the chains froze there (P(k) of the 3rd bin 10-18
#: times the prior's, split-Rhat of the low-k P(k) 3.0). On its 16^3 1LPT posterior the
#: estimates are 0.7-4 times ``I_delta`` and the floor does not bind at the benchmark's point.
INFORMATION_FLOOR = 1.0


def _curvature_preconditioner(
    posterior, params, key, kind, num_probes, eps, centre
) -> Preconditioner:
    if num_probes < 1:
        raise ValueError(f"num_probes={num_probes} is not allowed: need at least 1")
    if not eps > 0:
        raise ValueError(f"eps={eps} is not allowed: need a positive finite-difference step")
    prior = prior_preconditioner(posterior, params)
    centred = centre and prior.centring is not None
    run = _curvature_fn(posterior, kind, num_probes, eps, centred)
    h, centring, scalar_curv = run(params, prior.scale, key)
    if centred:
        prior = dataclasses.replace(prior, **centring)
    if prior.unobserved is not None:
        mask_filter = jnp.sqrt(1.0 - 1.0 / h).astype(jnp.float32)
        prior = dataclasses.replace(prior, mask_filter=mask_filter)
    scale = jax.tree.map(
        lambda curv, prior_std: (1.0 / jnp.sqrt(jnp.maximum(curv, prior_std**-2))).astype(
            jnp.float32
        ),
        scalar_curv,
        prior.scale,
    )
    return dataclasses.replace(
        prior, field_scale=(1.0 / jnp.sqrt(h)).astype(jnp.float32), scale=scale
    )


def _impulse_response(posterior: FieldPosterior, cosmo: dict, shape: tuple, eps: float) -> Array:
    """``|J(k)|^2``: the final density's linear response to white-noise mode ``k`` at s = 0."""
    impulse = jnp.zeros(shape, jnp.float32).at[0, 0, 0].set(eps)

    def final(s):
        return posterior.evolve(posterior.linear(s, cosmo), cosmo)

    rfftn = fft_hooks(posterior.devices)["rfftn"]
    return jnp.abs(rfftn((final(impulse) - final(-impulse)) / (2.0 * eps))) ** 2


def _expected_information(
    posterior: FieldPosterior, params: Params, key: Array, num_probes: int, eps: float
) -> Array:
    """Mean over cells of the likelihood's curvature in ``delta`` at ``delta(s = 0)``.

    Returns:
        ``I_delta >= 0``, a scalar [per unit final density contrast squared, per cell]:
        ``h(k) = 1 + I_delta |J(k)|^2`` is the prior + expected Fisher information of the
        white-noise mode ``k`` (:func:`fisher_preconditioner`).
    """
    cosmo = params.get("cosmo", {})
    bias, noise = params.get("bias", {}), params.get("noise", {})
    shape = params["s"].shape
    zero = jnp.zeros(shape, jnp.float32)
    delta0 = posterior.evolve(posterior.linear(zero, cosmo), cosmo)

    def loglik_grad(delta):
        fields = {"delta_L": zero, "delta": delta}
        return jax.grad(lambda d: posterior.loglik({**fields, "delta": d}, bias, noise))(delta)

    def probe(z):
        hz = -(loglik_grad(delta0 + eps * z) - loglik_grad(delta0 - eps * z)) / (2.0 * eps)
        return jnp.mean(z * hz)

    zs = jax.random.rademacher(key, (num_probes, *shape), jnp.float32)
    return jnp.maximum(jnp.mean(jax.lax.map(probe, zs)), 0.0)


def _observed_information(
    posterior: FieldPosterior,
    params: Params,
    key: Array,
    num_probes: int,
    eps: float,
    response: Array,
) -> Array:
    """Per-shell ``I(|k|)`` (rfft-shaped) such that ``H_kk - 1 ~ I |J(k)|^2`` at ``params``.

    For each shell, ``sum_k Re(conj(z_k) (H - 1) z_k) / sum_k |J(k)|^2 |z_k|^2`` over the modes
    and probes: exact when ``H - 1`` is ``I |J(k)|^2`` on the shell, and the other modes of
    ``z`` (independent of ``z_k``) only add zero-mean noise otherwise. In units of
    :func:`_expected_information`'s ``I_delta``; a shell of few modes whose data information
    is small next to that noise can come out negative (the caller floors it).

    Args:
        response: ``|J(k)|^2`` of :func:`_impulse_response`, rfft-shaped ``(m, m, m//2+1)``.
    """
    grad_s = jax.grad(lambda s: posterior.logdensity({**params, "s": s}))
    rfftn = fft_hooks(posterior.devices)["rfftn"]
    s = params["s"]
    index = jnp.asarray(shell_index(s.shape[0], 1.0))
    nbins = s.shape[0] // 2 + 1
    weight = jnp.asarray(mode_multiplicity(s.shape[0])).at[0, 0, 0].set(0.0)

    def probe(z):
        hz = -(grad_s(s + eps * z) - grad_s(s - eps * z)) / (2.0 * eps)
        zk, hzk = rfftn(z), rfftn(hz)
        power = jnp.abs(zk) ** 2
        num = jnp.zeros(nbins, jnp.float32).at[index].add(weight * ((zk.conj() * hzk).real - power))
        den = jnp.zeros(nbins, jnp.float32).at[index].add(weight * response * power)
        return num, den

    zs = jax.random.normal(key, (num_probes, *s.shape), jnp.float32)
    num, den = jax.lax.map(probe, zs)
    info = jnp.sum(num, axis=0) / jnp.maximum(jnp.sum(den, axis=0), 1e-30)
    return info[index]


@functools.cache
def _curvature_fn(
    posterior: FieldPosterior, kind: str, num_probes: int, eps: float, centred: bool
) -> Callable:
    """Compiled ``(params, prior_scale, key) -> (h(k), centring, scalar_curvatures)`` of
    ``-log p``; ``centring`` holds the partially centred map's ``{"centring": c(k),
    "log_transfer": log T(k; theta_ref)}`` (empty unless ``centred``), and the scalars'
    curvature is then taken at fixed latent field (with the map's log-Jacobian)."""

    @jax.jit
    def run(params, prior_scale, key):
        response = _impulse_response(posterior, params.get("cosmo", {}), params["s"].shape, eps)
        if kind == "fisher":
            info = _expected_information(posterior, params, key, num_probes, eps)
        else:
            observed = _observed_information(posterior, params, key, num_probes, eps, response)
            key_floor = jax.random.fold_in(key, 1)
            expected = _expected_information(posterior, params, key_floor, num_probes, eps)
            info = jnp.maximum(observed, INFORMATION_FLOOR * expected)
        if posterior.unobserved is not None:
            # Per observed cell: the probes averaged the information over every cell.
            info = info / jnp.mean(~posterior.unobserved, dtype=jnp.float32)
        h = 1.0 + info * response
        logp, centring = _scalar_logdensity(posterior, params, h, prior_scale, centred)

        flat, unravel = ravel_pytree({g: params[g] for g in prior_scale})
        steps = eps * ravel_pytree(prior_scale)[0]
        grad = jax.grad(lambda x: logp(unravel(x)))

        def scalar_curvature(i):
            shift = jnp.zeros_like(flat).at[i].set(steps[i])
            return -(grad(flat + shift)[i] - grad(flat - shift)[i]) / (2.0 * steps[i])

        curv = jax.vmap(scalar_curvature)(jnp.arange(flat.size)) if flat.size else flat
        return h, centring, unravel(curv)

    return run


def _scalar_logdensity(
    posterior: FieldPosterior, params: Params, h: Array, prior_scale: dict, centred: bool
) -> tuple[Callable[[Params], Array], dict[str, Array]]:
    """``scalars -> log p`` around ``params`` for the scalars' curvature, and the centring.

    Not ``centred``: the posterior at the field ``s`` of ``params``. ``centred``: the
    partially centred map with ``c(k) = 1 - 1/h(k)`` around the cosmology of ``params``
    (``c = 0`` where the linear filter vanishes), at the latent field of ``s`` there, its
    log-Jacobian included; the centring is returned as ``{"centring", "log_transfer"}``.
    """
    if not centred:
        return lambda scalars: posterior.logdensity({**params, **scalars}), {}
    transfer = linear_transfer(posterior)
    t_ref = transfer(params["cosmo"])
    live = t_ref > 0
    centring = {
        "centring": jnp.where(live, 1.0 - 1.0 / h, 0.0).astype(jnp.float32),
        "log_transfer": jnp.where(live, jnp.log(jnp.where(live, t_ref, 1.0)), 0.0),
    }
    identity = Preconditioner(
        jnp.ones_like(h),
        jax.tree.map(jnp.zeros_like, prior_scale),
        jax.tree.map(jnp.ones_like, prior_scale),
        transfer=transfer,
        devices=posterior.devices,
        **centring,
    )
    x_s = identity.to_latent(params)["s"]

    def logp(scalars: Params) -> Array:
        latent = {"s": x_s, **scalars}
        return posterior.logdensity(identity.to_params(latent)) + identity.log_jacobian(latent)

    return logp, centring


def rescale_shells(precond: Preconditioner, latent_power: Array) -> Preconditioner:
    """The preconditioner with the field's latent variance made 1 in every k-shell.

    Args:
        precond: the preconditioner the samples were drawn with.
        latent_power: rfft-shaped ``(m, m, m//2+1)`` posterior variance of the latent field's
            modes, ``<|x_k - <x_k>|^2> / N_cells`` (1 where ``precond`` is right).

    Returns:
        ``Preconditioner`` with ``w(k)`` multiplied by the square root of the mode-weighted
        shell mean of ``latent_power`` (k = 0 and the corners beyond the last shell share one
        shell); the scalars are unchanged.
    """
    mesh = precond.field_scale.shape[0]
    index = shell_index(mesh, 1.0)
    factor = jnp.sqrt(shell_mean(latent_power, index, mesh // 2 + 1))[jnp.asarray(index)]
    return dataclasses.replace(precond, field_scale=precond.field_scale * factor)


def speed_up_large_scales(
    precond: Preconditioner, factor: float, num_shells: int = 3
) -> Preconditioner:
    """The preconditioner with the latent widths of the largest scales divided by ``factor``.

    The field modes of the ``num_shells`` lowest k-shells (``|k| < (num_shells + 1/2) k_f``,
    the shells of width ``k_f`` of :func:`inference.fields.shell_index`) get ``w(k)`` times
    ``factor``: a mass ``factor^2`` times lighter. An MCLMC or HMC trajectory then crosses their
    posterior ``factor`` times faster than the other modes, so the few modes that set the
    large-scale P(k), the slowest to converge, mix faster, at the price of a step size about
    ``(1 + n_low (factor^4 - 1) / d)^(1/4)`` times smaller (``n_low`` of the ``d`` latent
    dimensions). ``factor = 1`` returns ``precond`` itself.
    """
    if factor == 1.0:
        return precond
    mesh = precond.field_scale.shape[0]
    low = jnp.asarray(shell_index(mesh, 1.0, num_shells) < num_shells)
    scale = jnp.where(low, factor, 1.0).astype(precond.field_scale.dtype)
    return dataclasses.replace(precond, field_scale=precond.field_scale * scale)


def latent_logdensity(
    posterior: FieldPosterior, precond: Preconditioner
) -> Callable[[Params], Array]:
    """Log density of the latent variables: the posterior's at the mapped point plus the
    field map's log-Jacobian (:meth:`Preconditioner.log_jacobian`), up to a constant."""

    def logdensity(latent: Params) -> Array:
        return posterior.logdensity(precond.to_params(latent)) + precond.log_jacobian(latent)

    return logdensity


def latent_scalar_conditional(
    posterior: FieldPosterior, precond: Preconditioner
) -> ScalarConditional:
    """The scalar block's latent log density for Gibbs sweeps, given the latent field.

    Uses :meth:`FieldPosterior.scalar_conditional`: without sampled cosmology, one forward run
    per sweep (charged as one gradient) and likelihood-only evaluations (charged as none);
    with it, a forward run per evaluation (charged as one gradient each). With a map centred
    on the cosmology (:attr:`Preconditioner.centring`) the latent field, not ``s``, is held
    fixed: the latent log density of the whole point.
    """
    if precond.centring is not None:
        joint = latent_logdensity(posterior, precond)
        return ScalarConditional(lambda latent: lambda scalars: joint({**latent, **scalars}), 0, 1)

    def build(latent: Params) -> Callable[[Params], Array]:
        conditional = posterior.scalar_conditional(precond.to_params(latent))
        return lambda scalars: conditional(precond.to_params(scalars))

    if "cosmo" in posterior.priors:
        return ScalarConditional(build, 0, 1)
    return ScalarConditional(build, 1, 0)
