"""Field-level inference with the 10-step PM model at scale: seconds, bytes and samples.

The posterior is ``pm32`` of ``benchmarks/sampler_efficiency.py`` on other meshes: white noise
``s`` on an ``m^3`` mesh (box 256 Mpc/h) given Poisson counts of a 10-step PM density (2LPT
from a = 0.1, FastPM kick-drift-kick to a = 0.5) with linear bias b1 = 1.5 and nbar = 2 per
cell, bias and cosmology fixed; the mock is drawn through the same forward model. Legs:

- ``grad`` (``--meshes``, default 16, 32, 64): the gradient of the log density, compiled
  (compile seconds printed, not counted) and timed (median of ``--repeat`` calls after a
  warm-up call, seconds), and its compiled memory (XLA's memory analysis: arguments +
  outputs + temporaries, GB = 1e9 bytes).
- ``sample`` (``--sample-meshes``, default 16): ESS per 1000 gradients of the P(k) of ``s`` in
  the three lowest k-bins for cosmolaw (``cosmolaw infer --model pm --steps 10`` with
  sampler_efficiency's configuration: MCLMC, Hessian mass matrix, large-scale speed-up 2,
  energy variance 3e-4; set-up and warm-up gradients are printed beside) and for BlackJAX's
  MCLMC with its default tuner (``mclmc_find_L_and_step_size``) in raw coordinates, plus the
  control (BlackJAX's tuner on cosmolaw's latent density); split-Rhat is cosmolaw's, the
  maximum over the P(k) bins, the 20 Fourier modes and the scalars
  (:func:`sampler_efficiency.run_posterior`, imported, not copied). ``--chains``,
  ``--samples`` and ``--warmup`` size it. Every MCLMC step costs two gradients (0.67 s each at
  64^3 on 2 cores), so 2 chains x (400 + 4000) steps (``--sample-meshes 64 --chains 2
  --samples 4000 --warmup 400``) take about 3.3 h on 2 cores for each of the three legs.
- ``memory`` (``--memory-meshes``, default 128, 256, 512, and ``--memory-512-1024``): the
  compiled memory of one posterior gradient (the same posterior with the counts as an
  argument) at ``m^3`` particles on an ``m^3`` mesh, and at 512^3 particles on a 1024^3 mesh
  (pmwd's published configuration; cosmolaw only), compiled for ``jax.ShapeDtypeStruct``
  inputs without running, each in its own process, for cosmolaw and for JaxPM run as its
  documentation runs it (``diffrax.diffeqsolve``, ``LeapfrogMidpoint``, ``ConstantStepSize``,
  default ``RecursiveCheckpointAdjoint``; ``tests/jaxpm_reference.py``; its particles are
  the mesh). These compile for the CPU with XLA's memory-minimising scheduler
  (``--xla_cpu_enable_concurrency_optimized_scheduler=false``; the CPU default trades memory
  for concurrency, a GPU schedules for memory) and the accelerators' scatter/gather chunk
  (``simulator.cic.ACCELERATOR_CHUNK``). ``--peak`` runs each gradient instead and reports the
  device's peak memory (``memory_stats()["peak_bytes_in_use"]``, on a GPU; see
  ``benchmarks/gpu.sh``) and its time.

Nothing was tuned here: the posterior and cosmolaw's configuration come from
``sampler_efficiency.py`` (tuned on its 16^3 1LPT ``default`` posterior, MCLMC's ``L`` on
``mask_mixing.py``'s mock 0; not on this one).

Last line: ``ess_per_kgrad_64=.. ratio_vs_mclmc_64=.. rhat_64=.. grad_s_64=.. mem_gb_256=..
mem_gb_512=.. mem_gb_512_1024=..`` (cosmolaw's; ``nan`` for a leg that did not run; the line
before it says which legs ran). Goals (issue 15): rhat_64 < 1.01, ratio_vs_mclmc_64 >= 2,
mem_gb_512 <= 60, mem_gb_512_1024 <= 80.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from jaxpm_reference import JAXPM_RUNNERS, jaxpm_density
from pm_vs_jaxpm import compile_timed, compiled_bytes, load, timed
from sampler_efficiency import POSTERIORS, build, run_posterior

from simulator.cic import ACCELERATOR_CHUNK
from simulator.config import SimConfig
from simulator.cosmology import Cosmology
from simulator.ic import linear_field
from simulator.observe.mock import Observation, counts_log_likelihood
from simulator.pipeline import forward

MEMORY_FLAG = "--xla_cpu_enable_concurrency_optimized_scheduler=false"
POSTERIOR = "pm32"
SPEC = POSTERIORS[POSTERIOR]
CODES = ("cosmolaw", "jaxpm")
#: Mesh of ``pm32``: the memory legs keep its cell size (box scaled with the mesh).
POSTERIOR_MESH = 32


def posterior_gradient(code: str, ptcl: int, mesh: int):
    """``(grad_fn, specs)``: the gradient in ``s`` of the PM posterior's log density with the
    counts and selection as arguments, for ``code`` with ``ptcl^3`` particles on a ``mesh^3``
    mesh, and the ``jax.ShapeDtypeStruct`` of its three arguments ``(s, counts, selection)``.
    """
    box = SPEC.box * mesh / POSTERIOR_MESH  # cells of the posterior's size
    conf = SimConfig(
        mesh=mesh,
        box=box,
        ptcl_grid=ptcl,
        a_stop=SPEC.a_stop,
        steps=10,
        chunk_size=ACCELERATOR_CHUNK,
    )
    cosmo = Cosmology.planck18()
    obs = Observation(bias="linear", bias_params={"b1": SPEC.b1}, nbar_cell=SPEC.nbar)
    law, bias, noise = obs.law, obs.bias_parameters(), obs.noise_model()
    params = {k: getattr(cosmo, k) for k in ("Omega_m", "Omega_b", "h", "n_s", "sigma8")}

    def delta(s):
        if code == "cosmolaw":
            return forward(s, cosmo, conf).delta
        run = JAXPM_RUNNERS["diffrax"]
        return jaxpm_density(run(linear_field(s, cosmo, conf), params, conf.a_start, 10), mesh)

    def logdensity(s, counts, selection):
        loglik = counts_log_likelihood(counts, delta(s), law, bias, SPEC.nbar, noise, selection)
        return loglik - 0.5 * jnp.sum(s**2)

    spec = jax.ShapeDtypeStruct((mesh,) * 3, jnp.float32)
    # The counts in the dtype the posterior holds them (inference.data.compact_counts: uint8
    # at a few galaxies per cell), for both codes.
    counts = jax.ShapeDtypeStruct((mesh,) * 3, jnp.uint8)
    return jax.grad(logdensity), (spec, counts, spec)


def child(code: str, ptcl: int, mesh: int, peak: bool) -> dict:
    """One memory leg in this process: compiled (or, with ``peak``, measured) gradient memory
    in bytes, compile seconds and (``peak``) the gradient's time in seconds."""
    grad, specs = posterior_gradient(code, ptcl, mesh)
    compiled, seconds = compile_timed(grad, *specs)
    out = {"bytes": compiled_bytes(compiled), "compile_s": seconds}
    if peak:
        key = jax.random.PRNGKey(0)
        s = jax.random.normal(key, specs[0].shape, jnp.float32)
        counts = jax.random.poisson(key, SPEC.nbar, specs[0].shape).astype(specs[1].dtype)
        out["grad_s"] = timed(compiled, s, counts, jnp.ones_like(s), repeat=3)
        stats = jax.devices()[0].memory_stats() or {}
        out["peak_bytes"] = stats.get("peak_bytes_in_use", float("nan"))
    return out


