"""The trainer with mini-batches of contiguous streams, a held-out validation text, early
stopping and the recent mean loss (bptt/app/train.py; Appendix A1)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from train_helpers import assert_same_training_state

import bptt
from bptt.app.snapshot import load_snapshot, save_snapshot
from bptt.app.train import (
    RECENT_STEPS,
    VALIDATION_CHUNK,
    CharModelTrainer,
    TrainConfig,
    split_text,
)

TEXT = bptt.zen_of_python()  # 856 characters
SMALL = {"hidden_size": 12, "seq_length": 10}


def config(**changes):
    return TrainConfig(**{**SMALL, **changes})


def test_batch_size_1_is_the_classic_loop():
    """B = 1 is min-char-rnn's loop: chunk after chunk of the text, the state carried."""
    trainer = CharModelTrainer(TEXT, config(batch_size=1))
    params = {k: v.copy() for k, v in trainer.params.items()}
    opt, h, T = bptt.Adagrad(0.1), np.zeros((1, 12)), 10
    for step in range(12):
        p = step * T
        loss, grads, h = bptt.loss_and_grads(params, trainer.data[p : p + T, None],
                                             trainer.data[p + 1 : p + T + 1, None], h)  # fmt: skip
        opt.step(params, bptt.clip_by_value(grads, 5.0))
        assert trainer.train_step() == loss
    for k in params:
        np.testing.assert_array_equal(trainer.params[k], params[k])


def test_streams_are_contiguous_pieces_each_with_its_own_state():
    B, T = 4, 10
    trainer = CharModelTrainer(TEXT, config(batch_size=B))
    L = len(TEXT) // B
    assert trainer.split.stream_length == L and trainer.h.shape == (B, 12)
    assert trainer.steps_per_epoch == (L - 1) // T
    params = {k: v.copy() for k, v in trainer.params.items()}
    inputs, targets = trainer.next_chunk()
    assert inputs.shape == targets.shape == (T, B)
    for b in range(B):
        np.testing.assert_array_equal(inputs[:, b], trainer.data[b * L : b * L + T])
        np.testing.assert_array_equal(targets[:, b], trainer.data[b * L + 1 : b * L + T + 1])
    trainer = CharModelTrainer(TEXT, config(batch_size=B))
    loss = trainer.train_step()
    # The loss is the mean over the streams of each stream's chunk loss; the state of stream b
    # is that of stream b run alone.
    alone = [
        bptt.loss_and_grads(params, inputs[:, b : b + 1], targets[:, b : b + 1]) for b in range(B)
    ]
    assert loss == pytest.approx(np.mean([a[0] for a in alone]), rel=1e-13)
    for b in range(B):
        np.testing.assert_allclose(trainer.h[b], alone[b][2][0], rtol=0, atol=1e-14)
    grads = bptt.loss_and_grads(params, inputs, targets)[1]
    for k in grads:  # the batch gradient is the mean of the streams' gradients
        mean = np.mean([a[1][k] for a in alone], axis=0)
        assert bptt.relative_error(grads[k], mean) < 1e-12


def test_every_stream_wraps_around_together_and_restarts_from_zero():
    trainer = CharModelTrainer(TEXT, config(batch_size=8))  # streams of 107: 10 chunks each
    trainer.train(trainer.steps_per_epoch)
    assert np.all(trainer.h != 0)
    inputs, _ = trainer.next_chunk()
    np.testing.assert_array_equal(trainer.h, 0)
    np.testing.assert_array_equal(inputs[:, 1], trainer.data[107:117])


def test_tbptt_with_batches():
    trainer = CharModelTrainer(TEXT, config(batch_size=4, k1=5, k2=10))
    trainer.train(3)
    assert trainer.optimizer.steps == 6 and trainer.h.shape == (4, 12)
    full = CharModelTrainer(TEXT, config(batch_size=4))
    same = CharModelTrainer(TEXT, config(batch_size=4, k1=10, k2=10))
    full.train(3)
    same.train(3)
    assert_same_training_state(full, same)  # k1 = k2 = seq_length: the vectorised full-BPTT step


