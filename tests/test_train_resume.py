"""The trainer: its options, exact save/restore, truncation and divergence detection."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from train_helpers import assert_same_training_state

import bptt
from bptt.app.train import MEMORY_COPIES, CharModelTrainer, TrainConfig

TEXT = bptt.zen_of_python()


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"optimizer": "adam", "learning_rate": 0.01, "clip_value": None, "clip_norm": 1.0},
        {"optimizer": "sgd", "learning_rate": 0.05, "dtype": "float32"},
        {"k1": 3, "k2": 7},
    ],
    ids=["adagrad", "adam-norm", "sgd-float32", "tbptt"],
)
def test_save_and_load_resume_bit_for_bit(tmp_path, options):
    config = {"hidden_size": 12, "seq_length": 10, **options}
    straight = CharModelTrainer(TEXT, TrainConfig(**config))
    straight.train(25)  # 25 chunks of 10 wraps around the 856-character text: h resets too

    first = CharModelTrainer(TEXT, TrainConfig(**config))
    first.train(11)
    path = first.save(tmp_path / "snap.npz")
    resumed = CharModelTrainer.load(path, TEXT)
    assert_same_training_state(first, resumed)
    resumed.train(14)
    assert_same_training_state(straight, resumed)


def test_full_truncation_equals_classic_chunked_training():
    """TBPTT(k, k) with k = seq_length is the classic training, up to rounding order."""
    classic = CharModelTrainer(TEXT, TrainConfig(hidden_size=10, seq_length=8))
    classic.train(6)
    # k1 = 4, k2 = 8 differs from classic; k1 = k2 = 8 through the TBPTT code path must not.
    tb = CharModelTrainer(TEXT, TrainConfig(hidden_size=10, seq_length=8))
    for _ in range(6):
        inputs, targets = tb.next_chunk()
        result = bptt.tbptt(tb.params, inputs, targets, 8, 8, h0=tb.h, update=tb._apply)
        tb.h = result.h_last
    for k in classic.params:
        assert bptt.relative_error(classic.params[k], tb.params[k]) < 1e-12
    explicit = CharModelTrainer(TEXT, TrainConfig(hidden_size=10, seq_length=8, k1=8, k2=8))
    explicit.train(6)
    assert_same_training_state(classic, explicit)


def test_truncation_changes_training_and_counts_updates():
    tb = CharModelTrainer(TEXT, TrainConfig(hidden_size=10, seq_length=8, k1=2, k2=4))
    tb.train(2)
    assert tb.optimizer.steps == 8  # four updates per chunk of eight characters
    full = CharModelTrainer(TEXT, TrainConfig(hidden_size=10, seq_length=8))
    full.train(2)
    assert full.optimizer.steps == 2
    assert not np.array_equal(tb.params["W_hh"], full.params["W_hh"])


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"hidden_size": 0}, "hidden_size"),
        ({"seq_length": -1}, "seq_length"),
        ({"k1": 5, "k2": 3}, "k1 must be <= k2"),
        ({"k2": 30}, "k2 must be <= seq_length"),
        ({"optimizer": "rmsprop"}, "optimizer must be one of"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"dtype": "float16"}, "dtype"),
        ({"clip_norm": -1.0}, "clip_norm"),
    ],
)
def test_invalid_config(options, match):
    with pytest.raises(ValueError, match=match):
        CharModelTrainer(TEXT, TrainConfig(**options))


def test_text_too_short():
    with pytest.raises(ValueError, match="needs at least 26"):
        CharModelTrainer("abc", TrainConfig())


def test_divergence_is_detected_before_the_update():
    trainer = CharModelTrainer(
        TEXT,
        TrainConfig(optimizer="adam", learning_rate=1e37, dtype="float32", clip_value=None),
    )
    with pytest.raises(FloatingPointError, match=r"diverged|not finite"):
        trainer.train(20)
    assert all(np.all(np.isfinite(p)) for p in trainer.params.values())


def test_public_api_of_chapter_4_still_works():
    trainer = CharModelTrainer(TEXT, TrainConfig(hidden_size=16, seq_length=12))
    seen = []
    history = trainer.train(5, callback=lambda t, loss: seen.append(loss))
    assert history.steps == [1, 2, 3, 4, 5] and history.losses == seen
    assert len(history.smoothed) == 5 and trainer.smoothed_loss == history.smoothed[-1]
    assert abs(trainer.initial_loss - np.log(trainer.vocab.size) * 12) < 1e-12
    assert isinstance(trainer.train_step(), float)
    assert trainer.params["W_hh"].shape == (16, 16)


@pytest.mark.parametrize("text", [TEXT, "abcdefghij" * 3])  # the second wraps around at once
def test_next_loss_is_the_next_steps_loss_and_changes_nothing(text):
    trainer = CharModelTrainer(text, TrainConfig(hidden_size=8, seq_length=6))
    for _ in range(7):
        before = (trainer.position, trainer.h.copy(), trainer.rng.bit_generator.state)
        predicted = trainer.next_loss()
        assert trainer.position == before[0] and trainer.rng.bit_generator.state == before[2]
        np.testing.assert_array_equal(trainer.h, before[1])
        assert trainer.train_step() == predicted


def test_a_loss_far_above_uniform_for_many_steps_is_divergence():
    from bptt.app.train import DIVERGENCE_FACTOR, DIVERGENCE_STEPS

    config = TrainConfig(hidden_size=8, seq_length=10, optimizer="sgd", learning_rate=1e6)
    trainer = CharModelTrainer(TEXT, TrainConfig(**{**vars(config), "clip_value": None}))
    assert trainer.loss_limit == DIVERGENCE_FACTOR * trainer.initial_loss
    trainer.train(DIVERGENCE_STEPS)  # the first step is still the untrained model's
    assert trainer.steps_above_limit == DIVERGENCE_STEPS - 1 and not trainer.diverged
    trainer.train_step()
    assert trainer.diverged and trainer.next_loss() > trainer.loss_limit
    healthy = CharModelTrainer(TEXT, TrainConfig(hidden_size=8, seq_length=10))
    healthy.train(3 * DIVERGENCE_STEPS)
    assert healthy.steps_above_limit == 0 and not healthy.diverged


def test_initial_weights_that_would_overflow_are_refused():
    with pytest.raises(ValueError, match=r"weight_scale must be below 3.4e\+35 for float32"):
        CharModelTrainer(TEXT, TrainConfig(weight_scale=1e37, dtype="float32"))
    CharModelTrainer(TEXT, TrainConfig(hidden_size=4, weight_scale=1e37))  # fine in float64


def test_memory_estimate():
    small, big = TrainConfig(hidden_size=100), TrainConfig(hidden_size=1_000_000)
    params = 100 * 45 * 2 + 100 * 100 + 100 + 45
    assert 8 * MEMORY_COPIES * params < small.memory_bytes(45) < 8 * MEMORY_COPIES * params + 1e5
    assert big.memory_bytes(45) > 8 * 10**12 * 8  # H * H float64 entries, many times over
    half = TrainConfig(hidden_size=1_000_000, dtype="float32").memory_bytes(45)
    assert half * 2 == pytest.approx(big.memory_bytes(45), rel=1e-6)


@pytest.mark.parametrize("optimizer", ["sgd", "adagrad", "adam"])
def test_the_memory_estimate_bounds_what_training_uses(tmp_path, optimizer):
    """Measured with tracemalloc (numpy reports its arrays to it): building, steps, save."""
    config = TrainConfig(hidden_size=512, optimizer=optimizer, learning_rate=0.01, clip_norm=1.0)
    tracemalloc.start()
    try:
        trainer = CharModelTrainer(TEXT, config)
        for _ in range(2):
            trainer.train_step()
        trainer.next_loss()
        trainer.save(tmp_path / "m.npz")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < config.memory_bytes(trainer.vocab.size)
