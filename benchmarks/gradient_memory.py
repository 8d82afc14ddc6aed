"""Gradient memory against the number of PM steps: adjoint method, plain autodiff, JaxPM.

For each number of steps, the gradient of sum(delta^2) of the final density with respect
to the white noise (cosmolaw) or the linear field (JaxPM, see pm_vs_jaxpm.py) is compiled,
and XLA's memory analysis gives its temporary buffer size (bytes), which is deterministic
on the CPU. The adjoint integrates the particles backwards inside one custom VJP, so its
temporaries should not grow with the number of steps; autodiff and JaxPM in the leapfrog
written here (``jaxpm``) store every step; ``jaxpm_diffrax`` is JaxPM as its documentation
runs it (diffrax, ``RecursiveCheckpointAdjoint``, checkpoints sized by its ``max_steps``).
The adjoint and JaxPM gradients are also timed at ``--time-steps`` steps (default 10: JaxPM's
80-step gradient at 64^3 needs 25 GB, more than a 24 GB machine has), median of 3 after a
warm-up call; ``--no-jaxpm`` and ``--no-time`` skip those parts.

Last line (H / L = largest / smallest number of steps, 80 / 10 by default):
``adjoint_mem_H_over_L=... autodiff_mem_H_over_L=... jaxpm_mem_H_over_L=...
jaxpm_diffrax_mem_H_over_L=... adjoint_time_over_jaxpm=...``.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import jax
import jax.numpy as jnp

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from jaxpm_reference import JAXPM_RUNNERS, jaxpm_density
from pm_vs_jaxpm import timed

from simulator.config import SimConfig
from simulator.cosmology import Cosmology
from simulator.ic import linear_field, white_noise
from simulator.pipeline import forward


def temp_bytes(fn, *args) -> int:
    """Temporary buffer size of the compiled function, in bytes."""
    return jax.jit(fn).lower(*args).compile().memory_analysis().temp_size_in_bytes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mesh", type=int, default=64)
    parser.add_argument("--box", type=float, default=256.0)
    parser.add_argument("--steps", default="10,20,40,80", help="comma-separated step counts")
    parser.add_argument("--no-jaxpm", dest="jaxpm", action="store_false", help="skip JaxPM")
    parser.add_argument(
        "--no-time", dest="time", action="store_false", help="skip timing adjoint vs JaxPM"
    )
    parser.add_argument("--time-steps", type=int, default=10, help="steps of the timed runs")
    args = parser.parse_args()

    cosmo = Cosmology.planck18()
    params = {k: getattr(cosmo, k) for k in ("Omega_m", "Omega_b", "h", "n_s", "sigma8")}
    steps = [int(s) for s in args.steps.split(",")]
    base = SimConfig(mesh=args.mesh, box=args.box)
    noise = white_noise(0, base)
    delta_lin = jax.jit(lambda s: linear_field(s, cosmo, base))(noise)

    def ours(conf):
        return jax.grad(lambda s: jnp.sum(forward(s, cosmo, conf).delta ** 2))

    def theirs(n_steps, runner="leapfrog"):
        def loss(d):
            pos = JAXPM_RUNNERS[runner](d, params, base.a_start, n_steps)
            return jnp.sum(jaxpm_density(pos, base.mesh) ** 2)

        return jax.grad(loss)

    mem = {"adjoint": {}, "autodiff": {}, "jaxpm": {}, "jaxpm_diffrax": {}}
    for n_steps in steps:
        conf = dataclasses.replace(base, steps=n_steps)
        mem["adjoint"][n_steps] = temp_bytes(ours(conf), noise)
        auto = dataclasses.replace(conf, gradient="autodiff")
        mem["autodiff"][n_steps] = temp_bytes(ours(auto), noise)
        if args.jaxpm:
            mem["jaxpm"][n_steps] = temp_bytes(theirs(n_steps), delta_lin)
            mem["jaxpm_diffrax"][n_steps] = temp_bytes(theirs(n_steps, "diffrax"), delta_lin)
        line = ", ".join(f"{k} {v[n_steps] / 2**20:.1f} MiB" for k, v in mem.items() if v)
        print(f"steps={n_steps}: {line}", flush=True)

    lo, hi = min(steps), max(steps)
    parts = [f"{k}_mem_{hi}_over_{lo}={v[hi] / v[lo]:.3f}" for k, v in mem.items() if v]
    if args.time and args.jaxpm:
        n_time = args.time_steps
        conf = dataclasses.replace(base, steps=n_time)
        t_adj = timed(jax.jit(ours(conf)), noise, repeat=3)
        t_jaxpm = timed(jax.jit(theirs(n_time)), delta_lin, repeat=3)
        print(f"gradient time at {n_time} steps: adjoint {t_adj:.3f} s, JaxPM {t_jaxpm:.3f} s")
        parts.append(f"adjoint_time_over_jaxpm={t_adj / t_jaxpm:.3f}")
    print(f"mesh={args.mesh} devices={jax.devices()}")
    print(" ".join(parts))


if __name__ == "__main__":
    main()
