"""Honest convergence reporting on a hard posterior, and the ArviZ export of its chain.

The posterior is issue 15's hard one, scaled down: 16^3 white noise, 1LPT to a = 1 in a
200 Mpc/h box, linear bias b1 = 1.2 (sampled) and Poisson counts of 5 galaxies per cell, where
``1 + b1 delta <= 0`` in the emptiest cells puts their expected counts at the floor. Two chains
of a few hundred steps of the default sampler through ``cosmolaw mock`` and ``cosmolaw infer``:
the run either has split-Rhat < 1.01 on the low-k P(k) or says plainly that it has not
converged and what to change; whatever it says must agree with the stored draws, recomputed
here with ArviZ from the exported ``InferenceData``.
"""

import json
import warnings

import h5py
import numpy as np
import pytest

from cosmolaw.cli import main
from inference.chain_file import to_inference_data
from inference.convergence import LOW_K_BINS, RHAT_LIMIT

SAMPLES, WARMUP, CHAINS, THIN = 300, 150, 2, 50


@pytest.fixture(scope="module")
def hard_run(tmp_path_factory):
    """``(run directory, summary, stderr of cosmolaw infer)``."""
    root = tmp_path_factory.mktemp("hard")
    mock = [
        "mock", "--out", str(root / "mock"), "--model", "lpt1", "--mesh", "16", "--box", "200",
        "--a-stop", "1", "--bias", "linear", "--bias-param", "b1=1.2", "--nbar", "5",
        "--seed", "3", "--no-progress",
    ]  # fmt: skip
    assert main(mock) == 0
    infer = [
        "infer", "--data", str(root / "mock" / "mock.h5"), "--out", str(root / "run"),
        "--samples", str(SAMPLES), "--warmup", str(WARMUP), "--chains", str(CHAINS),
        "--thin", str(THIN),
    ]  # fmt: skip
    with pytest.MonkeyPatch.context() as mp:
        import io
        import sys

        err = io.StringIO()
        mp.setattr(sys, "stderr", err)
        assert main(infer) == 0
    summary = json.loads((root / "run" / "summary.json").read_text())
    return root / "run", summary, err.getvalue()


def _arviz():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import arviz

    return arviz


@pytest.mark.slow
def test_verdict_is_converged_or_says_what_to_change(hard_run):
    """Split-Rhat < 1.01 on the low-k P(k) and a converged verdict, or converged = false with
    advice, a warning on stderr that repeats it, and the verdict in the report's digest."""
    _, summary, err = hard_run
    verdict = summary["convergence"]
    if verdict["converged"]:
        assert max(verdict["rhat_pk_low_k"]) < RHAT_LIMIT
        assert min(verdict["ess_bulk_min"], verdict["ess_tail_min"]) >= verdict["min_ess"]
    else:
        assert verdict["advice"] and "WARNING" in err and "not converged" in err
        for item in verdict["advice"]:
            assert item in err
        assert any("--samples" in item or "--bias-prior" in item for item in verdict["advice"])


@pytest.mark.slow
def test_verdict_agrees_with_the_stored_draws(hard_run):
    """Rhat, ESS, rejection and energy-error statistics of summary.json recomputed from
    chain.h5 with ArviZ and NumPy (after the report's burn-in)."""
    az = _arviz()
    run, summary, _ = hard_run
    verdict, burn = summary["convergence"], summary["burn_in"]
    idata = to_inference_data(run / "chain.h5").sel(draw=slice(burn, None))
    # In float64 as the verdict: ArviZ folds |x - median| in the draws' dtype, and float32
    # rounding reorders near-ties of the folded ranks (Rhat off in the fourth digit).
    post = idata.posterior.astype(np.float64)
    low_k = post["pk_linear"].isel(k=slice(0, LOW_K_BINS))
    rhat_pk = az.rhat(low_k)["pk_linear"].values
    np.testing.assert_allclose(verdict["rhat_pk_low_k"], rhat_pk, rtol=1e-6)
    rhat_b1 = float(az.rhat(post["b1"])["b1"])
    assert verdict["rhat_scalars"]["bias/b1"] == pytest.approx(rhat_b1, rel=1e-6)
    assert verdict["rhat_max"] == pytest.approx(max(rhat_pk.max(), rhat_b1), rel=1e-6)
    assert verdict["converged"] == bool(
        verdict["rhat_max"] < RHAT_LIMIT
        and min(verdict["ess_bulk_min"], verdict["ess_tail_min"]) >= verdict["min_ess"]
    )
    ess = [
        float(np.min(az.ess(x, method=m)[x.name].values))
        for m in ("bulk", "tail")
        for x in (low_k, post["b1"])
    ]
    assert verdict["ess_bulk_min"] == pytest.approx(min(ess[:2]), rel=1e-6)
    assert verdict["ess_tail_min"] == pytest.approx(min(ess[2:]), rel=1e-6)
    stats = idata.sample_stats
    rejected = float(np.mean(stats["acceptance_rate"].values == 0))
    assert verdict["rejected_by"] == "energy cutoff"
    assert verdict["rejection_rate"] == pytest.approx(rejected)
    energy = stats["energy_error"].values.astype(np.float64)
    assert verdict["energy_error"]["rms"] == pytest.approx(np.sqrt(np.mean(energy**2)), rel=1e-6)
    assert verdict["energy_error"]["abs_max"] == pytest.approx(np.max(np.abs(energy)), rel=1e-6)


