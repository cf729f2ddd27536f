"""Tests of the per-step BPTT written against the cell protocol (bptt/algorithms/stepwise.py)."""

from __future__ import annotations

import numpy as np
import pytest
from gradient_helpers import SHAPES, make_problem, numerical_grads, rel

import bptt


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("ids", [True, False])
def test_cross_entropy_gradients_match_numerical(shape, ids):
    params, inputs, targets, h0 = make_problem(*shape, ids=ids)
    _, grads, _ = bptt.loss_and_grads_stepwise(params, inputs, targets, h0)
    numerical = numerical_grads(
        lambda p: bptt.loss_and_grads_stepwise(p, inputs, targets, h0)[0], params
    )
    for name in params:
        assert rel(grads[name], numerical[name]) < 1e-7, name


@pytest.mark.parametrize("shape", SHAPES)
def test_squared_error_gradients_match_numerical(shape):
    params, inputs, targets, h0 = make_problem(*shape, ids=False, squared=True, seed=1)
    f = lambda p: bptt.loss_and_grads_stepwise(p, inputs, targets, h0, loss=bptt.squared_error)  # noqa: E731
    _, grads, _ = f(params)
    numerical = numerical_grads(lambda p: f(p)[0], params)
    for name in params:
        assert rel(grads[name], numerical[name]) < 1e-7, name


def test_squared_error_loss_value():
    params, inputs, targets, h0 = make_problem(3, 2, 2, 2, 3, ids=False, squared=True)
    loss, _, h_last = bptt.loss_and_grads_stepwise(
        params, inputs, targets, h0, loss=bptt.squared_error
    )
    h, expected = h0, 0.0
    for t in range(3):
        h = np.tanh(inputs[t] @ params["W_xh"].T + h @ params["W_hh"].T + params["b_h"])
        y = h @ params["W_hy"].T + params["b_y"]
        expected += 0.5 * np.sum((y - targets[t]) ** 2) / 2
    assert loss == pytest.approx(expected, rel=1e-13)
    np.testing.assert_allclose(h_last, h, rtol=0, atol=1e-15)


def test_forward_stepwise_matches_rnn_forward():
    params, inputs, _, h0 = make_problem(5, 3, 4, 3, 4)
    outputs, hs, caches = bptt.forward_stepwise(params, inputs, h0)
    outputs_v, cache = bptt.rnn_forward(params, inputs, h0)
    assert len(caches) == 5
    assert hs.shape == (6, 3, 3)
    np.testing.assert_allclose(outputs, outputs_v, rtol=0, atol=1e-14)
    np.testing.assert_allclose(hs, cache.hs, rtol=0, atol=1e-15)


def test_backward_stepwise_dh0_matches_numerical():
    params, inputs, targets, h0 = make_problem(4, 2, 3, 3, 3, seed=9)

    def loss_of(box):
        outputs, _, _ = bptt.forward_stepwise(params, inputs, box["h0"])
        return bptt.softmax_cross_entropy(outputs, targets)[0]

    outputs, hs, caches = bptt.forward_stepwise(params, inputs, h0)
    _, doutputs = bptt.softmax_cross_entropy(outputs, targets)
    _, dh0 = bptt.backward_stepwise(params, hs, caches, doutputs)
    numerical = numerical_grads(loss_of, {"h0": h0.copy()})["h0"]
    assert rel(dh0, numerical) < 1e-8


def test_backward_stepwise_equals_rnn_backward_with_dh_last():
    params, inputs, targets, h0 = make_problem(5, 2, 3, 4, 3, seed=2)
    dh_last = np.random.default_rng(0).standard_normal((2, 4))
    outputs, hs, caches = bptt.forward_stepwise(params, inputs, h0)
    _, doutputs = bptt.softmax_cross_entropy(outputs, targets)
    grads, dh0 = bptt.backward_stepwise(params, hs, caches, doutputs, dh_last=dh_last)
    _, cache = bptt.rnn_forward(params, inputs, h0)
    grads_v, dh0_v = bptt.rnn_backward(params, cache, doutputs, dh_last)
    for name in params:
        assert rel(grads[name], grads_v[name]) <= 1e-12, name
    assert rel(dh0, dh0_v) <= 1e-12


def test_gradient_is_the_sum_of_per_step_contributions():
    # BPTT's gradient of L = sum_t l_t equals the sum of the gradients of each l_t alone.
    params, inputs, targets, h0 = make_problem(4, 2, 3, 3, 3, seed=4)
    outputs, hs, caches = bptt.forward_stepwise(params, inputs, h0)
    _, doutputs = bptt.softmax_cross_entropy(outputs, targets)
    total, _ = bptt.backward_stepwise(params, hs, caches, doutputs)
    summed = {k: np.zeros_like(v) for k, v in params.items()}
    for t in range(4):
        only_t = np.zeros_like(doutputs)
        only_t[t] = doutputs[t]
        grads_t, _ = bptt.backward_stepwise(params, hs, caches, only_t)
        for k in summed:
            summed[k] += grads_t[k]
    for name in params:
        assert rel(total[name], summed[name]) < 1e-13


def test_bad_targets():
    params, inputs, targets, _ = make_problem(3, 2, 3, 2, 3)
    with pytest.raises(ValueError, match=r"targets must have leading shape \(T, B\) = \(3, 2\)"):
        bptt.loss_and_grads_stepwise(params, inputs, targets[:2])
    with pytest.raises(ValueError, match=r"targets must have leading shape \(T, B\) = \(3, 2\)"):
        bptt.loss_and_grads_stepwise(params, inputs, targets[:, :1])
    with pytest.raises(ValueError, match=r"targets must hold ids in \[0, 3\)"):
        bptt.loss_and_grads_stepwise(params, inputs, targets + 3)
    with pytest.raises(TypeError, match="targets must be an integer array"):
        bptt.loss_and_grads_stepwise(params, inputs, targets.astype(float))
    with pytest.raises(TypeError, match="targets must be a floating-point array"):
        bptt.loss_and_grads_stepwise(params, inputs, targets, loss=bptt.squared_error)


def test_bad_inputs_and_params():
    params, inputs, targets, _ = make_problem(3, 2, 3, 2, 3)
    with pytest.raises(ValueError, match=r"inputs must hold ids in \[0, 3\), got values from -1"):
        bptt.loss_and_grads_stepwise(params, inputs - 1, targets)
    with pytest.raises(ValueError, match="inputs must have 3 dimensions"):
        bptt.loss_and_grads_stepwise(params, np.zeros((3, 3)), targets)
    with pytest.raises(ValueError, match=r"axis 2 differs"):
        bptt.loss_and_grads_stepwise(params, np.zeros((3, 2, 4)), targets)
    with pytest.raises(TypeError, match="inputs must have the parameters' dtype"):
        bptt.loss_and_grads_stepwise(params, np.zeros((3, 2, 3), dtype=np.float32), targets)
    bad = {k: v.copy() for k, v in params.items()}
    bad["W_xh"][0, 0] = np.nan
    with pytest.raises(ValueError, match=r"params\['W_xh'\] contains 1 non-finite"):
        bptt.loss_and_grads_stepwise(bad, inputs, targets)
