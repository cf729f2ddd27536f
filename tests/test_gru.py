"""The GRU cell (torch.nn.GRU's equations): exact backward, a per-step reference, every algorithm.

The cross-check against PyTorch itself is in test_interop.py (it needs torch installed).
"""

from __future__ import annotations

import numpy as np
import pytest

import bptt
from bptt.algorithms.checkpointing import loss_and_grads_checkpointed
from bptt.algorithms.truncation import tbptt
from bptt.cells.gru import GRU, GRUCell, sigmoid


def _model(T=5, B=3, D=4, H=6, V=3, seed=0):
    rng = np.random.default_rng(seed)
    params = bptt.init_params(D, H, V, rng, weight_scale=0.5, cell=GRU)
    for name in ("b_z", "b_r", "b_xn", "b_hn"):
        params[name] = rng.standard_normal(H) * 0.3
    inputs = rng.standard_normal((T, B, D))
    targets = rng.integers(0, V, size=(T, B))
    return params, inputs, targets


def _reference_step(p, h_prev, x):
    """One step of torch.nn.GRU's equations, per unit with plain Python floats.

    r = s(W_ir x + b_ir + W_hr h + b_hr), z likewise, n = tanh(W_in x + b_in + r (W_hn h + b_hn)),
    h' = (1 - z) n + z h (PyTorch's documentation), with b_r = b_ir + b_hr and b_z likewise.
    """
    H = h_prev.shape[0]
    h = np.empty(H)
    for i in range(H):
        r = float(sigmoid(p["W_xr"][i] @ x + p["W_hr"][i] @ h_prev + p["b_r"][i]))
        z = float(sigmoid(p["W_xz"][i] @ x + p["W_hz"][i] @ h_prev + p["b_z"][i]))
        hn = p["W_hn"][i] @ h_prev + p["b_hn"][i]
        n = np.tanh(p["W_xn"][i] @ x + p["b_xn"][i] + r * hn)
        h[i] = (1 - z) * n + z * h_prev[i]
    return h


def test_protocol_and_init():
    assert isinstance(GRU, bptt.Cell)
    params = bptt.init_params(4, 6, 3, 0, cell=GRU)
    assert bptt.check_params(params, GRU) == (4, 6, 3)
    assert set(params) == {*GRU.param_names, "W_hy", "b_y"}
    assert GRU.param_shapes(4, 6)["W_hn"] == (6, 6)
    assert len(GRU.param_names) == 10  # six weights, b_r, b_z and the candidate's two biases
    assert GRU.param_shapes(4, 6)["b_hn"] == (6,) and GRU.param_shapes(4, 6)["W_xr"] == (6, 4)


def test_sigmoid_is_stable_and_correct():
    a = np.array([-1000.0, -3.0, 0.0, 2.0, 1000.0])
    with np.errstate(over="raise", invalid="raise"):
        s = sigmoid(a)
    np.testing.assert_allclose(s[1:4], 1 / (1 + np.exp(-a[1:4])))
    assert s[0] == 0.0 and s[-1] == 1.0


def test_forward_equals_per_step_reference():
    params, inputs, _ = _model()
    _, hs, _ = bptt.forward_stepwise(params, inputs, cell=GRU)
    for t in range(inputs.shape[0]):
        for b in range(inputs.shape[1]):
            expected = _reference_step(params, hs[t, b], inputs[t, b])
            np.testing.assert_allclose(hs[t + 1, b], expected, rtol=1e-13, atol=1e-14)


def test_gradcheck_float64():
    params, inputs, targets = _model()
    report = bptt.gradcheck(
        lambda p: bptt.loss_and_grads_stepwise(p, inputs, targets, cell=GRU), params
    )
    assert report.passed, str(report)
    assert report.max_rel_error < 1e-7


