"""The ``bptt`` command line: train, sample and gradcheck (Appendix A1).

Run ``bptt --help`` (or ``python -m bptt --help``). Bad input gives a one-line error and a non-zero
exit status; ``--debug`` shows the full traceback instead.

Exit statuses (Appendix A1 explains each):

- 0: success, including "nothing to do" (a resumed run already at its ``--steps``);
- 1: a gradient check that failed or was inconclusive;
- 2: bad input: a missing, undecodable or unwritable file, an invalid or contradictory option, a
  model too large for the memory available, a damaged or mismatched snapshot, or an existing
  snapshot that would be replaced without ``--overwrite``;
- 3: training diverged (a loss or gradient that is not finite, or a loss far above the uniform
  model's for many steps in a row); the last good snapshot is kept;
- 130, 143, 141: stopped by Ctrl-C (SIGINT), by SIGTERM, or by a closed output (a broken pipe,
  ``| head``), after saving a snapshot. Each is 128 plus the signal's number (SIGPIPE is 13):
  what a shell reports for a process that the signal killed.
"""

from __future__ import annotations

import argparse
import inspect
import itertools
import os
import signal
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import fields
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from bptt._version import __version__
from bptt.algorithms.stepwise import loss_and_grads_stepwise
from bptt.algorithms.vectorised import loss_and_grads
from bptt.app.data import check_encoding, pydoc_topics, read_text, zen_of_python
from bptt.app.sampling import sample
from bptt.app.snapshot import (
    CELLS,
    DEFAULT_CELL,
    SnapshotError,
    check_writable,
    load_model,
    load_snapshot,
    model_cell,
)
from bptt.app.train import (
    DIVERGENCE_FACTOR,
    DIVERGENCE_STEPS,
    CharModelTrainer,
    TrainConfig,
    ValidationCheck,
    split_text,
)
from bptt.gradcheck import gradcheck
from bptt.optim import LR_SCHEDULES, OPTIMIZERS, ConstantLR, CosineLR, LRSchedule, StepLR
from bptt.params import init_params

EXIT_GRADCHECK_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_DIVERGED = 3
EXIT_INTERRUPTED = 130  # 128 + SIGINT (2)
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE (13)
EXIT_TERMINATED = 143  # 128 + SIGTERM (15)

STOP_CODES = {
    "SIGINT": EXIT_INTERRUPTED,
    "SIGTERM": EXIT_TERMINATED,
    "broken pipe": EXIT_BROKEN_PIPE,
}
"""Exit status of a training run stopped early, by the reason it stopped."""

CORPORA = {"zen": zen_of_python, "pydoc": pydoc_topics}
"""Corpora that ship with Python: ``train`` uses one when no text file is given."""

_GRADCHECK_DEFAULTS = {k: p.default for k, p in inspect.signature(gradcheck).parameters.items()}


class UsageError(ValueError):
    """Bad input found after parsing (shown as a one-line error, exit status 2)."""


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line: ``bptt train: error: ...``."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _int_at_least(minimum: int, maximum: int | None = None) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be an integer >= {minimum}, got {value}")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"must be an integer <= {maximum:_}, got {value:_}")
        return value

    return parse


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not np.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not np.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 <= value < 1:  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be a number >= 0 and < 1, got {text}")
    return value


def _milestones(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected step numbers separated by commas, such as 3500 or 1000,2000, got {text!r}"
        ) from None
    if any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"must be steps >= 1, got {text}")
    if any(b <= a for a, b in itertools.pairwise(values)):
        raise argparse.ArgumentTypeError(f"must increase from one step to the next, got {text}")
    return values


def _rates(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected learning rates separated by commas, such as 0.01 or 0.01,0.001, got {text!r}"
        ) from None
    if not all(np.isfinite(v) and v > 0 for v in values):
        raise argparse.ArgumentTypeError(f"must be finite numbers > 0, got {text}")
    return values


