"""The trainer and the command line with GRU and LSTM cells: training, snapshots, resume, sampling.

The tanh runs are covered by test_train*.py and test_cli*.py; here the same machinery runs the
gated cells (Chapter 10) of ``TrainConfig(cell=...)`` and ``bptt train --cell``.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from cli_helpers import SMALL, run_in_process, snapshot
from train_helpers import assert_same_training_state

import bptt
from bptt.app.snapshot import load_model, load_snapshot, model_cell, save_snapshot
from bptt.app.train import CharModelTrainer, TrainConfig

TEXT = bptt.zen_of_python()
GATED = ["gru", "lstm"]
COSINE = bptt.optim.CosineLR(total_steps=25)


def _stripped_of_cell(path, target):
    """A copy of the snapshot at ``path`` as bptt wrote it before it knew gated cells: no cell."""
    snap = load_snapshot(path)
    meta = dict(snap.metadata)
    meta["config"] = {k: v for k, v in meta["config"].items() if k != "cell"}
    return save_snapshot(target, snap.arrays, meta)


# -- training -------------------------------------------------------------------------------


@pytest.mark.parametrize("cell", GATED)
def test_a_gated_model_learns(cell):
    trainer = CharModelTrainer(TEXT, TrainConfig(hidden_size=24, seq_length=20, cell=cell))
    history = trainer.train(200)
    losses = np.array(history.losses)
    start, end = losses[:20].mean(), losses[-20:].mean()
    assert end < 0.8 * start  # it learns
    # ... and is still learning, not climbing back: the trend of the last 80 steps is not upward.
    slope = np.polyfit(np.arange(80), losses[-80:], 1)[0]
    assert slope <= 0
    assert trainer.next_loss() < trainer.initial_loss


@pytest.mark.parametrize("cell", GATED)
def test_the_trainer_runs_the_cell_it_is_given(cell):
    """Parameters, carried state (B, S) and gradients are those of the gated cell."""
    config = TrainConfig(hidden_size=8, seq_length=10, batch_size=3, cell=cell)
    trainer = CharModelTrainer(TEXT, config)
    the_cell = {"gru": bptt.GRU, "lstm": bptt.LSTM}[cell]
    assert trainer.cell is the_cell
    assert set(trainer.params) == {*the_cell.param_names, "W_hy", "b_y"}
    S = bptt.cells.state_size(the_cell, 8)
    assert trainer.h.shape == (3, S)
    assert S == 2 * 8 if cell == "lstm" else S == 8
    # One step is one full-BPTT update of the fast path for this cell, from the carried state.
    params = {k: v.copy() for k, v in trainer.params.items()}
    chunk = trainer._chunk(0)
    loss, grads, h = bptt.loss_and_grads(params, chunk[:-1], chunk[1:], trainer.h, cell=the_cell)
    assert trainer.train_step() == loss
    np.testing.assert_array_equal(trainer.h, h)
    expected = bptt.make_optimizer("adagrad", 0.1)
    expected.step(params, bptt.clip_by_value(grads, 5.0))
    for k in params:
        np.testing.assert_array_equal(trainer.params[k], params[k])


@pytest.mark.parametrize("cell", GATED)
def test_truncated_training_of_a_gated_cell(cell):
    config = TrainConfig(hidden_size=8, seq_length=12, k1=4, k2=8, cell=cell)
    trainer = CharModelTrainer(TEXT, config)
    trainer.train(3)
    assert trainer.optimizer.steps == 9  # three updates per chunk of twelve characters
    assert trainer.h.shape == (1, bptt.cells.state_size(trainer.cell, 8))


@pytest.mark.parametrize("cell", GATED)
def test_validation_and_next_loss_of_a_gated_model(cell):
    config = TrainConfig(hidden_size=12, seq_length=10, val_fraction=0.2, val_every=20, cell=cell)
    trainer = CharModelTrainer(TEXT, config)
    uniform = np.log(trainer.vocab.size)
    assert trainer.validation_loss() == pytest.approx(uniform, rel=0.01)  # untrained
    history = trainer.train(60)
    assert history.val_steps == [20, 40, 60]
    assert all(np.isfinite(history.val_losses)) and trainer.validation_loss() < uniform
    # The held-out loss is the model's: one stream of the held-out text from a zero state.
    ids = trainer.val_data
    outputs, _, _ = bptt.forward_stepwise(trainer.params, ids[:-1, None], cell=trainer.cell)
    expected, _ = bptt.softmax_cross_entropy(outputs, ids[1:, None])
    assert trainer.validation_loss() == pytest.approx(expected / (ids.size - 1), rel=1e-12)
    # next_loss is the loss of the chunk the next step trains on, and changes nothing.
    before = trainer.h.copy()
    start, h = trainer._upcoming()
    chunk = trainer._chunk(start)
    loss = bptt.loss_and_grads(trainer.params, chunk[:-1], chunk[1:], h, cell=trainer.cell)[0]
    assert trainer.next_loss() == pytest.approx(loss, rel=1e-12)
    np.testing.assert_array_equal(trainer.h, before)


def test_an_unknown_cell_is_refused():
    with pytest.raises(ValueError, match=r"cell must be one of 'tanh', 'gru', 'lstm', got 'rnn'"):
        CharModelTrainer(TEXT, TrainConfig(cell="rnn"))
    with pytest.raises(ValueError, match=r"cell must be one of .*, got None"):
        TrainConfig(cell=None).validate()  # type: ignore[arg-type]


@pytest.mark.parametrize("cell", ["tanh", *GATED])
@pytest.mark.parametrize(
    "options",
    [
        {"hidden_size": 32, "seq_length": 50, "batch_size": 16},  # mostly a step's activations
        {"hidden_size": 64, "seq_length": 20, "val_fraction": 0.9},  # mostly validation's
    ],
    ids=["batch", "validation"],
)
def test_the_memory_estimate_bounds_what_a_gated_model_uses(tmp_path, cell, options):
    """Measured with tracemalloc: building, steps, validation, next_loss, save. The settings are
    ones where a gated cell needs more than the tanh cell's count of activations."""

    def run(config: TrainConfig) -> CharModelTrainer:
        trainer = CharModelTrainer(TEXT, config)
        for _ in range(2):
            trainer.train_step()
        if config.val_fraction:
            trainer.validate()
        trainer.next_loss()
        trainer.save(tmp_path / "m.npz")
        return trainer

    # Once untraced and tiny first, so that what Python loads on first use is not counted.
    run(TrainConfig(hidden_size=2, seq_length=5, cell=cell, val_fraction=0.1))
    config = TrainConfig(optimizer="adam", cell=cell, **options)
    tracemalloc.start()
    try:
        trainer = run(config)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < config.memory_bytes(trainer.vocab.size)


