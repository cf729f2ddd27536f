"""Snapshot files: round trip, atomic writes, and clear errors for damaged or foreign files."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import tempfile
import zipfile

import numpy as np
import pytest

import bptt
import bptt.app.snapshot
from bptt.app.snapshot import (
    SnapshotError,
    check_writable,
    load_model,
    load_snapshot,
    save_snapshot,
)
from bptt.app.train import CharModelTrainer, TrainConfig


def _arrays():
    rng = np.random.default_rng(0)
    return {"a": rng.normal(size=(3, 4)), "b": np.arange(5, dtype=np.int64)}


def test_round_trip_keeps_values_dtypes_and_metadata(tmp_path):
    arrays = {**_arrays(), "c": np.ones(2, dtype=np.float32)}
    meta = {"step": 7, "big": 2**100, "x": 0.1 + 0.2, "chars": ["é", "\n", "a"]}
    path = save_snapshot(tmp_path / "m.npz", arrays, meta)
    snap = load_snapshot(path)
    assert set(snap.arrays) == set(arrays)
    for k, a in arrays.items():
        assert snap.arrays[k].dtype == a.dtype
        np.testing.assert_array_equal(snap.arrays[k], a)
    for k, v in meta.items():
        assert snap.metadata[k] == v
    assert snap.metadata["format_version"] == bptt.app.snapshot.FORMAT_VERSION


def test_files_saved_under_the_formats_first_name_still_load(tmp_path, monkeypatch):
    """Snapshots written before the rename say "bptt-checkpoint": they still load, checked."""
    monkeypatch.setattr(bptt.app.snapshot, "FORMAT", "bptt-checkpoint")
    path = save_snapshot(tmp_path / "old.npz", _arrays(), {"step": 3})
    monkeypatch.undo()
    snap = load_snapshot(path)
    assert snap.metadata["format"] == "bptt-checkpoint" and snap.metadata["step"] == 3
    monkeypatch.setattr(bptt.app.snapshot, "FORMAT", "bptt-something-else")
    other = save_snapshot(tmp_path / "other.npz", _arrays(), {})
    monkeypatch.undo()
    with pytest.raises(SnapshotError, match="is not a bptt snapshot"):
        load_snapshot(other)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_snapshot(tmp_path / "nope.npz")


def test_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="directory"):
        save_snapshot(tmp_path / "no" / "m.npz", _arrays(), {})


def test_truncated_file(tmp_path):
    path = save_snapshot(tmp_path / "m.npz", _arrays(), {"step": 1})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(SnapshotError, match=r"not a readable \.npz"):
        load_snapshot(path)


def test_not_a_snapshot(tmp_path):
    path = tmp_path / "plain.npz"
    np.savez(path, a=np.zeros(3))
    with pytest.raises(SnapshotError, match="no metadata"):
        load_snapshot(path)
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(SnapshotError, match="not a readable"):
        load_snapshot(tmp_path / "text.npz")


def _rewrite(path, change):
    """Rewrite a snapshot's members through ``change(contents)``, keeping the stored hash."""
    with np.load(path, allow_pickle=False) as f:
        contents = {k: f[k] for k in f.files}
    change(contents)
    np.savez(path, **contents)


def test_tampered_array_fails_the_hash(tmp_path):
    path = save_snapshot(tmp_path / "m.npz", _arrays(), {"step": 1})

    def flip(c):
        c["a"] = c["a"].copy()
        c["a"][0, 0] += 1e-12

    _rewrite(path, flip)
    with pytest.raises(SnapshotError, match="SHA-256"):
        load_snapshot(path)


def test_tampered_metadata_fails_the_hash(tmp_path):
    path = save_snapshot(tmp_path / "m.npz", _arrays(), {"step": 1})

    def edit(c):
        meta = json.loads(c["__metadata__"].tobytes())
        meta["step"] = 2
        c["__metadata__"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)

    _rewrite(path, edit)
    with pytest.raises(SnapshotError, match="SHA-256"):
        load_snapshot(path)


def test_other_format_version_is_refused(tmp_path):
    path = save_snapshot(tmp_path / "m.npz", _arrays(), {})

    def edit(c):
        meta = json.loads(c["__metadata__"].tobytes())
        meta["format_version"] = 99
        c["__metadata__"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)

    _rewrite(path, edit)
    with pytest.raises(SnapshotError, match="format version 99"):
        load_snapshot(path)


def test_pickled_object_arrays_are_never_loaded(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, __metadata__=np.array([{"x": 1}], dtype=object))
    with pytest.raises(SnapshotError):
        load_snapshot(path)
    with pytest.raises(TypeError, match="numeric"):
        save_snapshot(tmp_path / "m.npz", {"o": np.array([None], dtype=object)}, {})


def test_failed_write_keeps_the_previous_snapshot(tmp_path, monkeypatch):
    path = save_snapshot(tmp_path / "m.npz", _arrays(), {"step": 1})
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="simulated"):
        save_snapshot(path, {"a": np.zeros(1)}, {"step": 2})
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz"]  # no temporary file left
    assert load_snapshot(path).metadata["step"] == 1


def test_the_file_is_a_plain_npz_zip(tmp_path):
    path = save_snapshot(tmp_path / "m.npz", _arrays(), {})
    with zipfile.ZipFile(path) as z:
        assert sorted(z.namelist()) == ["__metadata__.npy", "a.npy", "b.npy"]


def test_trainer_snapshot_and_load_model(tmp_path):
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


