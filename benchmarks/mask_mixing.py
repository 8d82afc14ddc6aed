"""What a survey mask costs field-level sampling, and what the mask-aware map wins back.

The posterior is the field-level leg of ``cosmolaw run fli-vs-ili`` (its full configuration:
2LPT, redshift-space counts, Neyrinck et al. bias law with nbar 5 per cell, completeness 0.9,
Omega_m and sigma8 sampled with the white noise partially centred on them) on an ``m^3`` mesh
of 8 Mpc/h cells, the full run's cell size (``--mesh``, default 32: box 256 Mpc/h). For each
mock (``--mocks``, default 0 1) it is sampled by the experiment's own configuration (MCLMC,
Fisher mass matrix, chains started at the MAP; ``--chains``, ``--warmup``, ``--samples``)
three times, the same mock and seeds otherwise:

- ``diagonal``: with the experiment's mask (the first ``masked_fraction`` of the box along x
  unobserved) and the Fourier-diagonal map, as if the posterior did not say which cells are
  unobserved (the control);
- ``mask-aware``: the same posterior as cosmolaw runs it, the map corrected by the mask
  operator's series (``inference.precondition``, :data:`MASK_SERIES_TERMS` terms);
- ``unmasked``: no mask, the reference the other two would reach with a perfect map.

Printed per run: split-Rhat and bulk ESS per 1000 sampling gradients of the linear P(k) in
the eight lowest k-bins (after the first fifth of the steps), those of (Omega_m, sigma8), and
the run's seconds per gradient (set-up and compilation included). Nothing was tuned on these
posteriors but the number of series terms (latent variance per k-shell, P(k) ESS, cost per
gradient) and MCLMC's ``L`` (``inference.samplers.mclmc.L_PER_WIDTH``, P(k) and cosmology
ESS), both chosen on mock 0 at 32^3: mock 1 and other meshes are held out.

Last line: ``pk_ess_ratio_mask_aware=.. pk_ess_ratio_unmasked=.. rhat_pk_diagonal=..
rhat_pk_mask_aware=.. rhat_pk_unmasked=.. grad_cost_ratio=.. chains=.. samples=..``: the
ratios to the control of the mean ESS per 1000 gradients over the eight lowest P(k) bins and
the mocks, the largest split-Rhat of the three lowest bins over the mocks, and the ratio of
seconds per gradient (mask-aware over diagonal).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
import time
from pathlib import Path

import numpy as np

LEGS = ("diagonal", "mask-aware", "unmasked")
LOW_K_BINS = 3
PK_BINS = 8


def run(mesh: int, mock: int, leg: str, args: argparse.Namespace, out: Path) -> dict:
    """Sample one leg; ``{"rhat_pk", "ess_pk", "rhat_cosmo", "ess_cosmo", "grad_s"}`` (ESS
    per 1000 sampling gradients for the first :data:`PK_BINS` P(k) bins, per run for the
    cosmology; ``grad_s``: the run's wall seconds, set-up and compilation included, per
    gradient of one chain)."""
    from experiments import fli_vs_ili
    from experiments.core.field_inference import run_config
    from inference.chain_file import read_arrays
    from inference.diagnostics import ess_bulk, split_rhat
    from inference.driver import run_chains

    config = {
        **fli_vs_ili.FULL,
        "mesh": mesh,
        "box": 8.0 * mesh,
        "mock_seed": mock,
        "masked_fraction": 0.0 if leg == "unmasked" else fli_vs_ili.FULL["masked_fraction"],
        "chains": args.chains,
        "warmup": args.warmup,
        "samples": args.samples,
        "thin": args.samples // 10,
    }
    posterior = fli_vs_ili.field_posterior(fli_vs_ili.simulate_mock(config), config)
    if leg == "diagonal":
        posterior = dataclasses.replace(posterior, unobserved=None)
    t0 = time.perf_counter()
    path = run_chains(posterior, run_config(config), out, progress=False)
    seconds = time.perf_counter() - t0
    arrays, _ = read_arrays(path)
    burn = args.samples // 5
    pk = np.asarray(arrays["samples/pk_linear"])[:, burn:, :PK_BINS]
    cosmo = np.asarray(arrays["samples/scalars"])[:, burn:]
    steps = np.asarray(arrays["info/num_grads"])
    grads = float(np.sum(steps[:, burn:]))
    total = float(np.sum(steps) + np.sum(arrays["warmup/num_grads"]))
    return {
        "rhat_pk": split_rhat(pk),
        "ess_pk": 1000.0 * ess_bulk(pk) / grads,
        "rhat_cosmo": split_rhat(cosmo),
        "ess_cosmo": ess_bulk(cosmo),
        "grad_s": seconds * args.chains / total,
    }


def _numbers(values: np.ndarray, fmt: str) -> str:
    return " ".join(format(v, fmt) for v in values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mesh", type=int, default=32, help="cells per side (8 Mpc/h each)")
    parser.add_argument("--mocks", type=int, nargs="+", default=[0, 1], help="mock seeds")
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--samples", type=int, default=1000, help="a multiple of 10")
    args = parser.parse_args()
    if args.samples < 20 or args.samples % 10:
        parser.error(f"--samples={args.samples} is not allowed: use a multiple of 10, >= 20")
    from inference.precondition import MASK_SERIES_TERMS

    print(
        f"mesh {args.mesh}^3, {MASK_SERIES_TERMS} series terms, {os.cpu_count()} cores, "
        f"load {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    results: dict[str, list[dict]] = {leg: [] for leg in LEGS}
    with tempfile.TemporaryDirectory() as tmp:
        for mock in args.mocks:
            for leg in LEGS:
                r = run(args.mesh, mock, leg, args, Path(tmp) / f"{mock}-{leg}")
                results[leg].append(r)
                print(
                    f"mock {mock} {leg:>10}: P(k) bins 1-{PK_BINS} split-Rhat "
                    f"{_numbers(r['rhat_pk'], '.3f')}, ESS/1000 grads "
                    f"{_numbers(r['ess_pk'], '.1f')}; (Omega_m, sigma8) split-Rhat "
                    f"{_numbers(r['rhat_cosmo'], '.3f')}, ESS {_numbers(r['ess_cosmo'], '.0f')}; "
                    f"{r['grad_s'] * 1e3:.1f} ms per gradient",
                    flush=True,
                )

    def mean_ess(leg: str) -> float:
        return float(np.mean([r["ess_pk"] for r in results[leg]]))

    def worst_rhat(leg: str) -> float:
        return float(max(np.max(r["rhat_pk"][:LOW_K_BINS]) for r in results[leg]))

    def grad_s(leg: str) -> float:
        return float(np.mean([r["grad_s"] for r in results[leg]]))

    print(
        f"pk_ess_ratio_mask_aware={mean_ess('mask-aware') / mean_ess('diagonal'):.3g} "
        f"pk_ess_ratio_unmasked={mean_ess('unmasked') / mean_ess('diagonal'):.3g} "
        f"rhat_pk_diagonal={worst_rhat('diagonal'):.4g} "
        f"rhat_pk_mask_aware={worst_rhat('mask-aware'):.4g} "
        f"rhat_pk_unmasked={worst_rhat('unmasked'):.4g} "
        f"grad_cost_ratio={grad_s('mask-aware') / grad_s('diagonal'):.3g} "
        f"chains={args.chains} samples={args.samples}"
    )


if __name__ == "__main__":
    main()
