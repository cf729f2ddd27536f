"""Tests of the vectorised tanh RNN (bptt/algorithms/vectorised.py): values, gradients, errors."""

from __future__ import annotations

import numpy as np
import pytest
from gradient_helpers import SHAPES, make_problem, numerical_grads, rel

import bptt
from bptt.algorithms.loop import loss_and_grads_loop

# The independent reference is the package's one-screen plain loop (bptt/algorithms/loop.py,
# Chapter 4): it shares no numerics with the vectorised code, and tests/test_loop.py checks it
# against finite differences.


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("ids", [True, False])
def test_gradients_match_numerical(shape, ids):
    params, inputs, targets, h0 = make_problem(*shape, ids=ids)
    _, grads, _ = bptt.loss_and_grads(params, inputs, targets, h0)
    numerical = numerical_grads(lambda p: bptt.loss_and_grads(p, inputs, targets, h0)[0], params)
    for name in params:
        assert rel(grads[name], numerical[name]) < 1e-7, name


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("ids", [True, False])
@pytest.mark.parametrize("with_h0", [True, False])
def test_matches_independent_reference(shape, ids, with_h0):
    params, inputs, targets, h0 = make_problem(*shape, ids=ids, with_h0=with_h0)
    loss, grads, h_last = bptt.loss_and_grads(params, inputs, targets, h0)
    ref_loss, ref_grads, ref_h = loss_and_grads_loop(params, inputs, targets, h0)
    assert abs(loss - ref_loss) <= 1e-12 * abs(ref_loss)
    assert list(grads) == list(params)
    for name in params:
        assert grads[name].shape == params[name].shape
        assert rel(grads[name], ref_grads[name]) <= 1e-12, name
    np.testing.assert_allclose(h_last, ref_h, rtol=0, atol=1e-14)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("ids", [True, False])
def test_fast_path_equals_stepwise(shape, ids):
    params, inputs, targets, h0 = make_problem(*shape, ids=ids, seed=3)
    loss, grads, h_last = bptt.loss_and_grads(params, inputs, targets, h0)
    loss_s, grads_s, h_last_s = bptt.loss_and_grads_stepwise(params, inputs, targets, h0)
    assert abs(loss - loss_s) <= 1e-12 * abs(loss)
    for name in params:
        assert rel(grads[name], grads_s[name]) <= 1e-12, name
    np.testing.assert_allclose(h_last, h_last_s, rtol=0, atol=1e-14)


def test_loss_value_against_direct_computation():
    params, inputs, targets, h0 = make_problem(4, 3, 5, 3, 5, seed=7)
    x = np.eye(5)[inputs]  # one-hot (T, B, D)
    h = h0
    expected = 0.0
    for t in range(4):
        h = np.tanh(x[t] @ params["W_xh"].T + h @ params["W_hh"].T + params["b_h"])
        logits = h @ params["W_hy"].T + params["b_y"]
        p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        expected += -np.log(p[np.arange(3), targets[t]]).sum() / 3
    loss, _, _ = bptt.loss_and_grads(params, inputs, targets, h0)
    assert loss == pytest.approx(expected, rel=1e-13)


def test_uniform_model_loss_is_T_log_V():
    T, B, V = 6, 2, 7
    params = {k: np.zeros_like(v) for k, v in bptt.init_params(V, 3, V, rng=0).items()}
    inputs = np.zeros((T, B), dtype=int)
    targets = np.arange(T * B).reshape(T, B) % V
    loss, _, _ = bptt.loss_and_grads(params, inputs, targets)
    assert loss == pytest.approx(T * np.log(V), rel=1e-14)


@pytest.mark.parametrize("ids", [True, False])
def test_carried_state_equals_one_long_forward(ids):
    params, inputs, targets, h0 = make_problem(10, 2, 4, 3, 4, ids=ids, seed=5)
    loss, _, h_last = bptt.loss_and_grads(params, inputs, targets, h0)
    loss1, _, h_mid = bptt.loss_and_grads(params, inputs[:4], targets[:4], h0)
    loss2, _, h_end = bptt.loss_and_grads(params, inputs[4:], targets[4:], h_mid)
    assert loss1 + loss2 == pytest.approx(loss, rel=1e-13)
    np.testing.assert_allclose(h_end, h_last, rtol=0, atol=1e-14)
    _, cache = bptt.rnn_forward(params, inputs, h0)
    np.testing.assert_allclose(cache.hs[4], h_mid, rtol=0, atol=1e-14)
    np.testing.assert_allclose(cache.hs[-1], h_last, rtol=0, atol=1e-14)


def test_h_last_is_a_copy():
    params, inputs, targets, h0 = make_problem(3, 2, 3, 2, 3)
    _, _, h_last = bptt.loss_and_grads(params, inputs, targets, h0)
    _, cache = bptt.rnn_forward(params, inputs, h0)
    h_last[...] = 99.0
    _, _, again = bptt.loss_and_grads(params, inputs, targets, h0)
    np.testing.assert_allclose(again, cache.hs[-1])


