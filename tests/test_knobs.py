"""The experiments of the chapter on the knobs (bptt/experiments/knobs.py), on tiny runs."""

from __future__ import annotations

import math

import numpy as np
import pytest

import bptt
from bptt.experiments import knobs

TEXT = "the cat sat on the mat. the dog sat on the log. " * 4


def small(**overrides):
    return {"hidden_size": 8, "seq_length": 10, **overrides}


def test_a_run_records_every_chunk_and_every_gradient():
    run = knobs.train_char_model(TEXT, steps=6, **small())
    vocab = bptt.Vocabulary.from_text(TEXT)
    assert run.chunk_losses.shape == (6,) and run.updates == 6
    assert run.characters == 60
    assert run.grad_max.shape == run.grad_norms.shape == (6,)
    assert np.all(run.grad_max <= run.grad_norms)  # an entry is at most the norm
    assert not run.diverged and np.isfinite(run.final_loss)
    assert math.isclose(run.uniform_loss, math.log(vocab.size))
    assert run.seconds >= 0
    assert math.isclose(run.final_loss, knobs.text_loss(run.params, vocab, TEXT))


def test_the_recipe_fills_in_the_knobs_not_given():
    run = knobs.train_char_model(TEXT, steps=1, hidden_size=8)
    expected = {**knobs.RECIPE, "hidden_size": 8}
    assert {k: getattr(run.config, k) for k in expected} == expected


def test_recording_changes_nothing_in_training():
    config = bptt.TrainConfig(**small(seed=3))
    plain = bptt.CharModelTrainer(TEXT, config)
    plain.train(5)
    recorded = knobs.RecordingTrainer(TEXT, bptt.TrainConfig(**small(seed=3)))
    recorded.train(5)
    for name, p in plain.params.items():
        np.testing.assert_array_equal(recorded.params[name], p)
    assert len(recorded.grad_norms) == len(recorded.grad_max) == 5


def test_norms_are_recorded_before_clipping():
    # SGD with a tiny threshold: every gradient is clipped, every step has length lr * c.
    lr, c = 0.5, 1e-3
    trainer = knobs.RecordingTrainer(
        TEXT,
        bptt.TrainConfig(**small(optimizer="sgd", learning_rate=lr, clip_value=None, clip_norm=c)),
    )
    before = {k: v.copy() for k, v in trainer.params.items()}
    trainer.train_step()
    step = math.sqrt(sum(float(np.sum((trainer.params[k] - before[k]) ** 2)) for k in before))
    assert trainer.grad_norms[0] > 100 * c  # the norm of the raw gradient, not of the clipped one
    assert math.isclose(step, lr * c, rel_tol=1e-9)


def test_clipped_fractions():
    run = knobs.train_char_model(
        TEXT, steps=8, **small(optimizer="sgd", clip_value=None, clip_norm=1e-6)
    )
    assert run.clipped_fraction() == 1.0
    assert run.clipped_fraction(1e9) == 0.0
    assert run.value_clipped_fraction() == 0.0  # no value clipping in this run
    threshold = float(np.median(run.grad_norms))
    assert run.clipped_fraction(threshold) == np.mean(run.grad_norms > threshold)
    unclipped = knobs.train_char_model(TEXT, steps=3, **small(clip_value=None))
    assert unclipped.clipped_fraction() == 0.0
    tight = knobs.train_char_model(TEXT, steps=3, **small(clip_value=1e-9))
    assert tight.value_clipped_fraction() == 1.0
    with pytest.raises(ValueError, match="threshold"):
        run.clipped_fraction(-1.0)


def test_truncated_runs_update_every_k1_characters():
    run = knobs.train_char_model(TEXT, steps=3, **small(k1=5, k2=10))
    assert run.updates == 6 and run.characters == 30


def test_a_character_budget_gives_the_same_text_to_every_chunk_length():
    for T in (5, 10, 25):
        run = knobs.train_char_model(TEXT, characters=50, **small(seq_length=T))
        assert run.characters == 50 and run.updates == 50 // T


