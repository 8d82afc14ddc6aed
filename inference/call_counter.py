"""Host-side counting of a posterior's model evaluations inside compiled code.

:func:`counted_posterior` returns a copy of a :class:`~inference.posterior.FieldPosterior`
whose forward model and likelihood call a host function every time they run, once per
vmapped element (a chain), under ``jit``, ``vmap``, ``scan`` and gradients alike (a gradient
runs the forward model once). The driver uses it to show the progress of the set-up and
warm-up, which are single compiled programs; the sampler benchmark uses it to charge the
set-up's evaluations.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax

from inference.posterior import FieldPosterior


def _ticking(fn: Callable, tick: Callable[[], None]) -> Callable:
    """``fn`` that calls ``tick()`` on the host each time it runs (once per vmapped element)."""

    def host(_) -> None:
        tick()

    def wrapped(first, *rest):
        jax.debug.callback(host, jax.tree.leaves(first)[0].ravel()[0])
        return fn(first, *rest)

    return wrapped


def counted_posterior(
    posterior: FieldPosterior,
    on_forward: Callable[[], None] | None = None,
    on_likelihood: Callable[[], None] | None = None,
) -> FieldPosterior:
    """``posterior`` with host callbacks on its forward model and likelihood.

    Args:
        posterior: the posterior to count.
        on_forward: called once per run of ``posterior.evolve`` (the forward model: a
            gradient of the log density runs it once, a Hessian-vector product once).
        on_likelihood: called once per run of ``posterior.loglik``.

    Returns:
        A new posterior with the same density (compiled functions cached on the old one are
        not shared with it).
    """
    changes = {}
    if on_forward is not None:
        changes["evolve"] = _ticking(posterior.evolve, on_forward)
    if on_likelihood is not None:
        changes["loglik"] = _ticking(posterior.loglik, on_likelihood)
    return dataclasses.replace(posterior, **changes)