def _encoding(text: str) -> str:
    try:
        return check_encoding(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _file_path(text: str) -> Path:
    # Path("runs/") is Path("runs"): without this check a folder name would become a file name.
    if not text or text.endswith(("/", os.sep)):
        raise argparse.ArgumentTypeError(
            f"expected a file name such as runs/model.npz, got {text!r}"
        )
    return Path(text)


positive_int = _int_at_least(1)
# Samples are built in memory and printed at the end: a million characters is ample for reading,
# and a typo such as 10**12 is refused at once instead of filling memory for hours.
MAX_SAMPLE_LENGTH = 1_000_000
sample_length = _int_at_least(1, MAX_SAMPLE_LENGTH)
count = _int_at_least(0)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``bptt`` command (its ``--help`` is the reference)."""
    parser = _Parser(
        prog="bptt",
        description="Train, sample and check character models (tanh RNN, GRU, LSTM) with BPTT.",
        epilog=(
            "Exit status: 0 done, 1 gradient check not passed, 2 bad input, 3 training diverged; "
            "130, 143, 141: stopped by Ctrl-C, SIGTERM or a closed output, after saving. "
            "Explained in the book's appendix 'The command line'."
        ),
    )
    parser.add_argument("--version", action="version", version=f"bptt {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def add_debug(p: argparse.ArgumentParser) -> None:
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS)

    t = sub.add_parser("train", help="train a character model on a text file")
    t.add_argument("text_file", nargs="?", help="UTF-8 text to train on (default: --corpus)")
    t.add_argument(
        "--corpus", choices=sorted(CORPORA),
        help="text that ships with Python, instead of a TEXT_FILE (default: pydoc)",
    )  # fmt: skip
    t.add_argument(
        "--encoding", type=_encoding, default="utf-8", help="of TEXT_FILE (default: utf-8)"
    )
    model = t.add_argument_group("model and training (defaults: the classic char-RNN)")
    model.add_argument(
        "--cell", choices=list(CELLS), help="recurrent cell: tanh RNN, GRU or LSTM (tanh)"
    )
    model.add_argument("--hidden-size", type=positive_int, help="hidden units H (100)")
    model.add_argument("--seq-length", type=positive_int, help="characters per chunk (25)")
    model.add_argument("--k1", type=positive_int, help="TBPTT: update every k1 steps (k2)")
    model.add_argument("--k2", type=positive_int, help="TBPTT: backpropagate k2 steps (seq-length)")
    model.add_argument("--optimizer", choices=sorted(OPTIMIZERS), help="optimiser (adagrad)")
    model.add_argument(
        "--lr", type=_positive_float, dest="learning_rate", help="learning rate (0.1)"
    )
    clip = model.add_mutually_exclusive_group()
    clip.add_argument("--clip-value", type=_positive_float, help="clip entries to [-v, v] (5)")
    clip.add_argument("--no-clip", action="store_true", help="turn off clipping by value")
    model.add_argument("--clip-norm", type=_positive_float, help="clip the global norm (off)")
    model.add_argument("--weight-scale", type=_positive_float, help="init std (0.01)")
    model.add_argument("--seed", type=count, help="random seed of the initial weights (0)")
    model.add_argument("--dtype", choices=["float32", "float64"], help="precision (float64)")
    model.add_argument(
        "--batch-size", type=positive_int, help="B contiguous streams read side by side (1)"
    )
    length = model.add_mutually_exclusive_group()
    length.add_argument("--steps", type=count, help="total steps, counted from the start (2000)")
    length.add_argument("--epochs", type=_positive_float, help="total passes over the text")
    val = t.add_argument_group("validation and early stopping (default: off)")
    val.add_argument(
        "--val-fraction", type=_fraction,
        help="hold out this fraction of the text, its tail, for validation (0: none)",
    )  # fmt: skip
    val.add_argument("--val-every", type=positive_int, help="steps between validations (500)")
    val.add_argument(
        "--patience", type=positive_int, metavar="N",
        help="stop after N validations in a row without a new best (off)",
    )  # fmt: skip
    lr = t.add_argument_group("learning-rate schedule (default: constant --lr)")
    lr.add_argument(
        "--lr-schedule", choices=sorted(LR_SCHEDULES), dest="schedule",
        help="constant, step (--lr-milestones, --lr-rates) or cosine (to --lr-min)",
    )  # fmt: skip
    lr.add_argument(
        "--lr-milestones", type=_milestones, metavar="S1,S2",
        help="step: the steps after which the rate changes",
    )  # fmt: skip
    lr.add_argument(
        "--lr-rates", type=_rates, metavar="R1,R2", help="step: the rate from each milestone on"
    )
    lr.add_argument(
        "--lr-min", type=_non_negative_float, help="cosine: the rate at the last step (0)"
    )
    lr.add_argument(
        "--warmup", type=count, metavar="N", help="rise linearly to --lr over the first N steps (0)"
    )
    io = t.add_argument_group("output and snapshots")
    io.add_argument(
        "--snapshot",
        "--checkpoint",  # the option's first name, kept so that existing commands still work
        type=_file_path,
        help="snapshot file: the saved training state (model.npz, or --resume's); with "
        "validation, the best model goes to NAME.best.npz beside it",
    )
    io.add_argument(
        "--overwrite", action="store_true",
        help="replace an existing snapshot at --snapshot (refused without it)",
    )  # fmt: skip
    io.add_argument(
        "--snapshot-every",
        "--checkpoint-every",  # kept, as --checkpoint
        type=count,
        default=500,
        help="0: only at the end",
    )
    io.add_argument("--resume", type=Path, metavar="SNAPSHOT", help="continue from a snapshot")
    io.add_argument("--sample-every", type=count, default=500, help="print a sample (0: never)")
    io.add_argument("--sample-length", type=sample_length, default=200)
    io.add_argument("--log-every", type=positive_int, default=100, help="without a progress bar")
    io.add_argument("--no-progress", action="store_true", help="plain log lines, no tqdm bar")
    add_debug(t)
    t.set_defaults(func=cmd_train)

    s = sub.add_parser("sample", help="generate text from a snapshot")
    s.add_argument("snapshot", type=Path, metavar="SNAPSHOT")
    s.add_argument("--prime", default="", help="text fed to the model first")
    s.add_argument("--length", type=sample_length, default=200, help="characters to generate")
    s.add_argument(
        "--temperature", type=_positive_float, default=1.0,
        help="< 1: more conservative; near 0: the most likely character (greedy)",
    )  # fmt: skip
    s.add_argument("--seed", type=count, default=0)
    add_debug(s)
    s.set_defaults(func=cmd_sample)

    g = sub.add_parser("gradcheck", help="check BPTT's gradient against finite differences")
    g.add_argument("--input-size", type=positive_int, default=5, help="D (5)")
    g.add_argument("--hidden-size", type=positive_int, default=8, help="H (8)")
    g.add_argument("--output-size", type=positive_int, default=4, help="V (4)")
    g.add_argument("--seq-length", type=positive_int, default=6, help="T (6)")
    g.add_argument("--batch-size", type=positive_int, default=3, help="B (3)")
    g.add_argument("--algorithm", choices=["vectorised", "stepwise"], default="vectorised")
    eps, tol = _GRADCHECK_DEFAULTS["eps"], _GRADCHECK_DEFAULTS["tol"]
    g.add_argument("--eps", type=_positive_float, help=f"finite-difference step ({eps})")
    g.add_argument("--tol", type=_positive_float, help=f"largest relative error ({tol})")
    g.add_argument("--weight-scale", type=_positive_float, default=0.5)
    g.add_argument("--seed", type=count, default=0)
    add_debug(g)
    g.set_defaults(func=cmd_gradcheck)
    return parser


# -- output that survives a closed pipe -----------------------------------------------------------


def _silence_stdout() -> None:
    """Point stdout at /dev/null once its reader has gone (``| head``), so that no later write,
    not even Python's flush at exit, fails again with a second BrokenPipeError."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (AttributeError, OSError, ValueError):  # stdout is no file (e.g. captured by a test)
        pass


def _error(message: str) -> None:
    """Print a one-line message to stderr (which may be closed too: then say nothing)."""
    with suppress(OSError):
        print(" ".join(message.splitlines()), file=sys.stderr, flush=True)


def _human(n_bytes: float) -> str:
    units = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB"]
    while n_bytes >= 1024 and len(units) > 1:
        n_bytes /= 1024
        units.pop(0)
    return f"{n_bytes:.1f} {units[0]}"


def available_memory() -> int | None:
    """Bytes of memory the operating system reports as available, or None if it does not say.

    Linux's ``MemAvailable`` (free memory plus caches it can drop), else the free physical pages
    from ``os.sysconf``. Explained in Appendix A1.
    """
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        return None


def _check_memory(needed: int, what: str) -> None:
    """Refuse, before allocating anything, a configuration that cannot fit in memory."""
    available = available_memory()
    if available is not None and needed > available:
        raise UsageError(
            f"{what} needs about {_human(needed)} of memory, more than the "
            f"{_human(available)} available; choose smaller sizes"
        )


# -- train: checks before any work ----------------------------------------------------------------


def _load_text(args: argparse.Namespace) -> tuple[str, str]:
    if args.text_file is not None and args.corpus is not None:
        raise UsageError(
            f"give a TEXT_FILE or --corpus, not both (got {args.text_file!r} and --corpus "
            f"{args.corpus})"
        )
    if args.text_file is None:
        corpus = args.corpus or "pydoc"
        return CORPORA[corpus](), f"the {corpus!r} corpus"
    return read_text(args.text_file, encoding=args.encoding), repr(args.text_file)


def best_path(path: Path) -> Path:
    """Where the best model by validation is kept, beside the snapshot: ``NAME.best.npz``.

    Explained in Appendix A1.
    """
    return path.with_name(f"{path.stem}.best{path.suffix or '.npz'}")


def _same_run(candidate: Path, trainer: CharModelTrainer) -> bool:
    """Whether ``candidate`` is a snapshot of the run being resumed (same text and setting)."""
    try:
        meta = load_snapshot(candidate).metadata
    except (OSError, SnapshotError):
        return False
    config = meta.get("config")
    if not isinstance(config, dict):
        return False
    # A field added to TrainConfig after the snapshot was written has its default there.
    saved = {**TrainConfig().as_dict(), **config}
    same_text = meta.get("text_sha256") == trainer.text_sha256
    return bool(same_text and saved == trainer.config.as_dict())


def _check_target(
    args: argparse.Namespace,
    path: Path,
    what: str = "snapshot",
    trainer: CharModelTrainer | None = None,
) -> None:
    """Refuse a snapshot path whose saves would destroy a file the user did not give up."""
    if not path.exists():
        return
    name = str(path)
    if not path.is_file():
        raise UsageError(f"{what} {name!r} is a directory or not a regular file")
    if args.text_file is not None and os.path.samefile(path, args.text_file):
        raise UsageError(
            f"{what} {name!r} is the training text: saving would overwrite it; "
            "choose another --snapshot"
        )
    if args.resume is not None and os.path.samefile(path, args.resume):
        if what == "snapshot":
            return  # continuing a snapshot in place
        raise UsageError(
            f"{what} {name!r} is the --resume snapshot: a new best would replace it; resume a "
            "copy, or choose another --snapshot"
        )
    if trainer is not None and args.resume is not None and _same_run(path, trainer):
        return  # the best model of the run being resumed
    if not args.overwrite:
        resumed = f", not the --resume snapshot {str(args.resume)!r}" if args.resume else ""
        if what == "snapshot":
            advice = f"continue it with --resume {name}, replace it with --overwrite"
        else:
            advice = "replace it with --overwrite"
        raise UsageError(
            f"{what} {name!r} already exists{resumed}; {advice}, or choose another --snapshot"
        )
    try:
        load_snapshot(path)
    except SnapshotError:
        raise UsageError(
            f"{name!r} is not a bptt snapshot, and --overwrite only replaces snapshots; "
            "choose another --snapshot"
        ) from None


def _prepare_folder(path: Path) -> None:
    """Create the snapshot's folder and try a write in it: before training, not after."""
    parent = str(path.parent)
    if path.parent.exists() and not path.parent.is_dir():
        raise UsageError(f"snapshot directory {parent!r} is not a directory")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        reason = err.strerror or err
        raise UsageError(f"cannot create snapshot directory {parent!r}: {reason}") from None
    check_writable(path)


def _config_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The TrainConfig fields given explicitly on the command line (but the schedule)."""
    given = {f.name: getattr(args, f.name) for f in fields(TrainConfig) if hasattr(args, f.name)}
    given = {k: v for k, v in given.items() if v is not None}
    if args.no_clip:
        given["clip_value"] = None
    return given


def _option(field: str, value: Any = None) -> str:
    """A TrainConfig field spelled as its command-line option: ``--batch-size 16``."""
    flag = {"learning_rate": "--lr"}.get(field, "--" + field.replace("_", "-"))
    return flag if value is None else f"{flag} {value}"


SCHEDULE_OPTIONS = {
    "lr_milestones": ("--lr-milestones", "step"),
    "lr_rates": ("--lr-rates", "step"),
    "lr_min": ("--lr-min", "cosine"),
}


def _check_option_pairs(args: argparse.Namespace) -> None:
    """Options that mean nothing without another one are refused, not silently ignored."""
    if not args.val_fraction:
        for flag, value in (("--val-every", args.val_every), ("--patience", args.patience)):
            if value is not None:
                got = (
                    ""
                    if args.val_fraction is None
                    else f" (got --val-fraction {args.val_fraction})"
                )
                raise UsageError(
                    f"{flag} needs --val-fraction > 0, the held-out text it validates on{got}"
                )
    for dest, (flag, schedule) in SCHEDULE_OPTIONS.items():
        if getattr(args, dest) is not None and args.schedule != schedule:
            raise UsageError(
                f"{flag} belongs to --lr-schedule {schedule}, got --lr-schedule "
                f"{args.schedule or 'constant (the default)'}"
            )
    if args.schedule == "step" and (args.lr_milestones is None or args.lr_rates is None):
        raise UsageError(
            "--lr-schedule step needs --lr-milestones (the steps where the rate changes) and "
            "--lr-rates (the rate from each of them on), e.g. --lr-milestones 3500 --lr-rates 0.01"
        )


def _schedule_from_args(
    args: argparse.Namespace, total: int, learning_rate: float
) -> LRSchedule | None:
    """The learning-rate schedule the options ask for, checked against the run's ``total``
    steps; ``None`` when no schedule option was given."""
    warmup = 0 if args.warmup is None else args.warmup
    if args.schedule is None and args.warmup is None:
        return None
    if args.warmup is not None and total and warmup >= total:
        raise UsageError(f"--warmup must be below the run's last step ({total}), got {warmup}")
    if args.schedule == "step":
        milestones, rates = args.lr_milestones, args.lr_rates
        if len(rates) != len(milestones):
            raise UsageError(
                f"--lr-rates must give one rate per milestone: {len(milestones)} in "
                f"--lr-milestones {','.join(map(str, milestones))}, got {len(rates)} in "
                f"--lr-rates {','.join(map(str, rates))}"
            )
        if milestones[-1] >= total:
            raise UsageError(
                f"--lr-milestones must be below the run's last step ({total}): a later one never "
                f"changes the rate; got {','.join(map(str, milestones))}"
            )
        if warmup > milestones[0]:
            raise UsageError(
                f"--warmup must end by the first of --lr-milestones ({milestones[0]}), got {warmup}"
            )
        return StepLR(milestones=milestones, rates=rates, warmup=warmup)
    if args.schedule == "cosine":
        lr_min = 0.0 if args.lr_min is None else args.lr_min
        if lr_min >= learning_rate:
            raise UsageError(
                f"--lr-min must be below the learning rate (--lr {learning_rate}), got {lr_min}"
            )
        if total < 1:
            raise UsageError("--lr-schedule cosine needs a run of at least one step, got --steps 0")
        return CosineLR(total_steps=total, min_rate=lr_min, warmup=warmup)
    # A constant rate without warm-up is the training without a schedule, and is stored as such.
    return ConstantLR(warmup=warmup) if warmup else None


def _make_trainer(args: argparse.Namespace, text: str, source: str) -> tuple[CharModelTrainer, int]:
    """The trainer (new or resumed) and the step at which this run ends."""
    given = _config_from_args(args)
    if args.resume is not None:
        return _resumed_trainer(args, text, given)
    _check_option_pairs(args)
    config = TrainConfig(**given)
    if len(text) < config.seq_length + 1:
        raise UsageError(
            f"{source} has {len(text)} characters, too short for --seq-length "
            f"{config.seq_length} (needs at least {config.seq_length + 1})"
        )
    config.validate()
    try:
        split = split_text(len(text), config, name=_option)
    except ValueError as err:
        raise UsageError(f"{source}: {err}") from None
    total = _total_steps(args, (split.stream_length - 1) // config.seq_length)
    config.lr_schedule = _schedule_from_args(args, total, config.learning_rate)
    config.validate()
    V = len(set(text))
    batch = f", --batch-size {config.batch_size}" if config.batch_size > 1 else ""
    cell = "" if config.cell == DEFAULT_CELL else f"--cell {config.cell}, "
    _check_memory(
        config.memory_bytes(V),
        f"a model with {cell}--hidden-size {config.hidden_size}, {V} characters and --seq-length "
        f"{config.seq_length}{batch} ({config.dtype})",
    )
    return CharModelTrainer(text, config), total


def _resumed_trainer(
    args: argparse.Namespace, text: str, given: dict[str, Any]
) -> tuple[CharModelTrainer, int]:
    trainer = CharModelTrainer.load(args.resume, text)
    total = _total_steps(args, trainer.steps_per_epoch)
    saved = vars(trainer.config)
    if args.schedule is not None or args.warmup is not None:
        _check_option_pairs(argparse.Namespace(**{**vars(args), "val_fraction": 1}))
        given["lr_schedule"] = _schedule_from_args(args, total, trainer.config.learning_rate)
    different = {k: (v, saved[k]) for k, v in given.items() if saved[k] != v}
    if different:
        desc = ", ".join(f"{k}={new!r} (snapshot: {old!r})" for k, (new, old) in different.items())
        raise SnapshotError(
            f"snapshot {str(args.resume)!r} is from a different model or setting: {desc}; "
            "drop these options to resume it"
        )
    return trainer, total


def _total_steps(args: argparse.Namespace, steps_per_epoch: int) -> int:
    if args.epochs is not None:
        return max(1, round(float(args.epochs) * steps_per_epoch))
    return 2000 if args.steps is None else int(args.steps)


# -- train: the run -------------------------------------------------------------------------------


class _Progress:
    """A tqdm bar when tqdm is installed (the ``cli`` extra), else a log line every N steps.

    When the reader of the output goes away (``bptt train ... | head``), writing raises
    BrokenPipeError: then ``closed`` is set and training stops like after Ctrl-C.
    """

    def __init__(self, start: int, total: int, log_every: int, use_bar: bool) -> None:
        self.bar = None
        self.closed = False
        self.log_every = log_every
        self.t0, self.start = time.perf_counter(), start
        if use_bar:
            try:
                from tqdm import tqdm  # type: ignore[import-untyped]
            except ImportError:
                pass
            else:
                self.bar = tqdm(total=total, initial=start, unit="step", dynamic_ncols=True)

    def update(self, trainer: CharModelTrainer, total: int) -> None:
        """After a step: the bar, or every ``log_every`` steps a line, with the recent mean loss
        per character (over the last RECENT_STEPS steps, or all of them before that)."""
        step, recent = trainer.step_count, trainer.recent_loss or float("nan")
        scheduled = trainer.config.lr_schedule is not None
        if self.bar is not None:
            try:
                self.bar.update(1)
                postfix = {"loss": f"{recent:.3f}"}
                if scheduled:
                    postfix["lr"] = f"{trainer.optimizer.learning_rate:.3g}"
                self.bar.set_postfix(postfix, refresh=False)
            except BrokenPipeError:
                self._output_closed()
        elif step % self.log_every == 0 or step == total:
            rate = (step - self.start) / max(time.perf_counter() - self.t0, 1e-9)
            n = len(trainer.recent_losses)
            lr = f"  lr {trainer.optimizer.learning_rate:.4g}" if scheduled else ""
            self.write(
                f"step {step}/{total}  loss {recent:.3f} nats/char (mean of the last {n} "
                f"steps){lr}  ({rate:.0f} steps/s)"
            )

    def write(self, text: str) -> None:
        if self.closed:
            return
        try:
            if self.bar is not None:
                self.bar.write(text)
            else:
                print(text, flush=True)
        except BrokenPipeError:
            self._output_closed()

    def _output_closed(self) -> None:
        self.closed = True
        _silence_stdout()

    def close(self) -> None:
        if self.bar is not None:
            with suppress(OSError):
                self.bar.close()
            self.bar = None


@contextmanager
def _stop_requests() -> Iterator[list[str]]:
    """SIGINT (Ctrl-C) and SIGTERM ask training to stop; the list collects the signals' names.

    The step in progress is finished first: a half-applied update could not be resumed exactly.
    A second signal stops at once, by the signal's default action (the snapshot on disk is
    complete whenever that happens, thanks to the atomic save).
    """
    requested: list[str] = []

    def handler(signum: int, frame: Any) -> None:
        if requested:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        requested.append(signal.Signals(signum).name)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield requested
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def _good_to_save(trainer: CharModelTrainer) -> bool:
    """A model is saved only while its loss is within the divergence limit: a good snapshot is
    never replaced by a diverged model."""
    return trainer.next_loss() <= trainer.loss_limit


def _diverged(
    progress: _Progress,
    path: Path,
    good: tuple[Path, int] | None,
    step: int,
    why: str,
    best: tuple[Path, int] | None = None,
) -> int:
    progress.close()
    if good is not None:
        kept = f"the last good snapshot is {str(good[0])!r} (step {good[1]})"
    elif path.exists():
        kept = f"{str(path)!r} was not changed"
    else:
        kept = "no snapshot was written"
    if best is not None:
        kept += f", the best by validation {str(best[0])!r} (step {best[1]})"
    _error(
        f"bptt train: error: training stopped at step {step}: {why}; {kept}. "
        "Try a smaller --lr, clipping, or a smaller --weight-scale"
    )
    return EXIT_DIVERGED


def _sample_text(trainer: CharModelTrainer, step: int, length: int) -> str:
    # Its own generator, so sampling never changes the training's random state; from the state
    # of the first stream.
    rng = np.random.default_rng([trainer.config.seed, step])
    text = sample(
        trainer.params,
        trainer.vocab,
        length=length,
        rng=rng,
        h0=trainer.h[:1].copy(),
        cell=trainer.cell,
    )
    return f"--- sample at step {step} ---\n{text}\n---"


def _bits(nats: float) -> float:
    return nats / float(np.log(2))


def _validation_line(trainer: CharModelTrainer, check: ValidationCheck, saved: Path | None) -> str:
    line = (
        f"validation at step {check.step}: {check.loss:.4f} nats/char, "
        f"{check.bits_per_char:.4f} bits/char"
    )
    if check.improved:
        return line + (f", the best so far: saved {str(saved)!r}" if saved else ", the best so far")
    patience = trainer.config.patience
    of = f" of {patience}" if patience is not None else ""
    return (
        line
        + (
            f" (best {_bits(trainer.best_val_loss):.4f} bits/char at step {trainer.best_step}; "
            if trainer.best_val_loss is not None
            else " ("
        )
        + f"{trainer.checks_since_best}{of} checks without a new best)"
    )


def _early_stop_text(trainer: CharModelTrainer, best: Path) -> str:
    c = trainer.config
    where = (
        f"the best model, step {trainer.best_step} with {_bits(trainer.best_val_loss):.4f} "
        f"bits/char, is {str(best)!r}"
        if trainer.best_val_loss is not None
        else "no validation was good enough to keep"
    )
    return (
        f"stopped early at step {trainer.step_count}: {c.patience} validations in a row (one "
        f"every {c.val_every} steps) without a new best; {where}"
    )


def _run(
    args: argparse.Namespace,
    trainer: CharModelTrainer,
    path: Path,
    total: int,
    banner: str,
    stop: list[str],
) -> int:
    """Train until step ``total``, a stop request, early stopping or divergence; save; return the
    exit status."""
    limit = trainer.loss_limit
    too_high = (
        f"the model has diverged: its loss stayed above {limit:.1f} ({DIVERGENCE_FACTOR:g} "
        f"times the uniform model's {trainer.initial_loss:.1f}) for {DIVERGENCE_STEPS} steps "
        "in a row"
    )
    progress = _Progress(trainer.step_count, total, args.log_every, not args.no_progress)
    good = (args.resume, trainer.step_count) if args.resume else None  # the last good snapshot
    validating = trainer.val_data.size > 0
    best_file = best_path(path)
    best = (best_file, trainer.best_step) if validating and trainer.best_step is not None else None
    try:
        progress.write(banner)
        while trainer.step_count < total and not stop and not progress.closed:
            try:
                trainer.train_step()
            except FloatingPointError as err:
                return _diverged(progress, path, good, trainer.step_count + 1, str(err), best)
            step = trainer.step_count
            if trainer.diverged:
                return _diverged(progress, path, good, step, too_high, best)
            progress.update(trainer, total)
            check = trainer.maybe_validate()
            if check is not None:
                saved = None
                if check.improved and _good_to_save(trainer):
                    trainer.save(best_file)
                    best = saved = (best_file, step)
                progress.write(_validation_line(trainer, check, saved and saved[0]))
            if args.sample_every and step % args.sample_every == 0:
                progress.write(_sample_text(trainer, step, args.sample_length))
            if trainer.stopped_early:
                break
            due = args.snapshot_every and step % args.snapshot_every == 0 and step < total
            if due and _good_to_save(trainer):
                trainer.save(path)
                good = (path, step)
        if progress.closed:
            stop.append("broken pipe")
        if not _good_to_save(trainer):
            why = (
                f"the model has diverged: its loss on the next chunk, {trainer.next_loss():.4g}, "
                f"is above {limit:.1f} ({DIVERGENCE_FACTOR:g} times the uniform model's), so it "
                "was not saved"
            )
            return _diverged(progress, path, good, trainer.step_count, why, best)
        trainer.save(path)
    finally:
        progress.close()
    if stop:
        _error(
            f"bptt train: stopped by {stop[0]}: saved step {trainer.step_count} to {str(path)!r}; "
            f"continue with --resume {path}"
        )
        return STOP_CODES[stop[0]]
    recent = trainer.recent_loss
    summary = f"done: step {trainer.step_count}"
    if recent is not None:
        summary += f", recent loss {recent:.3f} nats/char"
    if validating:
        loss = trainer.validation_loss()  # measured, not recorded: the record stays resumable
        summary += f", validation {loss:.4f} nats/char ({_bits(loss):.4f} bits/char)"
    summary += f"; saved {str(path)!r}"
    if trainer.stopped_early:
        summary = f"{_early_stop_text(trainer, best_file)}\n{summary}"
    elif best is not None:
        summary += (
            f"; the best model by validation, step {trainer.best_step} with "
            f"{_bits(trainer.best_val_loss or float('nan')):.4f} bits/char, is {str(best_file)!r}"
        )
    try:
        print(summary, flush=True)
    except BrokenPipeError:  # everything is saved; only the last line could not be shown
        _silence_stdout()
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    """``bptt train``: train or resume, with snapshots periodically and on exit.

    Everything that can be checked is checked before training starts: the text, the options, the
    memory the model needs, and that the snapshot (and, with validation, the best model's file
    beside it) can be written without destroying anything.
    """
    text, source = _load_text(args)
    trainer, total = _make_trainer(args, text, source)
    path = args.snapshot or args.resume or Path("model.npz")
    _check_target(args, path)
    validating = trainer.val_data.size > 0
    if validating:
        _check_target(args, best_path(path), "best snapshot", trainer)
    if args.resume is not None and trainer.stopped_early:
        print(
            f"nothing to do: {str(args.resume)!r} "
            f"{_early_stop_text(trainer, best_path(path))}; nothing was trained or written"
        )
        return 0
    if args.resume is not None and total <= trainer.step_count:
        print(
            f"nothing to do: {str(args.resume)!r} is at step {trainer.step_count} and this run "
            f"ends at step {total} (--steps and --epochs count from the start of training); "
            "nothing was trained or written"
        )
        return 0
    _prepare_folder(path)
    c = trainer.config
    k1, k2 = c.truncation
    how = "full BPTT" if k1 == k2 == c.seq_length else f"TBPTT(k1={k1}, k2={k2})"
    verb = f"resuming at step {trainer.step_count}" if args.resume else "training"
    split = trainer.split
    streams = (
        f", {c.batch_size} streams of {split.stream_length} characters" if c.batch_size > 1 else ""
    )
    schedule = f" ({c.lr_schedule})" if c.lr_schedule is not None else ""
    held_out = (
        f"; validation on the last {split.n_val} characters every {c.val_every} steps"
        + (f", patience {c.patience}" if c.patience is not None else "")
        if validating
        else ""
    )
    banner = (
        f"{verb} on {source}: {len(text)} characters, vocabulary {trainer.vocab.size}; "
        f"{c.cell} cell, H={c.hidden_size}, seq_length={c.seq_length}{streams}, {how}, "
        f"{c.optimizer} "
        f"lr={c.learning_rate}{schedule}, {c.dtype}{held_out}; until step {total}; "
        f"snapshot {str(path)!r}"
    )
    with _stop_requests() as stop:
        return _run(args, trainer, path, total, banner, stop)


# -- sample and gradcheck -------------------------------------------------------------------------


def cmd_sample(args: argparse.Namespace) -> int:
    """``bptt sample``: print text generated by a snapshot's model."""
    params, vocab, meta = load_model(args.snapshot)
    unknown = sorted(set(args.prime) - set(vocab.chars))
    if unknown:
        raise UsageError(f"--prime has characters the model never saw: {unknown[:10]}")
    text = sample(
        params,
        vocab,
        length=args.length,
        rng=np.random.default_rng(args.seed),
        prime=args.prime,
        temperature=args.temperature,
        cell=model_cell(meta),
    )
    print(args.prime + text)
    return 0


