"""The experiments of Chapters 6 and 7, with full-size defaults (the chapter runs them small).

* :func:`truncation_bias`: how far truncated gradients are from the full one, as a function of k2.
* :func:`char_bias_experiment`: the same on a briefly trained character model (Chapter 4).
* :func:`artbp_gradient_draws`: many ARTBP gradients at fixed parameters (mean and spread).
* :func:`equal_cost_errors`: TBPTT(k, k) against ARTBP with mean subsequence length k, at equal
  cost, measured by the mean squared distance to the full gradient.
* :func:`influence_online_experiment`: online SGD on influence balancing with each algorithm.
* :func:`char_online_comparison`: online training of a character model, TBPTT against ARTBP.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bptt import _checks
from bptt.algorithms.artbp import (
    ConstantTruncation,
    PowerLawTruncation,
    TruncationSchedule,
    artbp,
    mean_length,
)
from bptt.algorithms.online import ARTBP, RTRL, TBPTT, Method, OnlineRun, online_sgd
from bptt.algorithms.stepwise import LossFn, loss_and_grads_stepwise
from bptt.algorithms.truncation import tbptt
from bptt.algorithms.vectorised import rnn_forward
from bptt.app.data import pydoc_topics
from bptt.app.train import CharModelTrainer, TrainConfig
from bptt.cells import TANH, Cell, Params
from bptt.experiments.influence import influence_problem
from bptt.losses import softmax_cross_entropy, squared_error
from bptt.params import as_generator


def flatten(grads: Mapping[str, np.ndarray]) -> np.ndarray:
    """All gradient arrays as one vector (in the dict's order)."""
    return np.concatenate([np.ravel(g) for g in grads.values()])


def gradient_agreement(
    approx: Mapping[str, np.ndarray], exact: Mapping[str, np.ndarray]
) -> tuple[float, float]:
    """Cosine similarity and relative error ``||a - e|| / ||e||`` of two gradients, all parameters
    taken together as one vector. (Not Chapter 5's gradient-check error: here the question is how
    much of the whole gradient a truncation loses, not whether a derivation is right.)"""
    a = flatten({k: approx[k] for k in exact})
    e = flatten(exact)
    norm_e = float(np.linalg.norm(e))
    if norm_e == 0:
        raise ValueError("the exact gradient is zero: cosine and relative error are undefined")
    cosine = float(a @ e / (np.linalg.norm(a) * norm_e)) if np.any(a) else 0.0
    return cosine, float(np.linalg.norm(a - e) / norm_e)


@dataclass(frozen=True)
class BiasRow:
    """Agreement with the full gradient of TBPTT(1, k2) (every loss goes back exactly ``k2``
    steps) and of the chunked TBPTT(k2, k2)."""

    k2: int
    cosine_each: float
    rel_error_each: float
    cosine_chunked: float
    rel_error_chunked: float


def truncation_bias(
    params: Params,
    inputs: Any,
    targets: Any,
    k2_values: Sequence[int],
    *,
    h0: np.ndarray | None = None,
    cell: Cell = TANH,
    loss: LossFn = softmax_cross_entropy,
) -> list[BiasRow]:
    """Compare TBPTT(1, k2) and TBPTT(k2, k2) with full BPTT on one sequence, for each ``k2``.

    Explained in Chapter 6.
    """
    _, exact, _ = loss_and_grads_stepwise(params, inputs, targets, h0, cell=cell, loss=loss)
    rows = []
    for k2 in k2_values:
        each_run = tbptt(params, inputs, targets, 1, k2, h0=h0, cell=cell, loss=loss)
        chunked_run = tbptt(params, inputs, targets, k2, k2, h0=h0, cell=cell, loss=loss)
        each = gradient_agreement(each_run.grads, exact)
        chunked = gradient_agreement(chunked_run.grads, exact)
        rows.append(BiasRow(int(k2), *each, *chunked))
    return rows


def trained_char_model(
    train_steps: int = 3000, *, hidden_size: int = 64, chars: int = 200_000, seed: int = 0
) -> CharModelTrainer:
    """A character model trained on the pydoc topics with the classic recipe of Chapter 4.

    The recipe is spelled out here (chunks of 25 characters, Adagrad with step 0.1, gradients
    clipped to [-5, 5], weights drawn with scale 0.01) rather than taken from
    :class:`~bptt.app.train.TrainConfig`'s defaults, so that Chapter 6's measurements do not move
    when those defaults do.
    """
    config = TrainConfig(
        hidden_size=hidden_size,
        seq_length=25,
        learning_rate=0.1,
        optimizer="adagrad",
        clip_value=5.0,
        clip_norm=None,
        weight_scale=0.01,
        seed=seed,
    )
    trainer = CharModelTrainer(pydoc_topics(chars), config)
    trainer.train(train_steps)
    return trainer


def char_eval_sequence(
    trainer: CharModelTrainer, length: int, batch: int = 1, *, spacing: int = 1000
) -> tuple[np.ndarray, np.ndarray]:
    """``batch`` held-out sequences of ``length`` characters as ``(T, B)`` input and target ids.

    The sequences start in the second half of the trainer's text, ``spacing`` characters apart
    (the model is trained on the text from its start, and briefly, so it has rarely or never
    seen them). Chapter 6.
    """
    length = _checks.positive_int("length", length)
    batch = _checks.positive_int("batch", batch)
    spacing = _checks.positive_int("spacing", spacing, minimum=length + 1)
    start = trainer.data.size // 2
    end = start + (batch - 1) * spacing + length + 1
    if end > trainer.data.size:
        raise ValueError(
            f"the text ({trainer.data.size} characters) is too short for {batch} sequences of "
            f"length={length}, {spacing} apart, from its middle"
        )
    ids = np.stack([trainer.data[start + b * spacing :][: length + 1] for b in range(batch)], 1)
    return ids[:-1], ids[1:]


def char_bias_experiment(
    train_steps: int = 3000,
    length: int = 400,
    k2_values: Sequence[int] = (1, 2, 4, 8, 16, 32, 64, 128),
    *,
    hidden_size: int = 64,
    seed: int = 0,
    batch: int = 8,
) -> tuple[CharModelTrainer, list[BiasRow]]:
    """Train a character model briefly, then measure the truncation bias on ``batch`` held-out
    sequences of ``length`` characters (one gradient for the batch, the average loss).

    Explained in Chapter 6.
    """
    trainer = trained_char_model(train_steps, hidden_size=hidden_size, seed=seed)
    inputs, targets = char_eval_sequence(trainer, length, batch)
    return trainer, truncation_bias(trainer.params, inputs, targets, k2_values)


def artbp_gradient_draws(
    params: Params,
    inputs: Any,
    targets: Any,
    schedule: TruncationSchedule,
    draws: int,
    *,
    rng: np.random.Generator | int,
    h0: np.ndarray | None = None,
    cell: Cell = TANH,
    loss: LossFn = softmax_cross_entropy,
) -> dict[str, np.ndarray]:
    """``draws`` independent ARTBP gradients at fixed parameters: ``{name: (draws, *shape)}``.

    Their mean estimates the exact gradient (ARTBP is unbiased), their spread is ARTBP's noise.
    Explained in Chapter 7.
    """
    draws = _checks.positive_int("draws", draws)
    gen = as_generator(rng)
    out = {k: np.empty((draws, *v.shape)) for k, v in params.items()}
    for i in range(draws):
        grads = artbp(params, inputs, targets, schedule, rng=gen, h0=h0, cell=cell, loss=loss).grads
        for k, g in grads.items():
            out[k][i] = g
    return out


def power_law_with_mean(mean: float, alpha: float = 2.0) -> PowerLawTruncation:
    """The :class:`PowerLawTruncation` of tail exponent ``alpha > 1`` whose mean subsequence length
    is ``mean`` (found by bisection on the typical length)."""
    mean = _checks.positive_float("mean", mean)
    alpha = _checks.positive_float("alpha", alpha)
    if alpha <= 1:
        raise ValueError(f"alpha must be > 1 for a finite mean length, got {alpha}")
    if mean <= 1:
        raise ValueError(f"mean must be > 1 (a subsequence has at least one step), got {mean}")
    low, high = 1e-9, 10.0 * mean * alpha
    for _ in range(60):
        mid = (low + high) / 2
        if mean_length(PowerLawTruncation(mid, alpha), horizon=200_000) < mean:
            low = mid
        else:
            high = mid
    return PowerLawTruncation((low + high) / 2, alpha)


@dataclass(frozen=True)
class EqualCostRow:
    """Squared distance to the full gradient, at equal cost ``k`` (the same backward steps per
    forward step; memory: ``k`` steps for TBPTT, random with mean ``k`` for ARTBP).

    ``artbp_sq_errors`` holds one squared distance per ARTBP draw; the properties summarise them.
    """

    k: int
    tbptt_sq_error: float
    artbp_sq_errors: np.ndarray = field(repr=False)
    full_sq_norm: float

    @property
    def artbp_sq_error(self) -> float:
        """Mean squared distance of ARTBP's gradient to the full one, over the draws."""
        return float(np.mean(self.artbp_sq_errors))

    @property
    def artbp_sq_error_stderr(self) -> float:
        """Standard error of :attr:`artbp_sq_error`."""
        errors = self.artbp_sq_errors
        return float(np.std(errors, ddof=1) / np.sqrt(errors.size))

    @property
    def artbp_median(self) -> float:
        """Median squared distance of ARTBP's gradient to the full one."""
        return float(np.median(self.artbp_sq_errors))

    @property
    def artbp_closer(self) -> int:
        """How many ARTBP draws are closer to the full gradient than TBPTT(k, k)."""
        return int(np.sum(self.artbp_sq_errors < self.tbptt_sq_error))


def equal_cost_errors(
    params: Params,
    inputs: Any,
    targets: Any,
    lengths: Sequence[int],
    draws: int = 20,
    *,
    rng: np.random.Generator | int = 0,
    alpha: float = 2.0,
    cell: Cell = TANH,
    loss: LossFn = softmax_cross_entropy,
) -> list[EqualCostRow]:
    """TBPTT(k, k) against ARTBP with mean subsequence length ``k``: which gradient is closer to
    the full one on average? TBPTT's error is all bias, ARTBP's all variance. Chapter 7."""
    gen = as_generator(rng)
    _, exact, _ = loss_and_grads_stepwise(params, inputs, targets, cell=cell, loss=loss)
    e = flatten(exact)
    rows = []
    for k in lengths:
        k = _checks.positive_int("k", k, minimum=2)
        t = flatten(tbptt(params, inputs, targets, k, k, cell=cell, loss=loss).grads)
        samples = artbp_gradient_draws(
            params,
            inputs,
            targets,
            power_law_with_mean(k, alpha),
            draws,
            rng=gen,
            cell=cell,
            loss=loss,
        )
        flat = np.concatenate([s.reshape(draws, -1) for s in samples.values()], axis=1)
        sq = np.sum((flat - e) ** 2, axis=1)
        rows.append(EqualCostRow(k, float(np.sum((t - e) ** 2)), sq, float(e @ e)))
    return rows


def default_influence_methods(mean_length_: float = 16.0) -> list[Method]:
    """RTRL, a short chunked truncation, a long one, and ARTBP with both kinds of schedules at one
    mean subsequence length (so ARTBP costs what TBPTT(16, 16) costs)."""
    power = power_law_with_mean(mean_length_, 2.0)
    k = round(mean_length_)
    return [
        RTRL(),
        TBPTT(k, k),
        TBPTT(10, 60),
        ARTBP(power, "ARTBP, power-law schedule"),
        ARTBP(ConstantTruncation(1.0 / mean_length_), "ARTBP, constant schedule"),
    ]


def influence_online_experiment(
    steps: int = 100_000,
    *,
    methods: Sequence[Method] | None = None,
    learning_rate: float = 2e-4,
    decay_steps: float | None = 1000.0,
    seed: int = 0,
    n: int = 23,
    p: int = 10,
    divergence: float = 1e3,
) -> dict[str, OnlineRun]:
    """Online SGD on the influence-balancing stream with each method, from ``theta_0 = 0.5``.

    Returns ``{label: OnlineRun}`` whose ``tracked`` is ``theta`` after each update. Chapter 7
    runs it with fewer steps.
    """
    problem = influence_problem(steps, n=n, p=p)
    runs = {}
    for method in methods if methods is not None else default_influence_methods():
        runs[method.label] = online_sgd(
            problem.params,
            problem.inputs,
            problem.targets,
            method,
            learning_rate=learning_rate,
            decay_steps=decay_steps,
            trainable=["theta"],
            h0=problem.h0,
            cell=problem.cell,
            loss=squared_error,
            rng=seed,
            track=lambda params: float(params["theta"][0, 0]),
            divergence=divergence,
        )
    return runs


@dataclass(frozen=True)
class CharOnlineRow:
    """Held-out loss per character after online SGD with one method (Chapter 7)."""

    method: str
    learning_rate: float
    seed: int
    held_out_loss: float
    diverged: bool


def char_online_comparison(
    trainer: CharModelTrainer,
    stream_chars: int = 8000,
    *,
    learning_rates: Sequence[float] = (0.001, 0.003),
    seeds: Sequence[int] = (0, 1, 2),
    k: int = 25,
    held_out_chars: int = 5000,
    batch: int = 1,
) -> tuple[float, list[CharOnlineRow]]:
    """Continue training a character model online with TBPTT(k, k) and with ARTBP of mean
    subsequence length ``k`` (equal cost), by plain SGD on the same stream, and measure the loss
    per character on held-out text. With ``batch > 1`` the stream is cut into that many parallel
    streams, read side by side (each update averages their gradients). Returns the held-out loss
    before, and one row per run (ARTBP once per seed of its truncation draws; TBPTT is
    deterministic). Chapter 7."""
    batch = _checks.positive_int("batch", batch)
    data = trainer.data
    start = data.size // 2 + 1000
    held_out = data[start : start + held_out_chars + 1]
    stream = data[: stream_chars + 1]
    if held_out.size < held_out_chars + 1 or stream.size < stream_chars + 1:
        raise ValueError("the trainer's text is too short for these stream and held-out sizes")
    steps = stream_chars // batch
    if steps < 1:
        raise ValueError(f"stream_chars={stream_chars} is fewer than batch={batch} streams")
    inputs = stream[: steps * batch].reshape(batch, steps).T  # (T, B): stream b is column b
    targets = stream[1 : steps * batch + 1].reshape(batch, steps).T

    def held_out_loss(params: Params) -> float:  # forward only: no gradient needed
        outputs, _ = rnn_forward(params, held_out[:-1, None])
        flat = outputs.reshape(-1, outputs.shape[-1])
        return float(softmax_cross_entropy(flat, held_out[1:])[0])  # mean per character

    schedule = power_law_with_mean(float(k), 2.0)
    rows = []
    for rate in learning_rates:
        runs = [(TBPTT(k, k), 0)] + [(ARTBP(schedule, f"ARTBP, mean length {k}"), s) for s in seeds]
        for method, seed in runs:
            run = online_sgd(
                trainer.params,
                inputs,
                targets,
                method,
                learning_rate=rate,
                rng=seed,
                divergence=1e3,
            )
            loss = np.inf if run.diverged else held_out_loss(run.params)
            rows.append(CharOnlineRow(method.label, float(rate), seed, loss, run.diverged))
    return held_out_loss(trainer.params), rows