# -- snapshots and resume ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "options"),
    [
        ("gru", {}),
        ("lstm", {}),
        ("lstm", {"k1": 3, "k2": 7}),
        ("gru", {"batch_size": 3, "val_fraction": 0.1, "val_every": 4, "optimizer": "adam"}),
        ("lstm", {"batch_size": 2, "dtype": "float32", "lr_schedule": COSINE}),
    ],
    ids=["gru", "lstm", "lstm-tbptt", "gru-batch-validation", "lstm-batch-float32-cosine"],
)
def test_a_gated_run_resumes_bit_for_bit(tmp_path, cell, options):
    config = {"hidden_size": 10, "seq_length": 10, "cell": cell, **options}
    straight = CharModelTrainer(TEXT, TrainConfig(**config))
    straight.train(25)  # wraps around the text at least once: the state resets too

    first = CharModelTrainer(TEXT, TrainConfig(**config))
    first.train(11)
    path = first.save(tmp_path / "snap.npz")
    meta = load_snapshot(path).metadata
    assert meta["config"]["cell"] == cell and meta["kind"] == f"char-rnn/{cell}"
    resumed = CharModelTrainer.load(path, TEXT)
    assert resumed.cell is first.cell and resumed.config == first.config
    assert_same_training_state(first, resumed)
    resumed.train(14)
    assert_same_training_state(straight, resumed)


