"""Diagnostics of a finished (or partial) run, printed, saved as JSON and drawn as a PNG.

From ``chain.h5``: per-step energy error, acceptance, tree depth and divergences; split-Rhat,
bulk and tail ESS and ESS per 1000 gradient evaluations of the scalar parameters and of the
P(k) amplitudes of delta_L in k bins; posterior mean and standard deviation fields; P(k) of the
samples against the prior; r(k) of the posterior mean with the truth when it is known; the
burn-in trace of P(k); and the convergence verdict with advice
(:func:`inference.convergence.assess`), shown first by :func:`digest` and in the figure's title.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from cosmolaw.io import atomic_h5, atomic_path, write_json
from inference.chain_file import read_arrays
from inference.convergence import BURN_FRACTION, assess, step_info
from inference.diagnostics import as_jsonable, cross_correlation, efficiency, info_summary
from inference.fields import shell_index


def summarize(chain_path: str | Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Diagnostics of ``chain.h5``: a JSON-able summary and the arrays the plot needs."""
    arrays, attrs = read_arrays(chain_path)
    steps = arrays["samples/logdensity"].shape[1]
    if steps < 8:
        raise ValueError(f"{chain_path} holds {steps} steps: need at least 8 for diagnostics")
    burn = int(BURN_FRACTION * steps)
    info = step_info(arrays, burn)
    grads = float(np.sum(info["num_grads"]))
    pk = arrays["samples/pk_linear"][:, burn:]
    summary: dict[str, Any] = {
        "steps": steps,
        "burn_in": burn,
        "chains": int(pk.shape[0]),
        "convergence": assess(arrays, attrs, burn),
        "warmup_grads": int(np.sum(arrays["warmup/num_grads"])),
        **info_summary(info),
        "k": arrays["k"],
        "pk": efficiency(pk, grads),
        "pk_mean": pk.mean(axis=(0, 1)),
        "pk_std": pk.std(axis=(0, 1)),
        "pk_prior": arrays["prior/pk_linear"],
    }
    names = list(attrs.get("scalar_names", []))
    scalars = arrays["samples/scalars"][:, burn:]
    if scalars.shape[-1]:
        eff = efficiency(scalars, grads)
        summary["scalars"] = {
            name: {
                "mean": float(scalars[..., i].mean()),
                "std": float(scalars[..., i].std()),
                **{key: float(value[i]) for key, value in eff.items()},
            }
            for i, name in enumerate(names)
        }
    fields, stats = _field_statistics(arrays, burn, float(attrs["box"]))
    summary.update(stats)
    plot_data = {"pk_trace": arrays["samples/pk_linear"], "init_pk": arrays["init/pk_linear"]}
    plot_data.update(fields)
    return as_jsonable(summary), plot_data


