"""Convergence and efficiency diagnostics of multi-chain samples.

Rank-normalised split-Rhat and bulk/tail ESS follow Vehtari et al. (2021) and are BlackJAX's
(``blackjax.rhat``, ``blackjax.ess_bulk``, ``blackjax.ess_tail``); this module applies them to
arrays of shape ``(chains, draws, ...)`` and turns them into the efficiency figures the
inference reports: ESS per 1000 gradient evaluations of scalar parameters and of P(k)
amplitudes in k bins, and the posterior P(k) and cross-correlation with the truth.
"""

from __future__ import annotations

from typing import Any

import blackjax
import numpy as np

#: Quantities of a per-step info record that are summarised.
INFO_FIELDS = ("acceptance", "energy_error", "num_grads", "divergent", "tree_depth", "step_size")


def _check_draws(draws: np.ndarray, name: str) -> np.ndarray:
    draws = np.asarray(draws, np.float64)
    if draws.ndim < 2 or draws.shape[0] < 1 or draws.shape[1] < 4:
        raise ValueError(
            f"{name} of shape {draws.shape} is not allowed: need (chains, draws >= 4, ...)"
        )
    return draws


def split_rhat(draws: np.ndarray) -> np.ndarray:
    """Rank-normalised split-Rhat (max of bulk and folded) of ``(chains, draws, ...)`` draws.

    A single chain is split in two halves, so it works with one chain too. Returns the
    trailing shape.
    """
    draws = _check_draws(draws, "draws")
    return np.asarray(blackjax.rhat(draws, chain_axis=0, sample_axis=1)).reshape(draws.shape[2:])


def ess_bulk(draws: np.ndarray) -> np.ndarray:
    """Bulk effective sample size (rank-normalised, split chains), trailing shape."""
    draws = _check_draws(draws, "draws")
    return np.asarray(blackjax.ess_bulk(draws, chain_axis=0, sample_axis=1)).reshape(
        draws.shape[2:]
    )


def ess_tail(draws: np.ndarray) -> np.ndarray:
    """Tail effective sample size (5% and 95% quantile indicators), trailing shape."""
    draws = _check_draws(draws, "draws")
    return np.asarray(blackjax.ess_tail(draws, chain_axis=0, sample_axis=1)).reshape(
        draws.shape[2:]
    )


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
