"""Regression compressor: a network trained by mean squared error to the parameters.

With parameters drawn from a prior, the minimiser of the squared error is the posterior mean
``E[theta | data]``, which is used as a summary. Targets are standardised by the training set and
the network's output scaling undoes that, so the summaries are in the units of the parameters.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from discovery.compress.networks import head_of
from discovery.compress.training import check_schedule, optimise, split_apply


@dataclasses.dataclass(frozen=True)
class RegressionConfig:
    """Training settings of a regression compressor (validated on construction)."""

    learning_rate: float = 1e-3  #: Adam step size
    max_steps: int = 3000  #: minibatch steps at most
    patience: int = 300  #: stop after this many steps without a better validation loss
    batch_size: int = 128  #: training samples per step

    def __post_init__(self):
        check_schedule(self.learning_rate, self.max_steps, self.patience)
        if int(self.batch_size) < 1:
            raise ValueError(f"batch_size={self.batch_size}: must be >= 1")


def train_regression(
    model: nnx.Module,
    inputs: jax.Array,
    targets: jax.Array,
    val_inputs: jax.Array,
    val_targets: jax.Array,
    config: RegressionConfig = RegressionConfig(),
    seed: int = 0,
    progress: bool = True,
) -> dict[str, np.ndarray]:
    """Train ``model`` in place so that ``model(inputs) ~ targets`` (n, n_theta) in mean square.

    Returns the per-step history: ``loss`` (training minibatch), ``validation`` (mean squared
    error of the standardised targets on the validation set) and ``best_step``.
    """
    if inputs.shape[0] != targets.shape[0] or val_inputs.shape[0] != val_targets.shape[0]:
        raise ValueError(
            f"inputs/targets: leading sizes must match, got {inputs.shape[0]}/{targets.shape[0]} "
            f"and {val_inputs.shape[0]}/{val_targets.shape[0]}"
        )
    head = head_of(model)
    scale = jnp.std(targets, axis=0)
    head.out_mean[...] = jnp.mean(targets, axis=0)
    head.out_scale[...] = scale
    apply, params = split_apply(model)
    batch = min(int(config.batch_size), int(inputs.shape[0]))

    def loss(p, key, data):
        x, y = data[0]
        idx = jax.random.choice(key, x.shape[0], (batch,), replace=False)
        value = jnp.mean(((apply(p, x[idx]) - y[idx]) / scale) ** 2)
        return value, {}

    def validate(p, data):
        x, y = data[1]
        return jnp.mean(((apply(p, x) - y) / scale) ** 2)

    data = ((jnp.asarray(inputs), jnp.asarray(targets)), (val_inputs, val_targets))
    return optimise(
        model,
        params,
        loss,
        validate,
        data,
        config.learning_rate,
        config.max_steps,
        config.patience,
        seed=seed,
        progress=progress,
        desc="regression",
    )