def _field_statistics(
    arrays: dict, burn: int, box: float
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Posterior mean/std of the stored fields after burn-in, and r(k) with the truth."""
    kept = arrays["fields/step"] > burn
    if not np.any(kept):
        kept = np.ones_like(kept, bool)
    out: dict[str, np.ndarray] = {}
    stats: dict[str, Any] = {"field_samples": int(np.sum(kept)) * arrays["fields/s"].shape[0]}
    mesh = arrays["fields/s"].shape[-1]
    index = shell_index(mesh, box)
    for name in ("s", "delta_L", "delta"):
        samples = arrays[f"fields/{name}"][:, kept]
        out[f"mean/{name}"] = samples.mean(axis=(0, 1))
        out[f"std/{name}"] = samples.std(axis=(0, 1))
        truth = arrays.get(f"truth/{name}")
        if truth is not None:
            r = cross_correlation(out[f"mean/{name}"], truth, index, mesh // 2)
            stats[f"r_k_mean_vs_truth/{name}"] = r
            out[f"r/{name}"] = r
    return out, stats


def write_report(chain_path: str | Path, out_dir: str | Path | None = None) -> dict[str, Any]:
    """Write ``summary.json``, ``posterior.h5`` (mean/std fields) and ``summary.png``.

    Returns the summary; a one-paragraph digest is printed by the CLI.
    """
    chain_path = Path(chain_path)
    out = Path(out_dir) if out_dir is not None else chain_path.parent
    summary, plot_data = summarize(chain_path)
    write_json(out / "summary.json", summary)
    with atomic_h5(out / "posterior.h5") as f:
        for name, value in plot_data.items():
            if name.startswith(("mean/", "std/")):
                dset = f.create_dataset(name, data=value.astype(np.float32))
                dset.attrs["description"] = f"posterior {name.split('/')[0]} of {name[5:]}"
    plot_summary(summary, plot_data, out / "summary.png")
    return summary


def digest(summary: dict[str, Any]) -> str:
    """A few lines with the headline diagnostics: the convergence verdict and its advice first."""
    pk = summary["pk"]
    lines = [
        *convergence_lines(summary["convergence"]),
        f"chains {summary['chains']}, steps {summary['steps']} (burn-in {summary['burn_in']}), "
        f"gradients {summary.get('total_grads', 0)} + warm-up {summary['warmup_grads']}",
        f"acceptance {summary.get('mean_acceptance', float('nan')):.3f}"
        + (
            f" (scalar block {summary['mean_scalar_acceptance']:.3f})"
            if "mean_scalar_acceptance" in summary
            else ""
        )
        + ", "
        f"rms energy error {summary.get('rms_energy_error', float('nan')):.3g}, "
        f"divergences {summary.get('num_divergent', 0)}, "
        f"mean tree depth {summary.get('mean_tree_depth', 0.0):.2f}",
        "P(k) low-k bins: rhat "
        + " ".join(f"{v:.3f}" for v in pk["rhat"][:3])
        + ", ESS/1000 grads "
        + " ".join(f"{v:.1f}" for v in pk["ess_bulk_per_1000_grads"][:3]),
    ]
    for name, s in summary.get("scalars", {}).items():
        lines.append(
            f"{name}: {s['mean']:.4g} +- {s['std']:.3g}, rhat {s['rhat']:.3f}, "
            f"ESS bulk {s['ess_bulk']:.0f} tail {s['ess_tail']:.0f}, "
            f"ESS/1000 grads {s['ess_bulk_per_1000_grads']:.1f}"
        )
    r = summary.get("r_k_mean_vs_truth/s")
    if r is not None:
        lines.append("r(k) posterior mean vs truth (s): " + " ".join(f"{v:.2f}" for v in r[:4]))
    return "\n".join(lines)


def convergence_lines(verdict: dict[str, Any]) -> list[str]:
    """The verdict of :func:`inference.convergence.assess` in a few lines: converged or not,
    the worst split-Rhat, smallest ESS, rejection and energy-error statistics, then advice."""
    energy = verdict["energy_error"]
    state = "converged" if verdict["converged"] else "NOT CONVERGED"
    lines = [
        f"{state}: split-Rhat max {verdict['rhat_max']:.4g} ({verdict['rhat_max_of']}; limit "
        f"{verdict['rhat_limit']}), ESS min bulk {verdict['ess_bulk_min']:.0f} tail "
        f"{verdict['ess_tail_min']:.0f} (need {verdict['min_ess']}), rejected "
        f"{verdict['rejection_rate']:.2%} ({verdict['rejected_by']}), divergent "
        f"{verdict['divergent_rate']:.2%}, energy error rms {energy['rms']:.3g} "
        f"|max| {energy['abs_max']:.3g}"
        + (
            f", variance/dim {energy['variance_per_dim']:.3g} (target "
            f"{energy['target_variance_per_dim']:.3g})"
            if "variance_per_dim" in energy
            else ""
        )
    ]
    lines.extend(f"  advice: {item}" for item in verdict["advice"])
    return lines


def plot_summary(summary: dict[str, Any], data: dict[str, np.ndarray], path: str | Path) -> None:
    """Summary figure: P(k) vs prior, burn-in trace, r(k), ESS, mean/std slices."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = np.asarray(summary["k"])
    fig, axes = plt.subplots(2, 3, figsize=(14, 8))
    ax = axes[0, 0]
    ax.loglog(k, summary["pk_prior"], "k-", label="prior")
    ax.fill_between(
        k,
        np.asarray(summary["pk_mean"]) - np.asarray(summary["pk_std"]),
        np.asarray(summary["pk_mean"]) + np.asarray(summary["pk_std"]),
        alpha=0.4,
        label="samples (mean +- std)",
    )
    ax.set(xlabel="k [h/Mpc]", ylabel="P_L(k) [(Mpc/h)^3]", title="P(k) of samples vs prior")
    ax.legend()
    ax = axes[0, 1]
    trace = data["pk_trace"]
    for b in range(min(3, trace.shape[-1])):
        for c in range(trace.shape[0]):
            ax.plot(trace[c, :, b] / summary["pk_prior"][b], lw=0.6, color=f"C{b}")
    ax.set(xlabel="step", ylabel="P(k) / prior", title="burn-in trace, 3 lowest k bins")
    ax = axes[0, 2]
    for name in ("s", "delta_L", "delta"):
        if f"r/{name}" in data:
            ax.plot(k, data[f"r/{name}"], label=name)
    ax.axhline(0.9, color="k", ls=":")
    ax.set(xscale="log", xlabel="k [h/Mpc]", ylabel="r(k)", title="posterior mean vs truth")
    ax.legend()
    ax = axes[1, 0]
    ax.semilogx(k, summary["pk"]["ess_bulk_per_1000_grads"], "o-", label="bulk")
    ax.set(xlabel="k [h/Mpc]", ylabel="ESS / 1000 grads", title="P(k) sampling efficiency")
    ax2 = ax.twinx()
    ax2.semilogx(k, summary["pk"]["rhat"], "r.-")
    ax2.set_ylabel("split-Rhat", color="r")
    mid = data["mean/delta"].shape[0] // 2
    for ax, name, title in (
        (axes[1, 1], "mean/delta", "posterior mean delta"),
        (axes[1, 2], "std/delta", "posterior std delta"),
    ):
        im = ax.imshow(data[name][mid], origin="lower")
        fig.colorbar(im, ax=ax)
        ax.set_title(title)
    verdict = summary["convergence"]
    fig.suptitle(
        ("converged" if verdict["converged"] else "NOT CONVERGED")
        + f": split-Rhat max {verdict['rhat_max']:.4g} ({verdict['rhat_max_of']}), "
        f"rejected {verdict['rejection_rate']:.1%}",
        color="k" if verdict["converged"] else "r",
    )
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=80)
    plt.close(fig)
