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
import os
import signal
import sys
import time
import warnings
from collections.abc import Iterator, Sequence
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
from bptt.app.snapshot import SnapshotError, check_writable, load_model, load_snapshot
from bptt.app.train import DIVERGENCE_FACTOR, DIVERGENCE_STEPS, CharModelTrainer, TrainConfig
from bptt.gradcheck import gradcheck
from bptt.optim import OPTIMIZERS
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


def _int_at_least(minimum: int, maximum: int | None = None):
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
        description="Train, sample and check tanh RNN character models with BPTT.",
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
    length = model.add_mutually_exclusive_group()
    length.add_argument("--steps", type=count, help="total steps, counted from the start (2000)")
    length.add_argument("--epochs", type=_positive_float, help="total passes over the text")
    io = t.add_argument_group("output and snapshots")
    io.add_argument(
        "--snapshot",
        "--checkpoint",  # the option's first name, kept so that existing commands still work
        type=_file_path,
        help="snapshot file: the saved training state (model.npz, or --resume's)",
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


def _check_target(args: argparse.Namespace, path: Path) -> None:
    """Refuse a snapshot path whose saves would destroy a file the user did not give up."""
    if not path.exists():
        return
    name = str(path)
    if not path.is_file():
        raise UsageError(f"snapshot {name!r} is a directory or not a regular file")
    if args.text_file is not None and os.path.samefile(path, args.text_file):
        raise UsageError(
            f"snapshot {name!r} is the training text: saving would overwrite it; "
            "choose another --snapshot"
        )
    if args.resume is not None and os.path.samefile(path, args.resume):
        return  # continuing a snapshot in place
    if not args.overwrite:
        resumed = f", not the --resume snapshot {str(args.resume)!r}" if args.resume else ""
        raise UsageError(
            f"snapshot {name!r} already exists{resumed}; continue it with --resume {name}, "
            "replace it with --overwrite, or choose another --snapshot"
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
    """The TrainConfig fields given explicitly on the command line."""
    given = {f.name: getattr(args, f.name) for f in fields(TrainConfig) if hasattr(args, f.name)}
    given = {k: v for k, v in given.items() if v is not None}
    if args.no_clip:
        given["clip_value"] = None
    return given


def _make_trainer(args: argparse.Namespace, text: str, source: str) -> CharModelTrainer:
    given = _config_from_args(args)
    if args.resume is not None:
        return _resumed_trainer(args, text, given)
    config = TrainConfig(**given)
    if len(text) < config.seq_length + 1:
        raise UsageError(
            f"{source} has {len(text)} characters, too short for --seq-length "
            f"{config.seq_length} (needs at least {config.seq_length + 1})"
        )
    config.validate()
    V = len(set(text))
    _check_memory(
        config.memory_bytes(V),
        f"a model with --hidden-size {config.hidden_size}, {V} characters and --seq-length "
        f"{config.seq_length} ({config.dtype})",
    )
    return CharModelTrainer(text, config)


def _resumed_trainer(args: argparse.Namespace, text: str, given: dict) -> CharModelTrainer:
    trainer = CharModelTrainer.load(args.resume, text)
    saved = vars(trainer.config)
    different = {k: (v, saved[k]) for k, v in given.items() if saved[k] != v}
    if different:
        desc = ", ".join(f"{k}={new!r} (snapshot: {old!r})" for k, (new, old) in different.items())
        raise SnapshotError(
            f"snapshot {str(args.resume)!r} is from a different model or setting: {desc}; "
            "drop these options to resume it"
        )
    return trainer


def _total_steps(args: argparse.Namespace, trainer: CharModelTrainer) -> int:
    if args.epochs is not None:
        return max(1, round(args.epochs * trainer.steps_per_epoch))
    return 2000 if args.steps is None else args.steps


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
                from tqdm import tqdm
            except ImportError:
                pass
            else:
                self.bar = tqdm(total=total, initial=start, unit="step", dynamic_ncols=True)

    def update(self, step: int, total: int, loss: float, smoothed: float) -> None:
        if self.bar is not None:
            try:
                self.bar.update(1)
                self.bar.set_postfix(loss=f"{smoothed:.2f}", refresh=False)
            except BrokenPipeError:
                self._output_closed()
        elif step % self.log_every == 0 or step == total:
            rate = (step - self.start) / max(time.perf_counter() - self.t0, 1e-9)
            self.write(
                f"step {step}/{total}  loss {loss:.3f}  smoothed {smoothed:.3f}  "
                f"({rate:.0f} steps/s)"
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
    progress: _Progress, path: Path, good: tuple[Path, int] | None, step: int, why: str
) -> int:
    progress.close()
    if good is not None:
        kept = f"the last good snapshot is {str(good[0])!r} (step {good[1]})"
    elif path.exists():
        kept = f"{str(path)!r} was not changed"
    else:
        kept = "no snapshot was written"
    _error(
        f"bptt train: error: training stopped at step {step}: {why}; {kept}. "
        "Try a smaller --lr, clipping, or a smaller --weight-scale"
    )
    return EXIT_DIVERGED


def _sample_text(trainer: CharModelTrainer, step: int, length: int) -> str:
    # Its own generator, so sampling never changes the training's random state.
    rng = np.random.default_rng([trainer.config.seed, step])
    text = sample(trainer.params, trainer.vocab, length=length, rng=rng, h0=trainer.h.copy())
    return f"--- sample at step {step} ---\n{text}\n---"


def _run(
    args: argparse.Namespace,
    trainer: CharModelTrainer,
    path: Path,
    total: int,
    banner: str,
    stop: list[str],
) -> int:
    """Train until step ``total``, a stop request or divergence; save; return the exit status."""
    limit = trainer.loss_limit
    too_high = (
        f"the model has diverged: its loss stayed above {limit:.1f} ({DIVERGENCE_FACTOR:g} "
        f"times the uniform model's {trainer.initial_loss:.1f}) for {DIVERGENCE_STEPS} steps "
        "in a row"
    )
    progress = _Progress(trainer.step_count, total, args.log_every, not args.no_progress)
    good = (args.resume, trainer.step_count) if args.resume else None  # the last good snapshot
    try:
        progress.write(banner)
        while trainer.step_count < total and not stop and not progress.closed:
            try:
                loss = trainer.train_step()
            except FloatingPointError as err:
                return _diverged(progress, path, good, trainer.step_count + 1, str(err))
            step = trainer.step_count
            if trainer.diverged:
                return _diverged(progress, path, good, step, too_high)
            progress.update(step, total, loss, trainer.smoothed_loss)
            if args.sample_every and step % args.sample_every == 0:
                progress.write(_sample_text(trainer, step, args.sample_length))
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
            return _diverged(progress, path, good, trainer.step_count, why)
        trainer.save(path)
    finally:
        progress.close()
    if stop:
        _error(
            f"bptt train: stopped by {stop[0]}: saved step {trainer.step_count} to {str(path)!r}; "
            f"continue with --resume {path}"
        )
        return STOP_CODES[stop[0]]
    try:
        print(
            f"done: step {trainer.step_count}, smoothed loss {trainer.smoothed_loss:.3f}; "
            f"saved {str(path)!r}",
            flush=True,
        )
    except BrokenPipeError:  # everything is saved; only the last line could not be shown
        _silence_stdout()
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    """``bptt train``: train or resume, with snapshots periodically and on exit.

    Everything that can be checked is checked before training starts: the text, the options, the
    memory the model needs, and that the snapshot can be written without destroying anything.
    """
    text, source = _load_text(args)
    trainer = _make_trainer(args, text, source)
    path = args.snapshot or args.resume or Path("model.npz")
    _check_target(args, path)
    total = _total_steps(args, trainer)
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
    banner = (
        f"{verb} on {source}: {len(text)} characters, vocabulary {trainer.vocab.size}; "
        f"H={c.hidden_size}, seq_length={c.seq_length}, {how}, {c.optimizer} lr={c.learning_rate}, "
        f"{c.dtype}; until step {total}; snapshot {str(path)!r}"
    )
    with _stop_requests() as stop:
        return _run(args, trainer, path, total, banner, stop)


# -- sample and gradcheck -------------------------------------------------------------------------


def cmd_sample(args: argparse.Namespace) -> int:
    """``bptt sample``: print text generated by a snapshot's model."""
    params, vocab, _ = load_model(args.snapshot)
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
        report = gradcheck(lambda p: f(p, inputs, targets), params, rng=rng, **given)
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
        return args.func(args)
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
