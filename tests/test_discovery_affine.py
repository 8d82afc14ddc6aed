"""The closed-form affine stage and the transformed targets, on analytic laws.

``t = a + b h(k x)`` is solved by least squares for every constant-free tree ``h``;
laws that are affine only after a transform of the target (``1/y**2``, ``y/x``) or
only in a monomial of several variables are recovered by the whole pipeline.
"""

import numpy as np
import sympy as sp

from discovery import discover, equivalent, identical
from discovery.exhaustive import affine_search
from discovery.programs import to_sympy

N_ROWS = 128  # as in test_discovery_laws, so that the compiled fitting kernels are shared
OPS = "add,sub,mul,div,exp,sqrt,square"


def test_affine_search_finds_the_tree_and_its_line_exactly():
    x = np.random.default_rng(0).uniform(0.5, 4, (N_ROWS, 1))
    t = 2.0 + 3.0 * np.sqrt(x[:, 0])
    (((node, k, a, b, mse), *_),) = affine_search(x, [t], OPS.split(","), 4)
    (u,) = (sp.symbols("u", positive=True),)
    assert sp.simplify(to_sympy(node, [u], []) - sp.sqrt(u)) == 0
    assert k == 1.0
    np.testing.assert_allclose([a, b], [2.0, 3.0], rtol=1e-10)
    assert mse < 1e-20


def test_affine_search_finds_the_scale_inside_a_tree_on_its_grid():
    x = np.random.default_rng(1).uniform(0.5, 4, (N_ROWS, 1))
    scales = np.geomspace(0.01, 100, 61)
    k_true = scales[25]
    t = np.exp(k_true * x[:, 0]) - 1.0
    (((node, k, a, b, mse), *_),) = affine_search(x, [t], OPS.split(","), 3, scales=scales)
    assert node == ("exp", ("x", 0)) and k == k_true
    np.testing.assert_allclose([a, b], [-1.0, 1.0], rtol=1e-10)


def test_pipeline_recovers_a_law_of_a_ratio_through_a_transformed_target():
    rng = np.random.default_rng(2)
    X = np.stack(
        [rng.uniform(1, 5, N_ROWS), rng.uniform(1, 2, N_ROWS), rng.uniform(3, 10, N_ROWS)], 1
    )
    y = X[:, 0] / np.sqrt(1 - X[:, 1] ** 2 / X[:, 2] ** 2)  # m / sqrt(1 - v**2/c**2)
    front = discover(
        X, y, variables=["m", "v", "c"], operators=OPS, budget_s=5, seed=0, clock="work"
    )
    m, v, c = front.variables
    truth = m / sp.sqrt(1 - v**2 / c**2)
    best = front.best("mdl").expression
    assert equivalent(best, truth, front.variables, X)
    assert identical(best, truth)  # exact constants: nothing left to snap


def test_pipeline_recovers_an_exponential_with_a_constant_inside():
    rng = np.random.default_rng(3)
    X = np.stack(
        [rng.uniform(1, 5, N_ROWS), rng.uniform(1, 2, N_ROWS), rng.uniform(1, 2, N_ROWS)], 1
    )
    y = X[:, 0] * (np.exp(X[:, 1] / (2 * X[:, 2])) - 1)  # I0 (exp(V/(2T)) - 1)
    front = discover(
        X, y, variables=["I0", "V", "T"], operators=OPS, budget_s=5, seed=0, clock="work"
    )
    I0, V, T = front.variables
    truth = I0 * (sp.exp(V / (2 * T)) - 1)
    best = front.best("mdl").expression
    assert equivalent(best, truth, front.variables, X)
