"""Experiments of Chapter 9: training on the adding problem, and gradient norm against lag.

The adding problem asks for one answer after the last step, so its loss is a *sequence-level*
loss: squared error on the last output only. :func:`last_step_loss_and_grads` computes it with the
package's step-wise BPTT by setting the output derivatives of every other step to zero. The training
runs are functions with full-size defaults; the chapter calls them with small sizes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bptt import _checks
from bptt.algorithms.stepwise import backward_stepwise, forward_stepwise
from bptt.algorithms.vectorised import rnn_backward, rnn_forward
from bptt.cells import TANH, Cell, Params, hidden, hidden_backward
from bptt.clip import clip_by_global_norm, clip_by_value, global_norm
from bptt.dynamics import backprop_state_norms
from bptt.experiments.tasks import adding_baseline_loss, adding_problem
from bptt.initializers import init_rnn_params
from bptt.losses import squared_error
from bptt.optim import make_optimizer
from bptt.params import as_generator, init_params
from bptt.readout import readout_backward


def last_step_loss_and_grads(
    params: Params,
    inputs: Any,
    targets: Any,
    h0: np.ndarray | None = None,
    *,
    cell: Cell = TANH,
) -> tuple[float, Params, np.ndarray]:
    """Squared error ``(o_T - y_T)**2 / 2`` on the last output only, and its gradient by BPTT.

    ``targets``, the targets ``y_T``, has shape ``(B, V)``. Every other step's output derivative
    is zero, so the only error signal enters at step T and must travel back through the
    recurrence to reach early inputs. Returns ``(loss, grads, h_T)`` like
    :func:`bptt.loss_and_grads`. Explained in Chapter 9.
    """
    if cell is TANH:  # the vectorised tanh path of Chapter 4: same numbers, faster
        outputs, cache = rnn_forward(params, inputs, h0)
        hs = cache.hs
    else:
        outputs, hs, caches = forward_stepwise(params, inputs, h0, cell=cell)
    loss, dlast = squared_error(outputs[-1], targets)
    _checks.finite_scalar("loss", loss)
    doutputs = np.zeros_like(outputs)
    doutputs[-1] = dlast
    if cell is TANH:
        grads, _ = rnn_backward(params, cache, doutputs)
    else:
        grads, _ = backward_stepwise(params, hs, caches, doutputs, cell=cell)
    return loss, grads, hs[-1].copy()


def gradient_norm_vs_lag(
    params: Params,
    inputs: Any,
    targets: Any,
    h0: np.ndarray | None = None,
    *,
    cell: Cell = TANH,
) -> np.ndarray:
    """``||dL/dh_{T - lag}||`` for ``lag = 0 .. T`` of the last-step loss (array of length T + 1).

    How much of the error signal of the last step is left after travelling ``lag`` steps back.
    Works for any cell (the chapter compares the tanh cell and the GRU). Explained in Chapter 9.
    """
    outputs, hs, caches = forward_stepwise(params, inputs, h0, cell=cell)
    _, dlast = squared_error(outputs[-1], targets)
    dh, _ = readout_backward(params, hidden(cell, hs[-1]), dlast)
    dh = hidden_backward(cell, dh)  # w.r.t. the whole state ([h | c] for the LSTM)
    T = len(caches)
    return backprop_state_norms(params, caches, dh, T, cell=cell)[::-1].copy()


@dataclass
class AddingRun:
    """The record of one training run on the adding problem."""

    label: str
    seq_length: int
    losses: list[float] = field(default_factory=list)
    grad_norms: list[float] = field(default_factory=list)
    test_loss: float = float("nan")
    baseline: float = field(default_factory=adding_baseline_loss)
    diverged: bool = False
    params: Params = field(default_factory=dict, repr=False)

    @property
    def ratio(self) -> float:
        """Test loss over the trivial baseline's loss: 1 learns nothing, 0 is perfect."""
        return self.test_loss / self.baseline

    def solved(self, threshold: float = 0.1) -> bool:
        """True when the test loss is below ``threshold`` times the baseline."""
        return (not self.diverged) and self.ratio < threshold


def make_adding_model(
    cell: Cell,
    hidden_size: int,
    rng: np.random.Generator | int,
    *,
    recurrent: str = "gaussian",
    spectral_radius: float | None = None,
    weight_scale: float = 0.01,
    input_scale: float | None = None,
) -> Params:
    """Parameters for the adding problem (D = 2 inputs, V = 1 output).

    For the tanh cell ``W_hh`` comes from :func:`bptt.initializers.init_rnn_params`; for other
    cells every weight is Gaussian with ``weight_scale`` (the cell's own ``init_params``).
    Explained in Chapter 9.
    """
    if cell is TANH:
        return init_rnn_params(
            2,
            hidden_size,
            1,
            rng,
            recurrent=recurrent,
            spectral_radius=spectral_radius,
            weight_scale=weight_scale,
            input_scale=input_scale,
        )
    return init_params(2, hidden_size, 1, rng, weight_scale=weight_scale, cell=cell)


