"""Forward model: a differentiable particle-mesh N-body simulator in JAX."""
