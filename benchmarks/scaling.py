"""Strong and weak scaling of a sharded PM step (1 vs 2 host devices) and of an MPI ensemble
(1 vs 2 ranks), one core per device or rank.

Each measurement runs in a fresh process whose CPU affinity is set before JAX starts: the
1-device step and the 1-rank ensemble on one core, the 2-device step on two cores, and each
rank of the 2-rank ensemble on its own core. The affinity matters: XLA splits large fused
loops over every core the process may use, so an unpinned "1-device" run already uses the
whole machine and is not a one-core baseline. Eigen's own threads are off
(``--xla_cpu_multi_thread_eigen=false``).

- strong: a KDK step (one force evaluation) at a fixed mesh on 1 and 2 devices,
  ``strong_eff_2 = T1 / (2 T2)``;
- weak: cells per second per device, ``mesh^3`` on 1 device against ``mesh_2^3`` (about
  twice the cells) on 2 devices, ``weak_eff_2 = (N2 / (2 T2)) / (N1 / T1)``;
- ensemble: the same ensemble on 1 and 2 MPI ranks after each rank compiled,
  ``ensemble_eff_2 = T1 / (2 T2)``.

Usage: ``python benchmarks/scaling.py [--mesh 96] [--weak-mesh 120] [--members 64]``. The last
line is ``strong_eff_2=... weak_eff_2=... ensemble_eff_2=...``. On a shared machine the
timings include other users' load: each time is the best of ``--repeats`` steps in each of
``--rounds`` processes (and of ``--ensemble-repeats`` ensemble runs).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

XLA_ONE_THREAD = "--xla_cpu_multi_thread_eigen=false"


def _env(devices: int) -> dict:
    flags = f"{XLA_ONE_THREAD} --xla_force_host_platform_device_count={devices}"
    return {**os.environ, "XLA_FLAGS": flags, "OMP_NUM_THREADS": "1"}


def _last_json(cmd: list[str], env: dict) -> dict:
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800, check=False)
    if out.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{out.stderr[-3000:]}")
    return json.loads([x for x in out.stdout.splitlines() if x.startswith("{")][-1])


def _pm_step(devices: int, n: int, halo: int):
    """A compiled sharded KDK step at ``n^3`` on ``devices`` devices with a ``halo``-cell halo,
    and its initial carry."""
    import jax
    import jax.numpy as jnp

    from simulator.config import SimConfig
    from simulator.cosmology import Cosmology
    from simulator.distributed import pm
    from simulator.distributed.mesh import device_mesh
    from simulator.growth import growth_table
    from simulator.nbody import kdk_step

    mesh = device_mesh(devices)
    conf = SimConfig(mesh=n, box=4.0 * n, steps=1)
    cosmo = Cosmology()
    table = growth_table(cosmo)
    state, _ = pm.simulate(cosmo, conf, mesh, halo=halo, pm=False)
    forces = pm.sharded_forces(conf, mesh, halo)

    @jax.jit
    def step(carry):
        state, acc = carry
        return kdk_step(state, acc, cosmo, table, conf, state.a + 0.05, forces=forces)

    carry = (state, jnp.zeros_like(state.disp))
    return step, jax.block_until_ready(step(carry))


def pin_cores(count: int, first: int = 0) -> None:
    """Restrict this process to ``count`` of the cores it may use, from the ``first``-th on
    (cyclically); call before JAX starts, whose thread pools are sized by the affinity."""
    cores = sorted(os.sched_getaffinity(0))
    if count > len(cores):
        raise SystemExit(f"needs {count} cores, this process may use {len(cores)}")
    os.sched_setaffinity(0, {cores[(first + i) % len(cores)] for i in range(count)})


def pm_step_worker(devices: int, n: int, n_weak: int, repeats: int) -> dict:
    """Best wall time of one KDK step on ``devices`` devices, one core each: ``n^3`` (key
    ``t1`` or ``t2``) and, on 2 devices, ``n_weak^3`` (``t2_weak``); best of ``repeats``."""
    pin_cores(devices)
    import jax

    from simulator.distributed.cic import default_halo
    from simulator.distributed.mesh import device_mesh

    # the same halo in cells (and so in Mpc/h: the cells are 4 Mpc/h at every mesh) for both
    # meshes, as the particles move as far at either; simulate() checks that it suffices
    halo = default_halo(n, device_mesh(devices))
    cases = {f"t{devices}": _pm_step(devices, n, halo)}
    if devices > 1:
        cases[f"t{devices}_weak"] = _pm_step(devices, n_weak, halo)
    best = dict.fromkeys(cases, float("inf"))
    for _ in range(repeats):
        for name, (step, carry) in cases.items():
            t0 = time.perf_counter()
            jax.block_until_ready(step(carry))
            best[name] = min(best[name], time.perf_counter() - t0)
    return {"devices": devices, "mesh": n, "weak_mesh": n_weak, **best}


def ensemble_worker(members: int, n: int, steps: int, out_dir: str) -> dict:
    """Wall time of ``run_ensemble`` over this MPI launch's ranks, after a warm-up run."""
    from mpi4py import MPI

    pin_cores(1, MPI.COMM_WORLD.Get_rank())
    from simulator.config import SimConfig
    from simulator.cosmology import Cosmology
    from simulator.ensemble import run_ensemble

    comm = MPI.COMM_WORLD
    cosmo, conf = Cosmology(), SimConfig(mesh=n, box=4.0 * n, steps=steps)
    # one member per rank in a scratch directory compiles everything on every rank
    run_ensemble(comm.Get_size(), cosmo, conf, f"{out_dir}/warmup", 10**6, False, False, comm)
    comm.Barrier()
    t0 = time.perf_counter()
    run_ensemble(members, cosmo, conf, out_dir, keep_fields=False, progress=False, comm=comm)
    seconds = time.perf_counter() - t0
    return {"ranks": comm.Get_size(), "members": members, "mesh": n, "seconds": seconds}