@pytest.mark.parametrize(
    "options",
    [
        {"batch_size": 4},
        {"batch_size": 3, "k1": 3, "k2": 7, "optimizer": "adam", "learning_rate": 0.01},
        {"batch_size": 2, "val_fraction": 0.2, "val_every": 5, "patience": 50, "dtype": "float32"},
    ],
    ids=["batch", "batch-tbptt-adam", "batch-validation-float32"],
)
def test_resume_with_batches_is_bit_for_bit(tmp_path, options):
    straight = CharModelTrainer(TEXT, config(**options))
    straight.train(60)  # wraps around several times
    first = CharModelTrainer(TEXT, config(**options))
    first.train(23)
    resumed = CharModelTrainer.load(first.save(tmp_path / "s.npz"), TEXT)
    assert_same_training_state(first, resumed)
    resumed.train(37)
    assert_same_training_state(straight, resumed)
    assert load_snapshot(tmp_path / "s.npz").arrays["h"].shape == (options["batch_size"], 12)


def test_a_batch_too_large_for_the_text_is_refused_with_the_largest_that_fits():
    with pytest.raises(
        ValueError, match=r"batch_size=100 .* streams of 8, .* at most batch_size=77"
    ):
        CharModelTrainer(TEXT, config(batch_size=100))
    CharModelTrainer(TEXT, config(batch_size=77))
    with pytest.raises(
        ValueError,
        match=r"771 training characters \(85 held out by val_fraction=0\.1\).* batch_size=70 fits",
    ):
        CharModelTrainer(TEXT, config(batch_size=77, val_fraction=0.1))


def test_the_held_out_text_is_the_tail_and_is_never_trained_on():
    trainer = CharModelTrainer(TEXT, config(batch_size=3, val_fraction=0.1))
    split = trainer.split
    assert (split.n_val, split.n_train) == (85, 771)
    assert trainer.vocab.decode(trainer.val_data) == TEXT[-85:]
    assert trainer.streams.base is not None and trainer.streams.size <= split.n_train
    seen = np.zeros(len(TEXT), dtype=bool)
    for _ in range(3 * trainer.steps_per_epoch):  # every index any chunk reads
        start, _h = trainer._upcoming()
        for b in range(3):
            offset = b * split.stream_length + start
            seen[offset : offset + 11] = True
        trainer.next_chunk()
    assert not seen[split.n_train :].any()


def test_validation_loss_is_the_carried_state_loss_over_the_whole_tail():
    # A held-out text longer than one validation chunk, to cross a chunk boundary.
    text = bptt.pydoc_topics(max_chars=30_000)
    trainer = CharModelTrainer(text, config(val_fraction=0.1))
    assert trainer.val_data.size > VALIDATION_CHUNK
    trainer.train(30)
    ids = trainer.val_data
    outputs, _ = bptt.rnn_forward(trainer.params, ids[:-1, None])  # in one call
    expected, _ = bptt.softmax_cross_entropy(outputs, ids[1:, None])
    before = (trainer.position, trainer.h.copy(), trainer.rng.bit_generator.state)
    params = {k: v.copy() for k, v in trainer.params.items()}
    loss = trainer.validation_loss()
    assert loss == pytest.approx(expected / (ids.size - 1), rel=1e-12)
    check = trainer.validate()
    assert check.bits_per_char == pytest.approx(check.loss / math.log(2))
    assert (trainer.position, trainer.rng.bit_generator.state) == (before[0], before[2])
    np.testing.assert_array_equal(trainer.h, before[1])
    for k in params:
        np.testing.assert_array_equal(trainer.params[k], params[k])


def test_validating_does_not_change_training():
    """Validation every 3 steps or never: the same parameters (the RNG stream is untouched)."""
    often = CharModelTrainer(TEXT, config(batch_size=2, val_fraction=0.1, val_every=3))
    never = CharModelTrainer(TEXT, config(batch_size=2, val_fraction=0.1, val_every=10**6))
    history = often.train(30)
    assert history.val_steps == list(range(3, 31, 3)) and never.train(30).val_steps == []
    for k in often.params:
        np.testing.assert_array_equal(often.params[k], never.params[k])
    assert often.rng.bit_generator.state == never.rng.bit_generator.state


