"""Experiments of Chapter 11, "A practical guide to the knobs".

Every recommendation of that chapter rests on a small training run of the character model of the
chapter on implementing BPTT (book/04-implementing.md): :class:`~bptt.app.train.CharModelTrainer` on
the Zen of Python, with one knob changed at a time.

* :func:`train_char_model`: one run, recording the loss of every chunk and the norm of every
  gradient *before* clipping, then the loss per character of the whole text.
* :func:`grid`: the same for every combination of a few knob values and seeds.
* :func:`truncation_bias_vs_cost`: how far truncated gradients are from the full one, next to
  what they cost in backward steps per forward step.

The chapter calls them with small sizes (a few hundred chunks, two seeds); every size is an
argument, so the same functions run the full-size experiments.
"""

from __future__ import annotations

import itertools
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from bptt import _checks
from bptt.algorithms.truncation import check_truncation, tbptt
from bptt.algorithms.vectorised import loss_and_grads, rnn_forward
from bptt.app.data import Vocabulary, zen_of_python
from bptt.app.train import CharModelTrainer, TrainConfig
from bptt.cells import Params
from bptt.clip import global_norm
from bptt.experiments.counting import CountingCell
from bptt.experiments.truncation import gradient_agreement
from bptt.losses import softmax_cross_entropy

KNOBS = tuple(f.name for f in fields(TrainConfig))
"""The names a run accepts as knobs: the fields of :class:`~bptt.app.train.TrainConfig`."""

RECIPE: dict[str, Any] = {
    "hidden_size": 32,
    "seq_length": 25,
    "learning_rate": 0.1,
    "optimizer": "adagrad",
    "clip_value": 5.0,
    "clip_norm": None,
    "weight_scale": 0.01,
    "k1": None,
    "k2": None,
}
"""The knobs a run starts from: the classic character-model recipe (chunks of 25 characters,
Adagrad at 0.1, entries clipped to [-5, 5], weights drawn with scale 0.01) with 32 hidden units.
Spelled out here rather than taken from :class:`~bptt.app.train.TrainConfig`'s defaults, so that the
chapter's measurements do not move when those defaults do."""


def cpu_clock() -> float:
    """Seconds of CPU time of this process, from an arbitrary origin, for timing runs.

    ``time.process_time`` (less sensitive to other programs than the wall clock), except in the
    browser: under Pyodide (``sys.platform == "emscripten"``) ``process_time`` does not advance,
    and the wall clock ``time.perf_counter`` is the CPU time of the page's one Python thread.
    Explained in Chapter 11.
    """
    if sys.platform == "emscripten":
        return time.perf_counter()
    return time.process_time()


class RecordingTrainer(CharModelTrainer):
    """The book's trainer, unchanged, plus a record of every gradient it applies.

    ``grad_norms`` and ``grad_max`` receive the global norm and the largest absolute entry of each
    gradient *before* it is clipped (one entry per update: one per chunk for full BPTT, one per
    ``k1`` characters for truncated BPTT). Explained in Chapter 11.
    """

    def __init__(self, text: str, config: TrainConfig | None = None) -> None:
        super().__init__(text, config)
        self.grad_norms: list[float] = []
        self.grad_max: list[float] = []

    def _apply(self, grads: Params, _t: int = 0) -> None:
        self.grad_norms.append(global_norm(grads))
        self.grad_max.append(max(float(np.max(np.abs(g))) for g in grads.values()))
        super()._apply(grads, _t)


