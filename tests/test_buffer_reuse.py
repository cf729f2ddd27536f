"""loss_and_grads reuses the arrays it owns; the options that allow it change no result (Ch. 7)."""

from __future__ import annotations

import numpy as np

import bptt


def test_softmax_cross_entropy_in_place_gives_the_same_result_in_the_same_array():
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((5, 3, 7)) * 10
    targets = rng.integers(0, 7, size=(5, 3))
    loss, grad = bptt.softmax_cross_entropy(logits, targets)
    work = logits.copy()
    loss_inplace, grad_inplace = bptt.softmax_cross_entropy(work, targets, overwrite_logits=True)
    assert grad_inplace is work  # no new array
    assert loss_inplace == loss
    np.testing.assert_array_equal(grad_inplace, grad)
    # without the option the logits are left alone
    before = logits.copy()
    bptt.softmax_cross_entropy(logits, targets)
    np.testing.assert_array_equal(logits, before)


def test_rnn_backward_overwrite_cache_reuses_the_pre_activations():
    rng = np.random.default_rng(1)
    params = bptt.init_params(4, 6, 5, rng=rng, weight_scale=0.5)
    x = rng.standard_normal((8, 3, 4))
    targets = rng.integers(0, 5, size=(8, 3))
    outputs, cache = bptt.rnn_forward(params, x)
    _, doutputs = bptt.softmax_cross_entropy(outputs, targets)
    grads, dh0 = bptt.rnn_backward(params, cache, doutputs)
    np.testing.assert_allclose(np.tanh(cache.pre), cache.hs[1:], atol=1e-15)  # untouched
    pre_buffer = cache.pre
    grads2, dh02 = bptt.rnn_backward(params, cache, doutputs, overwrite_cache=True)
    assert cache.pre is pre_buffer and not np.allclose(np.tanh(cache.pre), cache.hs[1:])
    for name in grads:
        np.testing.assert_array_equal(grads2[name], grads[name])
    np.testing.assert_array_equal(dh02, dh0)


def test_loss_and_grads_leaves_its_arguments_alone():
    rng = np.random.default_rng(2)
    params = bptt.init_params(4, 6, 5, rng=rng, weight_scale=0.5)
    x = rng.standard_normal((8, 3, 4))
    targets = rng.integers(0, 5, size=(8, 3))
    h0 = rng.standard_normal((3, 6))
    copies = [a.copy() for a in (x, targets, h0, *params.values())]
    bptt.loss_and_grads(params, x, targets, h0)
    for before, after in zip(copies, (x, targets, h0, *params.values()), strict=True):
        np.testing.assert_array_equal(before, after)


def test_the_fast_cross_entropy_equals_softmax_cross_entropy_bit_for_bit():
    from bptt.algorithms.vectorised import _cross_entropy_in_place

    rng = np.random.default_rng(3)
    for shape in [(5, 3, 7), (1, 1, 2), (25, 1, 65)]:
        logits = rng.standard_normal(shape) * 10
        targets = rng.integers(0, shape[-1], size=shape[:-1])
        loss, grad = bptt.softmax_cross_entropy(logits, targets)
        work = logits.copy()
        fast_loss, fast_grad = _cross_entropy_in_place(work, targets)
        assert fast_grad is work and fast_loss == loss
        np.testing.assert_array_equal(fast_grad, grad)
