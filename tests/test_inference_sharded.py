"""Sharded field-level posterior (``counts_posterior(..., devices=8)``) against one device.

The 8-device measurements run in a subprocess (``tests/sharded_inference_checks.py``)
because the host device count must be fixed before JAX starts; the tests assert on its JSON
output (about 50 s of CPU: four posterior gradients and two sampler steps compiled). The
refusals of bad device counts run here, on the test process's single CPU device.

Tolerances are float32's: the log density (~1e4) agrees to a few of its ulps; the gradient
in ``s`` to 5e-4 of its largest entry, because a particle that round-off puts on the other
side of a cell boundary changes the CIC gradient by a finite jump (1LPT measures ~5e-5, PM
~2e-6). A few MCLMC steps agree to 1e-5 of the field's largest value: the same keys give the
same momenta, and the two runs differ only by the order of the sums.
"""

import json
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from inference.models import allowed_devices, counts_posterior
from simulator.config import SimConfig
from simulator.cosmology import Cosmology
from simulator.observe.mock import Observation

SCRIPT = Path(__file__).with_name("sharded_inference_checks.py")
GRAD_TOL = 5e-4


@pytest.fixture(scope="module")
def checks() -> dict:
    out = subprocess.run(
        [sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=900, check=False
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.parametrize("model", ["lpt1", "pm"])
def test_sharded_log_density_and_gradient_match_one_device(checks, model):
    assert checks["devices"] == 8
    assert checks[f"{model}_logp_rel"] < 1e-6
    assert checks[f"{model}_grad_s_rel"] < GRAD_TOL
    assert checks[f"{model}_grad_sharding"] == "P('slab',)"
    if model == "lpt1":  # the bias is sampled there
        assert checks["lpt1_grad_bias_rel"] < 1e-5


@pytest.mark.slow
def test_sampler_steps_stay_sharded_and_match_one_device(checks):
    assert checks["lpt1_chain_scalars"]  # the bias moves with the field (--blocks joint)
    assert checks["lpt1_chain_finite"]
    assert checks["lpt1_chain_sharding"] == "P('slab',)"
    assert checks["lpt1_chain_acceptance"][0] == checks["lpt1_chain_acceptance"][1]
    assert checks["lpt1_chain_rel"] < 1e-5
    # the compiled step never gathers the field onto one device
    assert checks["lpt1_step_gathers"] == []


def _posterior(**kwargs):
    conf = SimConfig(mesh=8, box=64.0)
    shape = (8, 8, 8)
    return counts_posterior(
        np.ones(shape), np.ones(shape), conf, Cosmology(), Observation(), "lpt1", **kwargs
    )


@pytest.mark.parametrize("devices", [0, 3, len(jax.devices()) + 1, 2.0])
def test_bad_device_counts_are_refused_before_compiling(devices):
    allowed = allowed_devices(SimConfig(mesh=8, box=64.0))
    message = f"devices={devices!r} is not allowed: use one of {allowed}"
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        _posterior(devices=devices)


def test_halo_needs_devices():
    with pytest.raises(ValueError, match="halo=2"):
        _posterior(halo=2)


def test_one_device_mesh_gives_the_single_device_log_density():
    params = _posterior().initial_params(jax.random.normal(jax.random.key(0), (8, 8, 8)))
    values = [jax.jit(_posterior(devices=d).logdensity)(params) for d in (None, 1)]
    np.testing.assert_allclose(values[0], values[1], rtol=1e-6)


def test_cli_refuses_devices_before_compiling(tmp_path, capsys):
    from cosmolaw.cli import main

    mock = tmp_path / "mock"
    assert main(["mock", "--mesh", "8", "--box", "64", "--model", "lpt1", "--out", str(mock)]) == 0
    run = tmp_path / "run"
    devices = str(len(jax.devices()) + 1)
    args = ["infer", "--data", str(mock / "mock.h5"), "--out", str(run), "--devices", devices]
    assert main(args) == 2
    assert f"devices={devices} is not allowed: use one of" in capsys.readouterr().err
    assert not (run / "config.toml").exists()