def memory_leg(code: str, ptcl: int, mesh: int, peak: bool, timeout: float) -> dict | None:
    """Run :func:`child` in a fresh process (its own peak and host memory); ``None`` if it
    failed (out of memory, timeout), after printing why."""
    cmd = [sys.executable, __file__, "--child", f"{code},{ptcl},{mesh}"] + (
        ["--peak"] if peak else []
    )
    env = dict(os.environ)
    if not peak:  # the flag must be set before the child's jax starts its backend
        env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} {MEMORY_FLAG}".strip()
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        print(f"  {code} {ptcl}^3 on {mesh}^3: no result within {timeout:.0f} s", flush=True)
        return None
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or ["?"]
        print(f"  {code} {ptcl}^3 on {mesh}^3: failed ({tail[0][:200]})", flush=True)
        return None
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["wall_s"] = time.perf_counter() - t0
    return out


def grad_leg(mesh: int, seed: int, repeat: int) -> tuple[float, float]:
    """Gradient seconds and compiled gradient memory (GB) of the sampled posterior on
    ``mesh^3`` (``sampler_efficiency.build``, counts closed over)."""
    posterior, _ = build(mesh, SPEC.box, seed, POSTERIOR)
    params = posterior.initial_params(
        jax.random.normal(jax.random.PRNGKey(seed), (mesh,) * 3, jnp.float32)
    )
    grad = jax.grad(posterior.logdensity)
    compiled, seconds = compile_timed(grad, params)
    t = timed(compiled, params, repeat=repeat)
    gb = compiled_bytes(compiled) / 1e9
    print(
        f"grad {mesh}^3: {t:.4f} s per gradient, {gb:.4f} GB compiled, compile {seconds:.1f} s "
        f"({load()})",
        flush=True,
    )
    return t, gb


