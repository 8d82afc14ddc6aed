"""JaxPM (pip ``jaxpm``) run on given initial conditions, the external reference for the PM.

Two ways to run it, both with 2LPT initial conditions at ``a_start`` and one force per step:

- :func:`jaxpm_run`: JaxPM's ODE right-hand side (``jaxpm.pm.make_ode_fn``) integrated by a
  kick-drift-kick leapfrog in ``a`` written here, differentiated by plain autodiff (stores
  every step); the reference of ``tests/test_simulator_pm.py``.
- :func:`jaxpm_diffrax_run`: the way JaxPM's own tests and notebooks run it:
  ``diffrax.diffeqsolve`` of ``ODETerm(make_diffrax_ode(mesh_shape))`` from
  ``stack([particles + dx, p])`` (absolute painting on one device) with
  ``LeapfrogMidpoint`` and ``ConstantStepSize``, ``SaveAt(t1=True)`` and diffrax's default
  adjoint (``RecursiveCheckpointAdjoint``: checkpointed, memory growing with ``max_steps``).

Its growth functions come from jax_cosmo, whose cache is attached to the cosmology object:
the cosmology is therefore built inside each traced function.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def jax_cosmology(params: dict):
    """A jax_cosmo cosmology from cosmolaw-style parameters (call inside the trace)."""
    import jax_cosmo as jc

    return jc.Cosmology(
        Omega_c=params["Omega_m"] - params["Omega_b"],
        Omega_b=params["Omega_b"],
        h=params["h"],
        n_s=params["n_s"],
        sigma8=params["sigma8"],
        Omega_k=0.0,
        w0=-1.0,
        wa=0.0,
    )


def jaxpm_run(delta_lin, params: dict, a_start: float, steps: int):
    """Evolve the a = 1 linear field ``delta_lin`` ``(n, n, n)`` with JaxPM 2LPT + PM.

    Returns:
        Final particle positions in mesh-cell units, shape ``(n^3, 3)``.
    """
    import jax_cosmo as jc
    from jaxpm.pm import lpt, make_ode_fn

    n = delta_lin.shape[0]
    cosmo = jax_cosmology(params)
    grid = jnp.stack(jnp.meshgrid(*[jnp.arange(n, dtype=delta_lin.dtype)] * 3, indexing="ij"), -1)
    dx, p, _ = lpt(cosmo, delta_lin, grid.reshape(-1, 3), a=a_start, order=2)
    ode = make_ode_fn((n, n, n))
    a_grid = jnp.asarray(np.linspace(a_start, 1.0, steps + 1), delta_lin.dtype)

    def accel(pos, a):
        return ode((pos, jnp.zeros_like(pos)), a, cosmo)[1]

    def step(carry, a01):
        pos, mom, force = carry
        a0, a1 = a01[0], a01[1]
        ah = 0.5 * (a0 + a1)
        mom = mom + force * (ah - a0)
        pos = pos + mom / (ah**3 * jnp.sqrt(jc.background.Esqr(cosmo, ah))) * (a1 - a0)
        force = accel(pos, a1)
        return (pos, mom + force * (a1 - ah), force), None

    pos0 = grid.reshape(-1, 3) + dx.reshape(-1, 3)
    carry = (pos0, p.reshape(-1, 3), accel(pos0, a_grid[0]))
    (pos, _, _), _ = jax.lax.scan(step, carry, jnp.stack([a_grid[:-1], a_grid[1:]], -1))
    return pos


def jaxpm_diffrax_run(delta_lin, params: dict, a_start: float, steps: int):
    """Evolve the a = 1 linear field ``delta_lin`` ``(n, n, n)`` with JaxPM through diffrax.

    ``steps`` constant steps of ``diffrax.LeapfrogMidpoint`` in ``a`` from ``a_start`` to 1
    (one force per step; the first step is an Euler step), differentiated by diffrax's
    default ``RecursiveCheckpointAdjoint``.

    Returns:
        Final particle positions in mesh-cell units, shape ``(n^3, 3)``.
    """
    import diffrax
    from jaxpm.distributed import uniform_particles
    from jaxpm.pm import lpt, make_diffrax_ode

    shape = delta_lin.shape
    cosmo = jax_cosmology(params)
    particles = uniform_particles(shape).astype(delta_lin.dtype)
    dx, p, _ = lpt(cosmo, delta_lin, particles, a=a_start, order=2)
    solution = diffrax.diffeqsolve(
        diffrax.ODETerm(make_diffrax_ode(shape)),
        diffrax.LeapfrogMidpoint(),
        t0=a_start,
        t1=1.0,
        dt0=(1.0 - a_start) / steps,
        y0=jnp.stack([particles + dx, p]),
        args=cosmo,
        saveat=diffrax.SaveAt(t1=True),
        stepsize_controller=diffrax.ConstantStepSize(),
    )
    return solution.ys[-1, 0].reshape(-1, 3)


#: The two ways of running JaxPM, by name (``benchmarks/pm_vs_jaxpm.py --jaxpm``).
JAXPM_RUNNERS = {"leapfrog": jaxpm_run, "diffrax": jaxpm_diffrax_run}


def jaxpm_density(pos, n: int):
    """JaxPM's CIC density ``rho / mean - 1`` of positions ``(n^3, 3)`` in cell units on an
    ``(n, n, n)`` mesh (``jaxpm.painting.cic_paint``)."""
    from jaxpm.painting import cic_paint

    return cic_paint(jnp.zeros((n, n, n), pos.dtype), pos) - 1.0