def test_token_ids_and_one_hot_give_the_same_result():
    params, inputs, targets, h0 = make_problem(6, 3, 5, 4, 5, seed=11)
    one_hot = np.eye(5)[inputs]
    a = bptt.loss_and_grads(params, inputs, targets, h0)
    b = bptt.loss_and_grads(params, one_hot, targets, h0)
    assert a[0] == pytest.approx(b[0], rel=1e-14)
    for name in params:
        np.testing.assert_allclose(a[1][name], b[1][name], rtol=0, atol=1e-14)
    np.testing.assert_allclose(a[2], b[2], rtol=0, atol=1e-15)


def test_repeated_token_ids_accumulate_in_W_xh():
    # The scatter-add must add, not overwrite, when one id occurs several times.
    params, _, _, h0 = make_problem(5, 2, 3, 2, 3, seed=2)
    inputs = np.zeros((5, 2), dtype=int)
    targets = np.ones((5, 2), dtype=int)
    _, grads, _ = bptt.loss_and_grads(params, inputs, targets, h0)
    _, ref, _ = loss_and_grads_loop(params, inputs, targets, h0)
    assert rel(grads["W_xh"], ref["W_xh"]) < 1e-12
    assert np.all(grads["W_xh"][:, 1:] == 0)


def test_rnn_backward_dh0_and_dh_last():
    params, inputs, targets, h0 = make_problem(4, 2, 3, 3, 3, seed=4)
    dh_last = np.random.default_rng(1).standard_normal((2, 3))

    def loss_of_h0(h):
        outputs, cache = bptt.rnn_forward(params, inputs, h)
        loss, _ = bptt.softmax_cross_entropy(outputs, targets)
        return loss + float(np.sum(dh_last * cache.hs[-1]))

    outputs, cache = bptt.rnn_forward(params, inputs, h0)
    _, doutputs = bptt.softmax_cross_entropy(outputs, targets)
    _, dh0 = bptt.rnn_backward(params, cache, doutputs, dh_last)
    box = {"h0": h0.copy()}
    numerical = numerical_grads(lambda p: loss_of_h0(p["h0"]), box)["h0"]
    assert rel(dh0, numerical) < 1e-8


def test_forward_shapes_and_cache():
    params, inputs, _, h0 = make_problem(4, 3, 5, 2, 6)
    outputs, cache = bptt.rnn_forward(params, inputs, h0)
    assert outputs.shape == (4, 3, 6)
    assert cache.hs.shape == (5, 3, 2)
    assert cache.pre.shape == (4, 3, 2)
    np.testing.assert_array_equal(cache.hs[0], h0)
    np.testing.assert_allclose(np.tanh(cache.pre), cache.hs[1:], rtol=0, atol=1e-15)
    assert cache.nbytes == cache.inputs.nbytes + cache.hs.nbytes + cache.pre.nbytes


def test_float32_runs_in_float32():
    params, inputs, targets, _ = make_problem(3, 2, 3, 2, 3)
    p32 = {k: v.astype(np.float32) for k, v in params.items()}
    loss, grads, h_last = bptt.loss_and_grads(p32, inputs, targets)
    assert h_last.dtype == np.float32
    assert all(g.dtype == np.float32 for g in grads.values())
    loss64, _, _ = bptt.loss_and_grads(
        {k: v.astype(np.float64) for k, v in p32.items()}, inputs, targets
    )
    assert loss == pytest.approx(loss64, rel=1e-5)


# --- bad inputs raise clear errors --------------------------------------------------------------


@pytest.fixture
def problem():
    params, inputs, targets, _ = make_problem(3, 2, 4, 3, 4, with_h0=False)
    return params, inputs, targets


def test_target_out_of_range(problem):
    params, inputs, targets = problem
    targets = targets.copy()
    targets[1, 0] = 4
    with pytest.raises(ValueError, match=r"targets must hold ids in \[0, 4\), got values from"):
        bptt.loss_and_grads(params, inputs, targets)


def test_negative_ids(problem):
    params, inputs, targets = problem
    bad = inputs.copy()
    bad[0, 1] = -1
    with pytest.raises(ValueError, match=r"inputs must hold ids in \[0, 4\), got values from -1"):
        bptt.loss_and_grads(params, bad, targets)
    with pytest.raises(ValueError, match=r"targets must hold ids in \[0, 4\), got values from -1"):
        bptt.loss_and_grads(params, inputs, bad)


def test_input_id_out_of_range(problem):
    params, inputs, targets = problem
    with pytest.raises(ValueError, match=r"inputs must hold ids in \[0, 4\)"):
        bptt.loss_and_grads(params, inputs + 4, targets)