@pytest.mark.parametrize("cell", GATED)
def test_load_model_gives_the_gated_parameters_and_cell(tmp_path, cell):
    trainer = CharModelTrainer(TEXT, TrainConfig(hidden_size=8, seq_length=10, cell=cell))
    trainer.train(3)
    params, vocab, meta = load_model(trainer.save(tmp_path / "m.npz"))
    assert model_cell(meta) is trainer.cell and vocab == trainer.vocab
    for k in trainer.params:
        np.testing.assert_array_equal(params[k], trainer.params[k])
    # Exported for PyTorch with its cell, and read back the same.
    bptt.save_safetensors(tmp_path / "m.safetensors", params, model_cell(meta))
    again, again_cell = bptt.load_safetensors(tmp_path / "m.safetensors")
    assert again_cell is trainer.cell
    for k in params:
        np.testing.assert_array_equal(again[k], params[k])


def test_an_old_snapshot_without_a_cell_loads_as_tanh(tmp_path):
    trainer = CharModelTrainer(TEXT, TrainConfig(hidden_size=8, seq_length=10))
    trainer.train(5)
    old = _stripped_of_cell(trainer.save(tmp_path / "new.npz"), tmp_path / "old.npz")
    meta = load_snapshot(old).metadata
    assert "cell" not in meta["config"] and meta["kind"] == "char-rnn/tanh"
    resumed = CharModelTrainer.load(old, TEXT)
    assert resumed.cell is bptt.TANH and resumed.config.cell == "tanh"
    assert_same_training_state(trainer, resumed)
    assert model_cell(load_model(old)[2]) is bptt.TANH
    trainer.train(5)
    resumed.train(5)
    assert_same_training_state(trainer, resumed)
    # The command line resumes and samples it too.
    (tmp_path / "zen.txt").write_text(TEXT, encoding="utf-8")
    code, out, err = run_in_process(["sample", "old.npz", "--length", "20"], tmp_path)
    assert code == 0 and err == "" and len(out) == 21
    args = ["train", "zen.txt", "--resume", "old.npz", "--steps", "12", "--no-progress"]
    code, out, err = run_in_process([*args, "--sample-every", "0"], tmp_path)
    assert code == 0 and "resuming at step 5" in out and "tanh cell" in out, err


def test_a_snapshot_whose_kind_and_cell_disagree_is_refused(tmp_path):
    trainer = CharModelTrainer(TEXT, TrainConfig(hidden_size=8, seq_length=10, cell="lstm"))
    snap = load_snapshot(trainer.save(tmp_path / "m.npz"))
    meta = {**snap.metadata, "kind": "char-rnn/gru"}
    save_snapshot(tmp_path / "bad.npz", snap.arrays, meta)
    with pytest.raises(bptt.SnapshotError, match="'char-rnn/gru' is not that of its cell 'lstm'"):
        CharModelTrainer.load(tmp_path / "bad.npz", TEXT)
    meta = {**snap.metadata, "config": {**snap.metadata["config"], "cell": "rnn"}}
    save_snapshot(tmp_path / "unknown.npz", snap.arrays, meta)
    with pytest.raises(bptt.SnapshotError, match="records cell 'rnn'"):
        CharModelTrainer.load(tmp_path / "unknown.npz", TEXT)
    with pytest.raises(bptt.SnapshotError, match=r"unknown\.npz.*records cell 'rnn'"):
        load_model(tmp_path / "unknown.npz")


# -- the command line -------------------------------------------------------------------------


