"""Experiments of Chapter 10: gated cells, the constant error carousel and long-range tasks.

The measurements of the chapter as tested functions: the numerical Jacobian of the LSTM's cell
state, gradient norm against lag for several models on the same inputs, training on the
temporal-order task of Hochreiter & Schmidhuber (1997) with a last-step cross-entropy, and the
cost of one step of each cell. The defaults are the full-size settings; the chapter calls them
with small sizes. Everything runs on numpy alone (no threads, no files), so also in the browser.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bptt import _checks
from bptt.algorithms.stepwise import backward_stepwise, forward_stepwise
from bptt.cells import LSTM, Cell, Params, state_size
from bptt.cells.lstm import LSTMCell
from bptt.clip import clip_by_global_norm, global_norm
from bptt.experiments.tasks import temporal_order, temporal_order_baseline_loss
from bptt.experiments.vanishing import gradient_norm_vs_lag
from bptt.losses import softmax, softmax_cross_entropy
from bptt.optim import make_optimizer
from bptt.params import as_generator, init_params


def cell_state_jacobian(
    params: Params, state: np.ndarray, x: np.ndarray, *, eps: float = 1e-6, cell: LSTMCell = LSTM
) -> tuple[np.ndarray, np.ndarray]:
    """The partial derivative ``dc_t/dc_{t-1}`` of one LSTM step, by central differences.

    ``state`` is ``[h_{t-1} | c_{t-1}]`` for one example, shape ``(1, 2H)``, and ``x`` the input
    ``(1, D)``. Each entry of ``c_{t-1}`` is moved by ``+-eps`` with ``h_{t-1}`` held fixed, and
    the change of ``c_t`` is recorded. Returns ``(numerical (H, H), f_t (H,))``: the constant error
    carousel says the first is ``diag(f_t)``. Explained in Chapter 10.
    """
    state = _checks.float_array("state", state, ndim=2, layout="(1, 2H), [h | c]")
    if state.shape[0] != 1 or state.shape[1] % 2:
        raise ValueError(
            f"state must have shape (1, 2H) for one example, got {state.shape}; pass state[:1]"
        )
    H = state.shape[1] // 2
    numerical = np.empty((H, H))
    for j in range(H):
        shift = np.zeros_like(state)
        shift[0, H + j] = eps
        c_plus = cell.step(params, state + shift, x)[0][0, H:]
        c_minus = cell.step(params, state - shift, x)[0][0, H:]
        numerical[:, j] = (c_plus - c_minus) / (2 * eps)
    f = cell.step(params, state, x)[1][4][0]  # cache = (x, h, c_prev, i, f, g, o, tanh_c)
    return numerical, f


def lag_profiles(
    models: Mapping[str, tuple[Cell, Params]], inputs: Any, targets: Any
) -> dict[str, np.ndarray]:
    """``||dL/ds_{T-lag}|| / ||dL/ds_T||`` for every model, on the same inputs and targets.

    ``models`` maps a label to ``(cell, params)``; ``s_t`` is the cell's whole state (``h_t``,
    or ``[h_t | c_t]`` for the LSTM) and ``L`` the squared error of the last output
    (:func:`bptt.experiments.vanishing.gradient_norm_vs_lag`). Each curve has ``T + 1`` entries
    and starts at 1. Explained in Chapter 10.
    """
    curves: dict[str, np.ndarray] = {}
    for label, (cell, params) in models.items():
        norms = gradient_norm_vs_lag(params, inputs, targets, cell=cell)
        curves[label] = norms / norms[0]
    return curves


def first_lag_below(curve: Any, fraction: float = 0.01) -> int | None:
    """The first lag at which ``curve`` (starting at 1) falls below ``fraction``; None if never.

    Explained in Chapter 10.
    """
    values = _checks.float_array("curve", curve, ndim=1, layout="(lags,)")
    below = np.flatnonzero(values < fraction)
    return None if below.size == 0 else int(below[0])


def last_step_classification_loss_and_grads(
    params: Params,
    inputs: Any,
    targets: Any,
    h0: np.ndarray | None = None,
    *,
    cell: Cell = LSTM,
) -> tuple[float, Params, np.ndarray]:
    """Cross-entropy of the last output only, for integer ``targets`` ``(B,)``, and its gradient.

    Every other step's output derivative is zero (as in
    :func:`bptt.experiments.vanishing.last_step_loss_and_grads`), so the error signal enters at
    step T only. Returns ``(loss, grads, logits_T)``. Explained in Chapter 10.
    """
    outputs, hs, caches = forward_stepwise(params, inputs, h0, cell=cell)
    loss, dlast = softmax_cross_entropy(outputs[-1], targets)
    _checks.finite_scalar("loss", loss)
    doutputs = np.zeros_like(outputs)
    doutputs[-1] = dlast
    grads, _ = backward_stepwise(params, hs, caches, doutputs, cell=cell)
    return loss, grads, outputs[-1].copy()


@dataclass
class ClassificationRun:
    """The record of one training run on the temporal-order task."""

    label: str
    seq_length: int
    losses: list[float] = field(default_factory=list)
    grad_norms: list[float] = field(default_factory=list)
    test_loss: float = float("nan")
    test_accuracy: float = float("nan")
    baseline: float = field(default_factory=temporal_order_baseline_loss)
    diverged: bool = False
    params: Params = field(default_factory=dict, repr=False)

    @property
    def ratio(self) -> float:
        """Test loss over the uniform answer's ``ln 4``: 1 learns nothing, 0 is perfect."""
        return self.test_loss / self.baseline


