"""The command line, run as a user would: ``python -m bptt`` in a subprocess."""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import bptt
import bptt.app.cli
from bptt.app.snapshot import load_model, load_snapshot
from bptt.experiments.faults import DroppedRecurrenceCell

# Small and fast: the Zen of Python, 16 hidden units, 20-character chunks.
SMALL = ["--hidden-size", "16", "--seq-length", "20", "--no-progress", "--sample-every", "0"]


def run(*args, cwd, timeout=120):
    env = {**os.environ, "PYTHONWARNINGS": "error"}
    return subprocess.run(
        [sys.executable, "-m", "bptt", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


@pytest.fixture
def zen(tmp_path):
    path = tmp_path / "zen.txt"
    path.write_text(bptt.zen_of_python(), encoding="utf-8")
    return path


def assert_one_line_error(result, *fragments, code=2):
    assert result.returncode == code, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "error:" in lines[0] and "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_help_and_version(tmp_path):
    result = run("--help", cwd=tmp_path)
    assert result.returncode == 0
    for command in ("train", "sample", "gradcheck"):
        assert command in result.stdout
    assert run("--version", cwd=tmp_path).stdout.strip() == f"bptt {bptt.__version__}"


def test_train_then_sample(tmp_path, zen):
    result = run("train", zen, *SMALL, "--steps", 30, "--log-every", 10, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "step 30/30" in result.stdout and "done: step 30" in result.stdout
    meta = load_snapshot(tmp_path / "model.npz").metadata
    assert meta["step"] == 30 and meta["config"]["hidden_size"] == 16

    args = ("sample", "model.npz", "--prime", "Beautiful", "--length", 50, "--seed", 3)
    first = run(*args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    text = first.stdout.rstrip("\n")
    assert text.startswith("Beautiful") and len(text) == len("Beautiful") + 50
    assert run(*args, cwd=tmp_path).stdout == first.stdout  # same seed, same text


def test_the_options_first_names_still_work(tmp_path, zen):
    """--checkpoint and --checkpoint-every, the options' names before "snapshot", are aliases."""
    old = ("--checkpoint", "runs/old.npz", "--checkpoint-every", 10)
    result = run("train", zen, *SMALL, "--steps", 20, *old, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert load_snapshot(tmp_path / "runs" / "old.npz").metadata["step"] == 20
    again = run("train", zen, *SMALL, "--steps", 20, "--checkpoint", "runs/old.npz", cwd=tmp_path)
    assert_one_line_error(again, "already exists", "--overwrite")


def test_default_corpus_runs_out_of_the_box(tmp_path):
    result = run(
        "train", "--corpus", "zen", *SMALL, "--steps", 5, "--sample-every", 5, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert "the 'zen' corpus" in result.stdout and "sample at step 5" in result.stdout


def test_epochs_truncation_optimizer_and_float32(tmp_path, zen):
    args = ["--k1", 5, "--k2", 10, "--optimizer", "adam", "--lr", 0.01, "--clip-norm", 1.0]
    result = run("train", zen, *SMALL, "--epochs", 1, *args, "--dtype", "float32", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "TBPTT(k1=5, k2=10)" in result.stdout
    params, _, meta = load_model(tmp_path / "model.npz")
    assert meta["step"] == (len(bptt.zen_of_python()) - 1) // 20
    assert meta["config"]["optimizer"] == "adam" and params["W_hh"].dtype == np.float32


def test_resume_continues_bit_for_bit(tmp_path, zen):
    opts = [*SMALL, "--optimizer", "adam", "--lr", 0.01, "--snapshot-every", 7]
    straight = run("train", zen, *opts, "--steps", 60, "--snapshot", "a.npz", cwd=tmp_path)
    assert straight.returncode == 0, straight.stderr
    part = run("train", zen, *opts, "--steps", 25, "--snapshot", "b.npz", cwd=tmp_path)
    assert part.returncode == 0, part.stderr
    resumed = run("train", zen, "--resume", "b.npz", "--steps", 60, "--no-progress", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming at step 25" in resumed.stdout
    a, b = load_snapshot(tmp_path / "a.npz"), load_snapshot(tmp_path / "b.npz")
    assert a.arrays.keys() == b.arrays.keys()
    for k in a.arrays:
        np.testing.assert_array_equal(a.arrays[k], b.arrays[k])
    for k in ("step", "position", "smoothed_loss", "rng_state", "optimizer"):
        assert a.metadata[k] == b.metadata[k]


def test_ctrl_c_saves_and_resume_matches_an_uninterrupted_run(tmp_path, zen):
    args = [sys.executable, "-m", "bptt", "train", str(zen), *SMALL, "--steps", "1000000"]
    proc = subprocess.Popen(
        [*args, "--log-every", "1", "--snapshot", "int.npz", "--snapshot-every", "0"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # wait until training is under way
            line = proc.stdout.readline()
            if line.startswith("step 20/"):
                break
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "stopped by SIGINT: saved step" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    stopped = load_snapshot(tmp_path / "int.npz").metadata["step"]
    assert stopped >= 20

    total = stopped + 15
    resumed = run(
        "train", zen, "--resume", "int.npz", "--steps", total, "--no-progress", cwd=tmp_path
    )
    assert resumed.returncode == 0, resumed.stderr
    straight = run("train", zen, *SMALL, "--steps", total, "--snapshot", "s.npz", cwd=tmp_path)
    assert straight.returncode == 0, straight.stderr
    a, b = load_model(tmp_path / "int.npz")[0], load_model(tmp_path / "s.npz")[0]
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


def test_gradcheck_passes_and_fails_with_exit_status(tmp_path, monkeypatch, capsys):
    result = run("gradcheck", "--hidden-size", 5, "--seq-length", 4, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "PASSED" in result.stdout and "W_hh" in result.stdout
    # A BPTT with a bug (Chapter 5's dropped recurrence) fails the check: exit status 1.
    broken = functools.partial(bptt.loss_and_grads_stepwise, cell=DroppedRecurrenceCell())
    monkeypatch.setattr(bptt.app.cli, "loss_and_grads_stepwise", broken)
    assert bptt.app.cli.main(["gradcheck", "--algorithm", "stepwise"]) == 1
    assert "FAILED" in capsys.readouterr().out
    # So does a check whose finite differences are too coarse to tell (a step far too large).
    coarse = run("gradcheck", "--eps", 3, cwd=tmp_path)
    assert coarse.returncode == 1 and "Traceback" not in coarse.stderr, coarse.stderr


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["train", "missing.txt"], ["missing.txt", "does not exist"]),
        (["train", "empty.txt"], ["is empty"]),
        (["train", "short.txt"], ["6 characters", "--seq-length 25", "at least 26"]),
        (["train", "latin1.txt"], ["not valid utf-8", "byte 3", "0xe9"]),
        (["train", "--hidden-size", "0"], ["--hidden-size", ">= 1", "got 0"]),
        (["train", "--seq-length", "-5"], ["--seq-length"]),
        (["train", "--k1", "5", "--k2", "3"], ["k1 must be <= k2", "k1=5, k2=3"]),
        (["train", "--optimizer", "rmsprop"], ["--optimizer", "rmsprop", "adagrad"]),
        (["train", "--lr", "-1"], ["--lr", "> 0"]),
        (["train", "--steps", "many"], ["--steps", "integer"]),
        (["sample", "nothing.npz"], ["nothing.npz", "does not exist"]),
        (["sample", "garbage.npz"], ["not a readable .npz"]),
    ],
)
def test_bad_input_gives_one_line_errors(tmp_path, args, fragments):
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "short.txt").write_text("short\n")
    (tmp_path / "latin1.txt").write_bytes("café au lait".encode("latin-1"))
    (tmp_path / "garbage.npz").write_bytes(b"PK\x03\x04 not really a zip")
    assert_one_line_error(run(*args, cwd=tmp_path), *fragments)


def test_debug_shows_the_traceback(tmp_path):
    result = run("--debug", "train", "missing.txt", cwd=tmp_path)
    assert result.returncode != 0 and "Traceback" in result.stderr
    assert "FileNotFoundError" in result.stderr


def test_snapshot_of_a_different_model_or_text(tmp_path, zen):
    assert run("train", zen, *SMALL, "--steps", 3, cwd=tmp_path).returncode == 0
    other = run("train", zen, "--resume", "model.npz", "--hidden-size", 32, cwd=tmp_path)
    assert_one_line_error(other, "different model", "hidden_size=32 (snapshot: 16)")
    (tmp_path / "other.txt").write_text("another text entirely " * 10)
    wrong_text = run("train", "other.txt", "--resume", "model.npz", cwd=tmp_path)
    assert_one_line_error(wrong_text, "different text")
    prime = run("sample", "model.npz", "--prime", "@@", cwd=tmp_path)
    assert_one_line_error(prime, "--prime", "'@'")


def test_corrupted_snapshot_is_refused(tmp_path, zen):
    assert run("train", zen, *SMALL, "--steps", 3, cwd=tmp_path).returncode == 0
    path = tmp_path / "model.npz"
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0xFF  # one flipped byte inside the stored arrays
    path.write_bytes(bytes(data))
    result = run("sample", "model.npz", cwd=tmp_path)
    assert_one_line_error(result, "model.npz")
    assert "SHA-256" in result.stderr or "not a readable" in result.stderr
    resume = run("train", zen, "--resume", "model.npz", cwd=tmp_path)
    assert_one_line_error(resume, "model.npz")


def test_divergence_stops_and_keeps_the_last_good_snapshot(tmp_path, zen):
    assert run("train", zen, *SMALL, "--steps", 20, cwd=tmp_path).returncode == 0
    good = (tmp_path / "model.npz").read_bytes()
    args = ["--optimizer", "adam", "--lr", "1e37", "--dtype", "float32", "--no-clip"]
    result = run(
        "train", zen, *SMALL, *args, "--steps", 50, "--snapshot-every", 1, "--overwrite",
        cwd=tmp_path,
    )  # fmt: skip
    assert_one_line_error(result, "training stopped at step", "'model.npz' was not changed", code=3)
    assert (tmp_path / "model.npz").read_bytes() == good  # the diverged model was never saved


def test_progress_bar_with_tqdm(tmp_path, zen):
    pytest.importorskip("tqdm", reason="tqdm (the cli extra) is not installed")
    args = ["--hidden-size", 8, "--seq-length", 10, "--steps", 20, "--sample-every", 0]
    result = run("train", zen, *args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "20/20" in result.stderr and "loss=" in result.stderr  # the bar and its smoothed loss
    assert "done: step 20" in result.stdout


def test_train_creates_the_snapshot_directory(tmp_path):
    text = tmp_path / "t.txt"
    text.write_text("abcdefgh " * 40, encoding="utf-8")
    target = tmp_path / "runs" / "deep" / "m.npz"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bptt",
            "train",
            str(text),
            "--hidden-size",
            "8",
            "--steps",
            "3",
            "--snapshot",
            str(target),
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert target.is_file()
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bptt",
            "train",
            str(text),
            "--steps",
            "1",
            "--snapshot",
            str(blocker / "m.npz"),
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "is not a directory" in result.stderr


BATCHED = [*SMALL, "--batch-size", "4", "--val-fraction", "0.1", "--val-every", "10",
           "--lr-schedule", "cosine", "--warmup", "5", "--lr-min", "0.01"]  # fmt: skip


def test_ctrl_c_during_a_batch_run_with_validation_and_a_schedule_resumes_bit_for_bit(
    tmp_path, zen
):
    args = [sys.executable, "-m", "bptt", "train", str(zen), *BATCHED, "--steps", "400"]
    proc = subprocess.Popen(
        [*args, "--log-every", "1", "--snapshot", "int.npz", "--snapshot-every", "0"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if proc.stdout.readline().startswith("step 25/"):
                break
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130 and "stopped by SIGINT: saved step" in err, err
    snap = load_snapshot(tmp_path / "int.npz")
    stopped = snap.metadata["step"]
    assert stopped >= 25 and snap.arrays["h"].shape == (4, 16)
    assert (tmp_path / "int.best.npz").is_file()  # validated at step 10 and 20 at least
    resumed = run(
        "train",
        zen,
        "--resume",
        "int.npz",
        "--steps",
        400,
        "--no-progress",
        "--sample-every",
        0,
        *BATCHED[len(SMALL) :],
        cwd=tmp_path,
    )  # the same options: allowed
    assert resumed.returncode == 0, resumed.stderr
    straight = run("train", zen, *BATCHED, "--steps", 400, "--snapshot", "s.npz", cwd=tmp_path)
    assert straight.returncode == 0, straight.stderr
    a, b = load_snapshot(tmp_path / "int.npz"), load_snapshot(tmp_path / "s.npz")
    for k in a.arrays:
        np.testing.assert_array_equal(a.arrays[k], b.arrays[k])
    for k in ("position", "smoothed_loss", "recent_losses", "validation", "rng_state", "config"):
        assert a.metadata[k] == b.metadata[k], k
    best_a = load_snapshot(tmp_path / "int.best.npz")
    best_b = load_snapshot(tmp_path / "s.best.npz")
    assert (
        best_a.metadata["step"] == best_b.metadata["step"] == a.metadata["validation"]["best_step"]
    )
    for k in best_a.arrays:
        np.testing.assert_array_equal(best_a.arrays[k], best_b.arrays[k])


def test_early_stopping_keeps_the_best_snapshot_and_says_so(tmp_path, zen):
    opts = [*SMALL, "--hidden-size", "48", "--batch-size", "4", "--val-fraction", "0.1",
            "--val-every", "25", "--patience", "3", "--steps", "5000"]  # fmt: skip
    result = run("train", zen, *opts, cwd=tmp_path)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    meta = load_snapshot(tmp_path / "model.npz").metadata
    best = load_snapshot(tmp_path / "model.best.npz").metadata
    record = meta["validation"]
    assert meta["step"] < 5000 and record["checks_since_best"] == 3
    assert best["step"] == record["best_step"] < meta["step"]
    assert f"stopped early at step {meta['step']}" in result.stdout
    assert f"step {best['step']} with" in result.stdout and "'model.best.npz'" in result.stdout
    trainer = bptt.CharModelTrainer.load(tmp_path / "model.best.npz", bptt.zen_of_python())
    assert trainer.validation_loss() == record["best_loss"]  # the file holds the best model
    again = run("train", zen, "--resume", "model.npz", "--steps", 5000, cwd=tmp_path)
    assert again.returncode == 0 and "nothing to do" in again.stdout
    assert "stopped early" in again.stdout


def test_the_log_line_shows_the_recent_mean_loss_per_character(tmp_path, zen):
    result = run("train", zen, *SMALL, "--steps", 150, "--log-every", 150, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    line = next(x for x in result.stdout.splitlines() if x.startswith("step 150/"))
    assert "(mean of the last 100 steps)" in line
    shown = float(line.split("loss ")[1].split()[0])
    losses = load_snapshot(tmp_path / "model.npz").metadata["recent_losses"]
    assert len(losses) == 100 and shown == round(sum(losses) / 100 / 20, 3)
    uniform = np.log(len(set(bptt.zen_of_python())))
    assert shown < 0.9 * uniform  # a moving average from the uniform loss would still be near it
