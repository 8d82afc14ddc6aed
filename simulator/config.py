"""Simulation configuration: mesh, box, particles, time stepping and numerical options."""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np

from cosmolaw.pytree import pytree_dataclass, static_field

STEP_SPACINGS = ("a", "loga")
GRADIENT_KERNELS = ("exact", "fd")
DTYPES = ("float32", "float64")
GRADIENT_METHODS = ("adjoint", "autodiff")


def _require(ok: bool, name: str, value, allowed: str) -> None:
    if not ok:
        raise ValueError(f"{name}={value!r} is invalid: {allowed}")


@pytree_dataclass
class SimConfig:
    """Static configuration of a particle-mesh simulation (all fields are static pytree metadata).

    Attributes:
        mesh: PM mesh cells per side (positive even integer); the mesh is ``mesh^3``. White
            noise and the linear field live on this mesh.
        box: periodic box side in Mpc/h (> 0).
        ptcl_grid: particles per side (even, divides ``mesh``); ``None`` means ``mesh``.
            ``mesh = 2 * ptcl_grid`` gives the usual 2x finer force mesh.
        a_start: scale factor of the LPT initial conditions, in (0, 1). Default 0.1 (z = 9),
            early enough for 2LPT to be accurate and late enough for few FastPM steps.
        a_stop: final scale factor, in (a_start, 1].
        steps: number of kick-drift-kick steps (>= 1), uniform in ``step_spacing``.
        step_spacing: ``"a"`` or ``"loga"``.
        lpt_order: 1 or 2 (Zel'dovich or 2LPT initial conditions).
        gradient_kernel: ``"fd"`` (fourth-order finite difference, default) or ``"exact"``
            (i k). With a mesh finer than the particle grid use ``"fd"``: the exact kernel
            turns the lattice pattern near the mesh Nyquist frequency into spurious
            large-scale forces.
        cic_deconvolve: divide the force by the CIC window of painting and of readout.
        chunk_size: particles per scatter/gather chunk (memory ~ 8 x chunk_size); ``None``
            picks the default of the backend (``simulator.cic.chunk_particles``).
        dtype: ``"float32"`` or ``"float64"``.
        snapshots: scale factors in (a_start, a_stop] at which the state is also returned;
            they are added to the step boundaries (stored sorted, without duplicates).
        gradient: ``"adjoint"`` (reverse-time integration, memory independent of the number
            of steps) or ``"autodiff"`` (plain JAX differentiation through the time steps,
            memory growing with the steps; the only mode that supports ``jax.jvp``).
    """

    mesh: int = static_field(32)
    box: float = static_field(128.0)
    ptcl_grid: int | None = static_field(None)
    a_start: float = static_field(0.1)
    a_stop: float = static_field(1.0)
    steps: int = static_field(10)
    step_spacing: str = static_field("a")
    lpt_order: int = static_field(2)
    gradient_kernel: str = static_field("fd")
    cic_deconvolve: bool = static_field(False)
    chunk_size: int | None = static_field(None)
    dtype: str = static_field("float32")
    snapshots: tuple[float, ...] = static_field(())
    gradient: str = static_field("adjoint")

    def __post_init__(self) -> None:
        if self.ptcl_grid is None:
            object.__setattr__(self, "ptcl_grid", self.mesh)
        snaps = tuple(sorted({float(a) for a in self.snapshots}))
        object.__setattr__(self, "snapshots", snaps)
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first invalid field, its value and what is allowed."""
        _require(
            isinstance(self.mesh, int | np.integer) and self.mesh > 0 and self.mesh % 2 == 0,
            "mesh",
            self.mesh,
            "must be a positive even integer",
        )
        _require(
            isinstance(self.box, int | float) and math.isfinite(self.box) and self.box > 0,
            "box",
            self.box,
            "must be a finite number > 0 (Mpc/h)",
        )
        _require(
            isinstance(self.ptcl_grid, int | np.integer)
            and self.ptcl_grid > 0
            and self.ptcl_grid % 2 == 0
            and self.mesh % self.ptcl_grid == 0,
            "ptcl_grid",
            self.ptcl_grid,
            f"must be a positive even integer dividing mesh={self.mesh}",
        )
        _require(0.0 < self.a_start < 1.0, "a_start", self.a_start, "must lie in (0, 1)")
        _require(
            self.a_start < self.a_stop <= 1.0,
            "a_stop",
            self.a_stop,
            f"must lie in (a_start={self.a_start}, 1]",
        )
        _require(
            isinstance(self.steps, int | np.integer) and self.steps >= 1,
            "steps",
            self.steps,
            "must be an integer >= 1",
        )
        _require(
            self.step_spacing in STEP_SPACINGS,
            "step_spacing",
            self.step_spacing,
            f"must be one of {STEP_SPACINGS}",
        )
        _require(self.lpt_order in (1, 2), "lpt_order", self.lpt_order, "must be 1 or 2")
        _require(
            self.gradient_kernel in GRADIENT_KERNELS,
            "gradient_kernel",
            self.gradient_kernel,
            f"must be one of {GRADIENT_KERNELS}",
        )
        _require(
            self.chunk_size is None
            or (isinstance(self.chunk_size, int | np.integer) and self.chunk_size >= 1),
            "chunk_size",
            self.chunk_size,
            "must be None or an integer >= 1",
        )
        _require(self.dtype in DTYPES, "dtype", self.dtype, f"must be one of {DTYPES}")
        _require(
            all(self.a_start < a <= self.a_stop for a in self.snapshots),
            "snapshots",
            self.snapshots,
            f"each must lie in (a_start={self.a_start}, a_stop={self.a_stop}]",
        )
        _require(
            self.gradient in GRADIENT_METHODS,
            "gradient",
            self.gradient,
            f"must be one of {GRADIENT_METHODS}",
        )

    @property
    def num_particles(self) -> int:
        """Number of particles ``ptcl_grid^3``."""
        return self.ptcl_grid**3

    @property
    def cell_size(self) -> float:
        """Mesh cell side in Mpc/h."""
        return self.box / self.mesh

    @property
    def float_dtype(self):
        """The JAX real dtype (float64 needs ``jax.enable_x64``)."""
        return jnp.dtype(self.dtype)

    def time_grid(self) -> np.ndarray:
        """Step boundaries in ``a``: ``steps`` uniform steps plus the snapshot times, sorted.

        Returns:
            float64 array of shape ``(n_boundaries,)`` from ``a_start`` to ``a_stop``.
        """
        if self.step_spacing == "a":
            grid = np.linspace(self.a_start, self.a_stop, self.steps + 1)
        else:
            grid = np.geomspace(self.a_start, self.a_stop, self.steps + 1)
        extra = [a for a in self.snapshots if np.min(np.abs(grid - a)) > 1e-9 * a]
        return np.sort(np.concatenate([grid, np.asarray(extra, float)]))
