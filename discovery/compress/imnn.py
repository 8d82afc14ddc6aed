"""Information-maximising neural network (IMNN; Charnock, Lavaux & Wandelt 2018, 1802.03537).

The network's summaries ``x = f(d)`` of fiducial simulations give a covariance ``C`` and, through
the derivatives of the simulations (exact or finite-difference), a mean derivative ``dmu``; their
Fisher matrix ``F = dmu^T C^-1 dmu`` is maximised. The loss is ``-ln det F + r Lambda_2`` with
``Lambda_2 = |C - 1|_F^2 + |C^-1 - 1|_F^2`` fixing the scale of the summaries and the smooth
coupling ``r = lambda Lambda_2 / (Lambda_2 + exp(-alpha Lambda_2))``, ``alpha = -ln(eps) / eps``,
which switches the regulariser off once ``Lambda_2`` is below ``eps``. Training is full batch;
early stopping keeps the parameters with the largest ``ln det F`` on a validation set.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from discovery.compress.datasets import FiniteDifferenceSet, FisherSet, summary_derivatives
from discovery.compress.fisher import FisherStats, fisher_stats, log_det
from discovery.compress.training import check_schedule, optimise, split_apply


@dataclasses.dataclass(frozen=True)
class IMNNConfig:
    """Training settings of an IMNN (validated on construction)."""

    learning_rate: float = 1e-3  #: Adam step size
    max_steps: int = 2000  #: full-batch gradient steps at most
    patience: int = 200  #: stop after this many steps without a better validation ln det F
    coupling: float = 10.0  #: lambda, strength of the covariance regulariser
    epsilon: float = 0.01  #: Lambda_2 below which the regulariser switches off

    def __post_init__(self):
        check_schedule(self.learning_rate, self.max_steps, self.patience)
        if not self.coupling > 0:
            raise ValueError(f"coupling={self.coupling}: must be > 0")
        if not 0 < self.epsilon < 1:
            raise ValueError(f"epsilon={self.epsilon}: must be in (0, 1)")


def imnn_loss(
    fiducial: jax.Array, derivative: jax.Array, coupling: float, epsilon: float
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """IMNN loss of summaries ``fiducial`` (n_s, p) and ``derivative`` (n_d, n_theta, p).

    Returns the loss and ``{"log_det_F", "log_det_C", "regulariser"}``.
    """
    stats = fisher_stats(fiducial, derivative)
    eye = jnp.eye(stats.cov.shape[0], dtype=stats.cov.dtype)
    lambda2 = jnp.sum((stats.cov - eye) ** 2) + jnp.sum((stats.inv_cov - eye) ** 2)
    alpha = -np.log(epsilon) / epsilon
    strength = coupling * lambda2 / (lambda2 + jnp.exp(-alpha * lambda2))
    log_det_f = log_det(stats.fisher)
    aux = {"log_det_F": log_det_f, "log_det_C": log_det(stats.cov), "regulariser": lambda2}
    return -log_det_f + strength * lambda2, aux


def compressor_fisher(
    model: nnx.Module, dataset: FisherSet | FiniteDifferenceSet, hartlap: bool = True
) -> FisherStats:
    """Fisher statistics of ``model``'s summaries on ``dataset`` (Hartlap-debiased by default)."""
    apply, params = split_apply(model)
    return _stats(apply, params, dataset, hartlap)


def _stats(apply, params, dataset, hartlap: bool = False) -> FisherStats:
    def f(batch):
        return apply(params, batch)

    return fisher_stats(f(dataset.fiducial), summary_derivatives(f, dataset), hartlap=hartlap)


def train_imnn(
    model: nnx.Module,
    train: FisherSet | FiniteDifferenceSet,
    validation: FisherSet | FiniteDifferenceSet,
    config: IMNNConfig = IMNNConfig(),
    seed: int = 0,
    progress: bool = True,
) -> dict[str, np.ndarray]:
    """Train ``model`` in place as an IMNN on ``train``; early stopping on ``validation``.

    Returns the per-step history: ``loss``, ``log_det_F``, ``log_det_C``, ``regulariser`` (train
    set), ``validation`` (``-ln det F`` on the validation set) and ``best_step``.
    """
    apply, params = split_apply(model)
    train = jax.tree.map(jnp.asarray, train)
    validation = jax.tree.map(jnp.asarray, validation)

    def loss(p, key, data):
        f = lambda batch: apply(p, batch)
        fid, der = f(data[0].fiducial), summary_derivatives(f, data[0])
        return imnn_loss(fid, der, config.coupling, config.epsilon)

    def validate(p, data):
        return -log_det(_stats(apply, p, data[1]).fisher)

    return optimise(
        model,
        params,
        loss,
        validate,
        (train, validation),
        config.learning_rate,
        config.max_steps,
        config.patience,
        seed=seed,
        progress=progress,
        desc="IMNN",
    )
