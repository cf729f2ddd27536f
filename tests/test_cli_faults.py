"""Faults a long training run meets: kill -9 at any moment (also in the middle of a save), a disk
that fills up, SIGTERM, and a reader that goes away (``| head``). None of them may lose or corrupt
the snapshot, and every snapshot left behind resumes bit for bit (Appendix A1)."""

from __future__ import annotations

import contextlib
import errno
import io
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import CONFIG, SMALL, run_in_process

import bptt
from bptt.app.snapshot import load_snapshot
from bptt.app.train import CharModelTrainer, TrainConfig

TEXT = bptt.zen_of_python()
TRAIN = [sys.executable, "-m", "bptt", "train", "zen.txt", *SMALL, "--snapshot", "ck.npz"]


class Reference:
    """An uninterrupted run, in this process: the full state after every step, computed lazily."""

    def __init__(self) -> None:
        self.trainer = CharModelTrainer(TEXT, TrainConfig(**CONFIG))
        self.states = [self._state()]

    def _state(self) -> tuple[dict[str, np.ndarray], dict]:
        arrays, meta = self.trainer.state()
        return {k: np.array(v) for k, v in arrays.items()}, meta

    def at(self, step: int) -> tuple[dict[str, np.ndarray], dict]:
        while len(self.states) <= step:
            self.trainer.train_step()
            self.states.append(self._state())
        return self.states[step]

    def assert_matches(self, path: Path) -> int:
        """The snapshot at ``path`` is bit for bit the uninterrupted run's state; its step."""
        snap = load_snapshot(path)
        step = snap.metadata["step"]
        arrays, meta = self.at(step)
        assert snap.arrays.keys() == arrays.keys()
        for name, value in arrays.items():
            assert snap.arrays[name].dtype == value.dtype, name
            np.testing.assert_array_equal(snap.arrays[name], value, err_msg=name)
        for key in ("position", "smoothed_loss", "rng_state", "optimizer", "config"):
            assert snap.metadata[key] == meta[key], key
        return step


@pytest.fixture(scope="module")
def reference() -> Reference:
    return Reference()