@dataclass
class KnobRun:
    """What one training run of :func:`train_char_model` measured.

    Explained in Chapter 11.

    Attributes
    ----------
    config : TrainConfig
        The knobs of the run.
    chunk_losses : ndarray
        Loss per character of every chunk trained (in nats).
    grad_norms, grad_max : ndarray
        Global norm and largest absolute entry of every gradient before clipping.
    final_loss : float
        Loss per character of the whole text under the final parameters, from a zero state
        (``nan`` if the run diverged).
    uniform_loss : float
        ``log V``: the loss per character of a model that predicts every character uniformly.
    diverged : bool
        True when the loss or a gradient became non-finite and training stopped.
    seconds : float
        CPU time of the training loop (:func:`cpu_clock`: ``time.process_time``, less sensitive
        than the wall clock to other programs sharing the machine; the wall clock in the browser).
    params : dict
        The final parameters.
    """

    config: TrainConfig
    chunk_losses: np.ndarray
    grad_norms: np.ndarray
    grad_max: np.ndarray
    final_loss: float
    uniform_loss: float
    diverged: bool
    seconds: float
    params: Params

    @property
    def characters(self) -> int:
        """Characters trained on: chunks times the chunk length."""
        return int(self.chunk_losses.size * self.config.seq_length)

    @property
    def updates(self) -> int:
        """Parameter updates made (gradients applied)."""
        return int(self.grad_norms.size)

    def clipped_fraction(self, threshold: float | None = None) -> float:
        """Fraction of updates whose gradient norm exceeded ``threshold`` (default: the run's
        ``clip_norm``; 0 when the run clipped nothing by norm)."""
        if threshold is None:
            threshold = self.config.clip_norm
        if threshold is None or self.updates == 0:
            return 0.0
        threshold = _checks.positive_float("threshold", threshold)
        return float(np.mean(self.grad_norms > threshold))

    def value_clipped_fraction(self) -> float:
        """Fraction of updates in which at least one entry was clipped by ``clip_value``."""
        if self.config.clip_value is None or self.updates == 0:
            return 0.0
        return float(np.mean(self.grad_max > self.config.clip_value))


def text_loss(params: Params, vocab: Vocabulary, text: str) -> float:
    """Loss per character (nats) of a character model on ``text``, read from a zero state.

    Explained in Chapter 11.
    """
    if not isinstance(text, str) or len(text) < 2:
        raise ValueError(f"text must be a string of at least 2 characters, got {text!r:.40}")
    ids = vocab.encode(text)
    outputs, _ = rnn_forward(params, ids[:-1, None])
    loss, _ = softmax_cross_entropy(outputs, ids[1:, None])
    return float(loss) / (ids.size - 1)


def train_char_model(
    text: str | None = None,
    *,
    steps: int | None = None,
    characters: int | None = None,
    **knobs: Any,
) -> KnobRun:
    """Train the book's character model with some knobs changed, and measure the run.

    Parameters
    ----------
    text : str, optional
        The training text (default: the Zen of Python).
    steps : int, optional
        Number of chunks to train on.
    characters : int, optional
        Alternatively, a budget of characters: ``characters // seq_length`` chunks (so that runs
        with different chunk lengths read the same amount of text). Give exactly one of
        ``steps`` and ``characters``.
    **knobs
        Fields of :class:`~bptt.app.train.TrainConfig` (``hidden_size``, ``learning_rate``,
        ``optimizer``, ``clip_value``, ``clip_norm``, ``seq_length``, ``k1``, ``k2``, ``seed``,
        ...); the others take their values from :data:`RECIPE` (then from ``TrainConfig``).

    Returns
    -------
    KnobRun
        A run that diverges is stopped and returned with ``diverged=True``; nothing non-finite
        is propagated.

    Explained in Chapter 11.
    """
    unknown = sorted(set(knobs) - set(KNOBS))
    if unknown:
        raise TypeError(f"unknown knob(s) {unknown}; the knobs are {list(KNOBS)}")
    config = TrainConfig(**{**RECIPE, **knobs})
    config.validate()
    if (steps is None) == (characters is None):
        raise TypeError(f"give exactly one of steps and characters, got {steps=}, {characters=}")
    if steps is None:
        characters = _checks.positive_int("characters", characters)
        steps = characters // config.seq_length
        if steps < 1:
            raise ValueError(
                f"characters={characters} is less than one chunk of seq_length={config.seq_length}"
            )
    steps = _checks.positive_int("steps", steps)
    text = zen_of_python() if text is None else text
    trainer = RecordingTrainer(text, config)
    losses: list[float] = []
    diverged = False
    start = cpu_clock()
    try:
        for _ in range(steps):
            losses.append(trainer.train_step() / config.seq_length)
    except FloatingPointError:
        diverged = True
    seconds = cpu_clock() - start
    final = float("nan")
    if not diverged:
        with np.errstate(over="ignore", invalid="ignore"):
            try:
                final = text_loss(trainer.params, trainer.vocab, text)
            except (ValueError, FloatingPointError):
                diverged = True
    return KnobRun(
        config=config,
        chunk_losses=np.array(losses),
        grad_norms=np.array(trainer.grad_norms),
        grad_max=np.array(trainer.grad_max),
        final_loss=final,
        uniform_loss=float(np.log(trainer.vocab.size)),
        diverged=diverged,
        seconds=seconds,
        params=trainer.params,
    )


