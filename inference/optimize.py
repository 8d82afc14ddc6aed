"""MAP estimate (the Wiener filter for linear Gaussian data) with optax's L-BFGS.

Run in the latent (preconditioned) space, where the posterior is close to isotropic, so that
a few tens of iterations reach the mode; chains then start next to it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import optax
from jax import Array


def find_map(
    logdensity_fn: Callable[[Any], Array], position: Any, num_steps: int = 100
) -> tuple[Any, Array]:
    """Maximise ``logdensity_fn`` from ``position`` with L-BFGS (zoom line search).

    Args:
        logdensity_fn: log density of a pytree position (jit-able).
        position: starting pytree.
        num_steps: L-BFGS iterations (>= 1).

    Returns:
        ``(mode, trace)``: the position after ``num_steps`` iterations and the negative log
        density at the start of each iteration, shape ``(num_steps,)``.
    """
    if num_steps < 1:
        raise ValueError(f"num_steps={num_steps} is not allowed: need at least 1")

    def loss(x):
        return -logdensity_fn(x)

    opt = optax.lbfgs()
    value_and_grad = optax.value_and_grad_from_state(loss)

    @jax.jit
    def run(x):
        def step(carry, _):
            x, state = carry
            value, grad = value_and_grad(x, state=state)
            updates, state = opt.update(grad, state, x, value=value, grad=grad, value_fn=loss)
            return (optax.apply_updates(x, updates), state), value

        (x, _), trace = jax.lax.scan(step, (x, opt.init(x)), None, length=num_steps)
        return x, trace

    return run(position)
