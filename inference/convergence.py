"""Has a run converged? A verdict on the draws of ``chain.h5`` and what to change if not.

:func:`assess` takes the stored draws after burn-in and returns, JSON-able: the split-Rhat of
the low-k P(k) amplitudes of delta_L (the :data:`LOW_K_BINS` lowest k-bins) and of the sampled
scalars, their smallest bulk and tail ESS, the energy-error statistics, the rate of rejected
steps (unadjusted MCLMC: its energy cutoff; the other samplers: Metropolis) and of divergent
trajectories, a ``converged`` flag and an ``advice`` list in plain words naming the options of
``cosmolaw infer`` to change. A run has converged when the largest of those split-Rhat values
is below :data:`RHAT_LIMIT` and the smallest bulk and tail ESS reach :data:`MIN_ESS`
(Vehtari et al. 2021: below that Rhat itself is too noisy to resolve 1.01).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from inference.diagnostics import ess_bulk, ess_tail, split_rhat

#: Fraction of the sampling steps discarded as burn-in in the summaries and the verdict.
BURN_FRACTION = 0.1
#: Split-Rhat below which chains count as mixed.
RHAT_LIMIT = 1.01
#: Smallest bulk and tail ESS (all chains together) of a converged run.
MIN_ESS = 400
#: Number of low-k P(k) bins whose split-Rhat decides convergence.
LOW_K_BINS = 3
#: Rate of steps rejected by MCLMC's energy cutoff above which a smaller step is advised.
MAX_REJECTION = 0.01
#: A chain whose median ``|energy error|`` exceeds this many times the median of the chains'
#: medians is reported as sitting outside the others' typical set. Measured on the 64^3
#: fli-vs-ili posterior when one step size was tuned for all chains (see
#: :func:`inference.samplers.mclmc.pooled_warmup`): the stuck chain's median 43.5 against
#: 2.3-3.4, and in another run 32.7 against 0.75-0.78; on issue 15's hard posterior the four
#: chains' medians lie within 1.2x of each other.
OUTLIER_ENERGY_FACTOR = 5.0
#: Median of chi^2 with one degree of freedom: ``median(x^2) = 0.455 var(x)`` for Gaussian x.
CHI2_MEDIAN = 0.45493642311957283
#: Ratio of the measured to the target energy-error variance above which advice is given.
MAX_ENERGY_VARIANCE_RATIO = 3.0
#: Ratio below which MCLMC's step size counts as collapsed in the warm-up. Measured on issue
#: 15's hard posterior (16^3, 4 chains x 2000 steps, b1 sampled): with the Hessian's mass
#: matrix the warm-up ended at step size 0.012, ratio 1e-4, the chains stayed at their starts
#: (split-Rhat 2.1-4.5); with the Fisher one at 8.8, ratio 0.12, split-Rhat 1.02-1.07. The
#: collapse came from the Hessian's k-shells whose observed information is not positive (two
#: of eight there), left at the prior's width; given Fisher's information instead, the step
#: size stayed at 7.5 but the chains still did not mix (split-Rhat 1.7-2.1): hence the advice
#: is Fisher's mass matrix, not a patched Hessian.
MIN_ENERGY_VARIANCE_RATIO = 0.01


def convergence_draws(arrays: dict[str, np.ndarray], burn: int) -> tuple[np.ndarray, np.ndarray]:
    """The draws the verdict is about: ``(P(k) of the LOW_K_BINS lowest bins (C, n, b),
    scalars (C, n, p))``, both after discarding the first ``burn`` steps."""
    pk = arrays["samples/pk_linear"][:, burn:, :LOW_K_BINS]
    scalars = arrays["samples/scalars"][:, burn:]
    return pk, scalars


def step_info(arrays: dict[str, np.ndarray], burn: int) -> dict[str, np.ndarray]:
    """The per-step diagnostics ``info/<name>`` ``(C, n)`` as ``{name: (C, n - burn)}``."""
    return {k.split("/", 1)[1]: v[:, burn:] for k, v in arrays.items() if k.startswith("info/")}


def assess(arrays: dict[str, np.ndarray], attrs: dict[str, Any], burn: int = 0) -> dict[str, Any]:
    """Convergence verdict and advice from the arrays and attributes of ``chain.h5``.

    Args:
        arrays: ``samples/pk_linear`` ``(C, n, nbins)`` [(Mpc/h)^3], ``samples/scalars``
            ``(C, n, p)``, ``info/*`` ``(C, n)`` and ``k`` ``(nbins,)`` [h/Mpc], as
            :func:`inference.chain_file.read_arrays` returns them.
        attrs: the file attributes: ``config`` (the run configuration as a dict),
            ``scalar_names``, ``mesh``.
        burn: sampling steps discarded at the start of every chain (>= 0, leaving >= 4).

    Returns:
        ``{"converged", "advice", "rhat_max", "rhat_max_of", "rhat_pk_low_k",
        "rhat_scalars", "ess_bulk_min", "ess_tail_min", "rejection_rate",
        "rejection_rate_per_chain", "rejected_by", "divergent_rate", "step_size",
        "energy_error": {...}, "energy_error_median_per_chain", "rhat_limit", "min_ess"}``.
    """
    steps = arrays["samples/logdensity"].shape[1]
    if not 0 <= burn <= steps - 4:
        raise ValueError(f"burn={burn} is not allowed: use 0 <= burn <= {steps - 4} (steps - 4)")
    config = attrs.get("config", {})
    names = list(attrs.get("scalar_names", []))
    pk, scalars = convergence_draws(arrays, burn)
    k = np.asarray(arrays["k"])[:LOW_K_BINS]
    labels = [f"P(k) at k = {kk:.3g} h/Mpc" for kk in k] + names
    draws = np.concatenate([pk, scalars], axis=-1)
    rhat = split_rhat(draws)
    bulk, tail = ess_bulk(draws), ess_tail(draws)
    # NaN (constant draws) counts as unmixed: nothing to say that it mixed.
    worst = int(np.argmax(np.where(np.isnan(rhat), np.inf, rhat)))
    rhat_max = float(rhat[worst]) if not np.isnan(rhat[worst]) else math.inf
    info = step_info(arrays, burn)
    sampler = config.get("sampler", "")
    accepted = np.asarray(info["acceptance"], np.float64)
    if sampler == "mclmc":
        rejection, rejected_by = float(np.mean(accepted == 0)), "energy cutoff"
    else:
        rejection, rejected_by = float(1.0 - np.mean(accepted)), "Metropolis"
    energy = _energy_statistics(info, sampler, config, attrs)
    out: dict[str, Any] = {
        "rhat_limit": RHAT_LIMIT,
        "min_ess": MIN_ESS,
        "rhat_max": rhat_max,
        "rhat_max_of": labels[worst],
        "rhat_pk_low_k": rhat[: pk.shape[-1]].tolist(),
        "rhat_scalars": {n: float(r) for n, r in zip(names, rhat[pk.shape[-1] :], strict=True)},
        "ess_bulk_min": float(np.nanmin(bulk)),
        "ess_tail_min": float(np.nanmin(tail)),
        "rejection_rate": rejection,
        "rejection_rate_per_chain": (1.0 - np.mean(accepted > 0, axis=1)).tolist()
        if sampler == "mclmc"
        else (1.0 - np.mean(accepted, axis=1)).tolist(),
        "rejected_by": rejected_by,
        "divergent_rate": float(np.mean(info["divergent"])),
        "step_size": float(np.mean(info["step_size"])),
        "energy_error": energy,
        "energy_error_median_per_chain": np.nanmedian(
            np.abs(np.asarray(info["energy_error"], np.float64)), axis=1
        ).tolist(),
    }
    mixed = rhat_max < RHAT_LIMIT
    enough = min(out["ess_bulk_min"], out["ess_tail_min"]) >= MIN_ESS
    out["converged"] = bool(mixed and enough)
    out["advice"] = _advice(out, scalars, names, config, steps - burn)
    return out


def _energy_statistics(info: dict, sampler: str, config: dict, attrs: dict) -> dict[str, float]:
    """Mean, rms, 99th percentile and maximum of ``|energy error|``; for unadjusted MCLMC also
    its typical variance per latent dimension beside the tuned target: ``median(dE^2) /
    0.455 / d`` (0.455 the median of chi^2 with one degree of freedom), a Gaussian-consistent
    estimate that the rare huge errors at the likelihood's walls do not swing."""
    error = np.asarray(info["energy_error"], np.float64)
    finite = error[np.isfinite(error)]
    if finite.size == 0:
        finite = np.array([np.nan])
    stats = {
        "mean": float(np.mean(finite)),
        "rms": float(np.sqrt(np.mean(finite**2))),
        "abs_p99": float(np.quantile(np.abs(finite), 0.99)),
        "abs_max": float(np.max(np.abs(finite))),
    }
    if sampler == "mclmc" and "energy_variance" in config:
        dim = int(attrs.get("mesh", 0)) ** 3 + len(attrs.get("scalar_names", []))
        stats["variance_per_dim"] = float(np.median(finite**2) / CHI2_MEDIAN / dim)
        stats["target_variance_per_dim"] = float(config["energy_variance"])
    return stats


def _advice(
    out: dict[str, Any], scalars: np.ndarray, names: list[str], config: dict, steps: int
) -> list[str]:
    """What to change, in plain words, most specific first (empty when nothing is amiss)."""
    advice: list[str] = []
    samples = int(config.get("num_samples", steps))
    warmup = int(config.get("num_warmup", 0))
    energy = out["energy_error"]
    variance = config.get("energy_variance")
    step_size = out["step_size"]
    if out["rejected_by"] == "energy cutoff" and out["rejection_rate"] > MAX_REJECTION:
        advice.append(
            f"{out['rejection_rate']:.1%} of the steps were rejected by the energy cutoff "
            "(trajectories thrown back by the likelihood's walls, where a cell's expected count "
            f"goes to zero): lower --energy-variance (now {variance:g}; try {variance / 3:.2g})."
        )
    ratio = energy.get("variance_per_dim", 0.0) / energy.get("target_variance_per_dim", 1.0)
    if ratio > MAX_ENERGY_VARIANCE_RATIO:
        advice.append(
            f"the typical energy error has {ratio:.1f} times its target variance: "
            "the warm-up tuned the step size where the chains no longer are; run a longer "
            f"--warmup (now {warmup}) or lower --energy-variance."
        )
    if 0 < ratio < MIN_ENERGY_VARIANCE_RATIO:
        fix = (
            "use --mass-matrix fisher"
            if config.get("mass_matrix") in ("hessian", "adapted")
            else f"run a longer --warmup (now {warmup})"
        )
        advice.append(
            f"the warm-up left a step size {step_size:.3g} at which the typical energy error "
            f"has {ratio:.1g} of its target variance: the chains barely move; {fix}."
        )
    advice.extend(_outlier_chain_advice(out, warmup, variance))
    if out["divergent_rate"] > 0:
        advice.append(
            f"{out['divergent_rate']:.2%} of the trajectories diverged (NaN): lower "
            "--energy-variance (mclmc) or use a sampler with a Metropolis test (quarter_hmc, "
            "nuts)."
        )
    ess = min(out["ess_bulk_min"], out["ess_tail_min"])
    # Samples per chain at which the ESS would reach MIN_ESS at the present rate. Checked on
    # issue 15's hard posterior: 4 x 2000 steps gave ESS 71 and advised 11330; 4 x 12000
    # steps converged (split-Rhat 1.003-1.005, ESS 489).
    more = int(math.ceil(samples * MIN_ESS / max(ess, 1.0) / 10.0) * 10)
    if out["rhat_max"] >= RHAT_LIMIT:
        advice.extend(_bias_advice(scalars, names, out["rhat_scalars"], out["rhat_max_of"]))
        advice.append(
            f"split-Rhat {out['rhat_max']:.4g} of {out['rhat_max_of']} is above {RHAT_LIMIT}: "
            "the chains disagree, so no estimate from them can be trusted yet. Run longer in a "
            f"new run directory (a resumed run keeps its options): the smallest ESS is "
            f"{ess:.0f}, so at this rate about --samples {max(more, 2 * samples)} "
            f"--warmup {max(2 * warmup, 10)} to reach {MIN_ESS}."
        )
    elif ess < MIN_ESS:
        advice.append(
            f"the smallest effective sample size is {ess:.0f} (bulk {out['ess_bulk_min']:.0f}, "
            f"tail {out['ess_tail_min']:.0f}), below {MIN_ESS}: too few independent draws for "
            f"split-Rhat and the error bars to be reliable; run about --samples {more}."
        )
    return advice


def _outlier_chain_advice(out: dict[str, Any], warmup: int, variance: float | None) -> list[str]:
    """Advice for chains whose median ``|energy error|`` is :data:`OUTLIER_ENERGY_FACTOR` times
    the chains' typical one: they sit where their step size is too large,
    away from the others' typical set, and may stay there for the whole run."""
    medians = np.asarray(out["energy_error_median_per_chain"])
    rejected = np.asarray(out["rejection_rate_per_chain"])
    if medians.size < 2 or not np.all(np.isfinite(medians)):
        return []
    outliers = np.flatnonzero(medians > OUTLIER_ENERGY_FACTOR * np.median(medians))
    if outliers.size == 0:
        return []
    others = np.setdiff1d(np.arange(medians.size), outliers)
    lower = f" or lower --energy-variance (now {variance:g})" if variance else ""
    they, their = ("they sit", "their") if outliers.size > 1 else ("it sits", "its")
    return [
        f"chain{'s' if outliers.size > 1 else ''} {', '.join(str(c) for c in outliers)}: "
        f"median |energy error| {', '.join(f'{medians[c]:.3g}' for c in outliers)} against "
        f"{medians[others].min():.3g}-{medians[others].max():.3g} in the others, "
        f"{', '.join(f'{rejected[c]:.0%}' for c in outliers)} of the steps rejected against "
        f"{rejected[others].min():.0%}-{rejected[others].max():.0%}: "
        f"{they} where the step size is too large, away from the others' "
        f"typical set, and may not leave; {their} draws are not the posterior's. Run a longer "
        f"--warmup (now {warmup}){lower} in a new run directory."
    ]


def _bias_advice(
    scalars: np.ndarray, names: list[str], rhat: dict[str, float], worst: str
) -> list[str]:
    """Advice for unmixed bias parameters whose chains sit on both sides of zero, or apart
    (chain means further apart than the mean within-chain standard deviation), or which mix
    slowest of all. Measured on issue 15's hard posterior (4 chains x 2000 steps): b1 sampled,
    split-Rhat 1.02-1.07 and ESS 71; b1 fixed, 1.006-1.009 and ESS 282."""
    advice = []
    for i, name in enumerate(names):
        if not name.startswith("bias/") or rhat[name] < RHAT_LIMIT:
            continue
        means = scalars[..., i].mean(axis=1)
        shown = ", ".join(f"{m:.3g}" for m in means)
        pname = name.split("/", 1)[1]
        if means.min() < 0 < means.max():
            advice.append(
                f"the chains' {pname} lie on both sides of zero (chain means {shown}): the "
                "sign-flipped mode is reached; give it a prior that excludes it, e.g. "
                f"--bias-prior {pname}=MEAN,STD with STD at most MEAN/3."
            )
        elif name == worst or np.ptp(means) > np.mean(scalars[..., i].std(axis=1)):
            advice.append(
                f"{pname} mixes slowest or its chains sit apart (split-Rhat {rhat[name]:.4g}, "
                f"chain means {shown}): the chains trade the bias slowly against the amplitude "
                f"of the field; with prior information give a narrower --bias-prior "
                f"{pname}=MEAN,STD, or --fix-bias if it is known."
            )
    return advice
