"""The tanh cell on the cell protocol (Chapters 1 and 2)."""

from __future__ import annotations

import numpy as np

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

    def f(p=params, hp=h_prev, xx=x):
        return float(np.sum(dh * bptt.TANH.step(p, hp, xx)[0]))

    eps = 1e-6

    def numerical(array, evaluate):
        out = np.zeros_like(array)
        for i in np.ndindex(array.shape):
            old = array[i]
            array[i] = old + eps
            plus = evaluate()
            array[i] = old - eps
            minus = evaluate()
            array[i] = old
            out[i] = (plus - minus) / (2 * eps)
        return out

    np.testing.assert_allclose(dh_prev, numerical(h_prev, f), rtol=0, atol=1e-9)
    np.testing.assert_allclose(dx, numerical(x, f), rtol=0, atol=1e-9)
    for name in bptt.TANH.param_names:
        np.testing.assert_allclose(grads[name], numerical(params[name], f), rtol=0, atol=1e-9)
