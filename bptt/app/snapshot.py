"""Snapshots that never lose or leak: an ``.npz`` file of arrays plus JSON metadata (Appendix A1).

A snapshot is a single ``.npz`` archive. Its arrays (weights, optimiser state, the carried hidden
state) are stored as plain arrays, and the metadata (vocabulary, sizes, configuration, step, data
position, RNG state, package version) as UTF-8 JSON in one extra ``uint8`` array. So:

- **Nothing executes on load.** Files are read with ``allow_pickle=False``: a snapshot cannot run
  code, whoever wrote it.
- **Nothing is lost on a crash.** :func:`save_snapshot` writes to a temporary file in the target's
  directory and moves it into place with ``os.replace``, which is atomic: the old file is replaced
  by a complete new one or not at all. A temporary file left by a save that was killed is removed
  by the next save or load of the same path.
- **Damage is detected.** A SHA-256 of every array (name, dtype, shape, bytes) and of the metadata
  is stored inside the file and checked on load, so a truncated, corrupted or edited snapshot
  raises a :class:`SnapshotError` that says so, instead of silently loading wrong numbers.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bptt.app.data import Vocabulary
from bptt.cells import GRU, LSTM, TANH, Cell
from bptt.params import check_params

FORMAT = "bptt-snapshot"
"""The ``format`` field of every snapshot's metadata."""

FORMATS_READ = (FORMAT, "bptt-checkpoint")
"""Formats :func:`load_snapshot` accepts: also the name the same layout had before bptt 0.2."""

FORMAT_VERSION = 1
"""Bumped when the layout changes; a snapshot with another version is refused."""

_META_KEY = "__metadata__"

CELLS: dict[str, Cell] = {"tanh": TANH, "gru": GRU, "lstm": LSTM}
"""The recurrent cells a character model can have, by the name its snapshot records."""

DEFAULT_CELL = "tanh"
"""The cell of a snapshot that names none (all those written before bptt trained gated cells)."""


class SnapshotError(ValueError):
    """An unusable snapshot: truncated, corrupted, edited or incompatible (Appendix A1)."""


@dataclass
class Snapshot:
    """A loaded snapshot: its arrays by name and its metadata (a JSON-compatible dict).

    Explained in Appendix A1 (the command line).
    """

    arrays: dict[str, np.ndarray]
    metadata: dict[str, Any]
    path: Path


def _digest(arrays: Mapping[str, np.ndarray], metadata: Mapping[str, Any]) -> str:
    """SHA-256 over the metadata (as canonical JSON) and every array's name, dtype, shape, bytes."""
    h = hashlib.sha256()
    h.update(json.dumps(metadata, sort_keys=True).encode("utf-8"))
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _plain(value: Any, where: str) -> Any:
    """``value`` with numpy scalars made Python ones; a TypeError names what JSON cannot hold."""
    if isinstance(value, np.generic):  # np.int64(3), np.float32(0.5), np.bool_(True), ...
        value = value.item()
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, Mapping):
        for key in value:
            if not isinstance(key, str):
                raise TypeError(f"{where} keys must be strings, got {key!r}")
        return {key: _plain(v, f"{where}[{key!r}]") for key, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    raise TypeError(
        f"{where} must be a str, int, float, bool, None, list or dict (stored as JSON), "
        f"got {type(value).__name__}; convert it first (arrays: .tolist())"
    )


def _temporary_file(path: Path) -> tuple[int, str]:
    """Create the hidden file a save writes first: ``.NAME.PID.XXXXXXXX.tmp`` next to ``path``."""
    return tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0 only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists but belongs to another user
        return True
    return True


def remove_leftovers(path: str | os.PathLike[str]) -> list[Path]:
    """Delete the temporary files that killed saves of ``path`` left behind; returns them.

    Only files named like :func:`save_snapshot`'s temporaries for this very path, written by a
    process that no longer exists, are removed: a save in progress elsewhere is never touched.
    Explained in Appendix A1.
    """
    path = Path(path)
    if os.name != "posix":  # os.kill(pid, 0) tests for a process only on POSIX
        return []
    pattern = re.compile(rf"\.{re.escape(path.name)}\.(\d+)\.[a-z0-9_]{{8}}\.tmp")
    removed = []
    try:
        entries = list(path.parent.iterdir())
    except OSError:
        return []
    for entry in entries:
        match = pattern.fullmatch(entry.name)
        if match and not _process_exists(int(match.group(1))):
            try:
                entry.unlink()
            except OSError:
                continue
            removed.append(entry)
    return removed


def _file_mode() -> int:
    """Permissions of a new file under the current umask (``mkstemp`` alone gives 0600)."""
    umask = os.umask(0)  # reading the umask means setting it: put it back at once
    os.umask(umask)
    return 0o666 & ~umask


def _write_error(err: OSError, path: Path) -> OSError:
    """The same kind of OSError, naming the user's path instead of the hidden temporary file."""
    reason = err.strerror or str(err)
    return type(err)(
        f"cannot write snapshot {str(path)!r}: {reason}; any previous file there is unchanged"
    )


def check_writable(path: str | os.PathLike[str]) -> Path:
    """Raise an error naming ``path`` if a snapshot could not be saved there; returns the path.

    Catches before training what would otherwise fail at the first save, after the training it was
    meant to keep: a directory or device where the file should go, a folder that does not exist
    or cannot be written. It creates and deletes one temporary file. Explained in Appendix A1.
    """
    path = Path(path)
    if path.exists() and not path.is_file():
        kind = "a directory" if path.is_dir() else "not a regular file"
        raise IsADirectoryError(f"snapshot {str(path)!r} is {kind}; give a file name")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"snapshot directory {str(path.parent)!r} does not exist")
    try:
        fd, tmp = _temporary_file(path)
    except OSError as err:
        raise _write_error(err, path) from None
    os.close(fd)
    os.unlink(tmp)
    return path


