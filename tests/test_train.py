"""Tests of the character-model trainer (bptt/app/train.py) and sampling (bptt/app/sampling.py)."""

from __future__ import annotations

import numpy as np
import pytest

import bptt

TEXT = "hello world\n" * 20


def small_config(**changes):
    options = {"hidden_size": 16, "seq_length": 8, "seed": 0}
    options.update(changes)
    return bptt.TrainConfig(**options)


def test_defaults_are_the_classic_setting():
    config = bptt.TrainConfig()
    assert config.hidden_size == 100
    assert config.seq_length == 25
    assert config.learning_rate == 0.1
    assert config.optimizer == "adagrad"
    assert config.clip_value == 5.0


def test_loss_decreases_on_a_tiny_text():
    trainer = bptt.CharModelTrainer(TEXT, small_config())
    V = len(set(TEXT))
    assert trainer.initial_loss == pytest.approx(np.log(V) * 8)
    history = trainer.train(300)
    assert len(history.losses) == 300
    assert history.steps == list(range(1, 301))
    first, last = np.mean(history.losses[:10]), np.mean(history.losses[-20:])
    assert last < 0.25 * trainer.initial_loss
    assert last < 0.25 * first
    assert history.smoothed[-1] < trainer.initial_loss


def test_training_is_deterministic_given_the_seed():
    a = bptt.CharModelTrainer(TEXT, small_config(seed=3))
    b = bptt.CharModelTrainer(TEXT, small_config(seed=3))
    c = bptt.CharModelTrainer(TEXT, small_config(seed=4))
    ha, hb, hc = a.train(20), b.train(20), c.train(20)
    assert ha.losses == hb.losses
    for k in a.params:
        np.testing.assert_array_equal(a.params[k], b.params[k])
    assert ha.losses != hc.losses


def test_state_is_carried_across_chunks():
    trainer = bptt.CharModelTrainer(TEXT, small_config())
    params = {k: v.copy() for k, v in trainer.params.items()}
    trainer.train_step()
    inputs = trainer.data[:8, None]
    _, cache = bptt.rnn_forward(params, inputs)
    np.testing.assert_allclose(trainer.h, cache.hs[-1], rtol=0, atol=1e-15)
    assert trainer.position == 8
    h_before = trainer.h.copy()
    inputs, targets = trainer.next_chunk()
    np.testing.assert_array_equal(inputs[:, 0], trainer.data[8:16])
    np.testing.assert_array_equal(targets[:, 0], trainer.data[9:17])
    np.testing.assert_array_equal(trainer.h, h_before)  # not reset in the middle of the text


def test_wrap_around_resets_the_state():
    trainer = bptt.CharModelTrainer("abcdefghij", small_config(seq_length=4))
    trainer.train(2)  # positions 0 and 4; the next chunk would need 8..12 > 10
    assert np.any(trainer.h != 0)
    inputs, _ = trainer.next_chunk()
    assert trainer.position == 4
    np.testing.assert_array_equal(trainer.h, 0)
    assert trainer.vocab.decode(inputs[:, 0]) == "abcd"


def test_clip_norm_option_runs():
    trainer = bptt.CharModelTrainer(TEXT, small_config(clip_value=None, clip_norm=1.0))
    losses = trainer.train(5).losses
    assert all(np.isfinite(losses))


def test_config_errors():
    with pytest.raises(ValueError, match="hidden_size must be an integer >= 1"):
        bptt.CharModelTrainer(TEXT, small_config(hidden_size=0))
    with pytest.raises(ValueError, match="learning_rate must be a finite number > 0"):
        bptt.CharModelTrainer(TEXT, small_config(learning_rate=-1.0))
    with pytest.raises(ValueError, match="optimizer must be one of"):
        bptt.CharModelTrainer(TEXT, small_config(optimizer="nope"))
    with pytest.raises(ValueError, match="dtype must be 'float32' or 'float64'"):
        bptt.CharModelTrainer(TEXT, small_config(dtype="float16"))
    with pytest.raises(ValueError, match="seq_length=8 needs at least 9"):
        bptt.CharModelTrainer("abcdefgh", small_config())
    with pytest.raises(TypeError, match="text must be a str"):
        bptt.CharModelTrainer(b"abcdefghijklmnop", small_config())
    with pytest.raises(ValueError, match="steps must be an integer >= 0"):
        bptt.CharModelTrainer(TEXT, small_config()).train(-1)


def test_sample_length_determinism_and_vocabulary():
    trainer = bptt.CharModelTrainer(TEXT, small_config())
    trainer.train(100)
    a = bptt.sample(trainer.params, trainer.vocab, length=50, rng=7)
    b = bptt.sample(trainer.params, trainer.vocab, length=50, rng=np.random.default_rng(7))
    c = bptt.sample(trainer.params, trainer.vocab, length=50, rng=8)
    assert a == b
    assert a != c
    assert len(a) == 50
    assert set(a) <= set(TEXT)
    assert bptt.sample(trainer.params, trainer.vocab, length=0, rng=0) == ""
    primed = bptt.sample(trainer.params, trainer.vocab, length=30, rng=0, prime="hello")
    assert len(primed) == 30


def test_low_temperature_samples_the_training_text():
    trainer = bptt.CharModelTrainer(TEXT, small_config())
    trainer.train(400)
    text = bptt.sample(
        trainer.params, trainer.vocab, length=24, rng=0, prime="hello", temperature=0.1
    )
    assert text == " world\nhello world\nhello"


def test_sample_errors():
    trainer = bptt.CharModelTrainer(TEXT, small_config())
    params, vocab = trainer.params, trainer.vocab
    with pytest.raises(ValueError, match="length must be an integer >= 0"):
        bptt.sample(params, vocab, length=-1, rng=0)
    with pytest.raises(TypeError, match="length must be an integer"):
        bptt.sample(params, vocab, length=2.5, rng=0)
    with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
        bptt.sample(params, vocab, length=5, rng=0, temperature=0.0)
    with pytest.raises(TypeError, match="rng must be a numpy Generator"):
        bptt.sample(params, vocab, length=5, rng=None)
    with pytest.raises(ValueError, match="but the vocabulary has 3"):
        bptt.sample(params, bptt.Vocabulary.from_text("abc"), length=5, rng=0)
    with pytest.raises(ValueError, match="characters outside the vocabulary"):
        bptt.sample(params, vocab, length=5, rng=0, prime="xyz")
    with pytest.raises(ValueError, match=r"h0 must have shape \(1, 16\)"):
        bptt.sample(params, vocab, length=5, rng=0, h0=np.zeros((2, 16)))
