"""The online SGD learner and Chapter 7's experiment functions (run small)."""

from __future__ import annotations

import numpy as np
import pytest

import bptt
from bptt.algorithms.artbp import ConstantTruncation, PowerLawTruncation, mean_length
from bptt.algorithms.online import ARTBP, RTRL, TBPTT, online_sgd
from bptt.experiments.influence import influence_problem, optimal_theta
from bptt.experiments.truncation import (
    EqualCostRow,
    char_bias_experiment,
    char_eval_sequence,
    char_online_comparison,
    equal_cost_errors,
    gradient_agreement,
    influence_online_experiment,
    power_law_with_mean,
)


def _theta(params):
    return float(params["theta"][0, 0])


def _run(method, steps=3000, **kw):
    problem = influence_problem(steps)
    options = {"learning_rate": 2e-4, "decay_steps": 1000.0, "rng": 0, "divergence": 1e3}
    options.update(kw)
    return online_sgd(
        problem.params,
        problem.inputs,
        problem.targets,
        method,
        trainable=["theta"],
        h0=problem.h0,
        cell=problem.cell,
        loss=bptt.squared_error,
        track=_theta,
        **options,
    )


def test_exact_gradient_converges_to_the_optimum():
    run = _run(RTRL())
    assert not run.diverged
    assert run.tracked[-1] == pytest.approx(optimal_theta(), abs=1e-6)
    assert run.update_steps.tolist() == list(range(1, 3001))
    assert run.step_losses.shape == (3000,) and run.step_losses[-1] < 1e-10


def test_short_truncation_diverges_long_one_converges():
    short = _run(TBPTT(16, 16))
    assert short.diverged and short.tracked[-1] > 10  # pushed the wrong way, theta grows
    assert short.step_losses.size == 0
    long = _run(TBPTT(10, 60))
    assert not long.diverged and long.tracked[-1] == pytest.approx(optimal_theta(), abs=1e-4)
    assert long.update_steps[:3].tolist() == [10, 20, 30]


def test_artbp_converges():
    run = _run(ARTBP(power_law_with_mean(16.0)), steps=6000)
    assert not run.diverged
    assert run.tracked[-1] == pytest.approx(optimal_theta(), abs=0.01)


def test_the_original_params_are_left_alone():
    problem = influence_problem(10)
    before = problem.params["theta"].copy()
    run = online_sgd(
        *problem[1:4],
        RTRL(),
        learning_rate=1e-3,
        h0=problem.h0,
        cell=problem.cell,
        loss=bptt.squared_error,
        trainable=["theta"],
    )
    np.testing.assert_array_equal(problem.params["theta"], before)
    assert run.params["theta"].item() != before.item()
    # default tracking: the norm of the trainable parameters
    assert run.tracked[-1] == pytest.approx(abs(run.params["theta"].item()))


def test_online_on_a_char_model():
    rng = np.random.default_rng(0)
    params = bptt.init_params(5, 8, 5, rng=rng, weight_scale=0.1)
    ids = rng.integers(0, 5, size=(61, 1))
    run = online_sgd(params, ids[:-1], ids[1:], TBPTT(5, 10), learning_rate=0.1)
    assert run.update_steps.tolist() == list(range(5, 61, 5))
    assert not run.diverged
    run = online_sgd(
        params, ids[:-1], ids[1:], ARTBP(PowerLawTruncation(4.0)), learning_rate=0.1, rng=1
    )
    assert run.update_steps[-1] == 60


def test_bad_arguments():
    problem = influence_problem(10)
    args = (*problem[1:4],)
    kw = {"h0": problem.h0, "cell": problem.cell, "loss": bptt.squared_error}
    with pytest.raises(ValueError, match="learning_rate must be a finite number > 0"):
        online_sgd(*args, RTRL(), learning_rate=0.0, **kw)
    with pytest.raises(ValueError, match="decay_steps must be a finite number > 0"):
        online_sgd(*args, RTRL(), learning_rate=0.1, decay_steps=-1.0, **kw)
    with pytest.raises(ValueError, match=r"trainable names \['W'\] are not parameters"):
        online_sgd(*args, RTRL(), learning_rate=0.1, trainable=["W"], **kw)
    with pytest.raises(TypeError, match="method must be RTRL"):
        online_sgd(*args, "rtrl", learning_rate=0.1, **kw)
    with pytest.raises(ValueError, match="k1 must be <= k2"):
        TBPTT(5, 2)


