"""A CAMB-calibrated correction to the EH98 wiggle transfer function.

EH98's fitting formula misplaces the baryon acoustic oscillations by a few per cent in
amplitude and phase for Planck-like cosmologies (3.8% at the first trough for Planck18)
and tilts the broadband by ~1%. For a flat universe with massless neutrinos and a fixed
CMB temperature, the matter transfer function in physical units, T(k [1/Mpc]), depends on
the physical densities only, so the ratio

    R(k; omega_m, f_b) = T_CAMB(k) / T_EH98(k),   omega_m = Omega_m h^2, f_b = Omega_b/Omega_m,

is a function of three numbers. It is tabulated once from CAMB on a grid in
(ln omega_m, f_b, ln k) (``python -m simulator.transfer_correction`` rebuilds it; ~3 min)
and shipped with the package; evaluation interpolates linearly in all three coordinates,
which keeps it differentiable in (Omega_m, Omega_b, h) and jit-able.

Validity: omega_m in [0.05, 0.25], f_b in [0.10, 0.25], 1e-4 < k < 20 /Mpc; outside the
table the nearest edge value is used (at low k, R -> 1 by construction).
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

#: The shipped table (arrays ``ln_omega_m``, ``f_b``, ``ln_k``, ``ln_ratio``).
TABLE_PATH = Path(__file__).with_name("data") / "eh_camb_correction.npz"
OMEGA_M_RANGE = (0.05, 0.25)
F_B_RANGE = (0.10, 0.25)
K_RANGE_MPC = (1e-4, 20.0)
#: CMB temperature [K] and spectral index the table was computed with (R does not depend
#: on n_s, which cancels in the ratio).
T_CMB = 2.7255
_H_TABLE = 0.67


@functools.cache
def load_table(path: Path = TABLE_PATH) -> dict[str, np.ndarray]:
    """The correction table as numpy arrays (read once per process)."""
    with np.load(path) as data:
        return {name: np.asarray(data[name]) for name in data.files}


def _axis_weights(grid: np.ndarray, x: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Lower index and linear weight of ``x`` on a uniform ``grid``, clamped to its ends."""
    step = (grid[-1] - grid[0]) / (len(grid) - 1)
    u = jnp.clip((x - grid[0]) / step, 0.0, len(grid) - 1.0)
    i = jnp.clip(jnp.floor(u).astype(jnp.int32), 0, len(grid) - 2)
    return i, u - i


def log_correction(k_mpc: ArrayLike, omega_m: ArrayLike, f_b: ArrayLike) -> jnp.ndarray:
    """ln R(k): add to ln T_EH98 to get CAMB's transfer function.

    Args:
        k_mpc: wavenumbers in 1/Mpc (not h/Mpc), any shape.
        omega_m: Omega_m h^2 (scalar); f_b: Omega_b / Omega_m (scalar).

    Returns:
        ln R with the shape of ``k_mpc``.
    """
    table = load_table()
    values = jnp.asarray(table["ln_ratio"], jnp.result_type(float))
    i, wi = _axis_weights(table["ln_omega_m"], jnp.log(jnp.asarray(omega_m)))
    j, wj = _axis_weights(table["f_b"], jnp.asarray(f_b))
    # Bilinear in the two densities, giving one ln R(ln k) row.
    row = (
        (1 - wi) * (1 - wj) * values[i, j]
        + (1 - wi) * wj * values[i, j + 1]
        + wi * (1 - wj) * values[i + 1, j]
        + wi * wj * values[i + 1, j + 1]
    )
    return jnp.interp(jnp.log(jnp.asarray(k_mpc)), jnp.asarray(table["ln_k"]), row)


def build_table(
    n_omega_m: int = 11, n_f_b: int = 7, n_k: int = 600, path: Path = TABLE_PATH
) -> Path:
    """Compute the table with CAMB (needs ``pip install camb``) and write it atomically.

    Args:
        n_omega_m, n_f_b: grid sizes in ln omega_m and f_b; n_k: points in ln k.
        path: where to write the ``.npz``.
    """
    import camb
    from tqdm import tqdm

    from cosmolaw.io import atomic_path
    from simulator.cosmology import Cosmology
    from simulator.linear_power import transfer_eh

    ln_om = np.linspace(math.log(OMEGA_M_RANGE[0]), math.log(OMEGA_M_RANGE[1]), n_omega_m)
    f_b = np.linspace(*F_B_RANGE, n_f_b)
    ln_k = np.linspace(math.log(K_RANGE_MPC[0]), math.log(K_RANGE_MPC[1]), n_k)
    k_h = np.exp(ln_k) / _H_TABLE
    ln_ratio = np.empty((n_omega_m, n_f_b, n_k))
    grid = [(a, b) for a in range(n_omega_m) for b in range(n_f_b)]
    for a, b in tqdm(grid, desc="CAMB transfer table"):
        omega_m = math.exp(ln_om[a])
        omega_b = f_b[b] * omega_m
        pars = camb.set_params(
            H0=100 * _H_TABLE,
            ombh2=omega_b,
            omch2=omega_m - omega_b,
            mnu=0.0,
            num_massive_neutrinos=0,
            ns=1.0,
            TCMB=T_CMB,
        )
        pars.set_matter_power(redshifts=[0.0], kmax=1.2 * k_h[-1])
        pars.NonLinear = camb.model.NonLinear_none
        results = camb.get_results(pars)
        interp = results.get_matter_power_interpolator(
            nonlinear=False, hubble_units=True, k_hunit=True, extrap_kmax=2 * k_h[-1]
        )
        t_camb = np.sqrt(interp.P(0.0, k_h) / k_h)
        cosmo = Cosmology(
            Omega_m=omega_m / _H_TABLE**2,
            Omega_b=omega_b / _H_TABLE**2,
            h=_H_TABLE,
            n_s=1.0,
            sigma8=0.8,
            T_cmb=T_CMB,
        )
        t_eh = np.asarray(transfer_eh(k_h, cosmo), float)
        ln_r = np.log(t_camb / t_eh)
        ln_ratio[a, b] = ln_r - ln_r[0]
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(
                fh, ln_omega_m=ln_om, f_b=f_b, ln_k=ln_k, ln_ratio=ln_ratio.astype(np.float32)
            )
    return path


if __name__ == "__main__":
    print(build_table())
