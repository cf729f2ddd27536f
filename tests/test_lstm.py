"""The LSTM cell (torch.nn.LSTM's equations, state [h | c]) and every algorithm run on it.

The cross-check against PyTorch itself is in test_interop.py (it needs torch installed).
"""

from __future__ import annotations

import numpy as np
import pytest
from gradient_helpers import numerical_gradient, rel

import bptt
from bptt.algorithms.artbp import ConstantTruncation, PowerLawTruncation, artbp
from bptt.algorithms.checkpointing import (
    evenly_spaced_schedule,
    loss_and_grads_checkpointed,
    optimal_schedule,
)
from bptt.algorithms.online import ARTBP, TBPTT, online_sgd
from bptt.algorithms.truncation import tbptt
from bptt.app.data import Vocabulary
from bptt.app.sampling import sample
from bptt.cells import LSTM, Cell, LSTMCell, hidden, hidden_backward, state_size
from bptt.cells.gru import sigmoid
from bptt.dynamics import influence_matrix
from bptt.experiments.counting import CountingCell
from bptt.experiments.vanishing import gradient_norm_vs_lag, last_step_loss_and_grads


def _model(T=5, B=3, D=4, H=6, V=3, seed=0, scale=0.5):
    """Parameters at a generic point, float inputs, class targets and a nonzero [h_0 | c_0]."""
    rng = np.random.default_rng(seed)
    params = bptt.init_params(D, H, V, rng, weight_scale=scale, cell=LSTM)
    for name in ("b_i", "b_f", "b_g", "b_o", "b_y"):
        params[name] = params[name] + rng.standard_normal(params[name].shape) * 0.3
    inputs = rng.standard_normal((T, B, D))
    targets = rng.integers(0, V, size=(T, B))
    h0 = np.concatenate([np.tanh(rng.standard_normal((B, H))), rng.standard_normal((B, H))], 1)
    return params, inputs, targets, h0


def _close(a, b, tol=1e-12):
    for name in b:
        assert rel(a[name], b[name]) < tol, name


def _reference_step(p, h_prev, c_prev, x):
    """One step of torch.nn.LSTM's documented equations, per unit, with plain Python floats."""
    H = h_prev.shape[0]
    h, c = np.empty(H), np.empty(H)
    for k in range(H):

        def pre(gate, k=k):
            return p[f"W_x{gate}"][k] @ x + p[f"W_h{gate}"][k] @ h_prev + p[f"b_{gate}"][k]

        i, f = float(sigmoid(pre("i"))), float(sigmoid(pre("f")))
        g, o = np.tanh(pre("g")), float(sigmoid(pre("o")))
        c[k] = f * c_prev[k] + i * g
        h[k] = o * np.tanh(c[k])
    return h, c


def test_protocol_state_and_layout():
    assert isinstance(LSTM, Cell)
    assert state_size(LSTM, 5) == 10 and state_size(bptt.TANH, 5) == 5
    assert LSTM.param_names[:4] == ("W_xi", "W_xf", "W_xg", "W_xo")  # PyTorch's gate order
    shapes = LSTM.param_shapes(4, 6)
    assert shapes["W_xg"] == (6, 4) and shapes["W_ho"] == (6, 6) and shapes["b_f"] == (6,)
    assert len(shapes) == 12
    params = bptt.init_params(4, 6, 3, 0, cell=LSTM)
    assert bptt.check_params(params, LSTM) == (4, 6, 3)
    state = np.arange(12.0).reshape(1, 12)
    np.testing.assert_array_equal(hidden(LSTM, state), state[:, :6])
    np.testing.assert_array_equal(hidden_backward(LSTM, np.ones((1, 6))), [[1.0] * 6 + [0.0] * 6])
    assert hidden(bptt.TANH, state) is state and hidden_backward(bptt.GRU, state) is state


def test_forget_bias_initialisation():
    params = bptt.init_params(3, 4, 2, 0, cell=LSTM)
    np.testing.assert_array_equal(params["b_f"], np.ones(4))  # the default, 1.0
    for gate in "igo":
        np.testing.assert_array_equal(params[f"b_{gate}"], np.zeros(4))
    assert np.all(bptt.init_params(3, 4, 2, 0, cell=LSTMCell(forget_bias=0.0))["b_f"] == 0)
    custom = LSTM.init_params(3, 4, np.random.default_rng(0), forget_bias=-2.5)
    assert np.all(custom["b_f"] == -2.5)
    with pytest.raises(TypeError, match="forget_bias"):
        LSTMCell(forget_bias="1")
    with pytest.raises(ValueError, match="forget_bias"):
        LSTM.init_params(3, 4, np.random.default_rng(0), forget_bias=float("nan"))