@pytest.fixture
def work(tmp_path) -> Path:
    (tmp_path / "zen.txt").write_text(TEXT, encoding="utf-8")
    return tmp_path


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def start(work: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [*TRAIN, *extra], cwd=work, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def wait_for_line(proc: subprocess.Popen, prefix: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith(prefix):
            return line
        if not line and proc.poll() is not None:
            break
    raise AssertionError(f"no line starting with {prefix!r}: {proc.stderr.read()}")


def test_kill_9_at_random_moments_never_loses_the_snapshot(work, reference):
    """Twenty kill -9s, each a random number of steps and milliseconds into a run that saves after
    every step; each run resumes the snapshot the previous one left."""
    rng = np.random.default_rng(11)
    opts = ["--steps", "100000", "--snapshot-every", "1", "--log-every", "1"]
    first = subprocess.run([*TRAIN, "--steps", "2"], cwd=work, capture_output=True)
    assert first.returncode == 0, first.stderr
    steps, killed_in_save = [], 0
    for _ in range(20):
        proc = start(work, *opts, "--resume", "ck.npz")
        try:
            wait_for_line(proc, "resuming")  # the run has started
            for _ in range(rng.integers(1, 8)):
                wait_for_line(proc, "step ")  # each step line is followed by that step's save
            time.sleep(rng.uniform(0, 0.02))
        finally:
            proc.kill()
            proc.wait()
            proc.stdout.close()
            proc.stderr.close()
        # A save killed half-way leaves its temporary file: the previous runs' ones are gone.
        own = [name for name in leftovers(work) if f".{proc.pid}." in name]
        killed_in_save += bool(own)
        assert leftovers(work) == own, "a leftover of an earlier run was not cleaned up"
        steps.append(reference.assert_matches(work / "ck.npz"))
    assert steps == sorted(steps) and steps[-1] > steps[0]  # every run made progress
    print(f"{killed_in_save} of 20 kills landed inside a save; steps reached: {steps}")
    assert killed_in_save >= 1, "no kill landed inside a save; the test lost its point"

    # The run the kills interrupted, finished: the same model as the uninterrupted run.
    final = steps[-1] + 5
    result = subprocess.run(
        [*TRAIN, "--resume", "ck.npz", "--steps", str(final)], cwd=work, capture_output=True
    )
    assert result.returncode == 0, result.stderr
    assert reference.assert_matches(work / "ck.npz") == final
    assert leftovers(work) == []


def test_a_full_disk_keeps_the_previous_snapshot(work, reference, monkeypatch):
    """The third save fails half-written with ENOSPC: a clear error; the file keeps step 4."""
    real_savez = np.savez
    calls = []

    def savez(file, *args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            file.write(b"PK\x03\x04 half a zip")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_savez(file, *args, **kwargs)

    monkeypatch.setattr(np, "savez", savez)
    args = ["train", "zen.txt", *SMALL, "--steps", "10", "--snapshot-every", "2"]
    code, _, err = run_in_process([*args, "--snapshot", "ck.npz"], work)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "cannot write snapshot 'ck.npz': No space left on device" in err
    assert ".tmp" not in err and "Traceback" not in err
    assert reference.assert_matches(work / "ck.npz") == 4
    assert leftovers(work) == []


def test_sigterm_saves_and_exits_143(work, reference):
    proc = start(work, "--steps", "100000", "--log-every", "1", "--snapshot-every", "0")
    try:
        wait_for_line(proc, "step 20/")
        proc.send_signal(signal.SIGTERM)  # what `timeout`, schedulers and `docker stop` send
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 143, err
    assert len(err.strip().splitlines()) == 1 and "stopped by SIGTERM: saved step" in err, err
    assert reference.assert_matches(work / "ck.npz") >= 20


def test_a_closed_pipe_saves_and_exits_141(work, reference):
    """The reader goes away after 3 lines: the next log line finds no reader; save, exit 141."""
    proc = start(work, "--steps", "100000", "--log-every", "1", "--snapshot-every", "0")
    try:
        for _ in range(3):
            proc.stdout.readline()
        proc.stdout.close()  # as `| head -3` does when it has its lines
        err = proc.stderr.read()
        proc.wait(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 141, err
    step = reference.assert_matches(work / "ck.npz")
    assert err.strip().splitlines() == [
        f"bptt train: stopped by broken pipe: saved step {step} to 'ck.npz'; "
        "continue with --resume ck.npz"
    ]


def test_head_in_a_shell_pipeline(work, reference):
    """`bptt train ... | head -2` as typed in a shell: no traceback, the exit status is 141."""
    command = shlex.join([*TRAIN, "--steps", "100000", "--log-every", "1"])
    result = subprocess.run(
        ["bash", "-c", f"set -o pipefail; {command} | head -2"],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 141, result.stderr
    assert len(result.stdout.splitlines()) == 2 and result.stdout.startswith("training on")
    assert "Traceback" not in result.stderr and "Exception ignored" not in result.stderr
    assert "stopped by broken pipe" in result.stderr
    reference.assert_matches(work / "ck.npz")


class ClosedPipe:
    """A stdout whose reader has gone: every write raises BrokenPipeError, as a real one does."""

    def write(self, text: str) -> int:
        raise BrokenPipeError(errno.EPIPE, "Broken pipe")

    def flush(self) -> None:
        pass


def test_sample_into_a_closed_pipe_is_quiet(work, monkeypatch):
    """`bptt sample ... | head -c 10`: stop quietly with 141, as Unix tools do."""
    CharModelTrainer(TEXT, TrainConfig(**CONFIG)).save(work / "m.npz")
    monkeypatch.chdir(work)
    err = io.StringIO()
    with contextlib.redirect_stdout(ClosedPipe()), contextlib.redirect_stderr(err):
        assert bptt.app.cli.main(["sample", "m.npz", "--length", "50"]) == 141
    assert err.getvalue() == ""
