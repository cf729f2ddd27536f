"""Shared by the command-line tests: a work folder with a text and a trained snapshot, ways to
run ``bptt`` (in-process, or as a user would in a subprocess), and a snapshot of a folder."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import shutil
import subprocess
import sys
import traceback
import warnings
from pathlib import Path

import numpy as np

import bptt
from bptt.app.cli import main
from bptt.app.snapshot import save_snapshot
from bptt.app.train import CharModelTrainer, TrainConfig

# Small and fast: the Zen of Python, 16 hidden units, 20-character chunks.
CONFIG = {"hidden_size": 16, "seq_length": 20}
SMALL = ["--hidden-size", "16", "--seq-length", "20", "--no-progress", "--sample-every", "0"]
TRAINED_STEPS = 30


def build_workspace(folder: Path) -> Path:
    """Fill ``folder`` with a training text, a snapshot trained on it, and awkward files."""
    folder.mkdir(parents=True, exist_ok=True)
    text = bptt.zen_of_python()
    (folder / "zen.txt").write_text(text, encoding="utf-8")
    trainer = CharModelTrainer(text, TrainConfig(**CONFIG))
    trainer.train(TRAINED_STEPS)
    trainer.save(folder / "model.npz")
    shutil.copy(folder / "model.npz", folder / "other_model.npz")
    shutil.copy(folder / "model.npz", folder / "taken.best.npz")  # a best model of another run
    (folder / "other.txt").write_text("Not the Zen of Python. " * 20, encoding="utf-8")
    (folder / "notes.txt").write_text("my notes, not a snapshot\n", encoding="utf-8")
    (folder / "empty.txt").write_bytes(b"")
    (folder / "short.txt").write_text("short\n", encoding="utf-8")
    (folder / "latin1.txt").write_bytes("Déjà vu, café au lait. ".encode("latin-1") * 5)
    (folder / "utf16.txt").write_bytes(text.encode("utf-16"))
    (folder / "binary.bin").write_bytes(np.random.default_rng(0).bytes(2000))
    (folder / "blocker").write_text("a file where a folder is expected\n")
    (folder / "folder").mkdir()
    (folder / "zen-link.txt").symlink_to("zen.txt")
    np.savez(folder / "plain.npz", a=np.zeros(3))
    np.save(folder / "array.npy", np.zeros(3))
    save_snapshot(folder / "other_kind.npz", {"a": np.zeros(2)}, {"kind": "something-else"})
    data = bytearray((folder / "model.npz").read_bytes())
    (folder / "truncated.npz").write_bytes(bytes(data[: len(data) // 2]))
    data[len(data) // 3] ^= 0xFF  # one flipped byte inside the stored arrays
    (folder / "damaged.npz").write_bytes(bytes(data))
    return folder


def snapshot(folder: Path) -> dict[str, str]:
    """Every entry under ``folder`` (files, folders, links) with a digest of what it holds."""
    entries = {}
    for path in sorted(folder.rglob("*")):
        name = str(path.relative_to(folder))
        if path.is_symlink():
            entries[name] = f"link -> {os.readlink(path)}"
        elif path.is_dir():
            entries[name] = "folder"
        else:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            entries[name] = f"{digest} mode {path.stat().st_mode:o}"
    return entries


def run_in_process(args: list[str], cwd: Path) -> tuple[int, str, str]:
    """``bptt ARGS`` through :func:`bptt.app.cli.main` in this process; warnings count as errors.

    Returns ``(exit status, stdout, stderr)``. An exception escaping ``main`` (what a user would
    see as a traceback) is turned into a status of -1 and a traceback text on stderr.
    """
    out, err = io.StringIO(), io.StringIO()
    previous = Path.cwd()
    os.chdir(cwd)
    try:
        with (
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(err),
            warnings.catch_warnings(),
        ):
            warnings.simplefilter("error")
            try:
                code = main(args)
            except SystemExit as stop:  # argparse exits for parse errors, --help and --version
                code = stop.code if isinstance(stop.code, int) else 1
            except BaseException:  # what a user would see as a traceback
                err.write(traceback.format_exc())
                code = -1
    finally:
        os.chdir(previous)
    return code, out.getvalue(), err.getvalue()


def run_subprocess(args: list[str], cwd: Path, timeout: float = 120) -> tuple[int, str, str]:
    """``python -m bptt ARGS`` as a user would run it, with Python warnings turned into errors."""
    env = {**os.environ, "PYTHONWARNINGS": "error"}
    result = subprocess.run(
        [sys.executable, "-m", "bptt", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
    return result.returncode, result.stdout, result.stderr
