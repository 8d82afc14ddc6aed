"""Fiducial and derivative simulation sets for training and validating compressors.

A simulator is any function ``simulator(theta, key) -> data`` (data of fixed shape). A
differentiable (JAX) simulator gives exact derivatives ``d data / d theta`` at fixed seed by
forward-mode autodiff; a black-box one is differenced at seed-matched ``theta +- delta``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

Simulator = Callable[[jax.Array, jax.Array], jax.Array]


class FisherSet(NamedTuple):
    """Simulations at the fiducial parameters with exact derivatives.

    ``derivative[i]`` is ``d data / d theta`` for the seed of ``fiducial[i]`` (the first n_d seeds).
    """

    fiducial: jax.Array  #: (n_s, *data_shape)
    derivative: jax.Array  #: (n_d, n_theta, *data_shape)


class FiniteDifferenceSet(NamedTuple):
    """Simulations at the fiducial parameters and at seed-matched ``theta_i +- delta_i``."""

    fiducial: jax.Array  #: (n_s, *data_shape)
    plus: jax.Array  #: (n_d, n_theta, *data_shape), data at theta + delta_i e_i
    minus: jax.Array  #: (n_d, n_theta, *data_shape), data at theta - delta_i e_i
    delta: jax.Array  #: (n_theta,) step of each parameter


def _check_counts(n_s: int, n_d: int) -> None:
    if int(n_s) < 4:
        raise ValueError(f"n_s={n_s}: need at least 4 fiducial simulations")
    if not 1 <= int(n_d) <= int(n_s):
        raise ValueError(f"n_d={n_d}: must be between 1 and n_s={n_s}")


def simulate_fisher_set(
    simulator: Simulator,
    theta: jax.Array,
    key: jax.Array,
    n_s: int,
    n_d: int,
    batch_size: int = 64,
) -> FisherSet:
    """``n_s`` fiducial simulations and exact derivatives (``jax.jacfwd``) for the first ``n_d``."""
    _check_counts(n_s, n_d)
    keys = jax.random.split(key, int(n_s))
    return _fisher_set(simulator, jnp.asarray(theta, jnp.float32), keys, int(n_d), int(batch_size))


@functools.partial(jax.jit, static_argnames=("simulator", "n_d", "batch_size"))
def _fisher_set(
    simulator: Simulator, theta: jax.Array, keys: jax.Array, n_d: int, batch_size: int
) -> FisherSet:
    """Compiled once per simulator and set size (training and test sets share it)."""

    def tangent(k: jax.Array) -> jax.Array:
        return jnp.moveaxis(jax.jacfwd(simulator)(theta, k), -1, 0)

    fiducial = jax.lax.map(lambda k: simulator(theta, k), keys, batch_size=batch_size)
    derivative = jax.lax.map(tangent, keys[:n_d], batch_size=batch_size)
    return FisherSet(fiducial, derivative)


def simulate_finite_difference_set(
    simulator: Simulator,
    theta: jax.Array,
    delta: jax.Array,
    key: jax.Array,
    n_s: int,
    n_d: int,
    batch_size: int = 64,
) -> FiniteDifferenceSet:
    """``n_s`` fiducial simulations and, for the first ``n_d`` seeds, simulations at
    ``theta +- delta_i e_i`` (seed-matched central differences for black-box simulators)."""
    _check_counts(n_s, n_d)
    theta = jnp.asarray(theta, jnp.float32)
    delta = jnp.asarray(delta, jnp.float32)
    if delta.shape != theta.shape or not bool(np.all(np.asarray(delta) > 0)):
        raise ValueError(f"delta={np.asarray(delta)}: need one positive step per parameter")
    keys = jax.random.split(key, int(n_s))
    return _finite_difference_set(simulator, theta, delta, keys, int(n_d), int(batch_size))


@functools.partial(jax.jit, static_argnames=("simulator", "n_d", "batch_size"))
def _finite_difference_set(
    simulator: Simulator,
    theta: jax.Array,
    delta: jax.Array,
    keys: jax.Array,
    n_d: int,
    batch_size: int,
) -> FiniteDifferenceSet:
    """Compiled once per simulator and set size."""
    steps = jnp.diag(delta)

    def shifted(k: jax.Array) -> tuple[jax.Array, jax.Array]:
        plus = jax.vmap(lambda s: simulator(theta + s, k))(steps)
        return plus, jax.vmap(lambda s: simulator(theta - s, k))(steps)

    fiducial = jax.lax.map(lambda k: simulator(theta, k), keys, batch_size=batch_size)
    plus, minus = jax.lax.map(shifted, keys[:n_d], batch_size=batch_size)
    return FiniteDifferenceSet(fiducial, plus, minus, delta)


def summary_derivatives(
    apply: Callable[[jax.Array], jax.Array], dataset: FisherSet | FiniteDifferenceSet
) -> jax.Array:
    """Derivatives of the summaries ``apply(batch) -> (batch, p)``; shape (n_d, n_theta, p).

    Exact chain rule (``jax.jvp`` along ``d data / d theta``) for a ``FisherSet``; seed-matched
    central differences of the summaries for a ``FiniteDifferenceSet``.
    """
    if isinstance(dataset, FiniteDifferenceSet):
        n_d, n_theta = dataset.plus.shape[:2]
        data_shape = dataset.plus.shape[2:]
        plus = apply(dataset.plus.reshape((n_d * n_theta, *data_shape)))
        minus = apply(dataset.minus.reshape((n_d * n_theta, *data_shape)))
        diff = (plus - minus).reshape((n_d, n_theta, -1))
        return diff / (2 * dataset.delta[None, :, None])
    n_d = dataset.derivative.shape[0]
    base = dataset.fiducial[:n_d]

    def along(tangent: jax.Array) -> jax.Array:
        return jax.jvp(apply, (base,), (tangent,))[1]

    return jnp.moveaxis(jax.vmap(along, in_axes=1)(dataset.derivative), 0, 1)
