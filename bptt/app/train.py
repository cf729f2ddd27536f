"""Training a character-level language model with BPTT on chunks (Chapter 4; Appendix A1).

The classic setting: one long text read in chunks of ``seq_length`` characters, the hidden state
carried from one chunk to the next (so information flows forward across chunks, while gradients stop
at chunk boundaries), Adagrad, and gradients clipped element-wise to ``[-5, 5]``.

What a practitioner adds to it, all off by default (the defaults reproduce the classic run bit for
bit):

- **mini-batches of contiguous streams**: ``batch_size = B`` cuts the text into B streams of equal
  length, read side by side, each carrying its own hidden state from chunk to chunk; a step trains
  on a ``(T, B)`` batch and its loss is the mean over the streams;
- **a held-out validation text**: ``val_fraction`` keeps the tail of the text out of training, and
  every ``val_every`` steps its loss per character is measured, with the state carried over the
  whole held-out text (:meth:`CharModelTrainer.validate`);
- **early stopping**: after ``patience`` validation checks in a row without a new best, training
  stops (:attr:`CharModelTrainer.stopped_early`);
- **a learning-rate schedule** (:mod:`bptt.optim`: constant, step, cosine, linear warm-up).

The model is the tanh RNN of Chapter 4 by default; ``cell="gru"`` or ``cell="lstm"`` trains a
gated cell of Chapter 10 in the same loop (full BPTT through the gated cells' fast path, the LSTM's
carried state being ``[h | c]``).

Optionally each chunk is trained with truncated BPTT(k1, k2) (Chapter 6) instead of full BPTT: an
update every ``k1`` characters, backpropagated through the last ``k2``. Everything that determines
the next step (parameters, optimiser state, carried states, position, step, recent losses,
validation record and RNG state) can be saved with :meth:`CharModelTrainer.save` and restored with
:meth:`CharModelTrainer.load`, so an interrupted run resumes bit for bit.

Divergence is detected two ways: a loss or gradient that is not finite stops the step before the
update, and a loss that stays far above the uniform model's (see :data:`DIVERGENCE_FACTOR` and
:data:`DIVERGENCE_STEPS`) sets :attr:`CharModelTrainer.diverged`.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from bptt import _checks
from bptt.algorithms.stepwise import forward_stepwise
from bptt.algorithms.truncation import check_truncation, tbptt
from bptt.algorithms.vectorised import loss_and_grads, rnn_forward
from bptt.app.data import Vocabulary
from bptt.app.snapshot import (
    CELLS,
    DEFAULT_CELL,
    SnapshotError,
    cell_name,
    cell_named,
    load_snapshot,
    save_snapshot,
)
from bptt.cells import TANH, Cell, Params, state_size
from bptt.clip import clip_by_global_norm, clip_by_value, global_norm
from bptt.losses import softmax_cross_entropy
from bptt.optim import ConstantLR, LRSchedule, Optimizer, lr_schedule_from_dict, make_optimizer
from bptt.params import as_generator, init_params

CHECKPOINT_KIND = "char-rnn/tanh"
"""The ``kind`` recorded in the snapshot of a tanh model (:func:`checkpoint_kind` of any cell);
other kinds are refused on load."""

DIVERGENCE_FACTOR = 10.0
"""A chunk loss above this many times the uniform model's (``initial_loss``) is far too high."""

DIVERGENCE_STEPS = 50
"""Training has diverged when the chunk loss stayed far too high for this many steps in a row."""

RECENT_STEPS = 100
"""How many of the last steps :attr:`CharModelTrainer.recent_loss` averages."""

VALIDATION_CHUNK = 1000
"""Characters of held-out text per forward call of :meth:`CharModelTrainer.validation_loss` (the
state is carried from one call to the next, so this bounds memory without changing the loss)."""

MIN_VALIDATION_CHARS = 2
"""The smallest held-out text: one character to read and the next one to predict."""

ACTIVATIONS_PER_UNIT = {"tanh": (3, 2), "gru": (9, 9), "lstm": (12, 12)}
"""Numbers per hidden unit and step that a training step keeps (states, pre-activations or gates,
their derivatives) and that a validation forward keeps (states, and a gated cell's per-step cache),
by cell: generous counts, which the tests hold above what tracemalloc measures."""