def test_trainer_refuses_a_snapshot_of_another_text(tmp_path):
    trainer = CharModelTrainer(bptt.zen_of_python(), TrainConfig(hidden_size=8, seq_length=10))
    path = trainer.save(tmp_path / "t.npz")
    with pytest.raises(SnapshotError, match="different text"):
        CharModelTrainer.load(path, bptt.pydoc_topics(5000))


def test_load_model_refuses_a_foreign_snapshot(tmp_path):
    path = save_snapshot(tmp_path / "m.npz", _arrays(), {"vocab": ["a"]})
    with pytest.raises(SnapshotError, match="usable model"):
        load_model(path)


def test_numpy_scalars_in_metadata_are_stored_as_python_numbers(tmp_path):
    meta = {
        "step": np.int64(7),
        "lr": np.float32(0.5),
        "done": np.bool_(True),
        "nested": {"sizes": [np.int32(3), np.uint8(4)], "name": np.str_("x")},
    }
    snap = load_snapshot(save_snapshot(tmp_path / "m.npz", _arrays(), meta))
    assert snap.metadata["step"] == 7 and type(snap.metadata["step"]) is int
    assert snap.metadata["lr"] == 0.5 and snap.metadata["done"] is True
    assert snap.metadata["nested"] == {"sizes": [3, 4], "name": "x"}


@pytest.mark.parametrize(
    ("meta", "where"),
    [
        ({"weights": np.zeros(3)}, r"metadata\['weights'\]"),
        ({"config": {"when": object()}}, r"metadata\['config'\]\['when'\]"),
        ({"sizes": [1, 2j]}, r"metadata\['sizes'\]\[1\]"),
        ({"ids": {1: "a"}}, r"metadata\['ids'\] keys must be strings"),
    ],
)
def test_metadata_that_json_cannot_hold_is_named(tmp_path, meta, where):
    with pytest.raises(TypeError, match=where):
        save_snapshot(tmp_path / "m.npz", _arrays(), meta)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_new_snapshots_respect_the_umask(tmp_path, umask, mode):
    previous = os.umask(umask)
    try:
        path = save_snapshot(tmp_path / "m.npz", _arrays(), {})
    finally:
        os.umask(previous)
    assert path.stat().st_mode & 0o777 == mode


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_leftovers_of_killed_saves_are_removed_on_the_next_save_and_load(tmp_path):
    path = save_snapshot(tmp_path / "m.npz", _arrays(), {"step": 1})
    dead = tmp_path / f".m.npz.{_dead_pid()}.abcd_123.tmp"
    alive = tmp_path / f".m.npz.{os.getpid()}.zzzzzzzz.tmp"  # a save in progress: keep it
    other = tmp_path / f".m.npz.1.npz.{_dead_pid()}.abcdefgh.tmp"  # another snapshot's
    unrelated = tmp_path / ".m.npz.notes.tmp"
    for leftover in (dead, alive, other, unrelated):
        leftover.write_bytes(b"half a snapshot")
    save_snapshot(path, _arrays(), {"step": 2})
    assert not dead.exists() and alive.exists() and other.exists() and unrelated.exists()
    dead.write_bytes(b"again")
    assert load_snapshot(path).metadata["step"] == 2
    assert not dead.exists()


def test_a_failed_write_names_the_snapshot_not_the_temporary_file(tmp_path, monkeypatch):
    path = save_snapshot(tmp_path / "m.npz", _arrays(), {"step": 1})
    before = path.read_bytes()

    def full_disk(file, *args, **kwargs):
        file.write(b"PK\x03\x04 partial")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(np, "savez", full_disk)
    with pytest.raises(OSError, match=r"cannot write snapshot .*m\.npz'.*No space left") as err:
        save_snapshot(path, _arrays(), {"step": 2})
    assert ".tmp" not in str(err.value)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz"]


def test_saving_onto_a_directory_or_device_is_refused(tmp_path):
    (tmp_path / "d.npz").mkdir()
    with pytest.raises(IsADirectoryError, match="not a regular file"):
        save_snapshot(tmp_path / "d.npz", _arrays(), {})
    with pytest.raises(IsADirectoryError, match="not a regular file"):
        save_snapshot("/dev/null", _arrays(), {})


def test_check_writable(tmp_path, monkeypatch):
    assert check_writable(tmp_path / "m.npz") == tmp_path / "m.npz"
    assert list(tmp_path.iterdir()) == []  # its probe file is gone
    with pytest.raises(IsADirectoryError, match="is a directory"):
        check_writable(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        check_writable(tmp_path / "no" / "m.npz")

    def refuse(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", "/x/.m.npz.1.tmp")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(PermissionError, match=r"cannot write snapshot .*m\.npz': Permission") as e:
        check_writable(tmp_path / "m.npz")
    assert ".tmp" not in str(e.value)


@pytest.mark.parametrize("content", [b"The Zen of Python\n", b"\x93NUMPY not really", b""])
def test_a_file_that_is_not_an_archive_is_not_a_snapshot(tmp_path, content):
    path = tmp_path / "x.npz"
    path.write_bytes(content)
    with pytest.raises(SnapshotError, match="is not a bptt snapshot") as err:
        load_snapshot(path)
    assert "pickle" not in str(err.value)
    np.save(tmp_path / "a.npy", np.zeros(3))
    with pytest.raises(SnapshotError, match="is not a bptt snapshot"):
        load_snapshot(tmp_path / "a.npy")