@pytest.fixture
def lstm_run(tmp_path):
    """A folder with the Zen of Python and an LSTM trained on it from the command line."""
    (tmp_path / "zen.txt").write_text(TEXT, encoding="utf-8")
    args = ["train", "zen.txt", *SMALL, "--cell", "lstm", "--steps", "30", "--snapshot", "m.npz"]
    code, out, err = run_in_process(args, tmp_path)
    assert code == 0, err
    assert out.startswith("training on 'zen.txt'") and "lstm cell, H=16" in out
    return tmp_path


def test_train_cell_lstm_saves_an_lstm(lstm_run):
    trainer = CharModelTrainer.load(lstm_run / "m.npz", TEXT)
    assert trainer.cell is bptt.LSTM and trainer.step_count == 30
    assert trainer.h.shape == (1, 32)  # [h | c]


def test_sample_from_an_lstm_snapshot(lstm_run):
    args = ["sample", "m.npz", "--prime", "Beautiful", "--length", "50", "--seed", "3"]
    code, out, err = run_in_process(args, lstm_run)
    assert code == 0 and err == ""
    params, vocab, _ = load_model(lstm_run / "m.npz")
    expected = bptt.sample(
        params, vocab, length=50, rng=np.random.default_rng(3), prime="Beautiful", cell=bptt.LSTM
    )
    assert out == "Beautiful" + expected + "\n"


def test_samples_during_gated_training(tmp_path):
    (tmp_path / "zen.txt").write_text(TEXT, encoding="utf-8")
    args = ["train", "zen.txt", *SMALL[:-2], "--cell", "gru", "--steps", "10"]
    args += ["--sample-every", "5", "--sample-length", "30"]
    code, out, err = run_in_process(args, tmp_path)
    assert code == 0, err
    assert out.count("--- sample at step") == 2


def test_resume_an_lstm_run_from_the_command_line_bit_for_bit(lstm_run):
    more = ["--steps", "60", "--sample-every", "0", "--no-progress"]
    code, out, err = run_in_process(["train", "zen.txt", "--resume", "m.npz", *more], lstm_run)
    assert code == 0 and "resuming at step 30" in out, err
    args = ["train", "zen.txt", *SMALL, "--cell", "lstm", "--steps", "60", "--snapshot", "s.npz"]
    code, _, err = run_in_process(args, lstm_run)
    assert code == 0, err
    resumed, straight = load_model(lstm_run / "m.npz")[0], load_model(lstm_run / "s.npz")[0]
    for k in straight:
        np.testing.assert_array_equal(resumed[k], straight[k])


@pytest.mark.parametrize("other", ["gru", "tanh"])
def test_resuming_with_another_cell_fails_and_changes_nothing(lstm_run, other):
    before = snapshot(lstm_run)
    args = ["train", "zen.txt", "--resume", "m.npz", "--cell", other, "--steps", "60"]
    code, out, err = run_in_process(args, lstm_run)
    assert code == 2 and out == ""
    assert f"cell={other!r} (snapshot: 'lstm')" in err and len(err.splitlines()) == 1
    assert snapshot(lstm_run) == before
    # The snapshot's own cell is no change, and resumes.
    args = ["train", "zen.txt", "--resume", "m.npz", "--cell", "lstm", "--steps", "31"]
    code, _, err = run_in_process([*args, "--no-progress", "--sample-every", "0"], lstm_run)
    assert code == 0, err


def test_the_help_shows_the_cell_option():
    code, out, _ = run_in_process(["train", "--help"], ".")
    assert code == 0 and "--cell {tanh,gru,lstm}" in out and "(tanh)" in out


def test_a_bogus_cell_is_refused_by_the_parser(tmp_path):
    code, out, err = run_in_process(["train", "--cell", "bogus", "--steps", "1"], tmp_path)
    assert code == 2 and out == "" and list(tmp_path.iterdir()) == []
    assert "argument --cell: invalid choice: 'bogus'" in err and "'lstm'" in err
