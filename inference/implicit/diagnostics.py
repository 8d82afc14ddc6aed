"""Checks of an implicit posterior: coverage on held-out simulations, posterior predictive
check, and whether an observed summary lies where the estimator was trained.

- :func:`tarp_coverage`: TARP (Lemos et al. 2023), the expected coverage of random-point
  credible regions against the credibility level; a calibrated posterior gives the diagonal;
- :func:`sbc_ranks`: simulation-based calibration ranks (Talts et al. 2018) of each true
  parameter among its posterior draws, uniform for a calibrated posterior;
- :func:`out_of_distribution`: Mahalanobis distance of a summary in the whitened training
  space against the largest distance of the training set (warns beyond it);
- :func:`predictive_check`: distance of the observed summary from posterior-predictive
  simulations, with its tail probability.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any

import numpy as np
from scipy import stats

from inference.implicit.summaries import Whitener


class OutOfDistributionWarning(UserWarning):
    """The observed summary lies outside the training set's distribution."""


def _draws_and_truth(draws: Any, truth: Any) -> tuple[np.ndarray, np.ndarray]:
    draws, truth = np.asarray(draws, float), np.asarray(truth, float)
    if draws.ndim != 3 or truth.shape != (draws.shape[0], draws.shape[2]):
        raise ValueError(
            f"draws {draws.shape} and truth {truth.shape} are invalid: need (m, n, p) and (m, p)"
        )
    return draws, truth


_TARP_STREAM = 0x7A29


def tarp_coverage(
    draws: np.ndarray, truth: np.ndarray, seed: int = 0, levels: int = 101
) -> dict[str, Any]:
    """TARP expected coverage probability.

    For each held-out simulation ``i`` a reference point ``r_i`` is drawn uniformly in the
    box spanned by the true parameters; ``f_i`` is the fraction of draws closer to ``r_i``
    than the truth (distances in units of the truths' standard deviation per parameter). The
    expected coverage at credibility ``alpha`` is ``ECP(alpha) = mean_i [f_i < alpha]``.

    Args:
        draws: posterior draws ``(m, n, p)`` for ``m`` held-out simulations.
        truth: their true parameters ``(m, p)``.
        seed: seed of the reference points.
        levels: number of credibility levels in ``[0, 1]``.

    Returns:
        ``alpha`` ``(levels,)``, ``ecp`` ``(levels,)``, ``error`` = max |ECP - alpha|,
        ``mean_error`` = mean |ECP - alpha|.
    """
    draws, truth = _draws_and_truth(draws, truth)
    scale = truth.std(0) + 1e-12
    # A stream of its own: with default_rng(seed), truths drawn uniformly from a generator of
    # the same seed would coincide with their reference points (f = 0 for every simulation).
    rng = np.random.default_rng([_TARP_STREAM, seed])
    ref = rng.uniform(truth.min(0), truth.max(0), size=truth.shape)
    d_draws = np.linalg.norm((draws - ref[:, None]) / scale, axis=-1)
    d_truth = np.linalg.norm((truth - ref) / scale, axis=-1)
    f = np.mean(d_draws < d_truth[:, None], axis=1)
    alpha = np.linspace(0.0, 1.0, levels)
    ecp = np.mean(f[None, :] < alpha[:, None], axis=1)
    dev = np.abs(ecp - alpha)
    return {"alpha": alpha, "ecp": ecp, "error": float(dev.max()), "mean_error": float(dev.mean())}


