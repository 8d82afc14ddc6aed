"""Shared test configuration.

float32 is the default precision; tests that need float64 (gradients against
finite differences, reversibility) use the ``x64`` fixture, which enables
64-bit JAX only for the duration of the test.
"""

import jax
import pytest


@pytest.fixture
def x64():
    """Run the test body with 64-bit JAX arrays enabled.

    JAX's caches are cleared on entry and exit: constants folded while tracing in one
    precision are otherwise reused by traces in the other (seen as float32 rounding of
    P(k) inside float64 finite-difference tests).
    """
    jax.clear_caches()
    with jax.enable_x64(True):
        yield
    jax.clear_caches()
