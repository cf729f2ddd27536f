"""The command line under bad input: every case is one clear line, a distinct exit status, no
traceback, and no file changed (Appendix A1).

Each case runs ``bptt`` in a copy of a work folder that holds a training text, a snapshot trained
on it and a few awkward files (see ``cli_helpers.build_workspace``). Every file in the folder is
hashed before and after: a case may create only the files it lists.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import (
    SMALL,
    TRAINED_STEPS,
    build_workspace,
    run_in_process,
    run_subprocess,
    snapshot,
)

import bptt


def case(*args, code=2, says=(), creates=(), marks=()):
    """A case: ``bptt ARGS`` must exit with ``code``, print one line containing each of ``says``
    (the argument or file at fault) and change no file except creating those in ``creates``."""
    label = " ".join(map(str, args)).replace(" ".join(SMALL), "SMALL")
    return pytest.param(
        [str(a) for a in args], code, tuple(says), frozenset(creates), id=label, marks=marks
    )


TRAIN = ("train", "zen.txt", *SMALL)
STEP = (*TRAIN, "--lr-schedule", "step", "--lr-milestones", 100)
RESUME = ("train", "zen.txt", "--resume", "model.npz")
DIVERGE = ("--steps", 120, "--snapshot", "new.npz")
SGD_BLOWS_UP = ("--lr", 1e6, "--optimizer", "sgd", "--no-clip")
ADAM_OVERFLOWS = ("--optimizer", "adam", "--lr", 1e37, "--dtype", "float32", "--no-clip")
INTO_MODEL = ("--snapshot-every", 1, "--snapshot", "model.npz", "--overwrite")

CASES = [
    # -- options that do not parse ---------------------------------------------------------------
    case(*TRAIN, "--hidden-size", 0, says=["--hidden-size", ">= 1", "got 0"]),
    case(*TRAIN, "--hidden-size", -3, says=["--hidden-size"]),
    case(*TRAIN, "--hidden-size", "abc", says=["--hidden-size", "'abc'"]),
    case(*TRAIN, "--hidden-size", 2.5, says=["--hidden-size", "'2.5'"]),
    case(*TRAIN, "--seq-length", 0, says=["--seq-length"]),
    case(*TRAIN, "--k1", 0, says=["--k1"]),
    case(*TRAIN, "--k2", "x", says=["--k2"]),
    case(*TRAIN, "--optimizer", "rmsprop", says=["--optimizer", "rmsprop", "adagrad"]),
    case(*TRAIN, "--lr", 0, says=["--lr", "> 0"]),
    case(*TRAIN, "--lr", -1, says=["--lr"]),
    case(*TRAIN, "--lr", "nan", says=["--lr", "finite"]),
    case(*TRAIN, "--lr", "inf", says=["--lr", "finite"]),
    case(*TRAIN, "--lr", "fast", says=["--lr", "'fast'"]),
    case(*TRAIN, "--lr", "1e-400", says=["--lr", "> 0"]),  # underflows to 0.0
    case(*TRAIN, "--clip-value", 0, says=["--clip-value"]),
    case(*TRAIN, "--clip-value", "nan", says=["--clip-value"]),
    case(*TRAIN, "--clip-norm", -1, says=["--clip-norm"]),
    case(*TRAIN, "--weight-scale", 0, says=["--weight-scale"]),
    case(*TRAIN, "--weight-scale", "-inf", says=["--weight-scale"]),
    case(*TRAIN, "--seed", -1, says=["--seed", ">= 0"]),
    case(*TRAIN, "--seed", 1.5, says=["--seed"]),
    case(*TRAIN, "--dtype", "float16", says=["--dtype", "float16"]),
    case(*TRAIN, "--cell", "bogus", says=["--cell", "'bogus'", "tanh", "gru", "lstm"]),
    case(*TRAIN, "--cell", "LSTM", says=["--cell", "'LSTM'"]),
    case(*TRAIN, "--steps", -1, says=["--steps"]),
    case(*TRAIN, "--steps", "1e3", says=["--steps", "'1e3'"]),
    case(*TRAIN, "--epochs", 0, says=["--epochs"]),
    case(*TRAIN, "--epochs", "nan", says=["--epochs"]),
    case(*TRAIN, "--snapshot-every", -1, says=["--snapshot-every"]),
    case(*TRAIN, "--sample-every", -1, says=["--sample-every"]),
    case(*TRAIN, "--sample-length", 0, says=["--sample-length"]),
    case(*TRAIN, "--log-every", 0, says=["--log-every"]),
    case("train", "--corpus", "shakespeare", says=["--corpus", "shakespeare"]),
    case(*TRAIN, "--encoding", "bogus-enc", says=["--encoding", "bogus-enc"]),
    case(*TRAIN, "--encoding", "rot13", says=["--encoding", "rot13"]),
    case(*TRAIN, "--encoding", "base64", says=["--encoding", "base64"]),
    case(*TRAIN, "--snapshot", "", says=["--snapshot"]),
    case(*TRAIN, "--snapshot", "runs/", says=["--snapshot", "runs/"]),
    case(*TRAIN, "--hiden-size", 5, says=["--hiden-size"]),
    case(*TRAIN, "other.txt", says=["other.txt"]),
    case(*TRAIN, "--resume", says=["--resume"]),
    case(says=["command"]),
    case("fit", "zen.txt", says=["fit"]),
    case(*TRAIN, "--batch-size", 0, says=["--batch-size", ">= 1", "got 0"]),
    case(*TRAIN, "--batch-size", "many", says=["--batch-size", "'many'"]),
    case(*TRAIN, "--val-fraction", 1, says=["--val-fraction", "< 1", "got 1"]),
    case(*TRAIN, "--val-fraction", 1.5, says=["--val-fraction", "< 1"]),
    case(*TRAIN, "--val-fraction", -0.1, says=["--val-fraction", ">= 0"]),
    case(*TRAIN, "--val-fraction", "nan", says=["--val-fraction", "nan"]),
    case(*TRAIN, "--val-fraction", "tenth", says=["--val-fraction", "'tenth'"]),
    case(*TRAIN, "--val-every", 0, says=["--val-every", ">= 1"]),
    case(*TRAIN, "--patience", 0, says=["--patience", ">= 1", "got 0"]),
    case(*TRAIN, "--patience", -3, says=["--patience", ">= 1"]),
    case(*TRAIN, "--lr-schedule", "exponential", says=["--lr-schedule", "exponential", "cosine"]),
    case(*TRAIN, "--lr-milestones", "x", says=["--lr-milestones", "'x'", "3500"]),
    case(*TRAIN, "--lr-milestones", "0", says=["--lr-milestones", ">= 1"]),
    case(*TRAIN, "--lr-milestones", "300,200", says=["--lr-milestones", "increase", "300,200"]),
    case(*TRAIN, "--lr-rates", "0", says=["--lr-rates", "> 0", "got 0"]),
    case(*TRAIN, "--lr-rates", "0.1,fast", says=["--lr-rates", "'0.1,fast'"]),
    case(*TRAIN, "--lr-min", -1, says=["--lr-min", ">= 0"]),
    case(*TRAIN, "--warmup", -1, says=["--warmup", ">= 0"]),
    # -- options that contradict each other -------------------------------------------------------
    case(*TRAIN, "--clip-value", 3, "--no-clip", says=["--no-clip", "--clip-value"]),
    case(*TRAIN, "--steps", 5, "--epochs", 1, says=["--epochs", "--steps"]),
    case(*TRAIN, "--corpus", "zen", says=["--corpus", "zen.txt"]),
    case(*TRAIN, "--k1", 5, "--k2", 3, says=["k1 must be <= k2", "k1=5, k2=3"]),
    case(*TRAIN, "--k2", 30, says=["k2", "seq_length=20"]),
    case(*TRAIN, "--k1", 30, says=["k1", "k2=20"]),
    case(*TRAIN, "--dtype", "float32", "--weight-scale", 1e37, says=["weight_scale", "float32"]),
    case(*TRAIN, "--patience", 3, says=["--patience needs --val-fraction > 0"]),
    case(*TRAIN, "--val-every", 10, says=["--val-every needs --val-fraction"]),
    case(*TRAIN, "--patience", 3, "--val-fraction", 0, says=["--patience", "--val-fraction 0.0"]),
    case(
        *TRAIN, "--lr-milestones", 100, says=["--lr-milestones", "--lr-schedule step", "constant"]
    ),
    case(*TRAIN, "--lr-min", 0.01, "--lr-schedule", "step", says=["--lr-min", "cosine", "step"]),
    case(*TRAIN, "--lr-schedule", "step", says=["--lr-schedule step needs --lr-milestones"]),
    case(*TRAIN, "--lr-schedule", "step", "--lr-milestones", 100, says=["--lr-rates"]),
    case(*STEP, "--lr-rates", "0.01,0.001", says=["one rate per milestone", "1 in", "got 2"]),
    case(*STEP, "--lr-rates", 0.01, "--steps", 100, says=["--lr-milestones", "(100)", "got 100"]),
    case(*STEP, "--lr-rates", 0.01, "--steps", 50, says=["--lr-milestones must be below"]),
    case(*STEP, "--lr-rates", 0.01, "--warmup", 150, says=["--warmup", "(100)", "got 150"]),
    case(*TRAIN, "--warmup", 500, "--steps", 500, says=["--warmup", "(500)", "got 500"]),
    case(*TRAIN, "--lr-schedule", "cosine", "--lr-min", 0.1, says=["--lr-min", "--lr 0.1"]),
    case(*TRAIN, "--lr-schedule", "cosine", "--steps", 0, says=["cosine", "--steps 0"]),
    # -- texts that cannot be trained on ----------------------------------------------------------
    case("train", "missing.txt", says=["missing.txt", "does not exist"]),
    case("train", "folder", says=["folder"]),
    case("train", "empty.txt", says=["empty.txt", "is empty"]),
    case("train", "latin1.txt", says=["latin1.txt", "utf-8", "byte 1", "0xe9"]),
    case("train", "utf16.txt", says=["utf16.txt", "utf-8"]),
    case("train", "binary.bin", says=["binary.bin", "utf-8"]),
    case("train", "model.npz", says=["model.npz", "utf-8"]),
    case("train", "short.txt", says=["short.txt", "6 characters", "--seq-length 25"]),
    case(*TRAIN, "--seq-length", 5000, says=["zen.txt", "--seq-length 5000"]),
    case(
        *TRAIN,
        "--batch-size",
        100,
        says=["--batch-size 100", "streams of 8", "at most --batch-size 40"],
    ),
    case(*TRAIN, "--batch-size", 41, "--val-fraction", 0.1, says=["85 held out", "at most"]),
    case(*TRAIN, "--val-fraction", 0.001, says=["--val-fraction 0.001", "856", "at least 2"]),
    case(*TRAIN, "--val-fraction", 0.98, says=["18 training characters", "--val-fraction 0.98"]),
    # -- snapshots that must not be written -----------------------------------------------------
    case("train", "zen.txt", *SMALL, says=["'model.npz' already exists", "--overwrite"]),
    case(*TRAIN, "--snapshot", "model.npz", says=["model.npz", "--resume model.npz"]),
    case(*TRAIN, "--snapshot", "notes.txt", says=["notes.txt", "already exists"]),
    case(*TRAIN, "--snapshot", "zen.txt", says=["zen.txt", "training text"]),
    case(*TRAIN, "--snapshot", "zen.txt", "--overwrite", says=["zen.txt", "training text"]),
    case(*TRAIN, "--snapshot", "zen-link.txt", says=["zen-link.txt", "training text"]),
    case("train", "zen-link.txt", *SMALL, "--snapshot", "zen.txt", says=["training text"]),
    case(*TRAIN, "--snapshot", "notes.txt", "--overwrite", says=["notes.txt", "not a bptt"]),
    case(*TRAIN, "--snapshot", "damaged.npz", "--overwrite", says=["damaged.npz", "not a"]),
    case(*TRAIN, "--snapshot", "folder", says=["folder", "directory"]),
    case(*TRAIN, "--snapshot", "/dev/null", "--overwrite", says=["/dev/null", "regular file"]),
    case(*TRAIN, "--snapshot", "blocker/m.npz", says=["blocker", "not a directory"]),
    case(*TRAIN, "--snapshot", "/proc/no/m.npz", says=["/proc/no", "cannot create"]),
    case(*RESUME, "--snapshot", "other_model.npz", says=["other_model.npz", "not the --resume"]),
    case(*RESUME, "--encoding", "latin-1", "--snapshot", "zen.txt", says=["training text"]),
    case("train", "model.npz", "--encoding", "latin-1", "--resume", "model.npz", says=["text"]),
    # -- snapshots that cannot be resumed -------------------------------------------------------
    case("train", "zen.txt", "--resume", "missing.npz", says=["missing.npz", "does not exist"]),
    case("train", "zen.txt", "--resume", "zen.txt", says=["zen.txt", "not a bptt snapshot"]),
    case("train", "zen.txt", "--resume", "damaged.npz", says=["damaged.npz"]),
    case("train", "zen.txt", "--resume", "truncated.npz", says=["truncated.npz"]),
    case("train", "zen.txt", "--resume", "plain.npz", says=["plain.npz", "no metadata"]),
    case("train", "zen.txt", "--resume", "array.npy", says=["array.npy", "not a bptt"]),
    case("train", "zen.txt", "--resume", "other_kind.npz", says=["other_kind.npz"]),
    case("train", "zen.txt", "--resume", "folder", says=["folder"]),
    case("train", "other.txt", "--resume", "model.npz", says=["model.npz", "different text"]),
    case(*RESUME, "--hidden-size", 32, says=["hidden_size=32 (snapshot: 16)"]),
    case(*RESUME, "--lr", 0.5, says=["learning_rate"]),
    case(*RESUME, "--no-clip", says=["clip_value=None (snapshot: 5.0)"]),
    case(*RESUME, "--optimizer", "adam", says=["optimizer"]),
    case(*RESUME, "--seed", 3, says=["seed=3"]),
    case(*RESUME, "--k1", 5, says=["k1=5"]),
    case(*RESUME, "--batch-size", 4, says=["batch_size=4 (snapshot: 1)"]),
    case(*RESUME, "--cell", "lstm", says=["cell='lstm' (snapshot: 'tanh')"]),
    case(*RESUME, "--val-fraction", 0.1, says=["val_fraction=0.1 (snapshot: 0.0)"]),
    case(*RESUME, *STEP[-4:], "--lr-rates", 0.01, "--steps", 200, says=["lr_schedule=StepLR"]),
    case(
        *TRAIN,
        "--val-fraction",
        0.1,
        "--snapshot",
        "taken.npz",
        says=["'taken.best.npz'", "already exists", "--overwrite"],
    ),
    case(
        "train",
        "zen.txt",
        "--resume",
        "taken.best.npz",
        "--snapshot",
        "taken.npz",
        "--val-fraction",
        0.1,
        says=["val_fraction"],
    ),
    # -- nothing to do: said so, nothing written --------------------------------------------------
    case(*RESUME, "--steps", 10, code=0, says=["nothing to do", "at step 30", "ends at step 10"]),
    case(*RESUME, "--steps", TRAINED_STEPS, code=0, says=["nothing to do"]),
    case(*RESUME, "--epochs", 0.1, code=0, says=["nothing to do", "ends at step 4"]),
    case(*RESUME, "--steps", 20, "--snapshot", "new.npz", code=0, says=["or written"]),
    case(*TRAIN, "--steps", 0, "--snapshot", "new.npz", code=0, says=["done"], creates=["new.npz"]),
    # -- too large for memory: refused before allocating ------------------------------------------
    case(*TRAIN, "--hidden-size", 1_000_000, says=["--hidden-size 1000000", "TiB", "available"]),
    case(*TRAIN, "--hidden-size", 1_000_000, "--dtype", "float32", says=["float32", "memory"]),
    case(*TRAIN, "--hidden-size", 300_000, says=["--hidden-size 300000", "memory"]),
    case("gradcheck", "--hidden-size", 1_000_000, says=["H=1000000", "memory"]),
    case("gradcheck", "--seq-length", 10**10, "--hidden-size", 64, says=["T=10000000000"]),
    # -- training that diverges: exit 3, no bad model saved ---------------------------------------
    case(*TRAIN, *SGD_BLOWS_UP, *DIVERGE, code=3, says=["diverged", "no snapshot was written"]),
    case(*TRAIN, "--lr", 1e3, "--optimizer", "adam", *DIVERGE, code=3, says=["diverged", "50"]),
    case(*TRAIN, "--weight-scale", 1e6, *DIVERGE, code=3, says=["diverged", "no snapshot"]),
    case(*TRAIN, *ADAM_OVERFLOWS, *DIVERGE, code=3, says=["step 2", "not finite"]),
    case(
        *TRAIN, *SGD_BLOWS_UP, *DIVERGE, *INTO_MODEL, code=3, says=["'model.npz' was not changed"]
    ),
    case(*TRAIN, "--lr", 1e3, "--optimizer", "adam", *DIVERGE, *INTO_MODEL, code=3, says=["model"]),
    case(*TRAIN, "--weight-scale", 1e6, *DIVERGE, *INTO_MODEL, code=3, says=["was not changed"]),
    # -- sample -----------------------------------------------------------------------------------
    case("sample", "missing.npz", says=["missing.npz", "does not exist"]),
    case("sample", "zen.txt", says=["zen.txt", "not a bptt snapshot"]),
    case("sample", "folder", says=["folder"]),
    case("sample", "damaged.npz", says=["damaged.npz"]),
    case("sample", "truncated.npz", says=["truncated.npz"]),
    case("sample", "plain.npz", says=["plain.npz", "no metadata"]),
    case("sample", "array.npy", says=["array.npy", "not a bptt snapshot"]),
    case("sample", "other_kind.npz", says=["other_kind.npz", "usable model"]),
    case("sample", "model.npz", "--prime", "@@", says=["--prime", "'@'"]),
    case("sample", "model.npz", "--length", 0, says=["--length"]),
    case("sample", "model.npz", "--length", -5, says=["--length"]),
    case("sample", "model.npz", "--length", 10**12, says=["--length", "1_000_000"]),
    case("train", "--sample-length", 10**9, says=["--sample-length", "1_000_000"]),
    case("sample", "model.npz", "--temperature", 0, says=["--temperature"]),
    case("sample", "model.npz", "--temperature", -1, says=["--temperature"]),
    case("sample", "model.npz", "--temperature", "nan", says=["--temperature"]),
    case("sample", "model.npz", "--temperature", "inf", says=["--temperature"]),
    case("sample", "model.npz", "--temperature", "1e-400", says=["--temperature"]),
    case("sample", "model.npz", "--seed", -1, says=["--seed"]),
    case("sample", says=["SNAPSHOT"]),
    case("sample", "model.npz", "--temperature", "1e-310", "--length", 30, code=0),
    case("sample", "model.npz", "--temperature", "1e300", "--length", 30, code=0),
    # -- gradcheck --------------------------------------------------------------------------------
    case("gradcheck", "--input-size", 0, says=["--input-size"]),
    case("gradcheck", "--eps", 0, says=["--eps"]),
    case("gradcheck", "--tol", -1, says=["--tol"]),
    case("gradcheck", "--algorithm", "magic", says=["--algorithm", "magic"]),
    case("gradcheck", "--batch-size", 0, says=["--batch-size"]),
    case("gradcheck", "--weight-scale", "nan", says=["--weight-scale"]),
    case("gradcheck", "--seq-length", "abc", says=["--seq-length"]),
]


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    return build_workspace(tmp_path_factory.mktemp("template") / "work")


@pytest.fixture
def work(template, tmp_path) -> Path:
    folder = tmp_path / "work"
    shutil.copytree(template, folder, symlinks=True)
    return folder


def check_outcome(code, out, err, expected_code, says, before, after, creates):
    assert "Traceback" not in err and "Traceback" not in out, err
    assert "allow_pickle" not in err
    assert code == expected_code, (code, out, err)
    lines = err.strip().splitlines()
    if expected_code == 0:
        assert err == "", err
        for fragment in says:
            assert fragment in out, out
    else:
        assert len(lines) == 1, err
        assert "error:" in lines[0], lines[0]
        for fragment in says:
            assert fragment in lines[0], lines[0]
    changed = {k for k in before if before[k] != after.get(k)}
    new = set(after) - set(before)
    assert not changed, f"files changed: {sorted(changed)}"
    assert new <= set(creates), f"unexpected new files: {sorted(new - set(creates))}"


@pytest.mark.parametrize(("args", "code", "says", "creates"), CASES)
def test_bad_input(work, args, code, says, creates):
    before = snapshot(work)
    result = run_in_process(args, work)
    check_outcome(*result, code, says, before, snapshot(work), creates)


# A few of the cases again as a user runs them: a separate process, with Python warnings as errors.
AS_A_USER = [
    ["train", "zen.txt", *SMALL, "--encoding", "bogus-enc"],
    ["train", "zen.txt", *SMALL],
    ["train", "zen.txt", *SMALL, "--snapshot", "zen.txt"],
    ["train", "zen.txt", *SMALL, "--hidden-size", "1000000"],
    ["train", "zen.txt", *SMALL, "--clip-value", "3", "--no-clip"],
    ["sample", "zen.txt"],
    ["sample", "model.npz", "--temperature", "1e-310", "--length", "30"],
    [
        "train",
        "zen.txt",
        *SMALL,
        "--weight-scale",
        "1e6",
        "--steps",
        "120",
        "--snapshot",
        "n.npz",
    ],
]


@pytest.mark.parametrize(
    "args", AS_A_USER, ids=[" ".join(a).replace(" ".join(SMALL), "SMALL") for a in AS_A_USER]
)
def test_bad_input_in_a_subprocess(work, args):
    before = snapshot(work)
    code, _, err = run_subprocess(args, work)
    assert "Traceback" not in err and "Warning" not in err, err
    assert code in (0, 2, 3) and len(err.strip().splitlines()) <= 1, err
    assert snapshot(work) == before
    in_process = run_in_process(args, work)
    assert (code, err) == (in_process[0], in_process[2])  # the same status and message


def test_the_temperature_limit_is_greedy_sampling(work):
    """A temperature of 1e-310 is computed stably: it picks the most likely character."""
    params, vocab, _ = bptt.load_model(work / "model.npz")
    tiny = run_in_process(["sample", "model.npz", "--temperature", "1e-310", "--seed", "1"], work)
    other_seed = run_in_process(["sample", "model.npz", "--temperature", "1e-310"], work)
    assert tiny[0] == 0 and tiny[2] == "" and tiny[1] == other_seed[1]  # no randomness left
    h = np.zeros((1, params["W_hh"].shape[0]))
    current = int(np.random.default_rng(1).integers(vocab.size))  # the same first draw
    greedy = []
    for _ in range(len(tiny[1]) - 1):
        h = np.tanh(params["W_xh"][:, current] + h @ params["W_hh"].T + params["b_h"])
        current = int(np.argmax(h @ params["W_hy"].T + params["b_y"]))
        greedy.append(vocab.chars[current])
    assert tiny[1].rstrip("\n") == "".join(greedy)


def test_a_read_only_folder_is_refused_before_training(work, monkeypatch):
    """The folder check runs before training and names the user's path, not a temporary file."""
    import tempfile

    real = tempfile.mkstemp

    def mkstemp(*args, dir=None, **kwargs):  # mkstemp's own argument name
        if Path(dir).name == "ro":
            raise PermissionError(13, "Permission denied", str(Path(dir) / ".m.npz.123.tmp"))
        return real(*args, dir=dir, **kwargs)

    (work / "ro").mkdir()
    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    before = snapshot(work)
    code, out, err = run_in_process([*TRAIN, "--snapshot", "ro/m.npz"], work)
    check_outcome(
        code, out, err, 2, ["'ro/m.npz'", "Permission denied"], before, snapshot(work), ()
    )
    assert ".tmp" not in err and "training on" not in out  # refused before any training