def train_adding(
    seq_length: int = 100,
    *,
    cell: Cell = TANH,
    hidden_size: int = 64,
    recurrent: str = "gaussian",
    spectral_radius: float | None = None,
    weight_scale: float = 0.01,
    input_scale: float | None = None,
    clip_norm: float | None = None,
    clip_value: float | None = None,
    optimizer: str = "adam",
    learning_rate: float = 1e-2,
    steps: int = 3000,
    batch_size: int = 64,
    test_size: int = 1000,
    rng: np.random.Generator | int = 0,
    label: str = "",
) -> AddingRun:
    """Train a model on freshly drawn batches of the adding problem; return an :class:`AddingRun`.

    The loss is :func:`last_step_loss_and_grads`; gradients are clipped by global norm
    (``clip_norm``) or element-wise (``clip_value``) when asked, then the optimiser steps. A
    non-finite or overflowing loss or gradient stops the run and marks it ``diverged`` (nothing is
    propagated). ``test_loss`` is measured on ``test_size`` held-out sequences. The defaults are
    the full-size run; Chapter 9 calls it with small sizes.
    """
    T = _checks.positive_int("seq_length", seq_length, minimum=2)
    steps = _checks.positive_int("steps", steps)
    batch_size = _checks.positive_int("batch_size", batch_size)
    test_size = _checks.positive_int("test_size", test_size)
    gen = as_generator(rng)
    params = make_adding_model(
        cell,
        hidden_size,
        gen,
        recurrent=recurrent,
        spectral_radius=spectral_radius,
        weight_scale=weight_scale,
        input_scale=input_scale,
    )
    opt = make_optimizer(optimizer, learning_rate)
    run = AddingRun(label=label or f"{cell.name}, {recurrent}", seq_length=T)
    test_inputs, test_targets = adding_problem(T, test_size, gen)
    # Overflow in a diverging run is detected below; numpy's warnings would only add noise.
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(steps):
            inputs, targets = adding_problem(T, batch_size, gen)
            try:
                loss, grads, _ = last_step_loss_and_grads(params, inputs, targets, cell=cell)
            except (ValueError, FloatingPointError):  # non-finite parameters or loss
                run.diverged = True
                break
            norm = global_norm(grads)
            run.losses.append(loss)
            run.grad_norms.append(norm)
            if not np.isfinite(norm) or loss > 1e6:
                run.diverged = True
                break
            if clip_norm is not None:
                grads, _ = clip_by_global_norm(grads, clip_norm)
            if clip_value is not None:
                grads = clip_by_value(grads, clip_value)
            opt.step(params, grads)
        if not run.diverged:
            try:
                run.test_loss = last_step_loss_and_grads(
                    params, test_inputs, test_targets, cell=cell
                )[0]
            except (ValueError, FloatingPointError):
                run.diverged = True
    run.params = params
    return run


DEFAULT_SETTINGS: dict[str, dict[str, Any]] = {
    "tanh, small Gaussian": {"recurrent": "gaussian", "weight_scale": 0.01},
    "tanh, orthogonal": {"recurrent": "orthogonal", "weight_scale": 0.1, "input_scale": 0.5},
    "tanh, identity": {"recurrent": "identity", "weight_scale": 0.1, "input_scale": 0.5},
    "GRU": {"cell": "gru", "weight_scale": 0.1},
}
"""The settings :func:`adding_sweep` compares by default (``"cell": "gru"`` selects the GRU)."""


def adding_sweep(
    seq_lengths: Sequence[int] = (25, 50, 100, 200),
    settings: dict[str, dict[str, Any]] | None = None,
    **common: Any,
) -> dict[str, list[AddingRun]]:
    """Run :func:`train_adding` for every setting and sequence length.

    ``settings`` maps a label to keyword arguments of :func:`train_adding` (default
    :data:`DEFAULT_SETTINGS`); ``"cell": "gru"`` selects :data:`bptt.GRU`. ``common`` keyword
    arguments apply to every run. Returns ``{label: [run for each T]}``. Explained in Chapter 9.
    """
    from bptt.cells.gru import GRU

    settings = DEFAULT_SETTINGS if settings is None else settings
    results: dict[str, list[AddingRun]] = {}
    for label, options in settings.items():
        options = dict(options)
        if options.get("cell") == "gru":
            options["cell"] = GRU
        results[label] = [
            train_adding(T, label=label, **{**common, **options}) for T in seq_lengths
        ]
    return results
