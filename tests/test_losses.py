"""Tests of the losses and the readout (bptt/losses.py, bptt/readout.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from gradient_helpers import numerical_gradient as numerical

import bptt


def test_log_softmax_matches_definition():
    logits = np.random.default_rng(0).standard_normal((3, 4, 5))
    direct = np.log(np.exp(logits) / np.exp(logits).sum(axis=-1, keepdims=True))
    np.testing.assert_allclose(bptt.log_softmax(logits), direct, rtol=0, atol=1e-14)
    np.testing.assert_allclose(bptt.softmax(logits).sum(axis=-1), 1.0, rtol=0, atol=1e-15)


def test_log_softmax_is_stable_for_huge_logits():
    logits = np.array([[1000.0, 0.0, -1000.0], [-1e300, -1e300, -1e300]])
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # underflow is harmless
        logp = bptt.log_softmax(logits)
        p = bptt.softmax(logits)
    assert np.all(np.isfinite(logp[0]))
    assert logp[0, 0] == 0.0
    assert logp[0, 1] == -1000.0
    np.testing.assert_allclose(p[1], 1 / 3, rtol=1e-15)
    np.testing.assert_allclose(logp[1], -math.log(3), rtol=1e-15)


def test_softmax_is_shift_invariant():
    logits = np.random.default_rng(1).standard_normal((2, 6))
    np.testing.assert_allclose(bptt.softmax(logits), bptt.softmax(logits + 123.0), atol=1e-15)


def test_cross_entropy_value_and_gradient():
    rng = np.random.default_rng(2)
    logits = rng.standard_normal((4, 6))
    targets = np.array([0, 5, 2, 2])
    loss, dlogits = bptt.softmax_cross_entropy(logits, targets)
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert loss == pytest.approx(-np.log(p[np.arange(4), targets]).mean(), rel=1e-14)
    expected = p.copy()
    expected[np.arange(4), targets] -= 1
    np.testing.assert_allclose(dlogits, expected / 4, rtol=0, atol=1e-15)
    g = numerical(lambda z: bptt.softmax_cross_entropy(z, targets)[0], logits.copy())
    np.testing.assert_allclose(dlogits, g, rtol=0, atol=1e-9)


def test_cross_entropy_sums_over_time_and_averages_over_batch():
    rng = np.random.default_rng(3)
    logits = rng.standard_normal((5, 3, 4))
    targets = rng.integers(0, 4, size=(5, 3))
    loss, dlogits = bptt.softmax_cross_entropy(logits, targets)
    per_step = [bptt.softmax_cross_entropy(logits[t], targets[t]) for t in range(5)]
    assert loss == pytest.approx(sum(s[0] for s in per_step), rel=1e-14)
    np.testing.assert_allclose(dlogits, np.stack([s[1] for s in per_step]), atol=1e-16)


def test_cross_entropy_of_extreme_logits_is_finite():
    logits = np.array([[800.0, -800.0]])
    loss, d = bptt.softmax_cross_entropy(logits, np.array([1]))
    assert loss == pytest.approx(1600.0)
    np.testing.assert_allclose(d, [[1.0, -1.0]])


def test_squared_error_value_and_gradient():
    rng = np.random.default_rng(4)
    y, target = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 3, 4))
    loss, dy = bptt.squared_error(y, target)
    assert loss == pytest.approx(0.5 * np.sum((y - target) ** 2) / 3, rel=1e-14)
    np.testing.assert_allclose(dy, (y - target) / 3, atol=1e-16)
    g = numerical(lambda z: bptt.squared_error(z, target)[0], y.copy())
    np.testing.assert_allclose(dy, g, atol=1e-9)


def test_cross_entropy_errors():
    logits = np.zeros((3, 4))
    with pytest.raises(
        ValueError, match=r"targets must hold ids in \[0, 4\), got values from 0 to 4"
    ):
        bptt.softmax_cross_entropy(logits, np.array([0, 1, 4]))
    with pytest.raises(ValueError, match=r"targets must hold ids in \[0, 4\), got values from -1"):
        bptt.softmax_cross_entropy(logits, np.array([0, -1, 2]))
    with pytest.raises(TypeError, match="targets must be an integer array of ids"):
        bptt.softmax_cross_entropy(logits, np.array([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match=r"targets must have shape \(3,\)"):
        bptt.softmax_cross_entropy(logits, np.array([0, 1]))
    with pytest.raises(ValueError, match="targets must have 1 dimensions"):
        bptt.softmax_cross_entropy(logits, np.zeros((3, 1), dtype=int))
    with pytest.raises(ValueError, match=r"logits must have shape \(\.\.\., B, V\)"):
        bptt.softmax_cross_entropy(np.zeros(4), np.array(0))
    with pytest.raises(ValueError, match="logits contains 1 non-finite"):
        bptt.softmax_cross_entropy(np.array([[0.0, np.nan]]), np.array([0]))


def test_squared_error_errors():
    with pytest.raises(ValueError, match=r"targets must have the outputs' shape \(2, 3\)"):
        bptt.squared_error(np.zeros((2, 3)), np.zeros((2, 4)))
    with pytest.raises(TypeError, match="targets must be a floating-point array"):
        bptt.squared_error(np.zeros((2, 3)), np.zeros((2, 3), dtype=int))
    with pytest.raises(ValueError, match=r"outputs must have shape \(\.\.\., B, V\)"):
        bptt.squared_error(np.zeros(3), np.zeros(3))


def test_readout_forward_and_backward():
    rng = np.random.default_rng(5)
    params = {"W_hy": rng.standard_normal((4, 3)), "b_y": rng.standard_normal(4)}
    h = rng.standard_normal((2, 3))
    out = bptt.readout_forward(params, h)
    np.testing.assert_allclose(out, h @ params["W_hy"].T + params["b_y"], atol=1e-15)
    dout = rng.standard_normal((2, 4))
    dh, grads = bptt.readout_backward(params, h, dout)
    np.testing.assert_allclose(dh, dout @ params["W_hy"], atol=1e-15)
    np.testing.assert_allclose(grads["W_hy"], dout.T @ h, atol=1e-15)
    np.testing.assert_allclose(grads["b_y"], dout.sum(axis=0), atol=1e-15)
    np.testing.assert_allclose(
        dh, numerical(lambda z: float(np.sum(dout * bptt.readout_forward(params, z))), h.copy())
    )