def _pm(args: argparse.Namespace) -> dict:
    """Best step times over ``args.rounds`` rounds, each a fresh 1-device then 2-device
    process (alternating, so that a slow spell of a shared machine hits both alike)."""
    best: dict = {}
    for _ in range(args.rounds):
        for devices in (1, 2):
            cmd = [sys.executable, __file__, "--worker", "pm", "--devices", str(devices)]
            cmd += ["--mesh", str(args.mesh), "--weak-mesh", str(args.weak_mesh)]
            cmd += ["--repeats", str(args.repeats)]
            out = _last_json(cmd, _env(devices))
            print(json.dumps(out), flush=True)
            best.update({k: min(v, best.get(k, v)) for k, v in out.items()})
    return best


def _ensemble(args: argparse.Namespace) -> dict[int, float]:
    """Best wall times of the ensemble on 1 and 2 ranks over ``args.ensemble_repeats``
    alternating launches."""
    from simulator.distributed.multihost import find_mpiexec

    best = {1: float("inf"), 2: float("inf")}
    for _ in range(args.ensemble_repeats):
        for ranks in (1, 2):
            with tempfile.TemporaryDirectory() as out:
                cmd = [find_mpiexec(), "-n", str(ranks), sys.executable, __file__]
                cmd += ["--worker", "ensemble", "--members", str(args.members)]
                cmd += ["--mesh", str(args.ensemble_mesh), "--steps", str(args.steps)]
                cmd += ["--out", out]
                result = _last_json(cmd, _env(1))
            print(json.dumps(result), flush=True)
            best[ranks] = min(best[ranks], result["seconds"])
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mesh", type=int, default=96, help="strong-scaling mesh (default 96)")
    parser.add_argument("--weak-mesh", type=int, default=120, help="2-device weak mesh (120)")
    parser.add_argument("--repeats", type=int, default=20, help="timed PM steps (best kept)")
    parser.add_argument("--rounds", type=int, default=3, help="PM processes per device count")
    parser.add_argument("--members", type=int, default=64, help="ensemble members (64)")
    parser.add_argument("--ensemble-mesh", type=int, default=32, help="ensemble mesh (32)")
    parser.add_argument("--steps", type=int, default=10, help="PM steps per member (10)")
    parser.add_argument("--ensemble-repeats", type=int, default=5, help="ensemble repeats")
    parser.add_argument("--worker", choices=("pm", "ensemble"), help=argparse.SUPPRESS)
    parser.add_argument("--devices", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker == "pm":
        print(json.dumps(pm_step_worker(args.devices, args.mesh, args.weak_mesh, args.repeats)))
        return
    if args.worker == "ensemble":
        result = ensemble_worker(args.members, args.mesh, args.steps, args.out)
        from mpi4py import MPI

        if MPI.COMM_WORLD.Get_rank() == 0:
            print(json.dumps(result))
        return
    n, n2 = args.mesh, args.weak_mesh
    t = _pm(args)
    strong = t["t1"] / (2 * t["t2"])
    weak = (n2**3 / (2 * t["t2_weak"])) / (n**3 / t["t1"])
    t_ens = _ensemble(args)
    ens = t_ens[1] / (2 * t_ens[2])
    print(f"strong_eff_2={strong:.2f} weak_eff_2={weak:.2f} ensemble_eff_2={ens:.2f}")


if __name__ == "__main__":
    main()