def grid(
    axes: Mapping[str, Sequence[Any]],
    *,
    seeds: Sequence[int] = (0, 1, 2),
    text: str | None = None,
    steps: int | None = None,
    characters: int | None = None,
    **fixed: Any,
) -> dict[tuple[Any, ...], KnobRun]:
    """Run :func:`train_char_model` for every combination of knob values and every seed.

    Parameters
    ----------
    axes : mapping of knob name to values
        For example ``{"hidden_size": [8, 32], "learning_rate": [0.01, 0.1]}``.
    seeds : sequence of int
        Seeds of the initial weights (``TrainConfig.seed``).
    text, steps, characters
        As for :func:`train_char_model`.
    **fixed
        Knobs that are the same in every run.

    Returns
    -------
    dict
        ``{(value of the first axis, value of the second, ..., seed): KnobRun}``.

    Explained in Chapter 11.
    """
    if not axes:
        raise ValueError("axes must name at least one knob to vary")
    names = list(axes)
    clash = sorted(set(names) & (set(fixed) | {"seed"}))
    if clash:
        raise ValueError(f"knob(s) {clash} are both varied and fixed (seeds go in `seeds`)")
    if not seeds:
        raise ValueError("seeds must hold at least one seed")
    runs: dict[tuple[Any, ...], KnobRun] = {}
    for values in itertools.product(*(axes[name] for name in names)):
        for seed in seeds:
            knobs = {**fixed, **dict(zip(names, values, strict=True)), "seed": seed}
            runs[(*values, seed)] = train_char_model(
                text, steps=steps, characters=characters, **knobs
            )
    return runs


def final_losses(
    runs: Mapping[tuple[Any, ...], KnobRun], seeds: Sequence[int]
) -> dict[tuple[Any, ...], np.ndarray]:
    """``{knob values: array of final losses, one per seed}`` from a :func:`grid`'s result.

    A diverged run counts as ``inf``. Explained in Chapter 11.
    """
    out: dict[tuple[Any, ...], list[float]] = {}
    for key, run in runs.items():
        *values, seed = key
        if seed in seeds:
            loss = np.inf if run.diverged else run.final_loss
            out.setdefault(tuple(values), []).append(loss)
    return {k: np.array(v) for k, v in out.items()}


@dataclass(frozen=True)
class TruncationRow:
    """Bias and cost of one truncation TBPTT(k1, k2) on one stretch of text.

    Explained in Chapter 11.

    Attributes
    ----------
    k1, k2 : int
        Steps between backward passes, and steps each backward pass goes through.
    cosine, rel_error : float
        Cosine similarity and relative error ``||g_trunc - g|| / ||g||`` against the full BPTT
        gradient ``g``, all parameters taken as one vector.
    backward_per_forward : float
        Backward steps per forward step, counted with
        :class:`~bptt.experiments.counting.CountingCell` (about ``k2 / k1``).
    """

    k1: int
    k2: int
    cosine: float
    rel_error: float
    backward_per_forward: float

    @property
    def shortest_reach(self) -> int:
        """Steps back that every loss reaches at least (away from the start): ``k2 - k1 + 1``."""
        return self.k2 - self.k1 + 1


def truncation_bias_vs_cost(
    params: Params, inputs: Any, targets: Any, schemes: Sequence[tuple[int, int]]
) -> list[TruncationRow]:
    """For each ``(k1, k2)`` in ``schemes``: how far TBPTT(k1, k2) is from the full gradient on
    one stretch of text, and how many backward steps per forward step it takes.

    ``inputs`` and ``targets`` are ``(T, B)`` ids; the gradient of TBPTT is the sum of its
    backward passes with fixed parameters (no updates). Explained in Chapter 11; truncation itself
    in Chapter 6.
    """
    if not schemes:
        raise ValueError("schemes must hold at least one (k1, k2) pair")
    pairs = [check_truncation(*pair) for pair in schemes]
    _, exact, _ = loss_and_grads(params, inputs, targets)
    T = np.asarray(inputs).shape[0]
    rows = []
    for k1, k2 in pairs:
        counter = CountingCell()
        result = tbptt(params, inputs, targets, k1, k2, cell=counter)
        cosine, rel_error = gradient_agreement(result.grads, exact)
        rows.append(TruncationRow(k1, k2, cosine, rel_error, counter.backward_steps / T))
    return rows
