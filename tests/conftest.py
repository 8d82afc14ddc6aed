"""Shared test configuration.

float32 is the default precision; tests that need float64 (gradients against
finite differences, reversibility) use the ``x64`` fixture, which enables
64-bit JAX only for the duration of the test.
"""

import jax
import pytest


@pytest.fixture
def x64():
    """Run the test body with 64-bit JAX arrays enabled."""
    with jax.enable_x64(True):
        yield