def test_float_targets(problem):
    params, inputs, targets = problem
    with pytest.raises(TypeError, match="targets must be an integer array of ids"):
        bptt.loss_and_grads(params, inputs, targets.astype(float))


@pytest.mark.parametrize("bad_shape", [(4, 2), (2, 2), (3, 1), (3, 2, 1), (3,)])
def test_mismatched_T_or_B(problem, bad_shape):
    params, inputs, _ = problem
    targets = np.zeros(bad_shape, dtype=int)
    with pytest.raises(ValueError, match=r"targets must have shape \(T, B\) = \(3, 2\)"):
        bptt.loss_and_grads(params, inputs, targets)


@pytest.mark.parametrize("name", ["W_xh", "W_hh", "b_h", "W_hy", "b_y"])
def test_nan_in_params(problem, name):
    params, inputs, targets = problem
    params = {k: v.copy() for k, v in params.items()}
    params[name].flat[0] = np.nan
    with pytest.raises(ValueError, match=rf"params\['{name}'\] contains 1 non-finite value"):
        bptt.loss_and_grads(params, inputs, targets)


def test_inf_in_inputs(problem):
    params, inputs, targets = problem
    x = np.eye(4)[inputs]
    x[0, 0, 0] = np.inf
    with pytest.raises(ValueError, match="inputs contains 1 non-finite"):
        bptt.loss_and_grads(params, x, targets)


def test_wrong_input_dtype(problem):
    params, inputs, targets = problem
    x = np.eye(4, dtype=np.float32)[inputs]
    with pytest.raises(
        TypeError, match="inputs must have the parameters' dtype float64, got float32"
    ):
        bptt.loss_and_grads(params, x, targets)


def test_mixed_param_dtypes(problem):
    params, inputs, targets = problem
    params = dict(params, W_hh=params["W_hh"].astype(np.float32))
    with pytest.raises(TypeError, match="params must all have one floating dtype"):
        bptt.loss_and_grads(params, inputs, targets)


def test_integer_params(problem):
    params, inputs, targets = problem
    params = dict(params, b_h=np.zeros(3, dtype=int))
    with pytest.raises(TypeError, match=r"params\['b_h'\] must be a floating-point array"):
        bptt.loss_and_grads(params, inputs, targets)


def test_wrong_ndim(problem):
    params, inputs, targets = problem
    with pytest.raises(ValueError, match="inputs must have 2 dimensions"):
        bptt.loss_and_grads(params, inputs[..., None], targets)
    with pytest.raises(ValueError, match="inputs must have 3 dimensions"):
        bptt.loss_and_grads(params, np.zeros((3, 2, 4, 1)), targets)
    with pytest.raises(ValueError, match="inputs must have 3 dimensions"):
        bptt.loss_and_grads(params, np.zeros((3, 4)), targets)


def test_wrong_D(problem):
    params, _, targets = problem
    with pytest.raises(
        ValueError, match=r"inputs must have shape .*4\), got \(3, 2, 5\) \(axis 2 differs\)"
    ):
        bptt.loss_and_grads(params, np.zeros((3, 2, 5)), targets)


def test_empty_sequence(problem):
    params, _, _ = problem
    with pytest.raises(ValueError, match="inputs must have T >= 1 and B >= 1"):
        bptt.loss_and_grads(params, np.zeros((0, 2), dtype=int), np.zeros((0, 2), dtype=int))


def test_wrong_h0(problem):
    params, inputs, targets = problem
    with pytest.raises(ValueError, match=r"h0 must have shape \(2, 3\), got \(1, 3\)"):
        bptt.loss_and_grads(params, inputs, targets, np.zeros((1, 3)))
    with pytest.raises(TypeError, match="h0 must have the parameters' dtype"):
        bptt.loss_and_grads(params, inputs, targets, np.zeros((2, 3), dtype=np.float32))


def test_wrong_param_names_and_shapes(problem):
    params, inputs, targets = problem
    with pytest.raises(ValueError, match=r"missing \['b_y'\]"):
        bptt.loss_and_grads({k: v for k, v in params.items() if k != "b_y"}, inputs, targets)
    bad = dict(params, W_hh=np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"params\['W_hh'\] must have shape \(3, 3\)"):
        bptt.loss_and_grads(bad, inputs, targets)
    with pytest.raises(TypeError, match="params must be a mapping"):
        bptt.loss_and_grads([1, 2], inputs, targets)


def test_diverged_loss_raises(problem):
    params, inputs, targets = problem
    params = {k: v.copy() for k, v in params.items()}
    params["b_h"][...] = 50.0  # every h_t is 1 to rounding, and every logit overflows to inf
    params["W_hy"][...] = 1e308
    with (
        np.errstate(over="ignore", invalid="ignore"),
        pytest.raises((FloatingPointError, ValueError), match=r"not finite|non-finite"),
    ):
        bptt.loss_and_grads(params, inputs, targets)


