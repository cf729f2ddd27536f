"""Checkpoint files: round trip, atomic writes, and clear errors for damaged or foreign files."""

from __future__ import annotations

import json
import os
import zipfile

import numpy as np
import pytest

import bptt
from bptt.checkpoint import CheckpointError, load_checkpoint, load_model, save_checkpoint
from bptt.train import CharModelTrainer, TrainConfig


def _arrays():
    rng = np.random.default_rng(0)
    return {"a": rng.normal(size=(3, 4)), "b": np.arange(5, dtype=np.int64)}


def test_round_trip_keeps_values_dtypes_and_metadata(tmp_path):
    arrays = {**_arrays(), "c": np.ones(2, dtype=np.float32)}
    meta = {"step": 7, "big": 2**100, "x": 0.1 + 0.2, "chars": ["é", "\n", "a"]}
    path = save_checkpoint(tmp_path / "m.npz", arrays, meta)
    ckpt = load_checkpoint(path)
    assert set(ckpt.arrays) == set(arrays)
    for k, a in arrays.items():
        assert ckpt.arrays[k].dtype == a.dtype
        np.testing.assert_array_equal(ckpt.arrays[k], a)
    for k, v in meta.items():
        assert ckpt.metadata[k] == v
    assert ckpt.metadata["format_version"] == bptt.checkpoint.FORMAT_VERSION


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.npz")


def test_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="directory"):
        save_checkpoint(tmp_path / "no" / "m.npz", _arrays(), {})


def test_truncated_file(tmp_path):
    path = save_checkpoint(tmp_path / "m.npz", _arrays(), {"step": 1})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"not a readable \.npz"):
        load_checkpoint(path)


def test_not_a_checkpoint(tmp_path):
    path = tmp_path / "plain.npz"
    np.savez(path, a=np.zeros(3))
    with pytest.raises(CheckpointError, match="no metadata"):
        load_checkpoint(path)
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(CheckpointError, match="not a readable"):
        load_checkpoint(tmp_path / "text.npz")


def _rewrite(path, change):
    """Rewrite a checkpoint's members through ``change(contents)``, keeping the stored hash."""
    with np.load(path, allow_pickle=False) as f:
        contents = {k: f[k] for k in f.files}
    change(contents)
    np.savez(path, **contents)


def test_tampered_array_fails_the_hash(tmp_path):
    path = save_checkpoint(tmp_path / "m.npz", _arrays(), {"step": 1})

    def flip(c):
        c["a"] = c["a"].copy()
        c["a"][0, 0] += 1e-12

    _rewrite(path, flip)
    with pytest.raises(CheckpointError, match="SHA-256"):
        load_checkpoint(path)


def test_tampered_metadata_fails_the_hash(tmp_path):
    path = save_checkpoint(tmp_path / "m.npz", _arrays(), {"step": 1})

    def edit(c):
        meta = json.loads(c["__metadata__"].tobytes())
        meta["step"] = 2
        c["__metadata__"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)

    _rewrite(path, edit)
    with pytest.raises(CheckpointError, match="SHA-256"):
        load_checkpoint(path)


def test_other_format_version_is_refused(tmp_path):
    path = save_checkpoint(tmp_path / "m.npz", _arrays(), {})

    def edit(c):
        meta = json.loads(c["__metadata__"].tobytes())
        meta["format_version"] = 99
        c["__metadata__"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)

    _rewrite(path, edit)
    with pytest.raises(CheckpointError, match="format version 99"):
        load_checkpoint(path)


def test_pickled_object_arrays_are_never_loaded(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, __metadata__=np.array([{"x": 1}], dtype=object))
    with pytest.raises(CheckpointError):
        load_checkpoint(path)
    with pytest.raises(TypeError, match="numeric"):
        save_checkpoint(tmp_path / "m.npz", {"o": np.array([None], dtype=object)}, {})


def test_failed_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = save_checkpoint(tmp_path / "m.npz", _arrays(), {"step": 1})
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="simulated"):
        save_checkpoint(path, {"a": np.zeros(1)}, {"step": 2})
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz"]  # no temporary file left
    assert load_checkpoint(path).metadata["step"] == 1


def test_the_file_is_a_plain_npz_zip(tmp_path):
    path = save_checkpoint(tmp_path / "m.npz", _arrays(), {})
    with zipfile.ZipFile(path) as z:
        assert sorted(z.namelist()) == ["__metadata__.npy", "a.npy", "b.npy"]


def test_trainer_checkpoint_and_load_model(tmp_path):
    text = bptt.zen_of_python()
    trainer = CharModelTrainer(text, TrainConfig(hidden_size=8, seq_length=10))
    trainer.train(3)
    path = trainer.save(tmp_path / "t.npz")
    params, vocab, meta = load_model(path)
    assert vocab == trainer.vocab
    assert meta["step"] == 3 and meta["config"]["hidden_size"] == 8
    assert meta["bptt_version"] == bptt.__version__
    for k in trainer.params:
        np.testing.assert_array_equal(params[k], trainer.params[k])


def test_trainer_refuses_a_checkpoint_of_another_text(tmp_path):
    trainer = CharModelTrainer(bptt.zen_of_python(), TrainConfig(hidden_size=8, seq_length=10))
    path = trainer.save(tmp_path / "t.npz")
    with pytest.raises(CheckpointError, match="different text"):
        CharModelTrainer.load(path, bptt.pydoc_topics(5000))


def test_load_model_refuses_a_foreign_checkpoint(tmp_path):
    path = save_checkpoint(tmp_path / "m.npz", _arrays(), {"vocab": ["a"]})
    with pytest.raises(CheckpointError, match="usable model"):
        load_model(path)