def test_early_stopping_on_a_small_run():
    """The Zen's last lines are unlike the rest: the held-out loss soon rises (memorisation)."""
    options = {"batch_size": 4, "val_fraction": 0.1, "val_every": 25, "patience": 3}
    trainer = CharModelTrainer(TEXT, config(hidden_size=48, seq_length=20, **options))
    history = trainer.train(5000)
    assert history.stopped_early and trainer.stopped_early
    assert trainer.step_count < 5000 and trainer.step_count == history.val_steps[-1]
    best = int(np.argmin(history.val_losses))
    assert trainer.best_step == history.val_steps[best]
    assert trainer.best_val_loss == min(history.val_losses)
    assert len(history.val_steps) - 1 - best == 3  # exactly `patience` checks after the best
    assert trainer.train(100).steps == []  # stopped: nothing more is trained
    assert history.val_losses[best] < math.log(trainer.vocab.size)  # better than guessing


def test_a_diverged_validation_is_never_the_best():
    trainer = CharModelTrainer(TEXT, config(val_fraction=0.1))
    trainer.params["W_hy"] *= 1e6
    check = trainer.validate()
    assert not check.improved and trainer.best_val_loss is None and trainer.checks_since_best == 1


def test_recent_loss_is_the_mean_of_the_last_steps_per_character():
    trainer = CharModelTrainer(TEXT, config(batch_size=2))
    assert trainer.recent_loss is None
    history = trainer.train(RECENT_STEPS + 30)
    assert history.recent[0] == history.losses[0] / 10
    expected = sum(history.losses[-RECENT_STEPS:]) / RECENT_STEPS / 10
    assert trainer.recent_loss == expected == history.recent[-1]
    assert history.smoothed[-1] == trainer.smoothed_loss  # kept for Chapter 4's readers


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"batch_size": 0}, ValueError, "batch_size must be an integer >= 1"),
        ({"val_fraction": 1.0}, ValueError, r"val_fraction must be in \[0, 1\)"),
        ({"val_fraction": -0.1}, ValueError, "val_fraction"),
        ({"val_fraction": float("nan")}, ValueError, "val_fraction"),
        ({"val_fraction": "0.1"}, TypeError, "val_fraction must be a number"),
        ({"val_fraction": 0.001}, ValueError, "holds 0 character"),
        ({"val_every": 0}, ValueError, "val_every"),
        ({"patience": 3}, ValueError, "patience=3 needs val_fraction > 0"),
        ({"patience": 0, "val_fraction": 0.1}, ValueError, "patience must be an integer >= 1"),
        ({"patience": -2, "val_fraction": 0.1}, ValueError, "patience"),
    ],
)
def test_bad_settings_are_refused(options, error, match):
    with pytest.raises(error, match=match):
        CharModelTrainer(TEXT, config(**options))


def test_without_a_held_out_text_validation_says_so():
    with pytest.raises(ValueError, match="no held-out text"):
        CharModelTrainer(TEXT, config()).validation_loss()


def test_split_names_the_settings_as_the_caller_spells_them():
    with pytest.raises(ValueError, match="--batch-size 100 cuts"):
        split_text(856, config(batch_size=100), name=lambda f, v: f"--{f.replace('_', '-')} {v}")


def test_a_snapshot_written_before_batches_and_validation_still_loads(tmp_path):
    old = CharModelTrainer(TEXT, config())
    old.train(7)
    arrays, meta = old.state()
    for key in ("recent_losses", "validation", "stream_length"):
        del meta[key]
    for key in ("batch_size", "val_fraction", "val_every", "patience", "lr_schedule"):
        del meta["config"][key]
    save_snapshot(tmp_path / "old.npz", arrays, meta)
    resumed = CharModelTrainer.load(tmp_path / "old.npz", TEXT)
    assert resumed.config == config() and resumed.recent_loss is None
    resumed.train(5)
    old.train(5)
    for k in old.params:
        np.testing.assert_array_equal(resumed.params[k], old.params[k])


def test_the_memory_estimate_grows_with_the_batch():
    one, many = config(batch_size=1), config(batch_size=64)
    assert many.memory_bytes(45) > one.memory_bytes(45)
    assert config(val_fraction=0.1).memory_bytes(45) > one.memory_bytes(45)
