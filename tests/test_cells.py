"""The tanh cell on the cell protocol (Chapters 1 and 2)."""

from __future__ import annotations

import numpy as np
from gradient_helpers import numerical_gradient as numerical

import bptt


def test_tanh_cell_satisfies_the_protocol():
    assert isinstance(bptt.TANH, bptt.Cell)
    assert bptt.TANH.param_names == ("W_xh", "W_hh", "b_h")
    assert bptt.TANH.param_shapes(3, 4) == {"W_xh": (4, 3), "W_hh": (4, 4), "b_h": (4,)}


def test_step_is_the_formula():
    rng = np.random.default_rng(0)
    params = bptt.TANH.init_params(3, 4, rng, weight_scale=0.8)
    h_prev, x = rng.standard_normal((2, 4)), rng.standard_normal((2, 3))
    h, _ = bptt.TANH.step(params, h_prev, x)
    for b in range(2):
        expected = np.tanh(params["W_hh"] @ h_prev[b] + params["W_xh"] @ x[b] + params["b_h"])
        np.testing.assert_allclose(h[b], expected, rtol=0, atol=1e-15)


def test_step_backward_against_finite_differences():
    """Every output of step_backward is a vector-Jacobian product; check each numerically."""
    rng = np.random.default_rng(1)
    params = bptt.TANH.init_params(3, 4, rng, weight_scale=0.8)
    params["b_h"] = rng.standard_normal(4) * 0.3
    h_prev, x = rng.standard_normal((2, 4)), rng.standard_normal((2, 3))
    dh = rng.standard_normal((2, 4))
    _, cache = bptt.TANH.step(params, h_prev, x)
    dh_prev, grads, dx = bptt.TANH.step_backward(params, cache, dh)

    def f(_perturbed):  # the arrays are perturbed in place; read them all again
        return float(np.sum(dh * bptt.TANH.step(params, h_prev, x)[0]))

    np.testing.assert_allclose(dh_prev, numerical(f, h_prev), rtol=0, atol=1e-9)
    np.testing.assert_allclose(dx, numerical(f, x), rtol=0, atol=1e-9)
    for name in bptt.TANH.param_names:
        np.testing.assert_allclose(grads[name], numerical(f, params[name]), rtol=0, atol=1e-9)