MEMORY_COPIES = 10
"""How many parameter-sized arrays training holds at once, at most: the parameters, their
gradients and clipped gradients, up to two optimiser slots (Adam) and the copies a snapshot
makes of them, and temporaries (Adam measured: 8.7)."""


@dataclass
class TrainConfig:
    """Hyperparameters of :class:`CharModelTrainer` (defaults: the classic char-RNN setting).

    ``k1`` and ``k2`` (both ``None`` by default, meaning full BPTT over each chunk) select
    truncated BPTT(k1, k2) inside each chunk of ``seq_length`` characters, with
    ``1 <= k1 <= k2 <= seq_length``; ``k1 == k2 == seq_length`` is the same training as full BPTT.

    ``batch_size`` streams are read side by side (1: the classic single stream). ``val_fraction``
    of the text, its tail, is held out for validation (0: none, the classic setting: a text the
    model should memorise, such as the Zen of Python, is trained on in full), measured every
    ``val_every`` steps; ``patience`` (``None``: never) validation checks in a row without a new
    best stop training. ``lr_schedule`` (``None``: the constant ``learning_rate``) is a schedule of
    :mod:`bptt.optim` applied to ``learning_rate``. ``cell`` names the recurrent cell:
    ``"tanh"`` (the classic model), ``"gru"`` or ``"lstm"`` (:data:`bptt.app.snapshot.CELLS`).

    Explained in Chapter 4 (truncation in Chapter 6; batches, validation, early stopping,
    schedules and the gated cells in Appendix A1).
    """

    hidden_size: int = 100
    seq_length: int = 25
    learning_rate: float = 0.1
    optimizer: str = "adagrad"
    clip_value: float | None = 5.0
    clip_norm: float | None = None
    weight_scale: float = 0.01
    seed: int = 0
    dtype: str = "float64"
    k1: int | None = None
    k2: int | None = None
    batch_size: int = 1
    val_fraction: float = 0.0
    val_every: int = 500
    patience: int | None = None
    lr_schedule: LRSchedule | None = None
    cell: str = DEFAULT_CELL

    def __post_init__(self) -> None:
        # One dtype rule for the whole package: np.float32, np.dtype("float32") and "f4" all mean
        # "float32" (a snapshot stores the name, as JSON); validate() refuses anything else.
        if self.dtype is not None:
            with contextlib.suppress(TypeError):
                self.dtype = np.dtype(self.dtype).name
        # A snapshot stores the schedule as a dict (JSON); a constant rate without warm-up is the
        # same training as no schedule, and is stored as such (None), so the two compare equal.
        if isinstance(self.lr_schedule, Mapping):
            self.lr_schedule = lr_schedule_from_dict(self.lr_schedule)
        if type(self.lr_schedule) is ConstantLR and self.lr_schedule.warmup == 0:
            self.lr_schedule = None

    def validate(self) -> None:
        """Raise a clear error for a hyperparameter out of range."""
        cell_named(self.cell)
        _checks.positive_int("hidden_size", self.hidden_size)
        _checks.positive_int("seq_length", self.seq_length)
        _checks.positive_float("learning_rate", self.learning_rate)
        _checks.positive_float("weight_scale", self.weight_scale)
        if self.clip_value is not None:
            _checks.positive_float("clip_value", self.clip_value)
        if self.clip_norm is not None:
            _checks.positive_float("clip_norm", self.clip_norm)
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be 'float32' or 'float64', got {self.dtype!r}")
        largest = float(np.finfo(self.dtype).max)
        if self.weight_scale > largest / 1e3:  # normal draws reach several times the scale
            raise ValueError(
                f"weight_scale must be below {largest / 1e3:.3g} for {self.dtype} (initial "
                f"weights would overflow), got {self.weight_scale}"
            )
        _checks.positive_int("seed", self.seed, minimum=0)
        make_optimizer(self.optimizer, self.learning_rate)
        k1, k2 = self.truncation
        check_truncation(k1, k2)
        if k2 > self.seq_length:
            raise ValueError(
                f"k2 must be <= seq_length (truncation happens inside each chunk of seq_length "
                f"characters), got k2={k2}, seq_length={self.seq_length}"
            )
        _checks.positive_int("batch_size", self.batch_size)
        if isinstance(self.val_fraction, bool) or not isinstance(self.val_fraction, int | float):
            raise TypeError(f"val_fraction must be a number in [0, 1), got {self.val_fraction!r}")
        if not 0 <= self.val_fraction < 1:
            raise ValueError(
                f"val_fraction must be in [0, 1) (the share of the text held out), got "
                f"{self.val_fraction}"
            )
        _checks.positive_int("val_every", self.val_every)
        if self.patience is not None:
            _checks.positive_int("patience", self.patience)
            if self.val_fraction == 0:
                raise ValueError(
                    f"patience={self.patience} needs val_fraction > 0: early stopping watches "
                    "the validation loss"
                )
        if self.lr_schedule is not None:
            if not isinstance(self.lr_schedule, ConstantLR):
                raise TypeError(
                    "lr_schedule must be a schedule of bptt.optim (ConstantLR, StepLR, "
                    f"CosineLR) or None, got {_checks.describe(self.lr_schedule)}"
                )
            self.lr_schedule.check(self.learning_rate)

    def as_dict(self) -> dict[str, Any]:
        """The configuration as JSON-compatible values (as stored in a snapshot)."""
        values = asdict(self)
        values["lr_schedule"] = None if self.lr_schedule is None else self.lr_schedule.to_dict()
        return values

    @property
    def truncation(self) -> tuple[int, int]:
        """``(k1, k2)`` with the defaults filled in: ``k2`` defaults to ``seq_length``, ``k1`` to
        ``k2``."""
        k2 = self.seq_length if self.k2 is None else self.k2
        k1 = k2 if self.k1 is None else self.k1
        return k1, k2

    def memory_bytes(self, vocab_size: int) -> int:
        """About how many bytes training needs with a vocabulary of ``vocab_size`` characters.

        :data:`MEMORY_COPIES` parameter-sized arrays plus the activations of one chunk of
        ``batch_size`` streams (and of one chunk of validation), for the configuration's cell (see
        :data:`ACTIVATIONS_PER_UNIT`): an estimate to refuse a configuration before allocating
        it. Explained in Appendix A1.
        """
        H, V, T, B = self.hidden_size, vocab_size, self.seq_length, self.batch_size
        shapes = cell_named(self.cell).param_shapes(V, H)  # tanh: W_xh, W_hh, b_h
        n_params = sum(math.prod(shape) for shape in shapes.values()) + V * H + V  # + W_hy, b_y
        per_step, per_val_step = ACTIVATIONS_PER_UNIT[self.cell]
        # states, pre-activations (or gates), outputs and their derivatives
        n_activations = ((T + 1) * H * per_step + T * V * 2) * B
        if self.val_fraction > 0:  # one chunk of the held-out text (one stream)
            n_activations += (VALIDATION_CHUNK + 1) * H * per_val_step + VALIDATION_CHUNK * V
        itemsize = np.dtype(self.dtype).itemsize
        return itemsize * (MEMORY_COPIES * n_params + n_activations)


