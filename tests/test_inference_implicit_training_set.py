"""Training sets: stored with their parameters, identical to the mocks' observation model, and
resumed after an interruption without redoing the finished parts."""

import dataclasses
import itertools

import h5py
import numpy as np
import pytest

import inference.implicit.training_set as ts
from inference.implicit.prior import box_prior
from inference.implicit.summaries import galaxy_power
from simulator.config import SimConfig
from simulator.cosmology import Cosmology
from simulator.observe.mock import Observation, make_mock


def _spec(**changes):
    selection = np.ones((16, 16, 16))
    selection[:, :, :4] = 0.0  # a masked slab: the members see the survey's geometry
    spec = ts.TrainingSetSpec(
        count=5,
        prior=box_prior({"Omega_m": (0.25, 0.35), "sigma8": (0.7, 0.9), "b1": (1.0, 2.0)}),
        conf=SimConfig(mesh=16, box=200.0),
        cosmo=Cosmology(),
        obs=Observation(bias="linear", nbar_cell=3.0),
        model="lpt1",
        selection=selection,
        seed=7,
        chunk=2,
    )
    return dataclasses.replace(spec, **changes)


def test_training_set_round_trips_and_resumes(tmp_path, monkeypatch):
    spec = _spec()
    calls = []
    clock = itertools.count(step=10.0)  # every chunk takes 10 s on this clock
    monkeypatch.setattr(ts, "perf_counter", lambda: next(clock))
    original = ts.simulate_member

    def interrupted(spec, index):
        if len(calls) == 3:
            raise KeyboardInterrupt
        calls.append(index)
        return original(spec, index)

    monkeypatch.setattr(ts, "simulate_member", interrupted)
    with pytest.raises(KeyboardInterrupt):
        ts.simulate_training_set(spec, tmp_path / "a", progress=False)
    assert not (tmp_path / "a" / ts.TRAINING_FILE).exists()
    assert len(list((tmp_path / "a" / ts.PARTS_DIR).glob("chunk-*.h5"))) == 1

    calls.clear()
    monkeypatch.setattr(ts, "simulate_member", original)
    monkeypatch.setattr(ts, "simulate_member", lambda s, i: (calls.append(i), original(s, i))[1])
    path = ts.simulate_training_set(spec, tmp_path / "a", progress=False)
    assert calls == [2, 3, 4]  # the finished chunk (members 0, 1) was kept
    assert not (tmp_path / "a" / ts.PARTS_DIR).exists()
    # The set's cost charges the chunk of the interrupted run beside the two resumed ones.
    assert ts.read_training_set(path).simulation_seconds == 30.0

    # Another chunking in one go gives the same set.
    other = ts.simulate_training_set(_spec(chunk=5), tmp_path / "b", progress=False)
    with h5py.File(path) as a, h5py.File(other) as b:
        for name in ("theta", "seeds", "power/pk", "power/k", "selection"):
            np.testing.assert_array_equal(a[name][()], b[name][()])
        assert a["power/pk"].attrs["units"] == "(Mpc/h)^3"

    data = ts.read_training_set(tmp_path / "a")
    assert data.names == ("Omega_m", "sigma8", "b1") and data.pk.shape == (5, 8)
    lo, hi = np.asarray(data.prior.low), np.asarray(data.prior.high)
    assert np.all((data.theta >= lo) & (data.theta <= hi))
    # Member 3 is exactly a `cosmolaw mock` of its parameters, bias and seed.
    om, s8, b1 = data.theta[3]
    mock, _ = make_mock(
        int(data.seeds[3]),
        Cosmology(Omega_m=om, sigma8=s8),
        SimConfig(mesh=16, box=200.0),
        "lpt1",
        Observation(bias="linear", bias_params={"b1": b1}, nbar_cell=3.0),
        spec.selection,
    )
    np.testing.assert_allclose(data.pk[3], galaxy_power(mock.counts, spec.selection, 200.0)[1])
    assert data.spec().signature() == spec.signature()


def test_training_set_refuses_bad_input(tmp_path):
    with pytest.raises(ValueError, match="prior parameter 'b2' is not allowed"):
        _spec(prior=box_prior({"b2": (0.0, 1.0)}))
    with pytest.raises(ValueError, match="count=0"):
        _spec(count=0)
    with pytest.raises(ValueError, match="model='nbody'"):
        _spec(model="nbody")
    with pytest.raises(ValueError, match="Omega_m"):
        _spec(prior=box_prior({"Omega_m": (-0.5, 0.3)}))
