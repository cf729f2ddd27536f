"""Training a character-level language model with BPTT on chunks (Chapter 4; Appendix A1).

The classic setting: one long text read in chunks of ``seq_length`` characters, the hidden state
carried from one chunk to the next (so information flows forward across chunks, while gradients stop
at chunk boundaries), Adagrad, and gradients clipped element-wise to ``[-5, 5]``.

Optionally each chunk is trained with truncated BPTT(k1, k2) (Chapter 6) instead of full BPTT: an
update every ``k1`` characters, backpropagated through the last ``k2``. Everything that determines
the next step (parameters, optimiser state, carried state, position, step, smoothed loss and RNG
state) can be saved with :meth:`CharModelTrainer.save` and restored with
:meth:`CharModelTrainer.load`, so an interrupted run resumes bit for bit.

Divergence is detected two ways: a loss or gradient that is not finite stops the step before the
update, and a loss that stays far above the uniform model's (see :data:`DIVERGENCE_FACTOR` and
:data:`DIVERGENCE_STEPS`) sets :attr:`CharModelTrainer.diverged`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from bptt import _checks
from bptt.algorithms.truncation import check_truncation, tbptt
from bptt.algorithms.vectorised import loss_and_grads, rnn_forward
from bptt.app.data import Vocabulary
from bptt.app.snapshot import SnapshotError, load_snapshot, save_snapshot
from bptt.cells import Params
from bptt.clip import clip_by_global_norm, clip_by_value, global_norm
from bptt.losses import softmax_cross_entropy
from bptt.optim import Optimizer, make_optimizer
from bptt.params import as_generator, init_params

CHECKPOINT_KIND = "char-rnn/tanh"
"""The ``kind`` recorded in a trainer's snapshot; other kinds are refused on load."""

DIVERGENCE_FACTOR = 10.0
"""A chunk loss above this many times the uniform model's (``initial_loss``) is far too high."""

DIVERGENCE_STEPS = 50
"""Training has diverged when the chunk loss stayed far too high for this many steps in a row."""

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
    Explained in Chapter 4 (truncation in Chapter 6).
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

    @property
    def truncation(self) -> tuple[int, int]:
        """``(k1, k2)`` with the defaults filled in: ``k2`` defaults to ``seq_length``, ``k1`` to
        ``k2``."""
        k2 = self.seq_length if self.k2 is None else self.k2
        k1 = k2 if self.k1 is None else self.k1
        return k1, k2

    def memory_bytes(self, vocab_size: int) -> int:
        """About how many bytes training needs with a vocabulary of ``vocab_size`` characters.

        :data:`MEMORY_COPIES` parameter-sized arrays plus the activations of one chunk: an
        estimate to refuse a configuration before allocating it. Explained in Appendix A1.
        """
        H, V, T = self.hidden_size, vocab_size, self.seq_length
        n_params = H * V + H * H + H + V * H + V  # W_xh, W_hh, b_h, W_hy, b_y
        n_activations = (T + 1) * H * 3 + T * V * 2  # states, pre-activations, outputs, ...
        itemsize = np.dtype(self.dtype).itemsize
        return itemsize * (MEMORY_COPIES * n_params + n_activations)


@dataclass
class TrainHistory:
    """Per-step losses (summed over the chunk) and the exponentially smoothed loss (Chapter 4)."""

    steps: list[int] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    smoothed: list[float] = field(default_factory=list)