@dataclass
class TrainHistory:
    """What :meth:`CharModelTrainer.train` recorded (Chapter 4; Appendix A1).

    ``losses`` are the chunk losses of each step (summed over the chunk's characters, averaged over
    the streams), ``smoothed`` the exponentially smoothed loss after each step (0.999 of the old
    value plus 0.001 of the new, starting from the uniform model's), ``recent`` the mean loss per
    character of the last :data:`RECENT_STEPS` steps. ``val_steps`` and ``val_losses`` are the
    validation checks (nats per character); ``stopped_early`` says whether early stopping ended the
    run.
    """

    steps: list[int] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    smoothed: list[float] = field(default_factory=list)
    recent: list[float] = field(default_factory=list)
    val_steps: list[int] = field(default_factory=list)
    val_losses: list[float] = field(default_factory=list)
    stopped_early: bool = False


@dataclass(frozen=True)
class ValidationCheck:
    """One validation check: the held-out loss per character at a step, and whether it was the
    best so far (Appendix A1)."""

    step: int
    loss: float
    improved: bool

    @property
    def bits_per_char(self) -> float:
        """The loss in bits per character: nats divided by ln 2."""
        return self.loss / math.log(2)


@dataclass(frozen=True)
class DataSplit:
    """How a text of ``n_chars`` characters is used: the first ``n_train`` for training, cut into
    ``batch_size`` contiguous streams of ``stream_length`` (the remainder of the division unused),
    and the last ``n_val`` held out for validation. Explained in Appendix A1."""

    n_chars: int
    n_train: int
    n_val: int
    batch_size: int
    stream_length: int


