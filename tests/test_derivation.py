"""The identities of Chapter 2 ("Deriving BPTT"), checked on random small models.

Each test is one equation of the chapter: the step Jacobian, the softmax cross-entropy gradient,
the error-signal recursion and its closed form as a sum over products of Jacobians, and the
gradient of a shared weight as the sum of per-step contributions.
"""

from __future__ import annotations

import numpy as np
import pytest

import bptt
from bptt.dynamics import jacobian_product, step_jacobians
from bptt.experiments.worked_example import numerical_jacobian, per_step_contributions

SIZES = [(1, 1, 1, 1, 1), (2, 3, 4, 5, 2), (3, 5, 2, 8, 3)]  # D, H, V, T, B


def _model(seed, D, H, V, T, B):
    rng = np.random.default_rng(seed)
    params = bptt.init_params(D, H, V, rng=rng, weight_scale=0.6)
    params["b_h"] = 0.1 * rng.standard_normal(H)
    params["b_y"] = 0.1 * rng.standard_normal(V)
    inputs = rng.standard_normal((T, B, D))
    targets = rng.integers(0, V, size=(T, B))
    h0 = 0.5 * rng.standard_normal((B, H))
    return params, inputs, targets, h0


def _backward(params, inputs, targets, h0):
    outputs, cache = bptt.rnn_forward(params, inputs, h0)
    _, doutputs = bptt.softmax_cross_entropy(outputs, targets)
    grads, dh0 = bptt.rnn_backward(params, cache, doutputs)
    return cache.hs, doutputs, grads, dh0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_step_jacobian_is_diag_tanh_prime_times_W_hh(seed):
    params, inputs, _, h0 = _model(seed, 3, 4, 2, 1, 1)
    x = inputs[0]

    def step(h):
        return bptt.TANH.step(params, h[None, :], x)[0][0]

    numerical = numerical_jacobian(step, h0[0])
    h1 = step(h0[0])
    formula = np.diag(1.0 - h1**2) @ params["W_hh"]
    assert bptt.relative_error(formula, numerical) < 1e-8
    hs = np.stack([h0, h1[None, :]])
    np.testing.assert_allclose(step_jacobians(params, hs)[0, 0], formula, rtol=0, atol=1e-15)


@pytest.mark.parametrize(("B", "V"), [(1, 2), (3, 5)])
def test_softmax_cross_entropy_gradient_is_p_minus_y_over_B(B, V):
    rng = np.random.default_rng(B * V)
    logits = rng.standard_normal((B, V))
    targets = rng.integers(0, V, size=B)
    _, dlogits = bptt.softmax_cross_entropy(logits, targets)
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    onehot = np.eye(V)[targets]
    np.testing.assert_allclose(dlogits, (p - onehot) / B, rtol=0, atol=1e-15)
    report = bptt.gradcheck(
        lambda q: bptt.softmax_cross_entropy(q["o"], targets)[0],
        {"o": logits},
        grads={"o": dlogits},
    )
    assert report.passed, str(report)


@pytest.mark.parametrize("sizes", SIZES)
def test_dh0_is_sum_over_paths_of_jacobian_products(sizes):
    _, H, _, T, B = sizes
    params, inputs, targets, h0 = _model(7, *sizes)
    hs, doutputs, _, dh0 = _backward(params, inputs, targets, h0)
    J = step_jacobians(params, hs)
    expansion = np.zeros((B, H))
    for t in range(1, T + 1):
        direct = doutputs[t - 1] @ params["W_hy"]  # dl_t/dh_t, (B, H)
        expansion += np.einsum("bi,bij->bj", direct, jacobian_product(J, t, 0))
    assert bptt.relative_error(expansion, dh0) < 1e-12
    # The stepwise backward gives the same number.
    _, hs2, caches = bptt.forward_stepwise(params, inputs, h0)
    _, dh0_stepwise = bptt.backward_stepwise(params, hs2, caches, doutputs)
    assert bptt.relative_error(dh0_stepwise, dh0) < 1e-12


