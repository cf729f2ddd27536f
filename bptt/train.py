"""Training a character-level language model with full BPTT on chunks (Chapter 4).

The classic setting: one long text read in chunks of ``seq_length`` characters, the hidden state
carried from one chunk to the next (so information flows forward across chunks, while gradients stop
at chunk boundaries), Adagrad, and gradients clipped element-wise to ``[-5, 5]``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import _checks
from .cells import Params
from .clip import clip_by_global_norm, clip_by_value
from .data import Vocabulary
from .optim import Optimizer, make_optimizer
from .params import as_generator, init_params
from .rnn import loss_and_grads


@dataclass
class TrainConfig:
    """Hyperparameters of :class:`CharModelTrainer` (defaults: the classic char-RNN setting)."""

    hidden_size: int = 100
    seq_length: int = 25
    learning_rate: float = 0.1
    optimizer: str = "adagrad"
    clip_value: float | None = 5.0
    clip_norm: float | None = None
    weight_scale: float = 0.01
    seed: int = 0
    dtype: str = "float64"

    def validate(self) -> None:
        """Raise a clear error for a hyperparameter out of range."""
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
        make_optimizer(self.optimizer, self.learning_rate)


@dataclass
class TrainHistory:
    """Per-step losses (summed over the chunk) and the exponentially smoothed loss."""

    steps: list[int] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    smoothed: list[float] = field(default_factory=list)


class CharModelTrainer:
    """Trains a tanh-RNN character model on one text, chunk after chunk.

    Parameters
    ----------
    text : str
        The training text; it must be longer than ``seq_length`` characters.
    config : TrainConfig
        Hyperparameters.

    Attributes
    ----------
    params, vocab, optimizer, h, position, step_count, smoothed_loss
        Everything that determines the next step: saving them and restoring them resumes
        training exactly.

    Explained in Chapter 4.
    """

    def __init__(self, text: str, config: TrainConfig | None = None) -> None:
        self.config = config or TrainConfig()
        self.config.validate()
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        if len(text) < self.config.seq_length + 1:
            raise ValueError(
                f"text has {len(text)} characters; seq_length={self.config.seq_length} needs at "
                f"least {self.config.seq_length + 1}"
            )
        self.vocab = Vocabulary.from_text(text)
        self.data = self.vocab.encode(text)
        self.rng = as_generator(self.config.seed)
        V = self.vocab.size
        self.params: Params = init_params(
            V,
            self.config.hidden_size,
            V,
            rng=self.rng,
            weight_scale=self.config.weight_scale,
            dtype=np.dtype(self.config.dtype),
        )
        self.optimizer: Optimizer = make_optimizer(self.config.optimizer, self.config.learning_rate)
        self.h = np.zeros((1, self.config.hidden_size), dtype=self.params["W_hh"].dtype)
        self.position = 0
        self.step_count = 0
        # The loss of a model that predicts uniformly: -log(1/V) per character.
        self.smoothed_loss = float(np.log(V) * self.config.seq_length)

    @property
    def initial_loss(self) -> float:
        """``-log(1/V) * seq_length``: the chunk loss of uniform predictions."""
        return float(np.log(self.vocab.size) * self.config.seq_length)

    def next_chunk(self) -> tuple[np.ndarray, np.ndarray]:
        """The next ``(inputs, targets)`` as ``(T, 1)`` ids; wraps around (and resets ``h``)."""
        T = self.config.seq_length
        if self.position + T + 1 > self.data.size:
            self.position = 0
            self.h = np.zeros_like(self.h)
        chunk = self.data[self.position : self.position + T + 1]
        self.position += T
        return chunk[:-1, None], chunk[1:, None]

    def train_step(self) -> float:
        """One chunk: forward, BPTT, clip, update. Returns the chunk's loss."""
        inputs, targets = self.next_chunk()
        loss, grads, self.h = loss_and_grads(self.params, inputs, targets, self.h)
        if self.config.clip_value is not None:
            grads = clip_by_value(grads, self.config.clip_value)
        if self.config.clip_norm is not None:
            grads, _ = clip_by_global_norm(grads, self.config.clip_norm)
        self.optimizer.step(self.params, grads)
        self.step_count += 1
        self.smoothed_loss = 0.999 * self.smoothed_loss + 0.001 * loss
        return loss

    def train(
        self, steps: int, *, callback: Callable[[CharModelTrainer, float], Any] | None = None
    ) -> TrainHistory:
        """Run ``steps`` training steps; ``callback(trainer, loss)`` after each."""
        steps = _checks.positive_int("steps", steps, minimum=0)
        history = TrainHistory()
        for _ in range(steps):
            loss = self.train_step()
            history.steps.append(self.step_count)
            history.losses.append(loss)
            history.smoothed.append(self.smoothed_loss)
            if callback is not None:
                callback(self, loss)
        return history