def _field(name: str, value: Any) -> str:
    return name if value is None else f"{name}={value}"


def split_text(
    n_chars: int, config: TrainConfig, *, name: Callable[[str, Any], str] = _field
) -> DataSplit:
    """The :class:`DataSplit` of a text of ``n_chars`` characters under ``config``.

    The held-out text is the last ``floor(val_fraction * n_chars)`` characters; the rest is cut into
    ``batch_size`` streams of ``n_train // batch_size`` characters. Raises a ``ValueError`` when
    the held-out text is shorter than :data:`MIN_VALIDATION_CHARS` or a stream is shorter than one
    chunk (``seq_length + 1`` characters); ``name(field, value)`` spells the settings in the
    message (``value`` None: the name alone; the command line passes one that writes its
    options). Explained in Appendix A1.
    """
    T, B, fraction = config.seq_length, config.batch_size, config.val_fraction
    n_val = math.floor(fraction * n_chars)
    if fraction > 0 and n_val < MIN_VALIDATION_CHARS:
        raise ValueError(
            f"{name('val_fraction', fraction)} of {n_chars} characters holds {n_val} character(s); "
            f"validation needs at least {MIN_VALIDATION_CHARS} (a fraction >= "
            f"{MIN_VALIDATION_CHARS / n_chars:.2g})"
        )
    n_train = n_chars - n_val
    length = n_train // B
    if length < T + 1:
        if B == 1 and n_val == 0:
            raise ValueError(
                f"text has {n_chars} characters; {name('seq_length', T)} needs at least {T + 1}"
            )
        held = f" ({n_val} held out by {name('val_fraction', fraction)})" if n_val else ""
        largest = n_train // (T + 1)
        advice = (
            f"at most {name('batch_size', largest)} fits"
            if largest >= 1
            else f"use a shorter {name('seq_length', None)} or a smaller "
            f"{name('val_fraction', None)}"
        )
        raise ValueError(
            f"{name('batch_size', B)} cuts the {n_train} training characters{held} into streams "
            f"of {length}, shorter than one chunk of {name('seq_length', T)} (needs {T + 1} "
            f"characters per stream); {advice}"
        )
    return DataSplit(n_chars, n_train, n_val, B, length)


def checkpoint_kind(cell: str) -> str:
    """The ``kind`` a trainer's snapshot records for a model with the cell named ``cell``:
    ``"char-rnn/lstm"``, or :data:`CHECKPOINT_KIND` for the tanh RNN. Explained in Appendix A1."""
    cell_named(cell)
    return f"char-rnn/{cell}"