def test_bad_arguments_are_named():
    with pytest.raises(TypeError, match="unknown knob"):
        knobs.train_char_model(TEXT, steps=1, hidden=8)
    with pytest.raises(TypeError, match="exactly one of steps and characters"):
        knobs.train_char_model(TEXT, steps=1, characters=10)
    with pytest.raises(TypeError, match="exactly one of steps and characters"):
        knobs.train_char_model(TEXT)
    with pytest.raises(ValueError, match="less than one chunk"):
        knobs.train_char_model(TEXT, characters=5, **small())
    with pytest.raises(ValueError, match="learning_rate"):
        knobs.train_char_model(TEXT, steps=1, learning_rate=-1.0)
    with pytest.raises(ValueError, match="steps"):
        knobs.train_char_model(TEXT, steps=0)
    with pytest.raises(ValueError, match="text must be a string"):
        knobs.text_loss({}, bptt.Vocabulary.from_text("ab"), "a")


def test_a_diverging_run_is_stopped_and_reported():
    run = knobs.train_char_model(
        TEXT, steps=30, **small(optimizer="sgd", learning_rate=1e308, clip_value=None)
    )
    assert run.diverged and math.isnan(run.final_loss)
    assert run.chunk_losses.size < 30 and np.all(np.isfinite(run.chunk_losses))
    losses = knobs.final_losses({(1.0, 0): run}, seeds=(0,))
    assert losses == {(1.0,): np.array([np.inf])}


def test_grid_runs_every_combination_and_seed():
    runs = knobs.grid(
        {"hidden_size": (4, 8), "learning_rate": (0.05,)},
        seeds=(0, 1),
        text=TEXT,
        steps=2,
        seq_length=10,
    )
    assert set(runs) == {(H, 0.05, s) for H in (4, 8) for s in (0, 1)}
    assert runs[(4, 0.05, 1)].config.hidden_size == 4 and runs[(4, 0.05, 1)].config.seed == 1
    losses = knobs.final_losses(runs, seeds=(0, 1))
    assert set(losses) == {(4, 0.05), (8, 0.05)} and losses[(8, 0.05)].shape == (2,)
    assert knobs.final_losses(runs, seeds=(1,))[(4, 0.05)].shape == (1,)
    with pytest.raises(ValueError, match="both varied and fixed"):
        knobs.grid({"hidden_size": (4,)}, text=TEXT, steps=1, hidden_size=4)
    with pytest.raises(ValueError, match="seeds go in"):
        knobs.grid({"seed": (1,)}, text=TEXT, steps=1)
    with pytest.raises(ValueError, match="at least one knob"):
        knobs.grid({}, text=TEXT, steps=1)
    with pytest.raises(ValueError, match="at least one seed"):
        knobs.grid({"hidden_size": (4,)}, seeds=(), text=TEXT, steps=1)


def test_truncation_bias_vs_cost():
    rng = np.random.default_rng(0)
    params = bptt.init_params(5, 6, 5, rng=rng, weight_scale=0.5)
    ids = rng.integers(0, 5, size=(25, 2))
    rows = knobs.truncation_bias_vs_cost(params, ids[:-1], ids[1:], [(1, 1), (2, 4), (24, 24)])
    one, half, full = rows
    assert (one.k1, one.k2, one.shortest_reach) == (1, 1, 1) and half.shortest_reach == 3
    assert one.backward_per_forward == 1.0
    assert half.backward_per_forward == pytest.approx(2.0, rel=0.1)
    assert full.rel_error < 1e-12 and full.cosine == pytest.approx(1.0)  # k2 >= T: exact
    assert one.rel_error > half.rel_error > full.rel_error
    with pytest.raises(ValueError, match="k1 must be <= k2"):
        knobs.truncation_bias_vs_cost(params, ids[:-1], ids[1:], [(4, 2)])
    with pytest.raises(ValueError, match="at least one"):
        knobs.truncation_bias_vs_cost(params, ids[:-1], ids[1:], [])


def test_cpu_clock_advances_and_uses_the_wall_clock_in_the_browser(monkeypatch):
    start = knobs.cpu_clock()
    sum(i * i for i in range(200_000))  # busy: CPU time passes
    assert knobs.cpu_clock() > start
    # Pyodide's process_time does not advance: there the clock is perf_counter
    monkeypatch.setattr(knobs.time, "process_time", lambda: 0.0)
    monkeypatch.setattr(knobs.sys, "platform", "emscripten")
    monkeypatch.setattr(knobs.time, "perf_counter", lambda: 42.0)
    assert knobs.cpu_clock() == 42.0