@pytest.mark.slow
def test_progress_lines_in_a_log(hard_run):
    """stderr is not a terminal: the sampling progress is a line per tenth of the steps, not
    a line per update, and the last one carries the convergence verdict."""
    _, summary, err = hard_run
    lines = [line for line in err.splitlines() if line.startswith("mclmc (joint) x2:")]
    assert 1 <= len(lines) <= 11
    assert f" {SAMPLES}/{SAMPLES} " in lines[-1]
    converged = "yes" if summary["convergence"]["converged"] else "no"
    assert f"converged={converged}" in lines[-1]


@pytest.mark.slow
def test_inference_data_round_trip(hard_run):
    """Every exported value and shape equals the dataset of chain.h5 it comes from."""
    run, _, _ = hard_run
    idata = to_inference_data(run / "chain.h5", fields=True)
    with h5py.File(run / "chain.h5") as f:
        n = f.attrs["steps_done"]
        post, stats = idata.posterior, idata.sample_stats
        assert post["pk_linear"].shape == f["samples/pk_linear"].shape == (CHAINS, n, 8)
        np.testing.assert_array_equal(post["pk_linear"].values, f["samples/pk_linear"][()])
        np.testing.assert_array_equal(post["b1"].values, f["samples/scalars"][..., 0])
        np.testing.assert_array_equal(post["k"].values, f["k"][()])
        np.testing.assert_array_equal(stats["lp"].values, f["samples/logdensity"][()])
        np.testing.assert_array_equal(stats["diverging"].values, f["info/divergent"][()])
        np.testing.assert_array_equal(stats["step_size"].values, f["info/step_size"][()])
        np.testing.assert_array_equal(
            idata.constant_data["pk_linear_prior"].values, f["prior/pk_linear"][()]
        )
        fields = idata.fields
        assert fields["delta"].shape == f["fields/delta"].shape == (CHAINS, n // THIN, 16, 16, 16)
        np.testing.assert_array_equal(fields["s"].values, f["fields/s"][()])
        np.testing.assert_array_equal(fields["draw"].values, f["fields/step"][()] - 1)
        assert json.loads(post.attrs["config"]) == json.loads(f.attrs["config"])


def _synthetic_chain(rng, b1, step_size=1.0, energy_error=None, mass_matrix="fisher"):
    """Arrays and attributes shaped like chain.h5's for 4 chains with draws of b1 ``(4, n)``
    and iid normal P(k) amplitudes, MCLMC info with every step accepted."""
    chains, steps = b1.shape
    typical = np.sqrt(1e-4 * (8**3 + 1))  # the target's energy-error std, 8^3 + 1 dimensions
    error = rng.normal(0, typical, (chains, steps)) if energy_error is None else energy_error
    arrays = {
        "k": np.arange(1, 9) * 0.03,
        "samples/logdensity": rng.standard_normal((chains, steps)),
        "samples/pk_linear": 1e4 + rng.standard_normal((chains, steps, 8)),
        "samples/scalars": b1[..., None],
        "info/acceptance": np.ones((chains, steps)),
        "info/energy_error": error,
        "info/divergent": np.zeros((chains, steps), bool),
        "info/step_size": np.full((chains, steps), step_size),
    }
    config = {"sampler": "mclmc", "num_samples": steps, "num_warmup": 100}
    config.update(energy_variance=1e-4, mass_matrix=mass_matrix)
    return arrays, {"config": config, "scalar_names": ["bias/b1"], "mesh": 8}


def test_verdict_and_advice_on_known_draws():
    """iid draws at the target energy error: converged, no advice. Chains of b1 on both
    sides of zero: not converged, a prior excluding the sign flip advised. A warm-up that left
    the typical energy error 1e-4 of its target with the Hessian's mass matrix: Fisher's
    advised. One chain whose energy errors are 20 times the others' and a fifth of whose steps
    were rejected: named, with a longer warm-up advised."""
    from inference.convergence import assess

    rng = np.random.default_rng(0)
    iid = _synthetic_chain(rng, 1.2 + 0.01 * rng.standard_normal((4, 1000)))
    verdict = assess(*iid)
    assert verdict["converged"] and verdict["advice"] == []
    assert verdict["energy_error"]["variance_per_dim"] == pytest.approx(1e-4, rel=0.1)
    flipped = 0.05 * rng.standard_normal((4, 1000)) + np.array([-1.0, 1.0, 1.0, 1.0])[:, None]
    verdict = assess(*_synthetic_chain(rng, flipped))
    assert not verdict["converged"] and verdict["rhat_max_of"] == "bias/b1"
    assert any(
        "both sides of zero" in item and "--bias-prior" in item for item in verdict["advice"]
    )
    frozen = _synthetic_chain(
        rng, flipped, 0.01, rng.normal(0, 0.0023, (4, 1000)), mass_matrix="hessian"
    )
    assert any("--mass-matrix fisher" in item for item in assess(*frozen)["advice"])
    arrays, attrs = _synthetic_chain(rng, 1.2 + 0.01 * rng.standard_normal((4, 1000)))
    arrays["info/energy_error"][1] *= 20.0
    arrays["info/acceptance"][1, ::5] = 0.0
    verdict = assess(arrays, attrs)
    assert verdict["rejection_rate_per_chain"] == pytest.approx([0.0, 0.2, 0.0, 0.0])
    (item,) = [a for a in verdict["advice"] if a.startswith("chain 1:")]
    assert "20% of the steps rejected" in item and "--warmup (now 100)" in item
    with pytest.raises(ValueError, match="burn"):
        assess(*iid, burn=998)