def text_digest(text: str) -> str:
    """SHA-256 of a text's UTF-8 bytes: how a snapshot recognises its text (Appendix A1)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class CharModelTrainer:
    """Trains a character model (a tanh RNN, a GRU or an LSTM) on one text, chunk after chunk.

    Explained in Chapter 4; batches, validation, saving and resuming in Appendix A1.

    Parameters
    ----------
    text : str
        The training text (with its held-out tail, if ``config.val_fraction > 0``); each of the
        ``batch_size`` streams must be longer than ``seq_length`` characters.
    config : TrainConfig
        Hyperparameters.

    Attributes
    ----------
    cell : Cell
        The recurrent cell named by ``config.cell`` (``bptt.TANH``, ``bptt.GRU``, ``bptt.LSTM``).
    params, vocab, optimizer, h, position, step_count, smoothed_loss, recent_losses, rng
        Everything that determines the next step: :meth:`save` writes them and :meth:`load`
        restores them, so training resumes exactly. ``h`` is ``(batch_size, S)``: one carried
        state per stream (``S = H``, or ``2H`` for the LSTM's ``[h | c]``); ``position`` is where
        the next chunk starts, in every stream.
    split : DataSplit
        Which characters train and which are held out.
    best_val_loss, best_step, checks_since_best, last_validation
        The validation record (``None`` before the first check), saved and restored too.
    """

    def __init__(self, text: str, config: TrainConfig | None = None) -> None:
        self.config = config or TrainConfig()
        self.config.validate()
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        self.split = split_text(len(text), self.config)
        self.text_sha256 = text_digest(text)
        self.vocab = Vocabulary.from_text(text)  # of the whole text: held-out characters too
        self.data = self.vocab.encode(text)
        B, L = self.split.batch_size, self.split.stream_length
        # Stream b is the b-th of B equal, contiguous pieces of the training text (a view).
        self.streams = self.data[: B * L].reshape(B, L)
        self.val_data = self.data[self.split.n_train :]
        self.rng = as_generator(self.config.seed)
        self.cell: Cell = CELLS[self.config.cell]
        V = self.vocab.size
        self.params: Params = init_params(
            V,
            self.config.hidden_size,
            V,
            rng=self.rng,
            weight_scale=self.config.weight_scale,
            dtype=np.dtype(self.config.dtype),
            cell=self.cell,
        )
        self.optimizer: Optimizer = make_optimizer(self.config.optimizer, self.config.learning_rate)
        self.h = self._zero_state(B)
        self.position = 0
        self.step_count = 0
        # The loss of a model that predicts uniformly: -log(1/V) per character.
        self.smoothed_loss = float(np.log(V) * self.config.seq_length)
        self.recent_losses: deque[float] = deque(maxlen=RECENT_STEPS)
        self.steps_above_limit = 0  # consecutive steps whose loss exceeded `loss_limit`
        self.best_val_loss: float | None = None
        self.best_step: int | None = None
        self.checks_since_best = 0
        self.last_validation: ValidationCheck | None = None

    def _zero_state(self, batch: int) -> np.ndarray:
        """A zero state for ``batch`` streams: ``(batch, S)`` in the parameters' dtype."""
        S = state_size(self.cell, self.config.hidden_size)
        return np.zeros((batch, S), dtype=self.params["W_hy"].dtype)

    def _forward(self, inputs: np.ndarray, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The outputs ``(T, B, V)`` over ``inputs`` from state ``h``, and the last state.

        Forward only, no gradient: for the loss of :meth:`next_loss` and
        :meth:`validation_loss`. The tanh RNN runs :func:`bptt.rnn_forward` (the numbers of
        every tanh run so far); a gated cell is unrolled step by step.
        """
        if self.cell is TANH:
            outputs, cache = rnn_forward(self.params, inputs, h)
            return outputs, cache.hs[-1]
        outputs, states, _ = forward_stepwise(self.params, inputs, h, cell=self.cell)
        return outputs, states[-1]

    @property
    def initial_loss(self) -> float:
        """``-log(1/V) * seq_length``: the chunk loss of uniform predictions."""
        return float(np.log(self.vocab.size) * self.config.seq_length)

    @property
    def loss_limit(self) -> float:
        """``DIVERGENCE_FACTOR * initial_loss``: far worse than guessing uniformly."""
        return DIVERGENCE_FACTOR * self.initial_loss

    @property
    def diverged(self) -> bool:
        """Whether the last :data:`DIVERGENCE_STEPS` chunk losses all exceeded :attr:`loss_limit`.

        A run that gets there is not learning: the loss of an untrained model is ``initial_loss``,
        and a model this much worse assigns the right character a vanishing probability.
        """
        return self.steps_above_limit >= DIVERGENCE_STEPS

    @property
    def steps_per_epoch(self) -> int:
        """Number of chunks in one pass over the training text (each stream read once; the last
        partial chunk is skipped)."""
        return (self.split.stream_length - 1) // self.config.seq_length

    @property
    def recent_loss(self) -> float | None:
        """Mean loss per character of the last :data:`RECENT_STEPS` steps (``None`` before the
        first): what the progress bar shows. Explained in Appendix A1."""
        if not self.recent_losses:
            return None
        return sum(self.recent_losses) / len(self.recent_losses) / self.config.seq_length

    def _upcoming(self) -> tuple[int, np.ndarray]:
        """Where the next chunk starts and the state it starts from, without moving on."""
        if self.position + self.config.seq_length + 1 > self.split.stream_length:
            return 0, np.zeros_like(self.h)  # wrap around: start over from a zero state
        return self.position, self.h

    def _chunk(self, start: int) -> np.ndarray:
        """Characters ``start .. start + seq_length`` of every stream, as ``(T + 1, B)`` ids."""
        return self.streams[:, start : start + self.config.seq_length + 1].T

    def next_chunk(self) -> tuple[np.ndarray, np.ndarray]:
        """The next ``(inputs, targets)`` as ``(T, B)`` ids; wraps around (and resets ``h``)."""
        T = self.config.seq_length
        start, self.h = self._upcoming()
        chunk = self._chunk(start)
        self.position = start + T
        return chunk[:-1], chunk[1:]

    def next_loss(self) -> float:
        """The loss the current parameters get on the chunk the next step will train on.

        Changes nothing: a check that the model is still good before it is saved (``inf`` if its
        outputs are no longer finite). Explained in Appendix A1.
        """
        start, h = self._upcoming()
        chunk = self._chunk(start)
        with np.errstate(over="ignore", invalid="ignore"):
            try:
                outputs, _ = self._forward(chunk[:-1], h)
                loss, _ = softmax_cross_entropy(outputs, chunk[1:], overwrite_logits=True)
            except ValueError:  # the outputs are not finite
                return float("inf")
        return loss if np.isfinite(loss) else float("inf")

    def _apply(self, grads: Params, _t: int = 0) -> None:
        """Check, clip and apply one gradient (also TBPTT's ``update`` callback)."""
        # A NaN or inf gradient would poison every parameter; stop before applying it.
        _checks.finite_scalar("gradient norm", global_norm(grads))
        if self.config.clip_value is not None:
            grads = clip_by_value(grads, self.config.clip_value)
        if self.config.clip_norm is not None:
            grads, _ = clip_by_global_norm(grads, self.config.clip_norm)
        self.optimizer.step(self.params, grads)

    def train_step(self) -> float:
        """One chunk: forward, BPTT (full or truncated), clip, update. Returns the chunk's loss.

        The loss is summed over the chunk's characters and averaged over the streams. Raises
        ``FloatingPointError`` if the loss or the gradient is not finite (the model has
        diverged); the trainer should then be discarded (a snapshot saved earlier is still good).
        """
        if self.config.lr_schedule is not None:
            rate = self.config.lr_schedule(self.step_count, self.config.learning_rate)
            self.optimizer.learning_rate = rate
        inputs, targets = self.next_chunk()
        k1, k2 = self.config.truncation
        # Overflow to inf or NaN is detected explicitly below; numpy's warnings would repeat it.
        with np.errstate(over="ignore", invalid="ignore"):
            try:
                if k1 == k2 == self.config.seq_length:  # full BPTT on the chunk: vectorised path
                    loss, grads, h = loss_and_grads(
                        self.params, inputs, targets, self.h, cell=self.cell
                    )
                    self._apply(grads)
                else:  # TBPTT(k1, k2): an update every k1 steps, inside the chunk
                    result = tbptt(
                        self.params,
                        inputs,
                        targets,
                        k1,
                        k2,
                        h0=self.h,
                        cell=self.cell,
                        update=self._apply,
                    )
                    loss, h = result.loss, result.h_last
            except ValueError as err:
                # Inputs, targets and state are made here and valid, so a ValueError can only be
                # the loss rejecting non-finite outputs: the parameters have blown up.
                raise FloatingPointError(f"the model has diverged: {err}") from err
        loss = _checks.finite_scalar("loss", loss)
        self.h = h
        self.step_count += 1
        self.smoothed_loss = 0.999 * self.smoothed_loss + 0.001 * loss
        self.recent_losses.append(loss)
        # Far worse than uniform guessing, step after step, is divergence too (see `diverged`).
        self.steps_above_limit = self.steps_above_limit + 1 if loss > self.loss_limit else 0
        return loss

    # -- validation and early stopping ------------------------------------------------------

    def validation_loss(self) -> float:
        """The loss per character (nats) of the current model on the held-out text.

        One stream over the whole held-out text, from a zero state, the state carried from one
        forward call of :data:`VALIDATION_CHUNK` characters to the next: every held-out
        character after the first is predicted from all those before it. Changes nothing (no
        parameter, state, position or random generator); ``inf`` if the outputs are not finite.
        Explained in Appendix A1.
        """
        ids = self.val_data
        if ids.size < MIN_VALIDATION_CHARS:
            raise ValueError(
                f"there is no held-out text: val_fraction is {self.config.val_fraction}; give "
                "a val_fraction > 0 such as 0.1"
            )
        h = self._zero_state(1)
        total = 0.0
        with np.errstate(over="ignore", invalid="ignore"):
            try:
                for start in range(0, ids.size - 1, VALIDATION_CHUNK):
                    stop = min(start + VALIDATION_CHUNK, ids.size - 1)
                    outputs, h = self._forward(ids[start:stop, None], h)
                    loss, _ = softmax_cross_entropy(
                        outputs, ids[start + 1 : stop + 1, None], overwrite_logits=True
                    )
                    total += loss
            except ValueError:  # the outputs are not finite
                return float("inf")
        per_char = float(total / (ids.size - 1))
        return per_char if math.isfinite(per_char) else float("inf")

    @property
    def validation_due(self) -> bool:
        """Whether the step just taken is one of every ``val_every`` and not yet validated."""
        if self.val_data.size == 0 or self.step_count == 0:
            return False
        done = self.last_validation is not None and self.last_validation.step == self.step_count
        return self.step_count % self.config.val_every == 0 and not done

    def validate(self) -> ValidationCheck:
        """Measure :meth:`validation_loss` and record it: a new best resets the count of checks
        without improvement, any other result increments it.

        A loss that is not finite, or more than :data:`DIVERGENCE_FACTOR` times the uniform
        model's per character, is never a best. Changes nothing else (the training's random
        generator, state and position stay as they are). Explained in Appendix A1.
        """
        loss = self.validation_loss()
        limit = DIVERGENCE_FACTOR * math.log(self.vocab.size)
        good = math.isfinite(loss) and loss <= limit
        improved = good and (self.best_val_loss is None or loss < self.best_val_loss)
        if improved:
            self.best_val_loss, self.best_step, self.checks_since_best = loss, self.step_count, 0
        else:
            self.checks_since_best += 1
        self.last_validation = ValidationCheck(self.step_count, loss, improved)
        return self.last_validation

    def maybe_validate(self) -> ValidationCheck | None:
        """:meth:`validate` if :attr:`validation_due`, else ``None``: call it after each step."""
        return self.validate() if self.validation_due else None

    @property
    def stopped_early(self) -> bool:
        """Whether ``patience`` validation checks in a row brought no new best (training should
        stop; the best model was the one of :attr:`best_step`). Explained in Appendix A1."""
        patience = self.config.patience
        return patience is not None and self.checks_since_best >= patience

    def train(
        self, steps: int, *, callback: Callable[[CharModelTrainer, float], Any] | None = None
    ) -> TrainHistory:
        """Run ``steps`` training steps; ``callback(trainer, loss)`` after each.

        Validates every ``val_every`` steps when there is a held-out text (the check of a step is
        made before its callback, which can read :attr:`last_validation`), and stops early, with
        ``history.stopped_early`` set, once :attr:`stopped_early`.
        """
        steps = _checks.positive_int("steps", steps, minimum=0)
        history = TrainHistory()
        for _ in range(steps):
            if self.stopped_early:
                break
            loss = self.train_step()
            history.steps.append(self.step_count)
            history.losses.append(loss)
            history.smoothed.append(self.smoothed_loss)
            recent = self.recent_loss
            history.recent.append(math.nan if recent is None else recent)
            check = self.maybe_validate()
            if check is not None:
                history.val_steps.append(check.step)
                history.val_losses.append(check.loss)
            if callback is not None:
                callback(self, loss)
        history.stopped_early = self.stopped_early
        return history

    # -- saving and restoring ---------------------------------------------------------------

    def state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Everything that determines the next step, as ``(arrays, metadata)`` for a snapshot."""
        from bptt._version import __version__

        optim = self.optimizer.state_dict()
        arrays = {f"params/{k}": v for k, v in self.params.items()}
        arrays.update({f"optimizer/{k}": v for k, v in optim["arrays"].items()})
        arrays["h"] = self.h  # (batch_size, S): one state per stream
        sizes = {"input_size": self.vocab.size, "hidden_size": self.config.hidden_size}
        last = self.last_validation
        metadata = {
            "kind": checkpoint_kind(self.config.cell),  # the cell's name is in "config" too
            "bptt_version": __version__,
            "config": self.config.as_dict(),
            "sizes": {**sizes, "output_size": self.vocab.size},
            "vocab": list(self.vocab.chars),
            "text_sha256": self.text_sha256,
            "text_length": int(self.data.size),
            "step": self.step_count,
            "position": self.position,  # in every stream
            "stream_length": self.split.stream_length,
            "smoothed_loss": self.smoothed_loss,  # JSON floats round-trip exactly
            "recent_losses": list(self.recent_losses),
            "validation": {
                "best_loss": self.best_val_loss,
                "best_step": self.best_step,
                "checks_since_best": self.checks_since_best,
                "last": None if last is None else [last.step, last.loss, last.improved],
            },
            "optimizer": {"name": optim["name"], "steps": optim["steps"]},
            "rng_state": self.rng.bit_generator.state,
        }
        return arrays, metadata

    def save(self, path: str | Path) -> Path:
        """Write a snapshot atomically (see :func:`bptt.app.snapshot.save_snapshot`)."""
        arrays, metadata = self.state()
        return save_snapshot(path, arrays, metadata)

    @classmethod
    def load(cls, path: str | Path, text: str) -> CharModelTrainer:
        """A trainer restored from a snapshot, ready to continue training on ``text``.

        The model gets the snapshot's cell (a snapshot that names none, written before bptt
        trained gated cells, holds a tanh RNN). Raises :class:`~bptt.app.snapshot.SnapshotError`
        if the file is damaged, is not a character-model snapshot, or was trained on a different
        text. Explained in Appendix A1.
        """
        snap = load_snapshot(path)
        meta = snap.metadata
        where = f"snapshot {str(snap.path)!r}"
        kinds = [checkpoint_kind(name) for name in CELLS]
        if meta.get("kind") not in kinds:
            raise SnapshotError(f"{where} holds a {meta.get('kind')!r} model, not a char model")
        try:
            cell = cell_name(meta)
        except SnapshotError as err:
            raise SnapshotError(f"{where}: {err}") from None
        if meta["kind"] != checkpoint_kind(cell):
            raise SnapshotError(
                f"{where} is inconsistent: its kind {meta['kind']!r} is not that of its cell "
                f"{cell!r} ({checkpoint_kind(cell)!r})"
            )
        try:
            known = {f.name for f in fields(TrainConfig)}
            config = TrainConfig(**{k: v for k, v in meta["config"].items() if k in known})
            trainer = cls(text, config)
            if trainer.text_sha256 != meta["text_sha256"]:
                raise SnapshotError(
                    f"{where} was trained on a different text ({meta['text_length']} characters, "
                    f"vocabulary of {len(meta['vocab'])}); resume it on the same text"
                )
            trainer._restore(snap.arrays, meta)
        except (KeyError, TypeError) as err:
            raise SnapshotError(f"{where} is incomplete or from another version: {err}") from None
        return trainer

    def _restore(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        where = "snapshot"
        for name, p in self.params.items():
            saved = arrays[f"params/{name}"]
            if saved.shape != p.shape or saved.dtype != p.dtype:
                raise SnapshotError(
                    f"{where} parameter {name!r} is {saved.dtype}{saved.shape}, the model "
                    f"needs {p.dtype}{p.shape}"
                )
            self.params[name] = saved.copy()
        prefix = "optimizer/"
        self.optimizer.load_state_dict(
            {
                "name": meta["optimizer"]["name"],
                "steps": meta["optimizer"]["steps"],
                "arrays": {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)},
            }
        )
        if arrays["h"].shape != self.h.shape:
            raise SnapshotError(
                f"{where} hidden state has shape {arrays['h'].shape}, the trainer needs "
                f"{self.h.shape} (batch_size, state size of the {self.config.cell} cell)"
            )
        self.h = arrays["h"].copy()
        self.position = int(meta["position"])
        if not 0 <= self.position <= self.split.stream_length:
            raise SnapshotError(f"{where} position {self.position} is outside the text")
        self.step_count = int(meta["step"])
        self.smoothed_loss = float(meta["smoothed_loss"])
        # Snapshots written before bptt had them hold neither recent losses nor validation.
        self.recent_losses = deque(map(float, meta.get("recent_losses", [])), maxlen=RECENT_STEPS)
        record = meta.get("validation") or {}
        best = record.get("best_loss")
        self.best_val_loss = None if best is None else float(best)
        self.best_step = record.get("best_step")
        self.checks_since_best = int(record.get("checks_since_best", 0))
        last = record.get("last")
        self.last_validation = (
            None if last is None else ValidationCheck(int(last[0]), float(last[1]), bool(last[2]))
        )
        self.rng.bit_generator.state = meta["rng_state"]