def sbc_ranks(draws: np.ndarray, truth: np.ndarray) -> dict[str, Any]:
    """SBC ranks ``(m, p)`` of each true parameter among its ``n`` draws (in ``0..n``) and, per
    parameter, the p-value ``(p,)`` of a chi-square test of their uniformity (20 bins or
    fewer, at least 5 expected per bin)."""
    draws, truth = _draws_and_truth(draws, truth)
    ranks = np.sum(draws < truth[:, None], axis=1)
    m, n = draws.shape[:2]
    bins = max(2, min(20, m // 5))
    edges = np.linspace(0, n + 1, bins + 1)
    counts = np.stack([np.histogram(r, edges)[0] for r in ranks.T])
    pvalues = stats.chisquare(counts, axis=1).pvalue
    return {"ranks": ranks, "pvalues": np.atleast_1d(pvalues)}


@dataclasses.dataclass(frozen=True)
class DistributionCheck:
    """Where a summary lies relative to the training set.

    Attributes:
        distance: its Mahalanobis distance from the training mean (whitened units).
        threshold: the largest distance among the training summaries.
        quantile: share of training summaries closer to the mean than it.
        outside: ``distance > threshold``.
    """

    distance: float
    threshold: float
    quantile: float
    outside: bool

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON)."""
        return dataclasses.asdict(self)


def out_of_distribution(
    summary: np.ndarray, whitener: Whitener, warn: bool = True
) -> DistributionCheck:
    """Compare ``summary`` ``(d,)`` with the training summaries ``whitener`` was fitted on.

    An in-distribution summary exceeds the largest of ``n`` training distances with
    probability ``1 / (n + 1)``. Beyond it, :class:`OutOfDistributionWarning` is issued (if
    ``warn``): the estimator extrapolates there and its posterior is not to be trusted.
    """
    distance = float(np.linalg.norm(whitener(np.asarray(summary, float))))
    threshold = float(whitener.distances.max())
    check = DistributionCheck(
        distance, threshold, float(np.mean(whitener.distances < distance)), distance > threshold
    )
    if check.outside and warn:
        warnings.warn(
            f"the observed summary lies outside the training distribution: Mahalanobis "
            f"distance {distance:.3g} > {threshold:.3g}, the largest of the "
            f"{len(whitener.distances)} training summaries; the posterior is extrapolated",
            OutOfDistributionWarning,
            stacklevel=2,
        )
    return check


def predictive_check(observed: np.ndarray, predictive: np.ndarray) -> dict[str, float]:
    """Posterior predictive check of an observed summary ``(d,)`` against summaries simulated
    at posterior draws ``(m, d)``: the Mahalanobis distance of each from the predictive mean
    (predictive covariance), and ``pvalue``, the share of simulations at least as far as the
    observation (small: the model does not reproduce the data)."""
    predictive = np.asarray(predictive, float)
    white = Whitener.fit(predictive)
    distance = float(np.linalg.norm(white(np.asarray(observed, float))))
    pvalue = (np.sum(white.distances >= distance) + 1) / (len(white.distances) + 1)
    return {"distance": distance, "pvalue": float(pvalue), "simulations": len(predictive)}


def c2st(samples_a: np.ndarray, samples_b: np.ndarray, seed: int = 0, folds: int = 5) -> float:
    """Classifier two-sample test (Lopez-Paz & Oquab 2017, as in sbibm): the cross-validated
    accuracy of an MLP telling ``samples_a`` ``(n, p)`` from ``samples_b`` ``(n, p)``; 0.5 when
    the two distributions are the same, 1 when they do not overlap. Both sets are standardised
    by ``samples_a``'s mean and standard deviation; the MLP has two hidden layers of ``10 p``
    units (sbibm's choice)."""
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.neural_network import MLPClassifier

    a, b = np.asarray(samples_a, float), np.asarray(samples_b, float)
    mean, std = a.mean(0), a.std(0) + 1e-12
    x = (np.concatenate([a, b]) - mean) / std
    y = np.concatenate([np.zeros(len(a)), np.ones(len(b))])
    clf = MLPClassifier(
        hidden_layer_sizes=(10 * a.shape[1],) * 2,
        activation="relu",
        max_iter=1000,
        solver="adam",
        early_stopping=True,
        n_iter_no_change=50,
        random_state=seed,
    )
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return float(np.mean(cross_val_score(clf, x, y, cv=cv, scoring="accuracy")))
