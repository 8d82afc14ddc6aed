"""cosmolaw PM against JaxPM 0.1.6: time, memory and cost at equal accuracy.

Both codes run the same 2LPT initial conditions (cosmolaw's linear field at a = 1) on the same
mesh (= particle grid) from a = 0.1 to 1, with one force evaluation per step:

- ``cosmolaw``: FastPM kick-drift-kick, gradient by the adjoint method (reverse-time
  integration, memory flat in the number of steps);
- ``jaxpm``: JaxPM as its own tests and notebooks run it, ``diffrax.diffeqsolve`` with
  ``LeapfrogMidpoint`` and ``ConstantStepSize``, gradient by diffrax's default adjoint
  (``RecursiveCheckpointAdjoint``), see ``tests/jaxpm_reference.py``;
- ``jaxpm-leapfrog``: JaxPM's ODE right-hand side in a kick-drift-kick leapfrog in ``a``
  written here, differentiated by plain autodiff through every step (the peer of earlier
  versions of this benchmark, kept for its ``*_leapfrog`` keys).

The scalar is sum(delta^2) of the final CIC density; the gradient is with respect to the
white noise (cosmolaw, whose linear field is one FFT pair away) or the linear field (JaxPM).

Timing: each function is compiled first (the compile time is printed, not counted), then
called once to warm up, then ``--repeat`` rounds call every code once in turn (so that the
load of a shared machine falls on all of them alike); the median per code is reported, in
seconds. Memory: XLA's compiled memory analysis of the gradient (arguments + outputs +
temporaries, bytes), deterministic on the CPU.

Cost at equal accuracy: for each code and each step count of ``--step-grid`` (forward runs),
(a) the large-scale growth error, max over the ``--low-bins`` lowest k-bins of
|r_n(k) / r_ref(k) - 1|, where ``r(k) = P_final(k) / P_lin(k)`` is the growth of the linear
field's power measured in the linear regime (the same initial conditions scaled by
``--linear-amplitude`` = 0.01, so that mode coupling, which at a = 1 moves the few modes of
the lowest bins by several per cent in one realisation, is 1e-4 of its size; the ratio is free
of cosmic variance) and ``r_ref`` that of a ``--reference-steps``-step run of the same code:
the mesh's own deficit against continuous linear theory (2.5% in the lowest bin at 64^3 and
4 Mpc/h cells, the same for both codes at convergence) is a property of the PM discretisation,
not of the time stepping, and is printed beside; (b) the small-scale error, max over the bins
with k <= ``--kmax`` h/Mpc of |P_n(k) / P_ref(k) - 1| of the full-amplitude runs. The steps
needed are the fewest of the grid with both errors <= ``--tolerance`` (0.02); the gradients at
those step counts are timed as above and their ratio is ``equal_accuracy_grad_ratio``. A code
that meets them nowhere in the grid is charged the reference step count (a lower bound of its
cost), and the line says so (``steps_...=100+``).

Nothing here was tuned on this benchmark: cosmolaw's FastPM factors and JaxPM's solver are
their defaults; the mesh (64^3 in a 256 Mpc/h box: Nyquist 0.79 h/Mpc, so k = 0.5 is resolved)
was chosen to run in minutes on 2 CPU cores.

Last line: ``fwd_ratio=... grad_ratio=... mem_ratio=... fwd_ratio_leapfrog=...
grad_ratio_leapfrog=... mem_ratio_leapfrog=... steps_cosmolaw=... steps_jaxpm=...
equal_accuracy_grad_ratio=...`` (cosmolaw / JaxPM, lower is better).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import os
import statistics
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from jaxpm_reference import JAXPM_RUNNERS, jaxpm_density

from simulator.config import SimConfig
from simulator.cosmology import Cosmology
from simulator.ic import linear_field, white_noise
from simulator.measure import power_spectrum
from simulator.pipeline import forward


def timed(fn, *args, repeat: int) -> float:
    """Median wall time of ``fn(*args)`` in seconds, after one warm-up call."""
    return timed_rounds({"fn": (fn, args)}, repeat)["fn"]


def timed_rounds(calls: dict, repeat: int) -> dict[str, float]:
    """Median wall time in seconds of each ``name: (fn, args)`` of ``calls``, after one
    warm-up call each; the ``repeat`` rounds call every function once in turn."""
    for fn, args in calls.values():
        jax.block_until_ready(fn(*args))
    times = {name: [] for name in calls}
    for _ in range(repeat):
        for name, (fn, args) in calls.items():
            t0 = time.perf_counter()
            jax.block_until_ready(fn(*args))
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(t) for name, t in times.items()}


def compile_timed(fn, *args):
    """``(compiled, seconds)``: ``jax.jit(fn)`` compiled for ``args`` (arrays or
    ``jax.ShapeDtypeStruct``) and the time lowering and compiling took."""
    t0 = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    return compiled, time.perf_counter() - t0


def compiled_bytes(compiled) -> int:
    """Arguments + outputs + temporaries (less aliased bytes) of a compiled function, in
    bytes, from XLA's memory analysis."""
    mem = compiled.memory_analysis()
    total = mem.argument_size_in_bytes + mem.output_size_in_bytes + mem.temp_size_in_bytes
    return total - mem.alias_size_in_bytes


