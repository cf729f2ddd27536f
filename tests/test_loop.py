"""Tests of the one-screen plain-loop BPTT (bptt/algorithms/loop.py), the independent reference."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
from gradient_helpers import SHAPES, make_problem, numerical_grads, rel

import bptt
from bptt.algorithms.loop import loss_and_grads_loop


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("ids", [True, False])
@pytest.mark.parametrize("with_h0", [True, False])
def test_equals_vectorised_loss_and_grads(shape, ids, with_h0):
    params, inputs, targets, h0 = make_problem(*shape, ids=ids, with_h0=with_h0, seed=1)
    loss, grads, h_last = loss_and_grads_loop(params, inputs, targets, h0)
    fast_loss, fast_grads, fast_h = bptt.loss_and_grads(params, inputs, targets, h0)
    assert isinstance(loss, float)
    assert abs(loss - fast_loss) <= 1e-12 * abs(fast_loss)
    assert list(grads) == list(fast_grads) == list(params)
    for name in params:
        assert grads[name].shape == params[name].shape
        assert grads[name].dtype == params[name].dtype
        assert rel(grads[name], fast_grads[name]) <= 1e-12, name
    assert h_last.shape == fast_h.shape
    np.testing.assert_allclose(h_last, fast_h, rtol=0, atol=1e-14)


@pytest.mark.parametrize("shape", SHAPES)
def test_equals_stepwise(shape):
    params, inputs, targets, h0 = make_problem(*shape, seed=2)
    loss, grads, h_last = loss_and_grads_loop(params, inputs, targets, h0)
    ref_loss, ref_grads, ref_h = bptt.loss_and_grads_stepwise(params, inputs, targets, h0)
    assert abs(loss - ref_loss) <= 1e-12 * abs(ref_loss)
    for name in params:
        assert rel(grads[name], ref_grads[name]) <= 1e-12, name
    np.testing.assert_allclose(h_last, ref_h, rtol=0, atol=1e-14)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("ids", [True, False])
def test_gradients_match_finite_differences(shape, ids):
    # The reference must itself be right, not merely agree with the package.
    params, inputs, targets, h0 = make_problem(*shape, ids=ids, seed=4)
    _, grads, _ = loss_and_grads_loop(params, inputs, targets, h0)
    numerical = numerical_grads(lambda p: loss_and_grads_loop(p, inputs, targets, h0)[0], params)
    for name in params:
        assert rel(grads[name], numerical[name]) < 1e-7, name


def test_loss_of_a_uniform_model_is_T_log_V():
    T, B, V = 5, 3, 6
    params = {k: np.zeros_like(v) for k, v in bptt.init_params(V, 4, V, rng=0).items()}
    targets = np.arange(T * B).reshape(T, B) % V
    loss, _, _ = loss_and_grads_loop(params, np.zeros((T, B), dtype=int), targets)
    assert loss == pytest.approx(T * np.log(V), rel=1e-14)


def test_huge_logits_stay_finite():
    # Logits near 1000 overflow exp() in float64; the log-sum-exp form does not.
    params, inputs, targets, h0 = make_problem(4, 2, 3, 3, 3, seed=6)
    params["W_hy"] *= 2000.0
    loss, grads, _ = loss_and_grads_loop(params, inputs, targets, h0)
    fast_loss, fast_grads, _ = bptt.loss_and_grads(params, inputs, targets, h0)
    assert np.isfinite(loss)
    assert abs(loss - fast_loss) <= 1e-12 * abs(fast_loss)
    for name in params:
        assert np.all(np.isfinite(grads[name]))
        assert rel(grads[name], fast_grads[name]) <= 1e-12, name


def test_repeated_ids_accumulate():
    params, _, _, h0 = make_problem(5, 2, 3, 2, 3, seed=2)
    inputs = np.zeros((5, 2), dtype=int)  # the same token at every step
    targets = np.ones((5, 2), dtype=int)
    _, grads, _ = loss_and_grads_loop(params, inputs, targets, h0)
    one_hot = np.eye(3)[inputs]
    _, dense, _ = loss_and_grads_loop(params, one_hot, targets, h0)
    np.testing.assert_allclose(grads["W_xh"], dense["W_xh"], rtol=0, atol=1e-15)
    assert np.all(grads["W_xh"][:, 1:] == 0)
    assert np.all(grads["W_xh"][:, 0] != 0)


def test_float32_stays_float32():
    params, inputs, targets, _ = make_problem(3, 2, 3, 2, 3)
    p32 = {k: v.astype(np.float32) for k, v in params.items()}
    loss, grads, h_last = loss_and_grads_loop(p32, inputs, targets)
    assert h_last.dtype == np.float32
    assert all(g.dtype == np.float32 for g in grads.values())
    assert loss == pytest.approx(loss_and_grads_loop(params, inputs, targets)[0], rel=1e-5)


def test_arguments_are_not_modified():
    params, inputs, targets, h0 = make_problem(4, 2, 3, 3, 3, seed=8)
    before = ({k: v.copy() for k, v in params.items()}, inputs.copy(), targets.copy(), h0.copy())
    _, _, h_last = loss_and_grads_loop(params, inputs, targets, h0)
    h_last[...] = 7.0
    for name in params:
        np.testing.assert_array_equal(params[name], before[0][name])
    np.testing.assert_array_equal(inputs, before[1])
    np.testing.assert_array_equal(targets, before[2])
    np.testing.assert_array_equal(h0, before[3])


def test_docstring_names_its_chapter():
    assert "Explained in Chapter 4" in inspect.getdoc(loss_and_grads_loop)


# --- bad inputs raise the package's errors ------------------------------------------------------


@pytest.fixture
def problem():
    params, inputs, targets, _ = make_problem(3, 2, 4, 3, 4, with_h0=False)
    return params, inputs, targets


@pytest.mark.parametrize("bad_shape", [(4, 2), (3, 1), (3, 2, 1), (3,)])
def test_mismatched_targets(problem, bad_shape):
    params, inputs, _ = problem
    with pytest.raises(ValueError, match=r"targets must have shape \(T, B\) = \(3, 2\)"):
        loss_and_grads_loop(params, inputs, np.zeros(bad_shape, dtype=int))


def test_target_out_of_range(problem):
    params, inputs, targets = problem
    with pytest.raises(ValueError, match=r"targets must hold ids in \[0, 4\)"):
        loss_and_grads_loop(params, inputs, targets + 4)


def test_float_targets(problem):
    params, inputs, targets = problem
    with pytest.raises(TypeError, match="targets must be an integer array of ids"):
        loss_and_grads_loop(params, inputs, targets.astype(float))


def test_bad_inputs(problem):
    params, inputs, targets = problem
    with pytest.raises(ValueError, match=r"inputs must hold ids in \[0, 4\)"):
        loss_and_grads_loop(params, inputs + 4, targets)
    with pytest.raises(ValueError, match="inputs must have shape"):
        loss_and_grads_loop(params, np.zeros((3, 2, 5)), targets)
    with pytest.raises(TypeError, match="inputs must have the parameters' dtype"):
        loss_and_grads_loop(params, np.zeros((3, 2, 4), dtype=np.float32), targets)


def test_bad_h0_and_params(problem):
    params, inputs, targets = problem
    with pytest.raises(ValueError, match=r"h0 must have shape \(2, 3\), got \(1, 3\)"):
        loss_and_grads_loop(params, inputs, targets, np.zeros((1, 3)))
    with pytest.raises(ValueError, match=r"missing \['b_y'\]"):
        loss_and_grads_loop({k: v for k, v in params.items() if k != "b_y"}, inputs, targets)


def test_diverged_loss_raises(problem):
    params, inputs, targets = problem
    params = {k: v.copy() for k, v in params.items()}
    params["b_h"][...] = 50.0
    params["W_hy"][...] = 1e308  # every logit overflows to inf
    with (
        np.errstate(over="ignore", invalid="ignore"),
        pytest.raises(FloatingPointError, match="loss is not finite"),
    ):
        loss_and_grads_loop(params, inputs, targets)