@pytest.mark.parametrize("sizes", [s for s in SIZES if s[3] >= 2])
def test_dh1_is_direct_term_plus_backward_of_the_tail(sizes):
    T = sizes[3]
    params, inputs, targets, h0 = _model(11, *sizes)
    hs, doutputs, _, _ = _backward(params, inputs, targets, h0)
    # The tail x_2 .. x_T started from h_1 is a sequence of its own: its dh0 is the part of
    # dL/dh_1 that flows back from step 2; the readout adds the direct term of step 1.
    _, tail_dh0 = bptt.rnn_backward(
        params, bptt.rnn_forward(params, inputs[1:], hs[1])[1], doutputs[1:]
    )
    delta_1 = doutputs[0] @ params["W_hy"] + tail_dh0
    J = step_jacobians(params, hs)
    expansion = sum(
        np.einsum("bi,bij->bj", doutputs[t - 1] @ params["W_hy"], jacobian_product(J, t, 1))
        for t in range(1, T + 1)
    )
    assert bptt.relative_error(expansion, delta_1) < 1e-12
    steps = per_step_contributions(params, inputs, targets, h0)
    assert bptt.relative_error(steps.deltas[0], delta_1) < 1e-12


@pytest.mark.parametrize("sizes", SIZES)
def test_error_signal_recursion(sizes):
    # delta_t = dl_t/dh_t + J_{t+1}^T delta_{t+1}, delta_T = dl_T/dh_T.
    params, inputs, targets, h0 = _model(5, *sizes)
    steps = per_step_contributions(params, inputs, targets, h0)
    J = step_jacobians(params, steps.hs)
    T = steps.deltas.shape[0]
    np.testing.assert_array_equal(steps.deltas[T - 1], steps.direct[T - 1])
    for t in range(T - 1):  # index t is step t + 1
        back = np.einsum("bi,bij->bj", steps.deltas[t + 1], J[t + 1])
        assert bptt.relative_error(steps.deltas[t], steps.direct[t] + back) < 1e-13


@pytest.mark.parametrize("sizes", SIZES)
def test_shared_weight_gradients_are_sums_of_per_step_outer_products(sizes):
    T = sizes[3]
    params, inputs, targets, h0 = _model(3, *sizes)
    _, grads, _ = bptt.loss_and_grads(params, inputs, targets, h0)
    steps = per_step_contributions(params, inputs, targets, h0)
    hs = steps.hs
    g = steps.deltas * (1.0 - hs[1:] ** 2)  # dL/da_t
    expected = {
        "W_hh": sum(g[t].T @ hs[t] for t in range(T)),
        "W_xh": sum(g[t].T @ inputs[t] for t in range(T)),
        "b_h": g.sum(axis=(0, 1)),
        "W_hy": sum(steps.doutputs[t].T @ hs[t + 1] for t in range(T)),
        "b_y": steps.doutputs.sum(axis=(0, 1)),
    }
    for name in params:
        assert bptt.relative_error(expected[name], grads[name]) < 1e-12, name
        per_step = [c[name] for c in steps.contributions]
        assert bptt.relative_error(sum(per_step), grads[name]) < 1e-12, name
    report = bptt.gradcheck(lambda p: bptt.loss_and_grads(p, inputs, targets, h0), params)
    assert report.passed, str(report)


def test_dh0_matches_finite_differences():
    params, inputs, targets, h0 = _model(9, 2, 3, 4, 5, 2)
    _, _, _, dh0 = _backward(params, inputs, targets, h0)
    report = bptt.gradcheck(
        lambda q: bptt.loss_and_grads(params, inputs, targets, q["h0"])[0],
        {"h0": h0.copy()},
        grads={"h0": dh0},
    )
    assert report.passed, str(report)


def test_first_copy_of_W_hh_contributes_nothing_when_h0_is_zero():
    # Chapter 1 and Chapter 3: step 1 multiplies its copy of W_hh by h_0; with h_0 = 0 its term
    # g_1 h_0^T is exactly zero, while dL/dh_0 = W_hh^T g_1 is not.
    params, inputs, targets, _ = _model(13, 2, 3, 4, 5, 2)
    steps = per_step_contributions(params, inputs, targets)  # h_0 = 0
    assert np.all(steps.contributions[0]["W_hh"] == 0.0)
    assert all(np.any(c["W_hh"] != 0.0) for c in steps.contributions[1:])
    assert np.any(steps.dh0 != 0.0)
    # with a nonzero h_0 the first step contributes
    params, inputs, targets, h0 = _model(13, 2, 3, 4, 5, 2)
    steps_h0 = per_step_contributions(params, inputs, targets, h0)
    assert np.any(steps_h0.contributions[0]["W_hh"] != 0.0)