@pytest.mark.skipif(not hasattr(__import__("os"), "geteuid") or __import__("os").geteuid() == 0,
                    reason="root may write into a read-only folder")  # fmt: skip
def test_a_read_only_folder_for_real(work):
    (work / "ro").mkdir(mode=0o555)
    before = snapshot(work)
    code, out, err = run_in_process([*TRAIN, "--snapshot", "ro/m.npz"], work)
    check_outcome(code, out, err, 2, ["'ro/m.npz'"], before, snapshot(work), frozenset())


def test_a_moderate_model_is_refused_when_memory_is_short(work, monkeypatch):
    """The refusal compares the estimate with the memory available, and says both."""
    monkeypatch.setattr(bptt.app.cli, "available_memory", lambda: 1_000_000)
    before = snapshot(work)
    code, out, err = run_in_process([*TRAIN, "--hidden-size", "300", "--snapshot", "m.npz"], work)
    check_outcome(code, out, err, 2, ["--hidden-size 300", "976.6 KiB available"], before,
                  snapshot(work), frozenset())  # fmt: skip
    monkeypatch.setattr(bptt.app.cli, "available_memory", lambda: None)  # the OS does not say
    assert run_in_process([*TRAIN, "--steps", "1", "--snapshot", "m.npz"], work)[0] == 0


