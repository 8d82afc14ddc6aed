"""JaxPM (pip ``jaxpm``) run on given initial conditions, the external reference for the PM.

JaxPM 0.1.6 has no fixed-step integrator without diffrax, so its ODE right-hand side
(``jaxpm.pm.make_ode_fn``) is integrated with a kick-drift-kick leapfrog in ``a`` that
evaluates one force per step, like cosmolaw. Its growth functions come from jax_cosmo,
whose cache is attached to the cosmology object: the cosmology is therefore built inside
each traced function.
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
