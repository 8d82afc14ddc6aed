"""Compressing a 3D simulated field for (Omega_m, sigma8): the learned Fisher information is
bracketed by that of the binned P(k) (below) and by the full-field Fisher information computed
by autodiff through the simulator (above).

Data: the 2LPT density contrast at a = 1 of a 16^3 mesh in a 128 Mpc/h box plus white noise of
known rms ``SIGMA_N`` per cell. For d = delta(s, theta) + n the Fisher information of theta with
the initial conditions s known is ``J^T J / SIGMA_N^2`` with ``J = d delta / d theta`` at fixed s
(forward-mode autodiff through the simulator); averaged over s it bounds the information of the
data (s unknown) from above. The band powers of the same simulations give the lower reference.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from discovery.compress.datasets import simulate_fisher_set, summary_derivatives
from discovery.compress.fisher import fisher_stats
from discovery.compress.imnn import IMNNConfig, compressor_fisher, train_imnn
from discovery.compress.networks import build_network, fit_input_scaling
from discovery.compress.spectra import binned_power, power_bins
from simulator.config import SimConfig
from simulator.cosmology import Cosmology
from simulator.gravity import density_contrast
from simulator.growth import growth_table
from simulator.ic import linear_field
from simulator.lpt import lpt

MESH, BOX, N_BINS = 16, 128.0, 8
SIGMA_N = 0.5
THETA = jnp.array([0.3, 0.8])  # (Omega_m, sigma8)
N_SIMS = 300
# Forward mode through CIC painting needs the plain (non-custom-VJP) scatter.
CONF = SimConfig(mesh=MESH, box=BOX, lpt_order=2, gradient="autodiff")


def noisy_lpt_field(theta: jax.Array, key: jax.Array) -> jax.Array:
    """2LPT density contrast at a = 1 plus white noise, (MESH, MESH, MESH)."""
    k_ic, k_noise = jax.random.split(key)
    cosmo = Cosmology.planck18(Omega_m=theta[0], sigma8=theta[1])
    delta_lin = linear_field(jax.random.normal(k_ic, (MESH,) * 3), cosmo, CONF)
    state = lpt(delta_lin, growth_table(cosmo), CONF, a=1.0)
    delta = density_contrast(state.disp, CONF)
    return delta + SIGMA_N * jax.random.normal(k_noise, (MESH,) * 3)


@pytest.fixture(scope="module")
def sets():
    train = simulate_fisher_set(noisy_lpt_field, THETA, jax.random.key(0), N_SIMS, N_SIMS)
    test = simulate_fisher_set(noisy_lpt_field, THETA, jax.random.key(1), N_SIMS, N_SIMS)
    return train, test


def _log_det(matrix) -> float:
    return float(np.linalg.slogdet(np.asarray(matrix, float))[1])


@pytest.mark.slow
def test_learned_fisher_lies_between_power_spectrum_and_full_field(sets):
    train, test = sets
    bins = power_bins((MESH,) * 3, BOX, N_BINS)

    def band_powers(fields):
        return jax.vmap(lambda f: binned_power(f, bins, BOX))(fields)

    f_pk = fisher_stats(
        band_powers(test.fiducial), summary_derivatives(band_powers, test), hartlap=True
    ).fisher
    jac = np.asarray(test.derivative, float).reshape(N_SIMS, 2, -1)
    f_field = np.einsum("nia,nja->ij", jac, jac) / N_SIMS / SIGMA_N**2

    model = build_network(
        {"kind": "spectral", "shape": (MESH,) * 3, "box": BOX, "n_bins": N_BINS, "n_out": 2},
        seed=0,
    )
    fit_input_scaling(model, train.fiducial)
    train_imnn(
        model,
        train,
        test,
        IMNNConfig(learning_rate=3e-3, max_steps=400, patience=100),
        progress=False,
    )
    f_learned = np.asarray(compressor_fisher(model, test).fisher, float)

    # Estimation error of ln det F from N_SIMS simulations: ~ sqrt(2 p / N) per summary count p.
    err_pk = 2 * np.sqrt(2 * N_BINS / N_SIMS)
    assert _log_det(f_learned) > _log_det(f_pk) - err_pk
    assert _log_det(f_learned) < _log_det(f_field)
    # Matrix ordering, not only determinants: F_field - F_learned is positive definite.
    assert np.all(np.linalg.eigvalsh(f_field - f_learned) > 0)
    print(
        f"ln det F: P(k) {_log_det(f_pk):.2f}, learned {_log_det(f_learned):.2f}, "
        f"full field {_log_det(f_field):.2f}"
    )
