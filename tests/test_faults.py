"""Tests of the deliberately broken variants used by Chapter 5 (bptt/experiments/faults.py)."""

from __future__ import annotations

import numpy as np
import pytest

import bptt
from bptt.experiments import faults


def problem(T=6, B=3, D=5, H=4, V=5, scale=0.5, seed=0):
    rng = np.random.default_rng(seed)
    params = bptt.init_params(D, H, V, rng=rng, weight_scale=scale)
    inputs = rng.integers(0, D, size=(T, B))
    targets = rng.integers(0, V, size=(T, B))
    return params, inputs, targets


def check_with(cell, params, inputs, targets, h0=None):
    _, grads, _ = bptt.loss_and_grads_stepwise(params, inputs, targets, h0, cell=cell)
    return bptt.gradcheck(
        lambda p: bptt.loss_and_grads(p, inputs, targets, h0), params, grads=grads
    )


@pytest.mark.parametrize("cell", list(faults.BROKEN_CELLS.values()))
def test_broken_cells_keep_the_forward_pass(cell):
    params, inputs, targets = problem()
    loss, _, h_last = bptt.loss_and_grads_stepwise(params, inputs, targets, cell=cell)
    loss_ok, _, h_ok = bptt.loss_and_grads(params, inputs, targets)
    assert loss == pytest.approx(loss_ok, rel=1e-14)
    np.testing.assert_allclose(h_last, h_ok, atol=1e-15)
    assert isinstance(cell, bptt.Cell)


@pytest.mark.parametrize("name", list(faults.BROKEN_CELLS))
def test_broken_cells_are_caught_at_a_generic_point(name):
    params, inputs, targets = problem()
    report = check_with(faults.BROKEN_CELLS[name], params, inputs, targets)
    assert not report.passed
    assert report.max_rel_error > 1e-2
    # the readout's gradients do not go through the cell's backward step, so they stay right
    assert report.checks["W_hy"].rel_error < 1e-7
    assert report.checks["b_y"].rel_error < 1e-7


def test_dropped_recurrence_is_invisible_on_one_step():
    params, inputs, targets = problem(T=1)
    h0 = np.tanh(np.random.default_rng(1).standard_normal((3, 4)))
    assert check_with(faults.DROPPED_RECURRENCE, params, inputs, targets, h0).passed


def test_transposed_W_hh_is_invisible_when_W_hh_is_symmetric():
    params, inputs, targets = problem()
    params["W_hh"] = (params["W_hh"] + params["W_hh"].T) / 2
    assert check_with(faults.TRANSPOSED_RECURRENCE, params, inputs, targets).passed


def test_missing_tanh_derivative_is_small_near_zero_state():
    params, inputs, targets = problem(scale=0.01)
    report = check_with(faults.MISSING_TANH_DERIVATIVE, params, inputs, targets)
    assert 1e-6 < report.max_rel_error < 1e-3


def test_relu_cell_gradient_is_correct_away_from_the_kink():
    params, inputs, targets = problem(seed=2)
    f = lambda p: bptt.loss_and_grads_stepwise(p, inputs, targets, cell=faults.RELU)  # noqa: E731
    _, _, caches = bptt.forward_stepwise(params, inputs, cell=faults.RELU)
    pre = np.stack([c[2] for c in caches])
    assert np.min(np.abs(pre)) > 1e-4  # no pre-activation within eps of the kink
    assert np.any(pre < 0) and np.any(pre > 0)
    assert bptt.gradcheck(f, params, eps=1e-6).passed


def test_relu_check_straddling_the_kink_fails():
    params, inputs, targets = problem(T=3, B=1, seed=2)
    # put unit 0's first pre-activation (h_0 = 0) just above 0: pre = W_xh[0, x_1] + b_h[0]
    params["b_h"][0] = -params["W_xh"][0, inputs[0, 0]] + 3e-6
    f = lambda p: bptt.loss_and_grads_stepwise(p, inputs, targets, cell=faults.RELU)  # noqa: E731
    straddling = bptt.gradcheck(f, params, eps=1e-5, method="centred")
    inside = bptt.gradcheck(f, params, eps=1e-7, method="centred")
    assert straddling.checks["b_h"].rel_error > 1e-2
    assert inside.checks["b_h"].rel_error < 1e-6


def test_clipped_gradients_fail_only_when_clipping_is_active():
    params, inputs, targets = problem()
    _, grads, _ = bptt.loss_and_grads(params, inputs, targets)
    biggest = max(float(np.max(np.abs(g))) for g in grads.values())
    tight = bptt.gradcheck(
        lambda p: faults.loss_and_grads_clipped(p, inputs, targets, limit=biggest / 2), params
    )
    loose = bptt.gradcheck(
        lambda p: faults.loss_and_grads_clipped(p, inputs, targets, limit=2 * biggest), params
    )
    assert not tight.passed
    assert loose.passed


def test_naive_relative_errors():
    a = np.array([0.0, 1.0, 1e-12, 2.0])
    n = np.array([0.0, 1.0 + 1e-9, 3e-12, 2.0])
    with np.errstate(all="raise"):
        errors = faults.naive_relative_errors(a, n)
    assert np.isnan(errors[0])
    assert errors[1] == pytest.approx(0.5e-9, rel=1e-6)
    assert errors[2] == pytest.approx(0.5)
    assert errors[3] == 0.0
    assert bptt.relative_error(a, n) < 1e-9  # the array-wide error is not fooled
    with pytest.raises(ValueError, match="must have one shape"):
        faults.naive_relative_errors(np.zeros(2), np.zeros(3))


def test_error_vs_eps_has_truncation_and_rounding_branches():
    params, inputs, targets = problem()
    before = {k: v.copy() for k, v in params.items()}
    _, grads, _ = bptt.loss_and_grads(params, inputs, targets)

    def loss(p):
        return bptt.loss_and_grads(p, inputs, targets)[0]

    eps = [1e-10, 1e-5, 1e-1]
    errors = faults.error_vs_eps(loss, params, grads, eps, directions=5)
    assert errors.shape == (3,)
    assert errors[1] < 1e-8
    assert errors[0] > 10 * errors[1]  # rounding dominates at tiny steps
    assert errors[2] > 10 * errors[1]  # truncation dominates at large steps
    for k in params:
        np.testing.assert_array_equal(params[k], before[k])
    p32 = {k: v.astype(np.float32) for k, v in params.items()}
    errors32 = faults.error_vs_eps(loss, p32, grads, [1e-5], directions=5)
    assert errors32[0] > 1e3 * errors[1]


def test_error_vs_eps_errors():
    params, inputs, targets = problem()
    _, grads, _ = bptt.loss_and_grads(params, inputs, targets)

    def loss(p):
        return bptt.loss_and_grads(p, inputs, targets)[0]

    with pytest.raises(TypeError, match="loss must be callable"):
        faults.error_vs_eps(None, params, grads, [1e-5])
    with pytest.raises(ValueError, match="eps_values must be a non-empty sequence"):
        faults.error_vs_eps(loss, params, grads, [])
    with pytest.raises(ValueError, match="eps_values must be a non-empty sequence"):
        faults.error_vs_eps(loss, params, grads, [1e-5, -1.0])
    with pytest.raises(ValueError, match=r"reference is missing the parameter\(s\) \['b_y'\]"):
        faults.error_vs_eps(loss, params, {k: grads[k] for k in grads if k != "b_y"}, [1e-5])
    with pytest.raises(ValueError, match="directions must be an integer >= 1"):
        faults.error_vs_eps(loss, params, grads, [1e-5], directions=0)
