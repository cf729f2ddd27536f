"""RTRL for any cell (bptt/algorithms/rtrl.py) and the forward-mode helpers of the cell protocol."""

from __future__ import annotations

import numpy as np
import pytest

import bptt
from bptt.algorithms.rtrl import rtrl
from bptt.cells.base import param_size, state_jacobian, state_jvp, state_size, step_jacobians
from bptt.experiments.influence import influence_problem

CELLS = [bptt.TANH, bptt.GRU, bptt.LSTM]


def _problem(cell, T=7, B=2, D=3, H=4, seed=0):
    rng = np.random.default_rng(seed)
    params = bptt.init_params(D, H, D, rng=rng, weight_scale=0.5, cell=cell)
    return params, rng.integers(0, D, size=(T, B)), rng.integers(0, D, size=(T, B))


@pytest.mark.parametrize("cell", CELLS, ids=lambda c: c.name)
def test_summed_rtrl_gradients_equal_full_bptt(cell):
    params, x, y = _problem(cell)
    loss, grads, h_last = bptt.loss_and_grads_stepwise(params, x, y, cell=cell)
    result = rtrl(params, x, y, cell=cell, loss=bptt.softmax_cross_entropy)
    assert set(result.grads) == set(grads)
    for k in grads:
        assert bptt.relative_error(result.grads[k], grads[k]) < 1e-10, k
    assert result.loss == pytest.approx(loss, rel=1e-12)
    np.testing.assert_allclose(result.h_last, h_last, atol=1e-14)


def test_influence_cell_still_uses_its_tangent_step():
    problem = influence_problem(150)
    kw = {"h0": problem.h0, "cell": problem.cell, "loss": bptt.squared_error}
    args = (problem.params, problem.inputs, problem.targets)
    _, grads, _ = bptt.loss_and_grads_stepwise(*args, **kw)
    result = rtrl(*args, **kw)
    assert bptt.relative_error(result.grads["theta"], grads["theta"]) < 1e-10


@pytest.mark.parametrize("cell", CELLS, ids=lambda c: c.name)
def test_default_jacobians_match_finite_differences(cell):
    """The VJP-built J_t and dF/dtheta are the step's derivatives (central differences)."""
    params, x, _ = _problem(cell, B=2)
    S = state_size(cell, 4)
    rng = np.random.default_rng(1)
    h = rng.normal(size=(2, S)) * 0.5
    xt = np.eye(3)[x[0]]
    J, dF = step_jacobians(cell, params, h, xt)
    assert J.shape == (2, S, S) and dF.shape == (2, S, param_size(cell, params))
    eps = 1e-6
    for j in range(S):
        e = np.zeros_like(h)
        e[:, j] = eps
        fd = (cell.step(params, h + e, xt)[0] - cell.step(params, h - e, xt)[0]) / (2 * eps)
        np.testing.assert_allclose(J[:, :, j], fd, atol=1e-8)
    name = next(n for n in cell.param_names if n.startswith("W_h"))  # a recurrent weight
    names = cell.param_names
    offset = sum(params[n].size for n in names[: names.index(name)])
    for idx in range(0, params[name].size, 5):
        plus = {k: v.copy() for k, v in params.items()}
        minus = {k: v.copy() for k, v in params.items()}
        plus[name].flat[idx] += eps
        minus[name].flat[idx] -= eps
        fd = (cell.step(plus, h, xt)[0] - cell.step(minus, h, xt)[0]) / (2 * eps)
        np.testing.assert_allclose(dF[:, :, offset + idx], fd, atol=1e-8)
    _, cache = cell.step(params, h, xt)
    v = rng.normal(size=h.shape)
    np.testing.assert_allclose(state_jvp(cell, params, cache, v), np.einsum("bij,bj->bi", J, v))
    np.testing.assert_allclose(state_jacobian(cell, params, cache, 2, S), J)


def test_tanh_closed_form_equals_the_default():
    """The tanh cell's own step_jacobians and state_jvp agree with the VJP-built defaults."""

    class Plain:  # the tanh cell without its forward-mode methods
        name, param_names = "plain", bptt.TANH.param_names
        step, step_backward = bptt.TANH.step, bptt.TANH.step_backward

    params, x, _ = _problem(bptt.TANH)
    h = np.random.default_rng(2).normal(size=(2, 4))
    xt = np.eye(3)[x[0]]
    J, dF = step_jacobians(bptt.TANH, params, h, xt)
    J0, dF0 = step_jacobians(Plain(), params, h, xt)
    np.testing.assert_allclose(J, J0, atol=1e-14)
    np.testing.assert_allclose(dF, dF0, atol=1e-14)
    _, cache = bptt.TANH.step(params, h, xt)
    v = np.ones_like(h)
    np.testing.assert_allclose(
        state_jvp(bptt.TANH, params, cache, v), state_jvp(Plain(), params, cache, v), atol=1e-14
    )


def test_a_wrong_jacobian_is_caught():
    """The equality test can fail: dropping the J_t S_{t-1} term breaks it."""
    params, x, y = _problem(bptt.TANH)

    class NoMemory(bptt.TanhCell):
        def step_jacobians(self, p, h, xt):
            J, dF = super().step_jacobians(p, h, xt)
            return 0 * J, dF

    _, grads, _ = bptt.loss_and_grads_stepwise(params, x, y)
    wrong = rtrl(params, x, y, cell=NoMemory(), loss=bptt.softmax_cross_entropy)
    assert bptt.relative_error(wrong.grads["W_hh"], grads["W_hh"]) > 1e-3


def test_update_is_called_every_step():
    params, x, y = _problem(bptt.GRU, T=5)
    seen = []
    rtrl(
        params,
        x,
        y,
        cell=bptt.GRU,
        loss=bptt.softmax_cross_entropy,
        update=lambda g, t: seen.append(t),
    )
    assert seen == [1, 2, 3, 4, 5]


@pytest.mark.parametrize("cell", CELLS, ids=lambda c: c.name)
def test_each_cells_own_state_jvp_equals_the_jacobian_product(cell):
    """tanh, GRU and LSTM define state_jvp (O(H^2)); it equals J_t v from the VJP-built J_t."""
    assert hasattr(cell, "state_jvp")
    params, x, _ = _problem(cell, B=3)
    S = state_size(cell, 4)
    rng = np.random.default_rng(4)
    h = rng.normal(size=(3, S)) * 0.5
    _, cache = cell.step(params, h, np.eye(3)[x[0]])
    v = rng.normal(size=h.shape)
    J = state_jacobian(cell, params, cache, 3, S)
    np.testing.assert_allclose(
        cell.state_jvp(params, cache, v), np.einsum("bij,bj->bi", J, v), atol=1e-13
    )