def text_digest(text: str) -> str:
    """SHA-256 of a text's UTF-8 bytes: how a snapshot recognises its text (Appendix A1)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


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
    params, vocab, optimizer, h, position, step_count, smoothed_loss, rng
        Everything that determines the next step: :meth:`save` writes them and :meth:`load`
        restores them, so training resumes exactly.

    Explained in Chapter 4; saving and resuming in Appendix A1.
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
        self.text_sha256 = text_digest(text)
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
        self.steps_above_limit = 0  # consecutive steps whose loss exceeded `loss_limit`

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
        """Number of chunks in one pass over the text (the last partial chunk is skipped)."""
        return (self.data.size - 1) // self.config.seq_length

    def _upcoming(self) -> tuple[int, np.ndarray]:
        """Where the next chunk starts and the state it starts from, without moving on."""
        if self.position + self.config.seq_length + 1 > self.data.size:
            return 0, np.zeros_like(self.h)  # wrap around: start over from a zero state
        return self.position, self.h

    def next_chunk(self) -> tuple[np.ndarray, np.ndarray]:
        """The next ``(inputs, targets)`` as ``(T, 1)`` ids; wraps around (and resets ``h``)."""
        T = self.config.seq_length
        start, self.h = self._upcoming()
        chunk = self.data[start : start + T + 1]
        self.position = start + T
        return chunk[:-1, None], chunk[1:, None]

    def next_loss(self) -> float:
        """The loss the current parameters get on the chunk the next step will train on.

        Changes nothing: a check that the model is still good before it is saved (``inf`` if its
        outputs are no longer finite). Explained in Appendix A1.
        """
        start, h = self._upcoming()
        chunk = self.data[start : start + self.config.seq_length + 1]
        with np.errstate(over="ignore", invalid="ignore"):
            try:
                outputs, _ = rnn_forward(self.params, chunk[:-1, None], h)
                loss, _ = softmax_cross_entropy(outputs, chunk[1:, None], overwrite_logits=True)
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

        Raises ``FloatingPointError`` if the loss or the gradient is not finite (the model has
        diverged); the trainer should then be discarded (a snapshot saved earlier is still good).
        """
        inputs, targets = self.next_chunk()
        k1, k2 = self.config.truncation
        # Overflow to inf or NaN is detected explicitly below; numpy's warnings would repeat it.
        with np.errstate(over="ignore", invalid="ignore"):
            try:
                if k1 == k2 == self.config.seq_length:  # full BPTT on the chunk: vectorised path
                    loss, grads, h = loss_and_grads(self.params, inputs, targets, self.h)
                    self._apply(grads)
                else:  # TBPTT(k1, k2): an update every k1 steps, inside the chunk
                    result = tbptt(
                        self.params, inputs, targets, k1, k2, h0=self.h, update=self._apply
                    )
                    loss, h = result.loss, result.h_last
            except ValueError as err:
                # Inputs, targets and state are made here and valid, so a ValueError can only be
                # the loss rejecting non-finite outputs: the parameters have blown up.
                raise FloatingPointError(f"the model has diverged: {err}") from err
        _checks.finite_scalar("loss", loss)
        self.h = h
        self.step_count += 1
        self.smoothed_loss = 0.999 * self.smoothed_loss + 0.001 * loss
        # Far worse than uniform guessing, step after step, is divergence too (see `diverged`).
        self.steps_above_limit = self.steps_above_limit + 1 if loss > self.loss_limit else 0
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

    # -- saving and restoring ---------------------------------------------------------------

    def state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Everything that determines the next step, as ``(arrays, metadata)`` for a snapshot."""
        from bptt._version import __version__

        optim = self.optimizer.state_dict()
        arrays = {f"params/{k}": v for k, v in self.params.items()}
        arrays.update({f"optimizer/{k}": v for k, v in optim["arrays"].items()})
        arrays["h"] = self.h
        sizes = {"input_size": self.vocab.size, "hidden_size": self.config.hidden_size}
        metadata = {
            "kind": CHECKPOINT_KIND,
            "bptt_version": __version__,
            "config": asdict(self.config),
            "sizes": {**sizes, "output_size": self.vocab.size},
            "vocab": list(self.vocab.chars),
            "text_sha256": self.text_sha256,
            "text_length": int(self.data.size),
            "step": self.step_count,
            "position": self.position,
            "smoothed_loss": self.smoothed_loss,  # JSON floats round-trip exactly
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

        Raises :class:`~bptt.app.snapshot.SnapshotError` if the file is damaged, is not a
        character-model snapshot, or was trained on a different text. Explained in Appendix A1.
        """
        snap = load_snapshot(path)
        meta = snap.metadata
        where = f"snapshot {str(snap.path)!r}"
        if meta.get("kind") != CHECKPOINT_KIND:
            raise SnapshotError(f"{where} holds a {meta.get('kind')!r} model, not a char model")
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
            raise SnapshotError(f"{where} hidden state has shape {arrays['h'].shape}")
        self.h = arrays["h"].copy()
        self.position = int(meta["position"])
        self.step_count = int(meta["step"])
        self.smoothed_loss = float(meta["smoothed_loss"])
        self.rng.bit_generator.state = meta["rng_state"]
