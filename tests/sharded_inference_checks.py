"""Sharded-versus-single-device posterior on 8 host devices, printed as one JSON line.

Run by ``tests/test_inference_sharded.py`` in a subprocess, because the host device count
must be set before JAX starts: ``python tests/sharded_inference_checks.py``. A 16^3 Poisson
mock of linear-bias counts in redshift space (line of sight along the slab axis, so particles
cross slab boundaries) is scored by :func:`inference.models.counts_posterior` on one device
and with ``devices=8`` (slabs of 2 planes), in float32, for the 1LPT model with the bias
sampled and a 2-step PM model with the bias fixed. Compared: the latent log density that the
samplers see (prior preconditioner: ``s`` through the identity Fourier filter, so it is the
posterior's) and its gradient; ``*_logp_rel = |log p_8 - log p_1| / |log p_1|``,
``*_grad_s_rel = max |g_8 - g_1| / max |g_1|`` over ``s`` (and ``*_grad_bias_rel`` for the
bias). Then ``STEPS`` unadjusted-MCLMC steps of the field and the bias jointly (``--blocks
joint``: the position holds the sharded field beside replicated scalars) from the same state
and keys on both 1LPT posteriors: ``lpt1_chain_rel`` is the largest difference of the
positions over their largest value, and ``lpt1_step_gathers`` lists the field-sized
all-gathers in the compiled sharded step (none: the state stays in slabs).
"""

import os

os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=8"

import json
import re
import time

import jax
import jax.numpy as jnp
import numpy as np
from blackjax.adaptation.mclmc_adaptation import MCLMCAdaptationState
from blackjax.mcmc.integrators import IntegratorState
from blackjax.util import pytree_size

from inference.models import counts_posterior, mock_counts
from inference.precondition import latent_logdensity, prior_preconditioner
from inference.samplers import make_sampler
from inference.samplers.isokinetic import unit_vector
from simulator.config import SimConfig
from simulator.cosmology import Cosmology
from simulator.observe.mock import Observation
from simulator.observe.rsd import RSDConfig

N = 16
COSMO = Cosmology()
OBS = Observation(
    bias="linear", bias_params={"b1": 1.5}, nbar_cell=3.0, rsd=RSDConfig("plane-parallel", los=0)
)
CONFS = {
    "lpt1": SimConfig(mesh=N, box=256.0, a_stop=1.0),
    "pm": SimConfig(mesh=N, box=256.0, a_start=0.25, a_stop=1.0, steps=2),
}
STEPS = 3


def max_rel(a, b) -> float:
    """``max |a - b| / max |b|`` over the leaves of two pytrees."""
    a, b = (np.concatenate([np.ravel(x) for x in jax.tree.leaves(t)]) for t in (a, b))
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def field_gathers(compiled) -> list[str]:
    """All-gathers of a compiled function whose result holds a whole ``N^3`` field."""
    found = re.findall(r"= ([a-z0-9]+)\[([0-9,]*)\]\S* all-gather\(", compiled.as_text())
    sizes = {
        (dtype, dims): np.prod([int(d) for d in dims.split(",") if d]) for dtype, dims in found
    }
    return sorted(f"{dtype}[{dims}]" for (dtype, dims), size in sizes.items() if size >= N**3)


def latent_value_and_grad(posterior, params):
    """Latent log density (prior preconditioner), its gradient, and the objects behind it."""
    precond = prior_preconditioner(posterior, posterior.initial_params())
    logdensity = latent_logdensity(posterior, precond)
    latent = jax.jit(precond.to_latent)(params)
    value, grad = jax.jit(jax.value_and_grad(logdensity))(latent)
    return value, grad, latent, logdensity


def compare(model: str, counts: np.ndarray, s: jax.Array, fix_bias: bool) -> dict:
    conf = CONFS[model]
    sel = np.ones_like(counts)
    priors = {} if fix_bias else None
    out, runs = {}, {}
    for devices in (None, 8):
        posterior = counts_posterior(counts, sel, conf, COSMO, OBS, model, priors, devices=devices)
        start = time.perf_counter()
        runs[devices] = latent_value_and_grad(posterior, posterior.initial_params(s))
        out[f"seconds_{devices or 1}"] = time.perf_counter() - start
    (v1, g1, *_), (v8, g8, *_) = runs[None], runs[8]
    out.update(
        logp=float(v1),
        logp_abs=abs(float(v8) - float(v1)),
        logp_rel=abs(float(v8) - float(v1)) / abs(float(v1)),
        grad_s_rel=max_rel(g8["s"], g1["s"]),
        grad_s_abs=float(np.max(np.abs(np.asarray(g8["s"]) - np.asarray(g1["s"])))),
        grad_sharding=str(g8["s"].sharding.spec),
    )
    if not fix_bias:
        out["grad_bias_rel"] = max_rel(g8["bias"], g1["bias"])
    return out, runs


def chain(run, keys) -> tuple[IntegratorState, list[float], object]:
    """``STEPS`` MCLMC steps of the whole latent position from the value and gradient of
    ``run``."""
    value, grad, latent, logdensity = run
    sampler = make_sampler("mclmc", logdensity)
    dim = pytree_size(latent)
    tuning = MCLMCAdaptationState(jnp.float32(dim**0.5), jnp.float32(0.5), jnp.ones(()))
    state = IntegratorState(latent, unit_vector(keys[0], latent), value, grad)
    step = jax.jit(sampler.step).lower(keys[1], state, tuning).compile()
    accepted = []
    for k in keys[1:]:
        state, info = step(k, state, tuning)
        accepted.append(float(info.acceptance))
    return state, accepted, step


if __name__ == "__main__":
    t0 = time.perf_counter()
    counts, truth = mock_counts(CONFS["lpt1"], COSMO, OBS, "lpt1", jax.random.key(0))
    s = 0.8 * truth["s"]  # a point off the truth, with particles across slab boundaries
    result = {"devices": jax.device_count()}
    lpt, runs = compare("lpt1", counts, s, fix_bias=False)
    keys = jax.random.split(jax.random.key(1), STEPS + 1)
    start = time.perf_counter()
    one, acc1, _ = chain(runs[None], keys)
    sharded, acc8, step = chain(runs[8], keys)
    lpt.update(
        chain_seconds=time.perf_counter() - start,
        chain_rel=max_rel(sharded.position, one.position),
        chain_finite=bool(np.all(np.isfinite(np.asarray(sharded.position["s"])))),
        chain_acceptance=[acc1, acc8],
        chain_sharding=str(sharded.position["s"].sharding.spec),
        chain_scalars=sorted(k for k in sharded.position if k != "s"),
        step_gathers=field_gathers(step),
    )
    pm, _ = compare("pm", counts, s, fix_bias=True)
    result.update({f"lpt1_{k}": v for k, v in lpt.items()})
    result.update({f"pm_{k}": v for k, v in pm.items()})
    result["seconds"] = time.perf_counter() - t0
    print(json.dumps(result))