def gradient_bytes(fn, *args) -> int:
    """Arguments + outputs + temporaries of ``jax.jit(fn)`` compiled for ``args``, in bytes."""
    return compiled_bytes(compile_timed(fn, *args)[0])


def load() -> str:
    """The machine's 1-minute load average and core count, for the record."""
    return f"load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"


def density_functions(cosmo: Cosmology, conf: SimConfig):
    """``{code: (density(x, steps), x)}``: each code's final density contrast ``(n, n, n)``
    after ``steps`` steps, and its input (white noise or linear field at a = 1)."""
    params = {k: getattr(cosmo, k) for k in ("Omega_m", "Omega_b", "h", "n_s", "sigma8")}
    noise = white_noise(0, conf)
    delta_lin = jax.jit(lambda s: linear_field(s, cosmo, conf))(noise)

    def ours(s, steps):
        return forward(s, cosmo, dataclasses.replace(conf, steps=steps)).delta

    def peer(run):
        return lambda d, steps: jaxpm_density(run(d, params, conf.a_start, steps), conf.mesh)

    return {
        "cosmolaw": (ours, noise),
        "jaxpm": (peer(JAXPM_RUNNERS["diffrax"]), delta_lin),
        "jaxpm-leapfrog": (peer(JAXPM_RUNNERS["leapfrog"]), delta_lin),
    }, delta_lin


def scalar(density, steps: int):
    """``x -> sum(delta^2)`` of the final density after ``steps`` steps."""
    return lambda x: jnp.sum(density(x, steps) ** 2)


@functools.cache
def _spectrum_fn(density, steps: int, box: float):
    return jax.jit(lambda x: power_spectrum(density(x, steps), box))


def spectrum(density, x, steps: int, box: float):
    """Power spectrum (``Spectrum`` of numpy arrays) of a code's final density after ``steps``
    steps, in a box of side ``box`` Mpc/h (compiled once per code and step count)."""
    return jax.tree.map(np.asarray, _spectrum_fn(density, steps, box)(x))


def accuracy_errors(density, x, steps: int, reference, args) -> tuple[float, float]:
    """(growth error, P(k) error) of ``steps`` steps; see the module docstring.

    Args:
        density, x: a code's density function and input (``density_functions``).
        reference: ``(Spectrum, growth)`` of the reference run of the same code (see
            :func:`reference_run`).
        args: ``box``, ``low_bins`` (lowest k-bins of the growth error), ``kmax`` (h/Mpc),
            ``linear_amplitude``.
    """
    ref_pk, ref_growth = reference
    growth = linear_growth(density, x, steps, args)
    growth_error = np.max(np.abs(growth / ref_growth - 1.0))
    pk = spectrum(density, x, steps, args.box)
    small = ref_pk.k <= args.kmax
    shape_error = np.max(np.abs(pk.power[small] / ref_pk.power[small] - 1.0))
    return float(growth_error), float(shape_error)


def linear_growth(density, x, steps: int, args) -> np.ndarray:
    """``P_final / P_lin`` in the ``args.low_bins`` lowest k-bins of a run from the initial
    conditions scaled by ``args.linear_amplitude`` (linear regime)."""
    eps = args.linear_amplitude
    final = spectrum(density, eps * x, steps, args.box).power[: args.low_bins]
    return final / (eps**2 * args.linear_power[: args.low_bins])


def reference_run(density, x, args):
    """``(Spectrum, growth)`` of the ``args.reference_steps``-step run of a code."""
    steps = args.reference_steps
    return spectrum(density, x, steps, args.box), linear_growth(density, x, steps, args)


