"""Sequential neural posterior estimation with truncated priors (TSNPE; Deistler, Goncalves &
Macke 2022), for simulators too expensive for a training set over the whole prior.

Round 1 simulates from the prior. Each later round simulates from the prior truncated to the
highest-probability region of the current posterior estimate given the observed summary, the
region holding all but ``1 - quantile`` of its mass (``log q(theta | x_o)`` above the
``quantile`` of its values at posterior draws). Since a truncated prior equals the prior
inside the region, the flows are trained on the pooled rounds by plain maximum likelihood, with
no importance weights or atomic loss, and the result is the posterior wherever the region
holds the true posterior's mass.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from inference.implicit.flows import FlowSettings, NeuralPosterior
from inference.implicit.prior import Prior


class Truncation(NamedTuple):
    """Draws ``(n, p)`` of a truncated prior, the region's prior mass (accepted fraction) and
    its boundary ``threshold`` on ``log q(theta | x_o)``."""

    draws: np.ndarray
    prior_mass: float
    threshold: float


def truncated_prior_draws(
    posterior: NeuralPosterior,
    observed: np.ndarray,
    n: int,
    rng: np.random.Generator,
    quantile: float = 1e-4,
    max_batches: int = 100,
) -> Truncation:
    """``n`` draws of the prior restricted to ``posterior``'s highest-probability region given
    ``observed`` ``(d,)``, by rejection from the prior. Raises ``RuntimeError`` when
    ``max_batches`` batches of ``max(n, 1000)`` prior draws do not yield ``n``."""
    draws = posterior.sample(observed, 10_000, seed=int(rng.integers(2**31)))
    threshold = np.quantile(posterior.log_prob(draws, observed), quantile)
    kept, tried = [], 0
    for _ in range(max_batches):
        batch = posterior.prior.sample(rng, max(n, 1000))
        tried += len(batch)
        kept.append(batch[posterior.log_prob(batch, observed) >= threshold])
        if sum(map(len, kept)) >= n:
            accepted = np.concatenate(kept)
            return Truncation(accepted[:n], len(accepted) / tried, float(threshold))
    raise RuntimeError(
        f"the truncated region holds less than {n / tried:.2g} of the prior: widen quantile"
    )


def sequential_npe(
    simulate: Callable[[np.ndarray], np.ndarray],
    prior: Prior,
    observed: np.ndarray,
    rounds: int,
    per_round: int,
    settings: FlowSettings | None = None,
    quantile: float = 1e-4,
    seed: int = 0,
    progress: bool = True,
) -> tuple[NeuralPosterior, list[dict[str, Any]]]:
    """Run TSNPE.

    Args:
        simulate: ``theta (n, p) -> summaries (n, d)``.
        prior: the prior (its support bounds every round).
        observed: the observed summary ``(d,)``.
        rounds: number of rounds (>= 1); per_round: simulations per round (>= 2).
        settings: flow settings (:class:`FlowSettings`); quantile: mass outside the region.
        seed: seed of the draws (the flows use ``settings.seed``).
        progress: per-flow progress of each round's training.

    Returns:
        The last round's posterior, and per round the simulations so far and the prior mass
        of the region the round drew from.
    """
    for name, value, low in (("rounds", rounds, 1), ("per_round", per_round, 2)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name}={value!r} is invalid: must be an integer >= {low}")
    if not 0 < quantile < 0.5:
        raise ValueError(f"quantile={quantile!r} is invalid: must be in (0, 0.5)")
    rng = np.random.default_rng(seed)
    thetas: list[np.ndarray] = []
    summaries: list[np.ndarray] = []
    history: list[dict[str, Any]] = []
    posterior = None
    for r in range(rounds):
        if posterior is None:
            theta, mass = prior.sample(rng, per_round), 1.0
        else:
            theta, mass, _ = truncated_prior_draws(posterior, observed, per_round, rng, quantile)
        thetas.append(theta)
        summaries.append(np.asarray(simulate(theta), float))
        posterior = NeuralPosterior(prior, settings, progress).fit(
            np.concatenate(thetas), np.concatenate(summaries)
        )
        history.append({"round": r + 1, "simulations": (r + 1) * per_round, "prior_mass": mass})
    return posterior, history