def test_rnn_backward_checks_doutputs(problem):
    params, inputs, _ = problem
    _, cache = bptt.rnn_forward(params, inputs)
    with pytest.raises(ValueError, match=r"doutputs must have shape \(3, 2, 4\)"):
        bptt.rnn_backward(params, cache, np.zeros((3, 2, 5)))
    with pytest.raises(ValueError, match=r"dh_last must have shape \(2, 3\)"):
        bptt.rnn_backward(params, cache, np.zeros((3, 2, 4)), np.zeros((2, 2)))


# The fast path of bptt/algorithms/vectorised.py (Appendix A2): blocks of tanh', quick checks.


@pytest.mark.parametrize("block", [1, 2, 3, 1000])
@pytest.mark.parametrize("B", [1, 3])
def test_blocks_of_tanh_derivatives_change_nothing(monkeypatch, block, B):
    import bptt.algorithms.vectorised as vectorised

    params, inputs, targets, h0 = make_problem(7, B, 4, 3, 5, ids=False, seed=11)
    ref_loss, ref_grads, ref_h = loss_and_grads_loop(params, inputs, targets, h0)
    # DERIV_BLOCK numbers per block: `block` steps of B * H numbers (7 steps: a partial last block)
    monkeypatch.setattr(vectorised, "DERIV_BLOCK", block * B * 3)
    loss, grads, h_last = bptt.loss_and_grads(params, inputs, targets, h0)
    assert abs(loss - ref_loss) <= 1e-12 * abs(ref_loss)
    for name in params:
        assert rel(grads[name], ref_grads[name]) <= 1e-12, name
    np.testing.assert_allclose(h_last, ref_h, rtol=0, atol=1e-14)


def test_quick_parameter_check_falls_back_to_the_full_one():
    from bptt.algorithms.vectorised import _sizes

    params = bptt.init_params(3, 4, 5, rng=0)
    assert _sizes(params) == (3, 4, 5)
    huge = {k: v.copy() for k, v in params.items()}
    huge["W_hy"][:2] = 1e308  # finite, though a sum of them would overflow
    assert _sizes(huge) == (3, 4, 5)
    for broken, error in [
        ({**params, "b_h": np.array([0.0, np.nan, 0.0, 0.0])}, ValueError),
        ({**params, "b_y": params["b_y"].astype(np.float32)}, TypeError),
        ({**params, "W_hh": params["W_hh"][:3]}, ValueError),
        ({k: v for k, v in params.items() if k != "b_y"}, ValueError),
        ({**params, "W_xh": params["W_xh"].tolist()}, TypeError),
    ]:
        with pytest.raises(error):
            _sizes(broken)
        with pytest.raises(error):
            bptt.check_params(broken)


def test_quick_input_check_falls_back_to_the_full_one():
    from bptt.algorithms.vectorised import _inputs

    dense = np.ones((2, 3, 4))
    assert _inputs(dense, 4, np.dtype(np.float64)) is dense
    big = np.full((2, 3, 4), 1e308)  # a sum of them would overflow; every value is finite
    assert _inputs(big, 4, np.dtype(np.float64)) is big
    ids = np.array([[0, 3], [1, 2]])
    assert _inputs(ids, 4, np.dtype(np.float64)) is ids
    for bad, error in [
        (ids + 1, ValueError),  # an id equal to D
        (-ids - 1, ValueError),
        (ids.astype(bool), TypeError),
        (dense.astype(np.float32), TypeError),
        (np.where(dense > 0, np.inf, 0.0), ValueError),
        (np.ones((2, 3, 5)), ValueError),
        (np.ones((0, 3, 4)), ValueError),
    ]:
        with pytest.raises(error):
            _inputs(bad, 4, np.dtype(np.float64))


@pytest.mark.parametrize("size", [1, 5, 64, 128, 129, 300])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_scatter_rows_sums_the_rows_of_each_id_across_blocks(size, dtype):
    from bptt.algorithms.vectorised import ONE_HOT_BLOCK, scatter_rows

    gen = np.random.default_rng(size)
    per_block = max(1, ONE_HOT_BLOCK // size)
    for n in (1, 7, 2 * per_block + 3):  # one partial block, and several full ones
        ids = gen.integers(0, size, size=n)
        rows = gen.standard_normal((n, 5)).astype(dtype)
        expected = np.zeros((size, 5))
        np.add.at(expected, ids, rows.astype(np.float64))
        got = scatter_rows(ids, rows, size)
        assert got.dtype == dtype and got.shape == (size, 5)
        tol = 1e-12 if dtype == np.float64 else 1e-4
        assert np.allclose(got, expected, rtol=tol, atol=tol), (size, n)