def test_forward_equals_per_unit_reference():
    params, inputs, _, h0 = _model()
    _, hs, _ = bptt.forward_stepwise(params, inputs, h0, cell=LSTM)
    assert hs.shape == (6, 3, 12)
    for t in range(inputs.shape[0]):
        for b in range(inputs.shape[1]):
            h, c = _reference_step(params, hs[t, b, :6], hs[t, b, 6:], inputs[t, b])
            np.testing.assert_allclose(hs[t + 1, b], np.concatenate([h, c]), rtol=0, atol=1e-14)


def test_outputs_read_h_only():
    params, inputs, _, h0 = _model()
    outputs, hs, _ = bptt.forward_stepwise(params, inputs, h0, cell=LSTM)
    np.testing.assert_allclose(outputs, hs[1:, :, :6] @ params["W_hy"].T + params["b_y"])


def test_step_backward_is_the_vector_jacobian_product():
    params, inputs, _, h0 = _model(B=2)
    rng = np.random.default_rng(1)
    state, x = h0.copy(), inputs[0].copy()
    dstate = rng.standard_normal((2, 12))
    _, cache = LSTM.step(params, state, x)
    dprev, grads, dx = LSTM.step_backward(params, cache, dstate)

    def f(_):
        return float(np.sum(LSTM.step(params, state, x)[0] * dstate))

    assert rel(dprev, numerical_gradient(f, state)) < 1e-8
    assert rel(dx, numerical_gradient(f, x)) < 1e-8
    for name in LSTM.param_names:
        assert rel(grads[name], numerical_gradient(f, params[name])) < 1e-8, name


def test_the_cell_state_jacobian_is_diag_f():
    """The carousel: dc_t/dc_{t-1} = diag(f_t), read off a backward step of [0 | dc]."""
    params, inputs, _, h0 = _model(B=2)
    _, cache = LSTM.step(params, h0, inputs[0])
    f = cache[4]  # (x, h_prev, c_prev, i, f, g, o, tanh_c)
    dc = np.random.default_rng(2).standard_normal((2, 6))
    dprev, _, _ = LSTM.step_backward(params, cache, np.concatenate([np.zeros((2, 6)), dc], 1))
    np.testing.assert_allclose(dprev[:, 6:], f * dc, rtol=0, atol=1e-15)


@pytest.mark.parametrize("loss", [bptt.softmax_cross_entropy, bptt.squared_error])
def test_gradcheck_float64(loss):
    params, inputs, targets, h0 = _model()
    if loss is bptt.squared_error:
        targets = np.random.default_rng(3).standard_normal((5, 3, 3))
    report = bptt.gradcheck(
        lambda p: bptt.loss_and_grads_stepwise(p, inputs, targets, h0, cell=LSTM, loss=loss),
        params,
    )
    assert report.passed, str(report)
    assert report.max_rel_error < 1e-7


def test_last_step_loss_gradcheck_and_lag_curve():
    params, inputs, _, h0 = _model(D=2, V=1)
    y = np.random.default_rng(4).standard_normal((3, 1))
    report = bptt.gradcheck(lambda p: last_step_loss_and_grads(p, inputs, y, h0, cell=LSTM), params)
    assert report.passed and report.max_rel_error < 1e-7, str(report)
    curve = gradient_norm_vs_lag(params, inputs, y, h0, cell=LSTM)
    assert curve.shape == (6,) and np.all(np.isfinite(curve)) and np.all(curve > 0)


@pytest.mark.parametrize("k1", [1, 2, 5])
def test_tbptt_with_full_window_equals_full_bptt(k1):
    params, inputs, targets, h0 = _model()
    loss, grads, h_last = bptt.loss_and_grads_stepwise(params, inputs, targets, h0, cell=LSTM)
    result = tbptt(params, inputs, targets, k1, 5, h0=h0, cell=LSTM)
    assert result.loss == pytest.approx(loss, rel=1e-12)
    np.testing.assert_allclose(result.h_last, h_last, rtol=0, atol=1e-14)
    assert result.h_last.shape == (3, 12)
    _close(result.grads, grads)


def test_tbptt_chunks_equal_full_bptt_on_each_chunk():
    """TBPTT(k, k) is full BPTT on each chunk, the state (h and c) carried across."""
    params, inputs, targets, h0 = _model(T=6)
    result = tbptt(params, inputs, targets, 3, 3, h0=h0, cell=LSTM)
    _, first, h_mid = bptt.loss_and_grads_stepwise(params, inputs[:3], targets[:3], h0, cell=LSTM)
    _, second, _ = bptt.loss_and_grads_stepwise(params, inputs[3:], targets[3:], h_mid, cell=LSTM)
    _close(result.grads, {k: first[k] + second[k] for k in first})