def test_a_run_that_diverges_late_keeps_its_last_good_snapshot(work):
    """Plain SGD at lr 1 trains for a few steps, then blows up: the file keeps a good model."""
    args = [*TRAIN, "--optimizer", "sgd", "--lr", "1", "--steps", "300", "--snapshot-every", "1"]
    code, _, err = run_in_process([*args, "--snapshot", "late.npz"], work)
    assert code == 3 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "the last good snapshot is 'late.npz'" in err
    trainer = bptt.CharModelTrainer.load(work / "late.npz", bptt.zen_of_python())
    assert 1 <= trainer.step_count < 300
    assert f"(step {trainer.step_count})" in err
    assert trainer.next_loss() <= bptt.app.train.DIVERGENCE_FACTOR * trainer.initial_loss  # good


def test_a_constant_schedule_is_no_schedule_and_may_be_repeated_on_resume(work):
    """``--lr-schedule constant`` trains as no schedule does, and repeating it on resume is fine."""
    first = run_in_process(
        [*TRAIN, "--steps", "5", "--snapshot", "c.npz", "--lr-schedule", "constant"], work
    )
    assert first[0] == 0, first[2]
    assert bptt.load_snapshot(work / "c.npz").metadata["config"]["lr_schedule"] is None
    again = run_in_process(
        [
            "train",
            "zen.txt",
            "--resume",
            "c.npz",
            "--steps",
            "8",
            "--no-progress",
            "--lr-schedule",
            "constant",
        ],
        work,
    )
    assert again[0] == 0, again[2]
    plain = run_in_process([*TRAIN, "--steps", "8", "--snapshot", "p.npz"], work)
    assert plain[0] == 0
    a, b = bptt.load_model(work / "c.npz")[0], bptt.load_model(work / "p.npz")[0]
    assert all(np.array_equal(a[k], b[k]) for k in a)
