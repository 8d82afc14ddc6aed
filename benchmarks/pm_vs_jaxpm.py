"""cosmolaw PM against JaxPM 0.1.6: forward time, gradient time and gradient memory.

Both codes run the same 2LPT initial conditions (cosmolaw's linear field at a = 1) with the
same mesh (= particle grid), the same number of steps from a = 0.1 and one force evaluation
per step (cosmolaw: FastPM kick-drift-kick; JaxPM: its ODE right-hand side in a leapfrog,
see tests/jaxpm_reference.py). The scalar is sum(delta^2) of the final CIC density. The
gradient is with respect to the linear field (JaxPM) and the white noise (cosmolaw, whose
linear field is one FFT pair away), by the adjoint method for cosmolaw and by autodiff for
JaxPM.

Timing: median of --repeat calls of the compiled function after a warm-up call (compilation
excluded), with block_until_ready. Memory: XLA's compiled memory analysis of the gradient
(arguments + outputs + temporaries, bytes), which is deterministic on the CPU, unlike the
process RSS that also counts the compiler and the runtime.

Last line: ``fwd_ratio=... grad_ratio=... mem_ratio=...`` (cosmolaw / JaxPM, lower is better).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from jaxpm_reference import jaxpm_run

from simulator.config import SimConfig
from simulator.cosmology import Cosmology
from simulator.ic import linear_field, white_noise
from simulator.pipeline import forward


def timed(fn, *args, repeat: int) -> float:
    """Median wall time of ``fn(*args)`` in seconds, after one warm-up call."""
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def gradient_bytes(fn, *args) -> int:
    """Arguments + outputs + temporaries of the compiled function, in bytes."""
    mem = jax.jit(fn).lower(*args).compile().memory_analysis()
    return mem.argument_size_in_bytes + mem.output_size_in_bytes + mem.temp_size_in_bytes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mesh", type=int, default=64)
    parser.add_argument("--box", type=float, default=256.0)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    cosmo = Cosmology.planck18()
    conf = SimConfig(mesh=args.mesh, box=args.box, steps=args.steps)
    params = {k: getattr(cosmo, k) for k in ("Omega_m", "Omega_b", "h", "n_s", "sigma8")}
    noise = white_noise(0, conf)
    delta_lin = jax.jit(lambda s: linear_field(s, cosmo, conf))(noise)

    def ours(s):
        return jnp.sum(forward(s, cosmo, conf).delta ** 2)

    def theirs(d):
        from jaxpm.painting import cic_paint

        pos = jaxpm_run(d, params, conf.a_start, conf.steps)
        n = conf.mesh
        return jnp.sum((cic_paint(jnp.zeros((n, n, n)), pos) - 1.0) ** 2)

    results = {}
    for name, fn, x in (("cosmolaw", ours, noise), ("jaxpm", theirs, delta_lin)):
        results[name] = (
            timed(jax.jit(fn), x, repeat=args.repeat),
            timed(jax.jit(jax.grad(fn)), x, repeat=args.repeat),
            gradient_bytes(jax.grad(fn), x),
        )
        fwd, grad, mem = results[name]
        print(
            f"{name}: forward {fwd:.3f} s, gradient {grad:.3f} s, "
            f"gradient memory {mem / 2**20:.1f} MiB"
        )
    ratio = [results["cosmolaw"][i] / results["jaxpm"][i] for i in range(3)]
    print(f"mesh={args.mesh} steps={args.steps} devices={jax.devices()}")
    print(f"fwd_ratio={ratio[0]:.3f} grad_ratio={ratio[1]:.3f} mem_ratio={ratio[2]:.3f}")


if __name__ == "__main__":
    main()