def test_artbp_extremes():
    params, inputs, targets, h0 = _model()
    _, grads, _ = bptt.loss_and_grads_stepwise(params, inputs, targets, h0, cell=LSTM)
    never = artbp(params, inputs, targets, ConstantTruncation(0.0), rng=0, h0=h0, cell=LSTM)
    _close(never.grads, grads)
    always = artbp(params, inputs, targets, ConstantTruncation(1.0), rng=0, h0=h0, cell=LSTM)
    _close(always.grads, tbptt(params, inputs, targets, 1, 1, h0=h0, cell=LSTM).grads)
    heavy = artbp(params, inputs, targets, PowerLawTruncation(2.0), rng=1, h0=h0, cell=LSTM)
    assert sum(heavy.lengths) == 5 and all(np.all(np.isfinite(g)) for g in heavy.grads.values())


@pytest.mark.parametrize("memorize", ["hidden", "internal"])
@pytest.mark.parametrize("slots", [2, 3, 8])
def test_checkpointing_equals_full_bptt(memorize, slots):
    params, inputs, targets, h0 = _model(T=7)
    loss, grads, h_last = bptt.loss_and_grads_stepwise(params, inputs, targets, h0, cell=LSTM)
    result = loss_and_grads_checkpointed(
        params, inputs, targets, h0, slots=slots, memorize=memorize, cell=LSTM
    )
    assert result.loss == pytest.approx(loss, rel=1e-12)
    np.testing.assert_allclose(result.h_last, h_last, rtol=0, atol=1e-14)
    _close(result.grads, grads)
    for schedule in (optimal_schedule(7, slots, memorize=memorize),
                     evenly_spaced_schedule(7, memorize=memorize)):  # fmt: skip
        planned = loss_and_grads_checkpointed(
            params, inputs, targets, h0, schedule=schedule, cell=LSTM
        )
        _close(planned.grads, grads)


def test_online_sgd_runs_tbptt_and_artbp_on_the_lstm():
    params, inputs, targets, h0 = _model(T=6)
    _, grads, _ = bptt.loss_and_grads_stepwise(params, inputs, targets, h0, cell=LSTM)
    run = online_sgd(
        params, inputs, targets, TBPTT(6, 6), learning_rate=0.1, h0=h0, cell=LSTM
    )  # one update, with the full gradient
    assert list(run.update_steps) == [6]
    _close(run.params, {k: params[k] - 0.1 * grads[k] for k in params})
    run = online_sgd(
        params, inputs, targets, ARTBP(ConstantTruncation(0.5)), learning_rate=0.01, cell=LSTM
    )
    assert not run.diverged and len(run.update_steps) >= 1 and run.step_losses.shape == (6,)


def test_counting_cell_and_influence_matrix():
    params, inputs, targets, h0 = _model()
    counting = CountingCell(LSTM)
    result = tbptt(params, inputs, targets, 5, 5, h0=h0, cell=counting)
    _, grads, _ = bptt.loss_and_grads_stepwise(params, inputs, targets, h0, cell=LSTM)
    _close(result.grads, grads)
    assert counting.forward_steps == 5 and counting.backward_steps == 5
    M = influence_matrix(params, inputs, targets, h0, cell=LSTM)
    assert M.shape == (5, 6) and np.all(np.isfinite(np.tril(M, 0)[:, :5]))


def test_sampling_from_an_lstm_character_model():
    vocab = Vocabulary("abc")
    params = bptt.init_params(3, 4, 3, 0, weight_scale=0.5, cell=LSTM)
    text = sample(params, vocab, length=12, rng=0, prime="ab", cell=LSTM)
    assert len(text) == 12 and set(text) <= set("abc")
    again = sample(params, vocab, length=12, rng=0, prime="ab", cell=LSTM, h0=np.zeros((1, 8)))
    assert again == text
    with pytest.raises(ValueError, match="h0"):
        sample(params, vocab, length=3, rng=0, cell=LSTM, h0=np.zeros((1, 4)))


def test_bad_state_width_is_named():
    params, inputs, targets, h0 = _model()
    with pytest.raises(ValueError, match=r"h0 must have shape \(3, 12\).*\(B, S\), S = 12"):
        bptt.loss_and_grads_stepwise(params, inputs, targets, h0[:, :6], cell=LSTM)
    with pytest.raises(ValueError, match=r"h_prev of shape \(B, S\) = \(B, 12\) for H = 6"):
        LSTM.step(params, h0[:, :6], inputs[0])
    _, cache = LSTM.step(params, h0, inputs[0])
    with pytest.raises(ValueError, match="dh"):
        LSTM.step_backward(params, cache, np.zeros((3, 6)))