def steps_needed(name, density, x, args) -> tuple[int, bool]:
    """Fewest steps of ``args.step_grid`` meeting both accuracy criteria, and whether any did
    (if none, the reference step count). Prints each step count's errors."""
    reference = reference_run(density, x, args)
    print(
        f"  {name} {args.reference_steps} steps: P_final / P_lin in the linear regime "
        f"{np.array2string(reference[1], precision=4)} (lowest bins)",
        flush=True,
    )
    for steps in args.step_grid:
        growth, shape = accuracy_errors(density, x, steps, reference, args)
        print(
            f"  {name} {steps:3d} steps: growth error {growth:.4f}, "
            f"P(k<={args.kmax}) error {shape:.4f} (vs {args.reference_steps} steps)",
            flush=True,
        )
        if growth <= args.tolerance and shape <= args.tolerance:
            return steps, True
    return args.reference_steps, False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mesh", type=int, default=64, help="mesh and particle grid per side")
    parser.add_argument("--box", type=float, default=256.0, help="box side [Mpc/h]")
    parser.add_argument("--steps", type=int, default=10, help="steps of the like-for-like part")
    parser.add_argument("--repeat", type=int, default=3, help="timed rounds (median)")
    parser.add_argument(
        "--step-grid",
        type=lambda s: [int(v) for v in s.split(",")],
        default=[5, 10, 15, 20, 30, 40, 60, 80],
        help="step counts tried for the equal-accuracy part, increasing",
    )
    parser.add_argument("--reference-steps", type=int, default=100)
    parser.add_argument("--tolerance", type=float, default=0.02)
    parser.add_argument("--low-bins", type=int, default=2, help="k-bins of the growth error")
    parser.add_argument("--kmax", type=float, default=0.5, help="h/Mpc of the P(k) error")
    parser.add_argument(
        "--linear-amplitude",
        type=float,
        default=0.01,
        help="scale of the initial conditions of the growth runs (linear regime)",
    )
    parser.add_argument(
        "--no-accuracy", dest="accuracy", action="store_false", help="skip equal accuracy"
    )
    args = parser.parse_args()

    cosmo = Cosmology.planck18()
    conf = SimConfig(mesh=args.mesh, box=args.box, steps=args.steps)
    codes, delta_lin = density_functions(cosmo, conf)
    print(f"mesh={args.mesh} box={args.box} steps={args.steps} devices={jax.devices()}, {load()}")

    fwd, grad, mem = {}, {}, {}
    for name, (density, x) in codes.items():
        fwd[name], t_fwd = compile_timed(scalar(density, args.steps), x)
        grad[name], t_grad = compile_timed(jax.grad(scalar(density, args.steps)), x)
        mem[name] = compiled_bytes(grad[name])
        print(f"{name}: compile forward {t_fwd:.1f} s, gradient {t_grad:.1f} s", flush=True)
    t_fwd = timed_rounds({n: (fwd[n], (codes[n][1],)) for n in codes}, args.repeat)
    t_grad = timed_rounds({n: (grad[n], (codes[n][1],)) for n in codes}, args.repeat)
    for name in codes:
        print(
            f"{name}: forward {t_fwd[name]:.3f} s, gradient {t_grad[name]:.3f} s, "
            f"gradient memory {mem[name] / 2**20:.1f} MiB ({load()})"
        )

    def ratios(peer):
        return (
            t_fwd["cosmolaw"] / t_fwd[peer],
            t_grad["cosmolaw"] / t_grad[peer],
            mem["cosmolaw"] / mem[peer],
        )

    parts = [
        f"{key}={value:.3f}"
        for suffix, peer in (("", "jaxpm"), ("_leapfrog", "jaxpm-leapfrog"))
        for key, value in zip(
            (f"fwd_ratio{suffix}", f"grad_ratio{suffix}", f"mem_ratio{suffix}"),
            ratios(peer),
            strict=True,
        )
    ]
    if args.accuracy:
        args.linear_power = np.asarray(power_spectrum(delta_lin, args.box).power)
        needed = {}
        for name in ("cosmolaw", "jaxpm"):
            density, x = codes[name]
            needed[name] = steps_needed(name, density, x, args)
            steps, met = needed[name]
            print(f"{name}: {steps} steps" + ("" if met else " (criteria not met in the grid)"))
        calls = {}
        for name, (steps, _) in needed.items():
            density, x = codes[name]
            calls[name] = (compile_timed(jax.grad(scalar(density, steps)), x)[0], (x,))
        t_eq = timed_rounds(calls, args.repeat)
        for name, (steps, _) in needed.items():
            print(f"{name}: gradient at {steps} steps {t_eq[name]:.3f} s ({load()})")
        parts += [
            f"steps_cosmolaw={needed['cosmolaw'][0]}" + ("" if needed["cosmolaw"][1] else "+"),
            f"steps_jaxpm={needed['jaxpm'][0]}" + ("" if needed["jaxpm"][1] else "+"),
            f"equal_accuracy_grad_ratio={t_eq['cosmolaw'] / t_eq['jaxpm']:.3f}",
        ]
    print(" ".join(parts))


if __name__ == "__main__":
    main()