def cmd_gradcheck(args: argparse.Namespace) -> int:
    """``bptt gradcheck``: check a random model's BPTT gradient; exit status 1 if it fails."""
    D, H, V = args.input_size, args.hidden_size, args.output_size
    T, B = args.seq_length, args.batch_size
    # Parameters, gradients and perturbed copies, plus states and outputs, all float64.
    n_params = D * H + H * H + H + V * H + V
    _check_memory(
        8 * (4 * n_params + 3 * T * B * (H + V)), f"gradcheck with D={D}, H={H}, V={V}, T={T}"
    )
    rng = np.random.default_rng(args.seed)
    params = init_params(D, H, V, rng=rng, weight_scale=args.weight_scale)
    inputs = rng.integers(D, size=(T, B))
    targets = rng.integers(V, size=(T, B))
    f = loss_and_grads if args.algorithm == "vectorised" else loss_and_grads_stepwise
    given = {k: getattr(args, k) for k in ("eps", "tol") if getattr(args, k) is not None}
    with warnings.catch_warnings(record=True) as caught:  # shown below as plain lines
        warnings.simplefilter("always")
        # tuple(): the (loss, grads, h) that gradcheck reads, also from a BPTTResult.
        report = gradcheck(lambda p: tuple(f(p, inputs, targets)), params, rng=rng, **given)
    text = str(report)
    print(f"gradient check of {args.algorithm} BPTT: D={D}, H={H}, V={V}, T={T}, B={B}, float64")
    print(text)
    for warning in caught:
        if str(warning.message) not in text:
            _error(f"bptt gradcheck: warning: {warning.message}")
    # An inconclusive check (finite differences too coarse to see an error) is no pass either.
    return 0 if report.passed and report.conclusive else EXIT_GRADCHECK_FAILED


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``bptt`` and ``python -m bptt``; returns the exit status."""
    try:
        args = build_parser().parse_args(argv)
    except BrokenPipeError:  # `bptt --help | head -1`
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    try:
        status: int = args.func(args)
        return status
    except BrokenPipeError:
        # The reader of our output has gone (`bptt sample ... | head`): stop quietly, as Unix
        # tools do. (`train` handles this itself, to save first.)
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except (OSError, ValueError, TypeError, FloatingPointError, MemoryError) as err:
        if args.debug:
            raise
        # SnapshotError and UsageError are ValueErrors; FileNotFoundError is an OSError.
        reason = f"out of memory: {err}" if isinstance(err, MemoryError) else err
        _error(f"bptt {args.command}: error: {reason}")
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        _error(f"bptt {args.command}: interrupted")
        return EXIT_INTERRUPTED