def save_snapshot(
    path: str | os.PathLike[str], arrays: Mapping[str, np.ndarray], metadata: Mapping[str, Any]
) -> Path:
    """Write ``arrays`` and ``metadata`` to ``path`` atomically; returns the path.

    The file is first written in full to a temporary file next to ``path`` (same directory, so the
    same filesystem) and then renamed over ``path`` with ``os.replace``; an interrupted or failed
    save leaves the previous snapshot untouched, and the error names ``path``. The new file gets
    the permissions the umask allows. Explained in Appendix A1.

    Parameters
    ----------
    path : str or PathLike
        Target file; ``.npz`` is the convention. Its directory must exist.
    arrays : dict of str to ndarray
        Numeric arrays (no object arrays: they would need pickle).
    metadata : dict
        JSON-serialisable values (numpy scalars are converted to Python numbers). ``format``,
        ``format_version`` and ``sha256`` are added.
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"snapshot directory {str(path.parent)!r} does not exist")
    if path.exists() and not path.is_file():
        raise IsADirectoryError(f"snapshot {str(path)!r} exists and is not a regular file")
    clean: dict[str, np.ndarray] = {}
    for name, value in arrays.items():
        a = np.asarray(value)
        if a.dtype.hasobject or name == _META_KEY:
            raise TypeError(f"snapshot array {name!r} must be numeric, got dtype {a.dtype}")
        clean[name] = a
    meta = _plain({**metadata, "format": FORMAT, "format_version": FORMAT_VERSION}, "metadata")
    meta.pop("sha256", None)
    meta["sha256"] = _digest(clean, meta)
    meta_bytes = np.frombuffer(json.dumps(meta, sort_keys=True).encode("utf-8"), dtype=np.uint8)

    remove_leftovers(path)
    try:
        fd, tmp = _temporary_file(path)
    except OSError as err:
        raise _write_error(err, path) from None
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, _file_mode())
        with os.fdopen(fd, "wb") as f:
            entries: dict[str, Any] = {**clean, _META_KEY: meta_bytes}
            np.savez(f, **entries)
            f.flush()
            os.fsync(f.fileno())  # the bytes are on disk before the rename makes them visible
        os.replace(tmp, path)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError):
            raise _write_error(err, path) from err
        raise
    return path


def load_snapshot(path: str | os.PathLike[str]) -> Snapshot:
    """Read and verify a snapshot written by :func:`save_snapshot`.

    Explained in Appendix A1.

    Raises
    ------
    FileNotFoundError
        If there is no file at ``path``.
    SnapshotError
        If the file is not a complete ``.npz`` archive, has no or unreadable metadata, was written
        in another format version, or its SHA-256 does not match its contents (truncated,
        corrupted or edited).
    """
    path = Path(path)
    remove_leftovers(path)
    if not path.is_file():
        raise FileNotFoundError(f"snapshot {str(path)!r} does not exist or is not a file")
    if not zipfile.is_zipfile(path):  # np.load would try to unpickle it, and say so
        raise SnapshotError(
            f"{str(path)!r} is not a bptt snapshot: not a readable .npz archive (another kind "
            "of file, or a truncated one)"
        )
    try:
        # Open the file ourselves: np.load leaves its own handle open when the zip is damaged.
        with path.open("rb") as fh, np.load(fh, allow_pickle=False) as archive:
            contents = {name: archive[name] for name in archive.files}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as err:
        raise SnapshotError(
            f"snapshot {str(path)!r} is not a readable .npz archive (truncated or corrupted?): "
            f"{err}"
        ) from None
    raw = contents.pop(_META_KEY, None)
    if raw is None or raw.dtype != np.uint8:
        raise SnapshotError(f"{str(path)!r} is not a bptt snapshot: it has no metadata")
    try:
        meta = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise SnapshotError(f"snapshot {str(path)!r} has corrupted metadata: {err}") from None
    if not isinstance(meta, dict) or meta.get("format") not in FORMATS_READ:
        raise SnapshotError(f"{str(path)!r} is not a bptt snapshot (no 'format': {FORMAT!r})")
    if meta.get("format_version") != FORMAT_VERSION:
        raise SnapshotError(
            f"snapshot {str(path)!r} has format version {meta.get('format_version')!r}; "
            f"this version of bptt reads version {FORMAT_VERSION}"
        )
    stored = meta.pop("sha256", None)
    if stored != _digest(contents, meta):
        raise SnapshotError(
            f"snapshot {str(path)!r} failed its SHA-256 check: its contents were changed or "
            "damaged after it was written"
        )
    return Snapshot(arrays=contents, metadata=meta, path=path)


def cell_named(name: Any, argument: str = "cell") -> Cell:
    """The cell of :data:`CELLS` called ``name``; a ``ValueError`` naming ``argument`` otherwise.
    Explained in Appendix A1."""
    if not isinstance(name, str) or name not in CELLS:
        raise ValueError(f"{argument} must be one of {', '.join(map(repr, CELLS))}, got {name!r}")
    return CELLS[name]


def cell_name(metadata: Mapping[str, Any]) -> str:
    """The name of the cell a character-model snapshot's ``metadata`` records.

    Its training configuration says (``config["cell"]``); a snapshot written before bptt trained
    gated cells says nothing and holds a tanh RNN (:data:`DEFAULT_CELL`). Raises a
    :class:`SnapshotError` for a name that is not one of :data:`CELLS`. Explained in Appendix A1.
    """
    config = metadata.get("config")
    name = config.get("cell", DEFAULT_CELL) if isinstance(config, Mapping) else DEFAULT_CELL
    if not isinstance(name, str) or name not in CELLS:
        raise SnapshotError(
            f"snapshot records cell {name!r}; this version of bptt knows "
            f"{', '.join(map(repr, CELLS))}"
        )
    return name


def model_cell(metadata: Mapping[str, Any]) -> Cell:
    """The cell (``bptt.TANH``, ``bptt.GRU`` or ``bptt.LSTM``) of a character-model snapshot.

    What :func:`bptt.sample` and :func:`bptt.save_safetensors` need besides the parameters of
    :func:`load_model`: ``cell = model_cell(metadata)``. Explained in Appendix A1.
    """
    return CELLS[cell_name(metadata)]


def load_model(
    path: str | os.PathLike[str],
) -> tuple[dict[str, np.ndarray], Vocabulary, dict[str, Any]]:
    """The parameters, vocabulary and metadata of a character-model snapshot, for sampling.

    The parameters are those of the snapshot's cell, :func:`model_cell` of the metadata (a tanh
    RNN, a GRU or an LSTM). Raises ``FileNotFoundError`` or :class:`SnapshotError` as
    :func:`load_snapshot` does, and a :class:`SnapshotError` if the parameters do not fit the
    recorded cell and vocabulary. Explained in Appendix A1.
    """
    snap = load_snapshot(path)
    where = f"snapshot {str(snap.path)!r}"
    params = {k.removeprefix("params/"): v for k, v in snap.arrays.items() if k[:7] == "params/"}
    try:
        name = cell_name(snap.metadata)
    except SnapshotError as err:
        raise SnapshotError(f"{where}: {err}") from None
    try:
        vocab = Vocabulary(tuple(snap.metadata["vocab"]))
        D, _, V = check_params(params, CELLS[name])
    except (KeyError, TypeError, ValueError) as err:
        raise SnapshotError(
            f"{where} does not hold a usable model (the parameters of a {name} cell and a "
            f"vocabulary): {err}"
        ) from None
    if not D == V == vocab.size:
        raise SnapshotError(
            f"{where} has a model for {D} input and {V} output characters but a vocabulary of "
            f"{vocab.size}"
        )
    return params, vocab, snap.metadata
