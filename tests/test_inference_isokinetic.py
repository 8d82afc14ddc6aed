"""cosmolaw's leaf-by-leaf isokinetic dynamics (``inference.samplers.isokinetic``) against
BlackJAX's flattened ones and the analytic decoherence of the partial refresh.

On a non-Gaussian log density of a pytree (a 4^3 field coupled to two scalars), one McLachlan
step from the same state gives the position, velocity, log density and kinetic energy change
of BlackJAX's ``isokinetic_mclachlan`` (which concatenates the leaves) to float32 round-off. A
partial refresh over a time ``t`` keeps the velocity a unit vector and, in ``d`` dimensions,
its cosine with the old velocity is ``exp(-t / L)`` up to ``O(1/sqrt(d))``.
"""

import jax
import jax.numpy as jnp
import numpy as np
from blackjax.mcmc.integrators import IntegratorState, isokinetic_mclachlan
from blackjax.util import pytree_size

from inference.samplers import isokinetic


def _logdensity(params):
    """A field whose width depends on two scalars, plus a quartic term (not Gaussian)."""
    s, a, b = params["s"], params["scalars"]["a"], params["scalars"]["b"]
    width = jnp.exp(0.3 * a) * (1.0 + 0.1 * b**2)
    return (
        -0.5 * jnp.sum((s / width) ** 2)
        - s.size * jnp.log(width)
        - 0.05 * jnp.sum(s**4)
        - 0.5 * (a**2 + (b - 0.5) ** 2)
    )


def _state(key):
    k_s, k_a, k_b, k_u = jax.random.split(key, 4)
    position = {
        "s": jax.random.normal(k_s, (4, 4, 4)),
        "scalars": {"a": jax.random.normal(k_a, ()), "b": jax.random.normal(k_b, ())},
    }
    return isokinetic.init(position, _logdensity, k_u)


def test_velocity_is_a_unit_vector_over_all_leaves():
    state = _state(jax.random.key(0))
    assert abs(float(isokinetic.tree_vdot(state.momentum, state.momentum)) - 1.0) < 1e-6
    assert pytree_size(state.position) == 66


def test_mclachlan_step_matches_blackjax():
    state = _state(jax.random.key(1))
    ours, kinetic = jax.jit(isokinetic.mclachlan_step, static_argnums=0)(_logdensity, state, 0.4)
    step = isokinetic_mclachlan(_logdensity, jnp.ones(66))
    peer, peer_kinetic = jax.jit(step)(IntegratorState(*state), 0.4)
    for field in ("position", "momentum", "logdensity_grad"):
        a, b = (
            np.concatenate([np.ravel(x) for x in jax.tree.leaves(getattr(t, field))])
            for t in (ours, peer)
        )
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6 * np.max(np.abs(b)))
    np.testing.assert_allclose(float(ours.logdensity), float(peer.logdensity), rtol=1e-6)
    np.testing.assert_allclose(float(kinetic), float(peer_kinetic), rtol=1e-4, atol=1e-5)
    # the step moved: a different position and a non-zero kinetic energy change
    assert float(jnp.max(jnp.abs(ours.position["s"] - state.position["s"]))) > 1e-2
    assert abs(float(kinetic)) > 1e-3


def test_partial_refresh_decoheres_at_the_analytic_rate():
    dim = 200_000
    velocity = isokinetic.unit_vector(jax.random.key(2), {"x": jnp.zeros(dim), "y": jnp.zeros(3)})
    for t_over_L in (0.05, 0.5, 2.0):
        new = isokinetic.refresh_velocity(jax.random.key(3), velocity, t_over_L, 1.0)
        assert abs(float(isokinetic.tree_vdot(new, new)) - 1.0) < 1e-5
        cosine = float(isokinetic.tree_vdot(new, velocity))
        assert abs(cosine - np.exp(-t_over_L)) < 5.0 / np.sqrt(dim)
    same = isokinetic.refresh_velocity(jax.random.key(3), velocity, 0.5, jnp.inf)
    assert float(isokinetic.tree_vdot(same, velocity)) > 1.0 - 1e-6