def sample_leg(mesh: int, args) -> dict:
    """``sampler_efficiency.run_posterior`` of the PM posterior on ``mesh^3``."""
    ns = argparse.Namespace(
        mesh=mesh,
        box=SPEC.box,
        chains=args.chains,
        samples=args.samples,
        warmup=args.warmup,
        nuts_samples=0,
        nuts_warmup=0,
        sampler="mclmc",
        mass_matrix="hessian",
        large_scale_speedup=2.0,
        energy_variance=3e-4,
        seed=args.seed,
    )
    t0 = time.perf_counter()
    line = run_posterior(POSTERIOR, ns)
    print(f"sample {mesh}^3: {time.perf_counter() - t0:.0f} s in all ({load()})", flush=True)
    return line


def mesh_list(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meshes", type=mesh_list, default=[16, 32, 64], help="grad legs")
    parser.add_argument("--sample-meshes", type=mesh_list, default=[16], help="sample legs")
    parser.add_argument("--memory-meshes", type=mesh_list, default=[128, 256, 512])
    parser.add_argument(
        "--memory-512-1024",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="512^3 particles on a 1024^3 mesh (cosmolaw)",
    )
    parser.add_argument(
        "--memory-codes", type=lambda s: s.split(","), default=list(CODES), help="memory legs"
    )
    parser.add_argument("--peak", action="store_true", help="run the memory legs, device peak")
    parser.add_argument("--memory-timeout", type=float, default=1800.0, help="s per memory leg")
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--samples", type=int, default=3000, help="MCLMC steps per chain")
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=5, help="timed gradient calls (median)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        code, ptcl, mesh = args.child.split(",")
        print(json.dumps(child(code, int(ptcl), int(mesh), args.peak)))
        return

    print(f"devices={jax.devices()}, {load()}", flush=True)
    ran, result = [], {}
    for mesh in args.meshes:
        result[f"grad_s_{mesh}"], result[f"grad_gb_{mesh}"] = grad_leg(mesh, args.seed, args.repeat)
        ran.append(f"grad{mesh}")
    for mesh in args.sample_meshes:
        line = sample_leg(mesh, args)
        result[f"ess_per_kgrad_{mesh}"] = line["ess_pk_per_kgrad"]
        result[f"ratio_vs_mclmc_{mesh}"] = line["ess_ratio_pk_vs_mclmc"]
        result[f"ratio_vs_control_{mesh}"] = line["ess_ratio_pk_vs_control"]
        result[f"rhat_{mesh}"] = line["rhat_max"]
        ran.append(f"sample{mesh}(chains={args.chains},samples={args.samples})")
    legs = [(m, m) for m in args.memory_meshes]
    legs += [(512, 1024)] if args.memory_512_1024 else []
    kind = "peak on the device" if args.peak else "compiled, CPU memory-minimising scheduler"
    for ptcl, mesh in legs:
        for code in args.memory_codes:
            if code != "cosmolaw" and ptcl != mesh:
                continue
            out = memory_leg(code, ptcl, mesh, args.peak, args.memory_timeout)
            if out is None:
                continue
            gb = (out["peak_bytes"] if args.peak else out["bytes"]) / 1e9
            extra = f", gradient {out['grad_s']:.3f} s" if args.peak else ""
            print(
                f"memory {code} {ptcl}^3 particles on {mesh}^3 ({kind}): {gb:.3f} GB "
                f"(compiled {out['bytes'] / 1e9:.3f} GB){extra}, compile {out['compile_s']:.0f} s, "
                f"process {out['wall_s']:.0f} s ({load()})",
                flush=True,
            )
            tag = f"{ptcl}" if ptcl == mesh else f"{ptcl}_{mesh}"
            result[f"mem_gb_{tag}" + ("" if code == "cosmolaw" else f"_{code}")] = gb
            if args.peak:
                result[f"grad_s_{tag}" + ("" if code == "cosmolaw" else f"_{code}")] = out["grad_s"]
            ran.append(f"memory-{code}-{tag}")
    print("legs run: " + " ".join(ran))
    extras = {k: v for k, v in result.items() if "jaxpm" in k or k.startswith("ratio_vs_control")}
    if extras:
        print(" ".join(f"{k}={v:.4g}" for k, v in extras.items()))
    keys = [
        "ess_per_kgrad_64",
        "ratio_vs_mclmc_64",
        "rhat_64",
        "grad_s_64",
        "mem_gb_256",
        "mem_gb_512",
        "mem_gb_512_1024",
    ]
    print(" ".join(f"{k}={result.get(k, math.nan):.4g}" for k in keys))


if __name__ == "__main__":
    main()