def test_experiment_functions_small():
    runs = influence_online_experiment(400)
    assert set(runs) >= {"exact (RTRL)", "TBPTT(16, 16)", "ARTBP, power-law schedule"}
    trainer, rows = char_bias_experiment(20, 40, (1, 40), hidden_size=8)
    assert rows[-1].k2 == 40
    assert rows[-1].cosine_each == pytest.approx(1.0) and rows[-1].rel_error_each < 1e-12
    assert rows[0].cosine_each < 1.0
    base, online_rows = char_online_comparison(
        trainer, 30, learning_rates=(0.01,), seeds=(0, 1), held_out_chars=20
    )
    assert np.isfinite(base) and [r.seed for r in online_rows] == [0, 0, 1]
    assert online_rows[0].method == "TBPTT(25, 25)"
    inputs = trainer.data[:41, None]
    out = equal_cost_errors(trainer.params, inputs[:-1], inputs[1:], [4], draws=3, rng=0)
    assert out[0].k == 4 and out[0].tbptt_sq_error > 0 and out[0].artbp_sq_error > 0


def test_helpers():
    schedule = power_law_with_mean(12.0, 2.0)
    assert mean_length(schedule, horizon=200_000) == pytest.approx(12.0, rel=1e-6)
    with pytest.raises(ValueError, match="alpha must be > 1"):
        power_law_with_mean(12.0, 1.0)
    g = {"a": np.array([1.0, 0.0])}
    assert gradient_agreement(g, g) == (1.0, 0.0)
    assert gradient_agreement({"a": np.array([0.0, 1.0])}, g)[0] == 0.0
    with pytest.raises(ValueError, match="exact gradient is zero"):
        gradient_agreement(g, {"a": np.zeros(2)})
    assert ConstantTruncation(0.5).survival(2) == 0.25


def test_char_eval_sequence_batches_and_errors():
    trainer, _ = char_bias_experiment(5, 30, (1,), hidden_size=4, batch=2)
    inputs, targets = char_eval_sequence(trainer, 30, batch=3, spacing=100)
    assert inputs.shape == targets.shape == (30, 3)
    start = trainer.data.size // 2
    np.testing.assert_array_equal(inputs[:, 1], trainer.data[start + 100 : start + 130])
    np.testing.assert_array_equal(targets[:-1], inputs[1:])  # targets are the next characters
    with pytest.raises(ValueError, match="too short for 1000 sequences"):
        char_eval_sequence(trainer, 30, batch=1000)
    with pytest.raises(ValueError, match="spacing must be"):
        char_eval_sequence(trainer, 30, batch=2, spacing=10)


def test_char_online_comparison_parallel_streams():
    trainer, _ = char_bias_experiment(5, 30, (1,), hidden_size=4, batch=1)
    kw = {"learning_rates": (0.01,), "seeds": (0,), "held_out_chars": 20}
    base, one = char_online_comparison(trainer, 40, **kw)
    base4, four = char_online_comparison(trainer, 40, batch=4, **kw)
    assert base == base4 and len(one) == len(four) == 2
    assert one[0].held_out_loss != four[0].held_out_loss  # a different stream layout
    with pytest.raises(ValueError, match="fewer than batch"):
        char_online_comparison(trainer, 3, batch=4, **kw)


def test_equal_cost_row_summaries():
    row = EqualCostRow(8, 2.0, np.array([1.0, 3.0, 4.0, 10.0]), 5.0)
    assert row.artbp_sq_error == 4.5 and row.artbp_median == 3.5 and row.artbp_closer == 1
    assert row.artbp_sq_error_stderr == pytest.approx(np.std([1, 3, 4, 10], ddof=1) / 2)


def test_uoro_is_a_method_of_the_online_learner():
    from bptt.algorithms.online import UORO
    from bptt.experiments.beyond import FastInfluenceCell

    problem = influence_problem(8000)
    run = online_sgd(
        problem.params,
        problem.inputs,
        problem.targets,
        UORO(),
        learning_rate=1e-5,
        trainable=["theta"],
        h0=problem.h0,
        cell=FastInfluenceCell(),
        loss=bptt.squared_error,
        rng=0,
        track=_theta,
        divergence=1e3,
    )
    assert run.label == "UORO" and not run.diverged
    assert run.update_steps.tolist() == list(range(1, 8001))
    assert abs(run.tracked[-1] - optimal_theta()) < 0.1 * abs(0.5 - optimal_theta())