def train_temporal_order(
    seq_length: int = 100,
    *,
    cell: Cell = LSTM,
    hidden_size: int = 32,
    weight_scale: float = 0.3,
    optimizer: str = "adam",
    learning_rate: float = 1e-2,
    clip_norm: float | None = 1.0,
    steps: int = 3000,
    batch_size: int = 64,
    test_size: int = 1000,
    rng: np.random.Generator | int = 0,
    label: str = "",
) -> ClassificationRun:
    """Train ``cell`` + linear readout on fresh batches of the temporal-order task.

    The loss is :func:`last_step_classification_loss_and_grads`; gradients are clipped to global
    norm ``clip_norm`` (None: not clipped), then the optimiser steps. A non-finite loss or
    gradient stops the run and marks it ``diverged``. ``test_loss`` and ``test_accuracy`` are
    measured on ``test_size`` held-out sequences. The defaults are the full-size run (the paper's
    length, T = 100); Chapter 10 calls it with small sizes.
    """
    T = _checks.positive_int("seq_length", seq_length, minimum=10)
    steps = _checks.positive_int("steps", steps)
    batch_size = _checks.positive_int("batch_size", batch_size)
    test_size = _checks.positive_int("test_size", test_size)
    gen = as_generator(rng)
    params = init_params(8, hidden_size, 4, gen, weight_scale=weight_scale, cell=cell)
    opt = make_optimizer(optimizer, learning_rate)
    run = ClassificationRun(label=label or cell.name, seq_length=T)
    test_inputs, test_targets = temporal_order(T, test_size, gen)
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(steps):
            inputs, targets = temporal_order(T, batch_size, gen)
            try:
                loss, grads, _ = last_step_classification_loss_and_grads(
                    params, inputs, targets, cell=cell
                )
            except (ValueError, FloatingPointError):
                run.diverged = True
                break
            norm = global_norm(grads)
            run.losses.append(loss)
            run.grad_norms.append(norm)
            if not np.isfinite(norm):
                run.diverged = True
                break
            if clip_norm is not None:
                grads, _ = clip_by_global_norm(grads, clip_norm)
            opt.step(params, grads)
        if not run.diverged:
            try:
                run.test_loss, _, logits = last_step_classification_loss_and_grads(
                    params, test_inputs, test_targets, cell=cell
                )
            except (ValueError, FloatingPointError):
                run.diverged = True
            else:
                predicted = softmax(logits).argmax(axis=-1)
                run.test_accuracy = float(np.mean(predicted == test_targets))
    run.params = params
    return run


