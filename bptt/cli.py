"""The ``bptt`` command line: train, sample and gradcheck (Appendix A1).

Run ``bptt --help`` (or ``python -m bptt --help``). Bad input gives a one-line error and a non-zero
exit status; ``--debug`` shows the full traceback instead.

Exit statuses: 0 success, 1 a failed gradient check, 2 bad input (a missing or undecodable file, a
text too short, an invalid option, a damaged or mismatched checkpoint), 3 training diverged (a
non-finite loss or gradient; the last good checkpoint is kept), 130 interrupted by Ctrl-C (after
saving a checkpoint).
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from . import __version__
from .checkpoint import CheckpointError, load_model
from .data import pydoc_topics, read_text, zen_of_python
from .gradcheck import gradcheck
from .optim import OPTIMIZERS
from .params import init_params
from .rnn import loss_and_grads
from .sampling import sample
from .stepwise import loss_and_grads_stepwise
from .train import CharModelTrainer, TrainConfig

EXIT_GRADCHECK_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_DIVERGED = 3
EXIT_INTERRUPTED = 130

CORPORA = {"zen": zen_of_python, "pydoc": pydoc_topics}
"""Corpora that ship with Python: ``train`` uses one when no text file is given."""


class UsageError(ValueError):
    """Bad input found after parsing (shown as a one-line error, exit status 2)."""


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line: ``bptt train: error: ...``."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _int_at_least(minimum: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be an integer >= {minimum}, got {value}")
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


positive_int = _int_at_least(1)
count = _int_at_least(0)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``bptt`` command (its ``--help`` is the reference)."""
    parser = _Parser(
        prog="bptt",
        description="Train, sample and check tanh RNN character models with BPTT.",
        epilog="Explained in the book's appendix 'The command line'.",
    )
    parser.add_argument("--version", action="version", version=f"bptt {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def add_debug(p: argparse.ArgumentParser) -> None:
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS)

    t = sub.add_parser("train", help="train a character model on a text file")
    t.add_argument("text_file", nargs="?", help="UTF-8 text to train on (default: --corpus)")
    t.add_argument(
        "--corpus", choices=sorted(CORPORA), default="pydoc",
        help="text that ships with Python, used when no TEXT_FILE is given (default: pydoc)",
    )  # fmt: skip
    t.add_argument("--encoding", default="utf-8", help="encoding of TEXT_FILE (default: utf-8)")
    model = t.add_argument_group("model and training (defaults: the classic char-RNN)")
    model.add_argument("--hidden-size", type=positive_int, help="hidden units H (100)")
    model.add_argument("--seq-length", type=positive_int, help="characters per chunk (25)")
    model.add_argument("--k1", type=positive_int, help="TBPTT: update every k1 steps (k2)")
    model.add_argument("--k2", type=positive_int, help="TBPTT: backpropagate k2 steps (seq-length)")
    model.add_argument("--optimizer", choices=sorted(OPTIMIZERS), help="optimiser (adagrad)")
    model.add_argument(
        "--lr", type=_positive_float, dest="learning_rate", help="learning rate (0.1)"
    )
    model.add_argument("--clip-value", type=_positive_float, help="clip entries to [-v, v] (5)")
    model.add_argument("--clip-norm", type=_positive_float, help="clip the global norm (off)")
    model.add_argument("--no-clip", action="store_true", help="turn off clipping by value")
    model.add_argument("--weight-scale", type=_positive_float, help="init std (0.01)")
    model.add_argument("--seed", type=count, help="random seed of the initial weights (0)")
    model.add_argument("--dtype", choices=["float32", "float64"], help="precision (float64)")
    length = model.add_mutually_exclusive_group()
    length.add_argument("--steps", type=count, help="total steps, counted from the start (2000)")
    length.add_argument("--epochs", type=_positive_float, help="total passes over the text")
    io = t.add_argument_group("output and checkpoints")
    io.add_argument("--checkpoint", type=Path, help="checkpoint file (model.npz, or --resume's)")
    io.add_argument("--checkpoint-every", type=count, default=500, help="0: only at the end")
    io.add_argument("--resume", type=Path, metavar="CKPT", help="continue from a checkpoint")
    io.add_argument("--sample-every", type=count, default=500, help="print a sample (0: never)")
    io.add_argument("--sample-length", type=positive_int, default=200)
    io.add_argument("--log-every", type=positive_int, default=100, help="without a progress bar")
    io.add_argument("--no-progress", action="store_true", help="plain log lines, no tqdm bar")
    add_debug(t)
    t.set_defaults(func=cmd_train)

    s = sub.add_parser("sample", help="generate text from a checkpoint")
    s.add_argument("checkpoint", type=Path, metavar="CKPT")
    s.add_argument("--prime", default="", help="text fed to the model first")
    s.add_argument("--length", type=positive_int, default=200, help="characters to generate")
    s.add_argument(
        "--temperature", type=_positive_float, default=1.0, help="< 1: more conservative"
    )
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
    g.add_argument("--eps", type=_positive_float, default=1e-5, help="finite-difference step")
    g.add_argument("--tol", type=_positive_float, default=1e-7, help="largest relative error")
    g.add_argument("--weight-scale", type=_positive_float, default=0.5)
    g.add_argument("--seed", type=count, default=0)
    add_debug(g)
    g.set_defaults(func=cmd_gradcheck)
    return parser


