"""Convergence and efficiency diagnostics of multi-chain samples (NumPy).

Rank-normalised split-Rhat and bulk/tail effective sample sizes follow Vehtari, Gelman,
Simpson, Carpenter & Buerkner (2021, Bayesian Analysis 16, 667): chains are split in halves,
draws are replaced by the normal scores of their pooled ranks, Rhat is the maximum of the
bulk and folded (``|x - median|``) values, and the ESS uses Geyer's initial monotone sequence
on the multi-chain autocorrelation. Arrays are ``(chains, draws, ...)``; results have the
trailing shape. Also: ESS per 1000 gradient evaluations, per-step info summaries, and r(k).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats

#: Quantities of a per-step info record that are summarised.
INFO_FIELDS = (
    "acceptance",
    "energy_error",
    "num_grads",
    "divergent",
    "tree_depth",
    "step_size",
    "scalar_acceptance",
)


def _check_draws(draws: np.ndarray, name: str) -> np.ndarray:
    draws = np.asarray(draws, np.float64)
    if draws.ndim < 2 or draws.shape[0] < 1 or draws.shape[1] < 4:
        raise ValueError(
            f"{name} of shape {draws.shape} is not allowed: need (chains, draws >= 4, ...)"
        )
    return draws.reshape(draws.shape[0], draws.shape[1], -1)


def _split(x: np.ndarray) -> np.ndarray:
    """``(C, N, D) -> (2C, N // 2, D)``: each chain cut in two halves (middle draw dropped)."""
    half = x.shape[1] // 2
    return np.concatenate([x[:, :half], x[:, x.shape[1] - half :]], axis=0)


def _normal_scores(x: np.ndarray) -> np.ndarray:
    """Pooled ranks per dimension mapped to normal quantiles (Blom's offsets)."""
    c, n, d = x.shape
    ranks = stats.rankdata(x.reshape(c * n, d), axis=0).reshape(c, n, d)
    return stats.norm.ppf((ranks - 0.375) / (c * n + 0.25))


def _rhat(x: np.ndarray) -> np.ndarray:
    """Classic Rhat of ``(C, N, D)`` chains (already split): NaN for constant draws, inf for
    chains that are each constant at different values."""
    n = x.shape[1]
    within = np.mean(np.var(x, axis=1, ddof=1), axis=0)
    between = n * np.var(np.mean(x, axis=1), axis=0, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.sqrt((between / within + n - 1) / n)


def _geyer_tau(rho: np.ndarray) -> np.ndarray:
    """Integrated autocorrelation time from autocorrelations ``rho`` ``(N, D)`` (``rho[0] = 1``).

    Geyer's initial positive sequence of pair sums ``P_j = rho_2j + rho_2j+1``, truncated at the
    first ``P_j <= 0`` (pairs up to ``j_max = floor((N - 1) / 2) - 1``), made monotone, plus the
    first truncated pair's even term when positive, as Stan and ArviZ do:
    ``tau = -1 + 2 sum_{j<L} min(P_0..P_j) + rho_2L``.
    """
    n, d = rho.shape
    j_max = max((n - 1) // 2 - 1, 0)
    pairs = rho[: 2 * (j_max + 1)].reshape(j_max + 1, 2, d).sum(axis=1)
    stop = pairs <= 0
    last = np.where(stop.any(axis=0), np.argmax(stop, axis=0), j_max)
    before = np.arange(j_max + 1)[:, None] < last
    monotone = np.minimum.accumulate(pairs, axis=0)
    even = np.take_along_axis(rho, 2 * last[None], axis=0)[0]
    last_pair = np.take_along_axis(pairs, last[None], axis=0)[0]
    even = np.where((even > 0) | (last_pair >= 0), even, 0.0)
    return -1.0 + 2.0 * np.sum(np.where(before, monotone, 0.0), axis=0) + even


def _ess(x: np.ndarray) -> np.ndarray:
    """Multi-chain ESS of ``(C, N, D)`` chains (already split); ``C N`` for constant draws and
    NaN where a draw is NaN, as ArviZ."""
    c, n, d = x.shape
    centred = x - x.mean(axis=1, keepdims=True)
    size = 2 ** int(np.ceil(np.log2(2 * n)))
    f = np.fft.rfft(centred, n=size, axis=1)
    acov = np.fft.irfft(np.abs(f) ** 2, n=size, axis=1)[:, :n] / n
    mean_var = acov[:, 0].mean(axis=0) * n / (n - 1)
    var_plus = mean_var * (n - 1) / n
    if c > 1:
        var_plus = var_plus + np.var(x.mean(axis=1), axis=0, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = 1.0 - (mean_var - acov.mean(axis=0)) / var_plus
    rho[0] = 1.0
    tau = np.maximum(_geyer_tau(rho), 1.0 / np.log10(c * n))
    ess = c * n / tau
    flat = x.reshape(c * n, d)
    constant = np.ptp(flat, axis=0) < np.finfo(float).resolution
    return np.where(np.isnan(flat).any(axis=0), np.nan, np.where(constant, c * n, ess))


def split_rhat(draws: np.ndarray) -> np.ndarray:
    """Rank-normalised split-Rhat (max of bulk and folded) of ``(chains, draws, ...)`` draws.

    Equal to ``arviz.rhat`` (its default ``"rank"`` method) for two chains or more. A single
    chain is split in two halves, so it works with one chain too (ArviZ returns NaN there).
    NaN for constant draws, inf for chains stuck at different values.
    """
    x = _split(_check_draws(draws, "draws"))
    folded = np.abs(x - np.median(x.reshape(-1, x.shape[-1]), axis=0))
    bulk, tail = _rhat(_normal_scores(x)), _rhat(_normal_scores(folded))
    rhat = np.where(tail > bulk, tail, bulk)  # max(), NaN where the bulk value is NaN
    return rhat.reshape(np.shape(draws)[2:])


def ess_bulk(draws: np.ndarray) -> np.ndarray:
    """Bulk effective sample size (rank-normalised, split chains); equal to
    ``arviz.ess(method="bulk")``."""
    x = _split(_check_draws(draws, "draws"))
    return _ess(_normal_scores(x)).reshape(np.shape(draws)[2:])


def ess_tail(draws: np.ndarray) -> np.ndarray:
    """Tail effective sample size: the smaller ESS of the indicators of the 5% and 95%
    quantiles (of all draws, linearly interpolated) over the split chains; equal to
    ``arviz.ess(method="tail")``."""
    x = _check_draws(draws, "draws")
    flat = x.reshape(-1, x.shape[-1])
    lo, hi = np.quantile(flat, 0.05, axis=0), np.quantile(flat, 0.95, axis=0)
    ess = np.minimum(_ess(_split((x <= lo).astype(float))), _ess(_split((x <= hi).astype(float))))
    return ess.reshape(np.shape(draws)[2:])


def efficiency(draws: np.ndarray, num_grads: float) -> dict[str, np.ndarray]:
    """Rhat, bulk and tail ESS, and bulk ESS per 1000 gradient evaluations.

    Args:
        draws: ``(chains, draws, ...)`` samples.
        num_grads: gradient evaluations spent on these draws, all chains together.
    """
    if not num_grads > 0:
        raise ValueError(f"num_grads={num_grads} is not allowed: need a positive count")
    bulk = ess_bulk(draws)
    return {
        "rhat": split_rhat(draws),
        "ess_bulk": bulk,
        "ess_tail": ess_tail(draws),
        "ess_bulk_per_1000_grads": 1000.0 * bulk / num_grads,
    }


def info_summary(info: dict[str, np.ndarray]) -> dict[str, float]:
    """Means over chains and steps of the per-step info arrays ``(chains, steps)``."""
    out: dict[str, float] = {}
    for name in INFO_FIELDS:
        if name in info:
            values = np.asarray(info[name], np.float64)
            out[f"mean_{name}"] = float(np.mean(values))
    if "energy_error" in info:
        out["rms_energy_error"] = float(np.sqrt(np.mean(np.square(info["energy_error"]))))
    if "divergent" in info:
        out["num_divergent"] = int(np.sum(info["divergent"]))
    if "num_grads" in info:
        out["total_grads"] = int(np.sum(info["num_grads"]))
    return out


def cross_correlation(field_a: np.ndarray, field_b: np.ndarray, index: np.ndarray, nbins: int):
    """r(k) = P_ab / sqrt(P_aa P_bb) of two ``(m, m, m)`` fields in the shells of ``index``."""
    from inference.fields import shell_mean

    ak, bk = np.fft.rfftn(field_a), np.fft.rfftn(field_b)
    p_ab = np.asarray(shell_mean(np.real(ak * np.conj(bk)), index, nbins))
    p_aa = np.asarray(shell_mean(np.abs(ak) ** 2, index, nbins))
    p_bb = np.asarray(shell_mean(np.abs(bk) ** 2, index, nbins))
    return p_ab / np.sqrt(np.maximum(p_aa * p_bb, 1e-300))


def as_jsonable(obj: Any) -> Any:
    """Nested dicts of NumPy arrays/scalars as plain lists and floats."""
    if isinstance(obj, dict):
        return {k: as_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    return obj