def smoothed(values: Sequence[float], window: int = 50) -> np.ndarray:
    """Means of ``values`` over consecutive, non-overlapping windows of ``window`` entries.

    A learning curve of noisy mini-batch losses read as a few averages; a trailing part shorter
    than ``window`` is dropped. Explained in Chapter 10.
    """
    window = _checks.positive_int("window", window)
    array = _checks.float_array("values", values, ndim=1, layout="(steps,)")
    n = array.size // window
    if n == 0:
        raise ValueError(
            f"values must hold at least window = {window} entries, got {array.size}; pass a "
            "smaller window"
        )
    means: np.ndarray = array[: n * window].reshape(n, window).mean(axis=1)
    return means


def step_seconds(
    cells: Mapping[str, Cell],
    *,
    input_size: int = 32,
    hidden_size: int = 128,
    batch_size: int = 32,
    repeats: int = 200,
    rng: np.random.Generator | int = 0,
) -> dict[str, float]:
    """Seconds for one step forward plus its backward step, for each cell (the fastest of runs).

    The same sizes for every cell; each timing is the minimum over ``repeats`` runs, the least
    disturbed by other work on the machine. Explained in Chapter 10.
    """
    repeats = _checks.positive_int("repeats", repeats)
    gen = as_generator(rng)
    x = gen.standard_normal((batch_size, input_size))
    seconds: dict[str, float] = {}
    for label, cell in cells.items():
        params = cell.init_params(input_size, hidden_size, gen, 0.1, np.float64)
        S = state_size(cell, hidden_size)
        h = gen.standard_normal((batch_size, S)) * 0.5
        dh = gen.standard_normal((batch_size, S))
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            _, cache = cell.step(params, h, x)
            cell.step_backward(params, cache, dh)
            best = min(best, time.perf_counter() - start)
        seconds[label] = best
    return seconds


def gate_saturation(
    params: Params, inputs: Any, *, cell: LSTMCell = LSTM, level: float = 0.1
) -> float:
    """The fraction of the LSTM's gate values, over all steps, examples and units, that saturate.

    A gate value saturates when its slope is below ``level`` times the largest slope of its
    squashing function: ``s (1 - s) < level / 4`` for the sigmoid gates i, f, o, and
    ``1 - g**2 < level`` for the tanh candidate g (the level of Chapter 9's saturated tanh units).
    A saturated gate barely passes a derivative. Explained in Chapter 10.
    """
    level = _checks.positive_float("level", level)
    _, _, caches = forward_stepwise(params, inputs, cell=cell)
    count = total = 0
    for cache in caches:  # cache = (x, h_prev, c_prev, i, f, g, o, tanh_c)
        i, f, g, o = cache[3:7]
        for s in (i, f, o):
            count += int(np.count_nonzero(s * (1.0 - s) < level / 4.0))
            total += s.size
        count += int(np.count_nonzero(1.0 - g * g < level))
        total += g.size
    return count / total


def ends_not_rising(curve: Any, tolerance: float = 2.0) -> bool:
    """True when the last value of a smoothed learning curve is not above the earlier ones.

    The last value must be at most ``tolerance`` times the smallest earlier value: at the loss
    levels of a solved task the window means of mini-batch losses still move by tens of per cent,
    so ``tolerance`` leaves room for that noise but not for a curve that climbs back. Explained in
    Chapter 10.
    """
    values = _checks.float_array("curve", curve, ndim=1, layout="(windows,)")
    tolerance = _checks.positive_float("tolerance", tolerance)
    if values.size < 2:
        raise ValueError(f"curve must hold at least 2 values, got {values.size}")
    return bool(values[-1] <= tolerance * values[:-1].min())