def test_step_backward_input_and_state_derivatives():
    params, inputs, _ = _model(B=2)
    rng = np.random.default_rng(1)
    h_prev, x = rng.standard_normal((2, 6)), inputs[0]
    dh = rng.standard_normal((2, 6))
    _, cache = GRU.step(params, h_prev, x)
    dh_prev, _, dx = GRU.step_backward(params, cache, dh)

    def f(hp, xx):
        return float(np.sum(GRU.step(params, hp, xx)[0] * dh))

    eps = 1e-6
    for arr, analytic in ((h_prev, dh_prev), (x, dx)):
        num = np.zeros_like(arr)
        for idx in np.ndindex(arr.shape):
            old = arr[idx]
            arr[idx] = old + eps
            plus = f(h_prev, x)
            arr[idx] = old - eps
            minus = f(h_prev, x)
            arr[idx] = old
            num[idx] = (plus - minus) / (2 * eps)
        assert bptt.relative_error(analytic, num) < 1e-8


def test_squared_error_and_dh_last():
    params, inputs, _ = _model()
    targets = np.random.default_rng(2).standard_normal((5, 3, 3))
    report = bptt.gradcheck(
        lambda p: bptt.loss_and_grads_stepwise(
            p, inputs, targets, cell=GRU, loss=bptt.squared_error
        ),
        params,
    )
    assert report.passed, str(report)


@pytest.mark.parametrize("k1", [1, 3, 6])
def test_tbptt_with_full_window_equals_full_bptt(k1):
    """With k2 >= T every loss reaches every earlier step: the summed gradient is full BPTT's."""
    params, inputs, targets = _model(T=6)
    loss, grads, h_last = bptt.loss_and_grads_stepwise(params, inputs, targets, cell=GRU)
    result = tbptt(params, inputs, targets, k1, 6, cell=GRU)
    assert result.loss == pytest.approx(loss, rel=1e-12)
    np.testing.assert_allclose(result.h_last, h_last, rtol=1e-12)
    for name in params:
        assert bptt.relative_error(result.grads[name], grads[name]) < 1e-12


def test_checkpointing_equals_full_bptt():
    params, inputs, targets = _model(T=7)
    loss, grads, _ = bptt.loss_and_grads_stepwise(params, inputs, targets, cell=GRU)
    result = loss_and_grads_checkpointed(params, inputs, targets, slots=3, cell=GRU)
    assert result.loss == pytest.approx(loss, rel=1e-12)
    for name in params:
        assert bptt.relative_error(result.grads[name], grads[name]) < 1e-12


def test_wrong_params_are_rejected():
    params, inputs, targets = _model()
    del params["b_r"]
    with pytest.raises(ValueError, match="b_r"):
        bptt.loss_and_grads_stepwise(params, inputs, targets, cell=GRU)
    params, inputs, targets = _model()
    params["W_hz"] = params["W_hz"][:, :-1]
    with pytest.raises(ValueError, match="W_hz"):
        bptt.loss_and_grads_stepwise(params, inputs, targets, cell=GRU)


def test_b_hn_sits_inside_the_reset_gate():
    """b_hn is scaled by r, b_xn is not: with r = 0 the candidate ignores b_hn (and W_hn h)."""
    params, inputs, _ = _model(B=2)
    params["b_r"][:] = -50.0  # r = 0
    h_prev = np.random.default_rng(4).standard_normal((2, 6))
    h, _ = GRU.step(params, h_prev, inputs[0])
    params["b_hn"] = params["b_hn"] + 3.0
    params["W_hn"] = params["W_hn"] * 2.0
    np.testing.assert_allclose(GRU.step(params, h_prev, inputs[0])[0], h, rtol=0, atol=1e-15)
    params["b_xn"] = params["b_xn"] + 3.0
    assert np.abs(GRU.step(params, h_prev, inputs[0])[0] - h).max() > 1e-3


def test_copy_gate_copies_the_state():
    """With the update gate saturated at z = 1 the state is copied and dh_prev = dh exactly."""
    params, inputs, _ = _model(B=2)
    params["b_z"][:] = 50.0
    h_prev = np.random.default_rng(3).standard_normal((2, 6))
    h, cache = GRUCell().step(params, h_prev, inputs[0])
    np.testing.assert_allclose(h, h_prev, atol=1e-18)
    dh = np.ones((2, 6))
    dh_prev, _, _ = GRU.step_backward(params, cache, dh)
    np.testing.assert_allclose(dh_prev, dh, atol=1e-18)
