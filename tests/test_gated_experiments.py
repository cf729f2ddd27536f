"""The experiments of the gated-cells chapter: carousel Jacobian, lag profiles, training, costs."""

from __future__ import annotations

import numpy as np
import pytest

import bptt
from bptt.cells.lstm import LSTMCell
from bptt.experiments import gated, vanishing
from bptt.experiments.tasks import adding_problem, temporal_order, temporal_order_baseline_loss


def _lstm(seed: int = 0, scale: float = 0.5, cell: LSTMCell = bptt.LSTM):
    return bptt.init_params(3, 4, 2, seed, weight_scale=scale, cell=cell)


def test_cell_state_jacobian_is_diag_f():
    rng = np.random.default_rng(0)
    params = _lstm()
    state = rng.standard_normal((1, 8))
    x = rng.standard_normal((1, 3))
    numerical, f = gated.cell_state_jacobian(params, state, x)
    assert numerical.shape == (4, 4) and f.shape == (4,)
    assert bptt.relative_error(numerical, np.diag(f)) < 1e-9
    assert np.all((f > 0) & (f < 1))


def test_cell_state_jacobian_errors():
    params = _lstm()
    with pytest.raises(ValueError, match="state"):
        gated.cell_state_jacobian(params, np.zeros((2, 8)), np.zeros((2, 3)))
    with pytest.raises(TypeError, match="state"):
        gated.cell_state_jacobian(params, np.zeros((1, 8), dtype=int), np.zeros((1, 3)))


def test_lag_profiles_start_at_one_and_match_gradient_norm_vs_lag():
    inputs, targets = adding_problem(12, 5, 1)
    models = {
        "tanh": (bptt.TANH, vanishing.make_adding_model(bptt.TANH, 6, 0, weight_scale=0.3)),
        "lstm": (bptt.LSTM, vanishing.make_adding_model(bptt.LSTM, 6, 0, weight_scale=0.3)),
    }
    curves = gated.lag_profiles(models, inputs, targets)
    for label, (cell, params) in models.items():
        raw = vanishing.gradient_norm_vs_lag(params, inputs, targets, cell=cell)
        assert curves[label].shape == (13,) and curves[label][0] == 1.0
        np.testing.assert_allclose(curves[label], raw / raw[0], rtol=1e-15)


def test_forget_bias_slows_the_decay_of_small_lstms():
    inputs, targets = adding_problem(40, 16, 2)
    open_, shut = LSTMCell(forget_bias=1.0), LSTMCell(forget_bias=0.0)
    models = {
        "open": (open_, vanishing.make_adding_model(open_, 8, 0, weight_scale=0.1)),
        "shut": (shut, vanishing.make_adding_model(shut, 8, 0, weight_scale=0.1)),
    }
    curves = gated.lag_profiles(models, inputs, targets)
    assert gated.first_lag_below(curves["shut"]) < gated.first_lag_below(curves["open"])


def test_first_lag_below():
    assert gated.first_lag_below([1.0, 0.5, 0.009, 0.5]) == 2
    assert gated.first_lag_below([1.0, 0.5, 0.02]) is None
    assert gated.first_lag_below([1.0, 0.5, 0.02], fraction=0.1) == 2
    with pytest.raises(ValueError, match="curve"):
        gated.first_lag_below(np.ones((2, 2)))


def test_last_step_classification_gradient_is_exact():
    rng = np.random.default_rng(3)
    inputs, targets = temporal_order(10, 3, 4)
    for cell in (bptt.LSTM, bptt.GRU, bptt.TANH):
        params = bptt.init_params(8, 4, 4, rng, weight_scale=0.5, cell=cell)

        def fn(p, cell=cell):
            return gated.last_step_classification_loss_and_grads(p, inputs, targets, cell=cell)

        report = bptt.gradcheck(fn, params)
        assert report.passed and report.max_rel_error < 1e-7, (cell.name, report.max_rel_error)
    # only the last step counts: equal to the per-step loss with all other targets ignored
    params = bptt.init_params(8, 4, 4, rng, weight_scale=0.5, cell=bptt.LSTM)
    loss, _, logits = gated.last_step_classification_loss_and_grads(
        params, inputs, targets, cell=bptt.LSTM
    )
    outputs, _, _ = bptt.forward_stepwise(params, inputs, cell=bptt.LSTM)
    np.testing.assert_array_equal(logits, outputs[-1])
    assert loss == pytest.approx(bptt.softmax_cross_entropy(outputs[-1], targets)[0], rel=1e-15)


def test_train_temporal_order_small_run_learns():
    run = gated.train_temporal_order(
        20, hidden_size=8, steps=150, batch_size=32, test_size=200, rng=0, learning_rate=0.03
    )
    assert not run.diverged and len(run.losses) == 150
    assert run.baseline == temporal_order_baseline_loss()
    assert run.ratio < 0.5 and run.test_accuracy > 0.6
    assert run.params["W_hi"].shape == (8, 8)


def test_train_temporal_order_errors():
    with pytest.raises(ValueError, match="seq_length"):
        gated.train_temporal_order(5)
    with pytest.raises(TypeError, match="steps"):
        gated.train_temporal_order(20, steps=1.5)


def test_smoothed():
    np.testing.assert_array_equal(gated.smoothed([1.0, 3.0, 5.0, 7.0, 9.0], 2), [2.0, 6.0])
    with pytest.raises(ValueError, match="window"):
        gated.smoothed([1.0], 2)
    with pytest.raises(TypeError, match="window"):
        gated.smoothed([1.0, 2.0], 1.5)


def test_step_seconds():
    seconds = gated.step_seconds(
        {"tanh": bptt.TANH, "lstm": bptt.LSTM},
        hidden_size=8,
        input_size=3,
        batch_size=2,
        repeats=3,
    )
    assert set(seconds) == {"tanh", "lstm"} and all(s > 0 for s in seconds.values())
    with pytest.raises(ValueError, match="repeats"):
        gated.step_seconds({"tanh": bptt.TANH}, repeats=0)


def test_gate_saturation():
    inputs, _ = adding_problem(10, 4, 0)
    small = bptt.init_params(2, 4, 1, 0, weight_scale=0.01, cell=LSTMCell(forget_bias=0.0))
    assert gated.gate_saturation(small, inputs) == 0.0  # all gates near their steepest point
    big = bptt.init_params(2, 4, 1, 0, weight_scale=50.0, cell=bptt.LSTM)
    assert gated.gate_saturation(big, inputs) > 0.8
    assert 0.0 < gated.gate_saturation(small, inputs, level=0.9999) <= 1.0
    with pytest.raises(ValueError, match="level"):
        gated.gate_saturation(small, inputs, level=-1.0)


def test_ends_not_rising():
    assert gated.ends_not_rising([1.0, 0.1, 0.01, 0.012])
    assert not gated.ends_not_rising([1.0, 0.1, 0.01, 0.05])
    assert not gated.ends_not_rising([1.0, 0.5, 2.0])
    with pytest.raises(ValueError, match="curve"):
        gated.ends_not_rising([1.0])
