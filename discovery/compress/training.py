"""Gradient descent with early stopping, shared by every trained compressor.

The model is split into its trainable ``nnx.Param`` state and the rest; a loss of the parameter
state is minimised with Adam, a validation score is tracked, and the parameters with the best
validation score are written back into the model at the end.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import numpy as np
import optax
from flax import nnx

from cosmolaw.progress import progress_bar

#: ``loss(params, key, data) -> (scalar, {name: scalar})`` and ``validate(params, data) -> scalar``
#: (lower is better), of the trainable state of the model and a pytree of arrays ``data`` (passed
#: as an argument, not closed over, so large sets are not baked into the compiled step).
LossFn = Callable[[Any, jax.Array, Any], tuple[jax.Array, dict[str, jax.Array]]]
ValidateFn = Callable[[Any, Any], jax.Array]


def split_apply(model: nnx.Module) -> tuple[Callable[[Any, jax.Array], jax.Array], Any]:
    """``(apply, params)`` with ``apply(params, batch)`` the model as a pure function of its
    trainable parameters (the other variables are fixed at their current values)."""
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)

    def apply(p: Any, batch: jax.Array) -> jax.Array:
        return nnx.merge(graphdef, p, rest)(batch)

    return apply, params


def check_schedule(learning_rate: float, max_steps: int, patience: int) -> None:
    """Validate optimiser settings (ValueError naming the bad one)."""
    if not learning_rate > 0:
        raise ValueError(f"learning_rate={learning_rate}: must be > 0")
    if int(max_steps) < 1:
        raise ValueError(f"max_steps={max_steps}: must be >= 1")
    if int(patience) < 1:
        raise ValueError(f"patience={patience}: must be >= 1")


def optimise(
    model: nnx.Module,
    params: Any,
    loss: LossFn,
    validate: ValidateFn,
    data: Any,
    learning_rate: float,
    max_steps: int,
    patience: int,
    seed: int = 0,
    progress: bool = True,
    desc: str = "training",
) -> dict[str, np.ndarray]:
    """Minimise ``loss`` with Adam, stop when ``validate`` has not improved for ``patience`` steps.

    Writes the best parameters back into ``model``. Returns the per-step history: every aux entry
    of the loss, ``loss`` and ``validation``, plus ``best_step`` (a 0-d array).
    """
    check_schedule(learning_rate, max_steps, patience)
    optimiser = optax.adam(learning_rate)

    @jax.jit
    def step(p, opt_state, key, data):
        (value, aux), grads = jax.value_and_grad(loss, has_aux=True)(p, key, data)
        updates, opt_state = optimiser.update(grads, opt_state, p)
        p = optax.apply_updates(p, updates)
        return p, opt_state, dict(aux, loss=value, validation=validate(p, data))

    opt_state = optimiser.init(params)
    key = jax.random.key(seed)
    best, best_score, best_step = params, np.inf, 0
    history: dict[str, list[float]] = {}
    bar = progress_bar(range(int(max_steps)), desc=desc, disable=not progress, leave=False)
    for i in bar:
        key, sub = jax.random.split(key)
        params, opt_state, record = step(params, opt_state, sub, data)
        record = {k: float(v) for k, v in record.items()}
        for name, value in record.items():
            history.setdefault(name, []).append(value)
        if np.isfinite(record["validation"]) and record["validation"] < best_score:
            best, best_score, best_step = params, record["validation"], i + 1
        elif i + 1 - best_step >= patience:
            break
        if i % 20 == 0:
            bar.set_postfix(loss=record["loss"], best=best_score)
    bar.close()
    nnx.update(model, best)
    out = {k: np.asarray(v) for k, v in history.items()}
    out["best_step"] = np.asarray(best_step)
    return out