# -- train --------------------------------------------------------------------------------------


def _load_text(args: argparse.Namespace) -> tuple[str, str]:
    if args.text_file is None:
        return CORPORA[args.corpus](), f"the {args.corpus!r} corpus"
    return read_text(args.text_file, encoding=args.encoding), repr(args.text_file)


def _config_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The TrainConfig fields given explicitly on the command line."""
    given = {f.name: getattr(args, f.name) for f in fields(TrainConfig) if hasattr(args, f.name)}
    given = {k: v for k, v in given.items() if v is not None}
    if args.no_clip:
        given["clip_value"] = None
    return given


def _make_trainer(args: argparse.Namespace, text: str, source: str) -> CharModelTrainer:
    given = _config_from_args(args)
    seq_length = given.get("seq_length", TrainConfig.seq_length)
    if args.resume is None and len(text) < seq_length + 1:
        raise UsageError(
            f"{source} has {len(text)} characters, too short for --seq-length {seq_length} "
            f"(needs at least {seq_length + 1})"
        )
    if args.resume is None:
        return CharModelTrainer(text, TrainConfig(**given))
    trainer = CharModelTrainer.load(args.resume, text)
    saved = vars(trainer.config)
    different = {k: (v, saved[k]) for k, v in given.items() if saved[k] != v}
    if different:
        desc = ", ".join(
            f"{k}={new!r} (checkpoint: {old!r})" for k, (new, old) in different.items()
        )
        raise CheckpointError(
            f"checkpoint {str(args.resume)!r} is from a different model or setting: {desc}; "
            "drop these options to resume it"
        )
    return trainer


class _Progress:
    """A tqdm bar when tqdm is installed (the ``cli`` extra), else a log line every N steps."""

    def __init__(self, start: int, total: int, log_every: int, use_bar: bool) -> None:
        self.bar = None
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
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{smoothed:.2f}", refresh=False)
        elif step % self.log_every == 0 or step == total:
            rate = (step - self.start) / max(time.perf_counter() - self.t0, 1e-9)
            print(
                f"step {step}/{total}  loss {loss:.3f}  smoothed {smoothed:.3f}  "
                f"({rate:.0f} steps/s)",
                flush=True,
            )

    def write(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text)
        else:
            print(text, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def cmd_train(args: argparse.Namespace) -> int:
    """``bptt train``: train or resume, with checkpoints periodically and on exit."""
    text, source = _load_text(args)
    trainer = _make_trainer(args, text, source)
    if args.epochs is not None:
        total = max(1, round(args.epochs * trainer.steps_per_epoch))
    else:
        total = 2000 if args.steps is None else args.steps
    path = args.checkpoint or args.resume or Path("model.npz")
    if path.parent.exists() and not path.parent.is_dir():
        raise UsageError(f"checkpoint directory {str(path.parent)!r} is not a directory")
    # Create the run's folder up front: failing after an hour of training would lose the model.
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UsageError(
            f"cannot create checkpoint directory {str(path.parent)!r}: {err}"
        ) from None
    c = trainer.config
    k1, k2 = c.truncation
    how = "full BPTT" if k1 == k2 == c.seq_length else f"TBPTT(k1={k1}, k2={k2})"
    verb = f"resuming at step {trainer.step_count}" if args.resume else "training"
    print(
        f"{verb} on {source}: {len(text)} characters, vocabulary {trainer.vocab.size}; "
        f"H={c.hidden_size}, seq_length={c.seq_length}, {how}, {c.optimizer} lr={c.learning_rate}, "
        f"{c.dtype}; until step {total}; checkpoint {str(path)!r}",
        flush=True,
    )

    interrupted = False

    def on_sigint(signum: int, frame: Any) -> None:
        # Finish the step in progress (a half-applied update could not be resumed exactly), then
        # save and exit. A second Ctrl-C stops at once.
        nonlocal interrupted
        if interrupted:
            raise KeyboardInterrupt
        interrupted = True

    previous = signal.signal(signal.SIGINT, on_sigint)
    progress = _Progress(trainer.step_count, total, args.log_every, not args.no_progress)
    # The last good checkpoint: (file, step), reported if training diverges.
    saved = (args.resume, trainer.step_count) if args.resume else None
    try:
        while trainer.step_count < total and not interrupted:
            try:
                loss = trainer.train_step()
            except FloatingPointError as err:
                progress.close()
                kept = (
                    f"the last good checkpoint is {str(saved[0])!r} (step {saved[1]})"
                    if saved is not None
                    else "no checkpoint was written"
                )
                print(
                    f"bptt train: error: training stopped at step {trainer.step_count + 1}: {err}; "
                    f"{kept}. Try a smaller --lr or clipping.",
                    file=sys.stderr,
                )
                return EXIT_DIVERGED
            step = trainer.step_count
            progress.update(step, total, loss, trainer.smoothed_loss)
            if args.sample_every and step % args.sample_every == 0:
                # Its own generator, so sampling never changes the training's random state.
                rng = np.random.default_rng([c.seed, step])
                h = trainer.h.copy()
                text_out = sample(
                    trainer.params, trainer.vocab, length=args.sample_length, rng=rng, h0=h
                )
                progress.write(f"--- sample at step {step} ---\n{text_out}\n---")
            if args.checkpoint_every and step % args.checkpoint_every == 0 and step < total:
                trainer.save(path)
                saved = (path, step)
    finally:
        progress.close()
        signal.signal(signal.SIGINT, previous)
    trainer.save(path)
    if interrupted:
        print(
            f"interrupted: saved step {trainer.step_count} to {str(path)!r}; continue with the "
            f"same command plus --resume {path}",
            flush=True,
        )
        return EXIT_INTERRUPTED
    print(
        f"done: step {trainer.step_count}, smoothed loss {trainer.smoothed_loss:.3f}; "
        f"saved {str(path)!r}",
        flush=True,
    )
    return 0


# -- sample and gradcheck -------------------------------------------------------------------------


def cmd_sample(args: argparse.Namespace) -> int:
    """``bptt sample``: print text generated by a checkpoint's model."""
    params, vocab, _ = load_model(args.checkpoint)
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
    rng = np.random.default_rng(args.seed)
    D, H, V = args.input_size, args.hidden_size, args.output_size
    params = init_params(D, H, V, rng=rng, weight_scale=args.weight_scale)
    inputs = rng.integers(D, size=(args.seq_length, args.batch_size))
    targets = rng.integers(V, size=(args.seq_length, args.batch_size))
    f = loss_and_grads if args.algorithm == "vectorised" else loss_and_grads_stepwise
    report = gradcheck(lambda p: f(p, inputs, targets), params, eps=args.eps, tol=args.tol, rng=rng)
    print(
        f"gradient check of {args.algorithm} BPTT: D={D}, H={H}, V={V}, "
        f"T={args.seq_length}, B={args.batch_size}, float64"
    )
    print(report)
    return 0 if report.passed else EXIT_GRADCHECK_FAILED


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``bptt`` and ``python -m bptt``; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (OSError, ValueError, TypeError, FloatingPointError) as err:
        if args.debug:
            raise
        # CheckpointError and UsageError are ValueErrors; FileNotFoundError is an OSError.
        print(f"bptt {args.command}: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(f"bptt {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
