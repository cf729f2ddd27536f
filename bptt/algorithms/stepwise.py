"""Full BPTT one time step at a time, written once for any :class:`~bptt.cells.Cell` (Chapter 4).

This is the algorithm exactly as Chapter 2 derives it: a forward loop that keeps every step's cache,
then a backward loop from ``t = T`` down to 1 in which the error signal ``delta_t`` is the direct
derivative of ``l_t`` plus what flows back from step ``t + 1``, and every shared parameter
accumulates one contribution per step. The vectorised
:func:`bptt.loss_and_grads` must agree with it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from bptt import _checks
from bptt.cells import TANH, Cell, Params, hidden, hidden_backward
from bptt.losses import softmax_cross_entropy, squared_error
from bptt.params import check_params, prepare_h0, prepare_inputs, zeros_like_params
from bptt.readout import readout_backward, readout_forward

LossFn = Callable[[np.ndarray, np.ndarray], tuple[float, np.ndarray]]
"""A per-step loss: ``(outputs (B, V), targets) -> (loss, doutputs)``; see :mod:`bptt.losses`."""


def check_targets(targets: Any, T: int, B: int) -> np.ndarray:
    """Targets must start with the ``(T, B)`` axes of the inputs (ids, or ``(T, B, V)`` floats)."""
    array = np.asarray(targets) if not isinstance(targets, str) else np.empty(())
    if array.shape[:2] != (T, B):
        hint = _checks.batch_first_hint(array.shape, T, B) or "; give one target per step"
        raise ValueError(
            f"targets must have leading shape (T, B) = {(T, B)} like the inputs, got "
            f"{np.shape(targets)}{hint}"
        )
    return array


def check_loss(loss: Any, targets: np.ndarray, output_size: int) -> np.ndarray:
    """Check ``targets`` against the per-step ``loss`` they are for, before any step runs.

    The package's own losses get their full check here (ids ``(T, B)`` for softmax
    cross-entropy, floats ``(T, B, V)`` for squared error), so a bad target is reported once,
    with its whole shape, rather than as a slice inside the loop. Any other callable is trusted.
    """
    if not callable(loss):
        raise TypeError(
            f"loss must be a per-step loss function (outputs, targets) -> (loss, doutputs), got "
            f"{_checks.describe(loss)}; pass e.g. bptt.softmax_cross_entropy"
        )
    if loss is softmax_cross_entropy:
        return _checks.id_array("targets", targets, upper=output_size, ndim=2)
    if loss is squared_error:
        T, B = targets.shape[:2]
        return _checks.float_array(
            "targets", targets, shape=(T, B, output_size), layout="(T, B, V) for squared_error"
        )
    return targets


def prepare_stream(
    params: Params, inputs: Any, targets: Any, h0: np.ndarray | None, cell: Cell
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate a step-by-step algorithm's arguments: ``(x (T, B, D), targets, h0 (B, S))``.

    Shared by every algorithm that walks the sequence itself (truncated BPTT, ARTBP, RTRL), so all
    of them reject bad input with the same messages. Integer ids become one-hot rows. ``S`` is the
    width of the cell's state (:func:`bptt.cells.state_size`: H, or 2H for the LSTM).
    """
    D, H, _ = check_params(params, cell)
    dtype = params["W_hy"].dtype
    x = prepare_inputs(inputs, D, dtype)
    T, B = x.shape[:2]
    h = prepare_h0(h0, B, H, dtype, steps=T, cell=cell)
    return x, check_targets(targets, T, B), h


def check_update(update: Any) -> None:
    """An online algorithm's ``update(grads, t)`` callback must be callable or None."""
    if update is not None and not callable(update):
        raise TypeError(f"update must be a callable update(grads, t) or None, got {update!r}")


def forward_stepwise(
    params: Params, inputs: Any, h0: np.ndarray | None = None, *, cell: Cell = TANH
) -> tuple[np.ndarray, np.ndarray, list[Any]]:
    """Unroll ``cell`` over the inputs one step at a time.

    Returns ``(outputs (T, B, V), hs (T + 1, B, S), caches)`` where ``caches[t]`` is what
    ``cell.step_backward`` needs for step ``t + 1``. ``hs`` holds the cell's states, ``S = H``
    but for a cell with a wider state (the LSTM's ``[h | c]``, ``S = 2H``, whose readout reads
    :func:`bptt.cells.hidden` of it). Explained in Chapter 2 (unrolling itself in Chapter 1).
    """
    D, H, V = check_params(params, cell)
    dtype = params["W_hy"].dtype
    x = prepare_inputs(inputs, D, dtype)
    T, B = x.shape[:2]
    h0 = prepare_h0(h0, B, H, dtype, steps=T, cell=cell)
    hs = np.empty((T + 1, *h0.shape), dtype=dtype)
    hs[0] = h0
    outputs = np.empty((T, B, V), dtype=dtype)
    caches = []
    for t in range(T):
        hs[t + 1], cache = cell.step(params, hs[t], x[t])
        outputs[t] = readout_forward(params, hidden(cell, hs[t + 1]))
        caches.append(cache)
    return outputs, hs, caches


def backward_stepwise(
    params: Params,
    hs: np.ndarray,
    caches: list[Any],
    doutputs: np.ndarray,
    *,
    cell: Cell = TANH,
    dh_last: np.ndarray | None = None,
) -> tuple[Params, np.ndarray]:
    """BPTT one step at a time from ``doutputs`` ``(T, B, V)``; returns ``(grads, dL/dh_0)``.

    At step t the total derivative ``delta_t = dL/dh_t`` is the readout's direct term ``dl_t/dh_t``
    plus ``dh_next``, the part of ``dL/dh_t`` that flows back through ``h_{t+1}``. For a cell
    whose state is wider than h (the LSTM's ``[h | c]``) the derivatives are with respect to the
    whole state, and the direct term enters through :func:`bptt.cells.hidden_backward`.
    Explained in Chapter 2.
    """
    _, _, V = check_params(params, cell)
    if not isinstance(caches, list):
        raise TypeError(
            f"caches must be the list of step caches from forward_stepwise, got "
            f"{_checks.describe(caches)}; pass its third result"
        )
    T = len(caches)
    hs = _checks.float_array("hs", hs, ndim=3, layout="(T + 1, B, S) from forward_stepwise")
    if hs.shape[0] < T + 1:
        raise ValueError(
            f"hs must hold at least T + 1 = {T + 1} states for {T} caches, got shape "
            f"{hs.shape}; pass the hs and caches of one forward_stepwise call"
        )
    B, S = hs.shape[1:]
    doutputs = _checks.float_array("doutputs", doutputs, shape=(T, B, V), layout="(T, B, V)")
    if dh_last is not None:
        dh_last = _checks.float_array("dh_last", dh_last, shape=(B, S), layout="(B, S) like hs")
    grads = zeros_like_params(params)
    dh_next = np.zeros_like(hs[0]) if dh_last is None else dh_last
    for t in range(T - 1, -1, -1):
        dh_direct, readout_grads = readout_backward(params, hidden(cell, hs[t + 1]), doutputs[t])
        delta = hidden_backward(cell, dh_direct) + dh_next
        dh_next, cell_grads, _ = cell.step_backward(params, caches[t], delta)
        for name, g in (*readout_grads.items(), *cell_grads.items()):
            grads[name] += g
    return grads, dh_next


def loss_and_grads_stepwise(
    params: Params,
    inputs: Any,
    targets: Any,
    h0: np.ndarray | None = None,
    *,
    cell: Cell = TANH,
    loss: LossFn = softmax_cross_entropy,
) -> tuple[float, Params, np.ndarray]:
    """Loss summed over steps and its gradient by full BPTT, one time step at a time.

    Same contract as :func:`bptt.loss_and_grads`, for any ``cell`` and any per-step ``loss``
    (:func:`bptt.softmax_cross_entropy` with integer targets ``(T, B)``, or
    :func:`bptt.squared_error` with float targets ``(T, B, V)``). ``h0`` and the returned final
    state are the cell's state ``(B, S)``: ``(B, H)``, or ``[h | c]`` ``(B, 2H)`` for the LSTM.
    Explained in Chapter 4.
    """
    total, hs, caches, doutputs = forward_with_losses(
        params, inputs, targets, h0, cell=cell, loss=loss
    )
    grads, _ = backward_stepwise(params, hs, caches, doutputs, cell=cell)
    return total, grads, hs[-1].copy()


def forward_with_losses(
    params: Params,
    inputs: Any,
    targets: Any,
    h0: np.ndarray | None = None,
    *,
    cell: Cell = TANH,
    loss: LossFn = softmax_cross_entropy,
) -> tuple[float, np.ndarray, list[Any], np.ndarray]:
    """Forward pass plus every step's loss: ``(total loss, hs, caches, doutputs (T, B, V))``.

    Raises ``FloatingPointError`` if the total loss is not finite. Explained in Chapter 4.
    """
    outputs, hs, caches = forward_stepwise(params, inputs, h0, cell=cell)
    T, B, V = outputs.shape
    targets = check_loss(loss, check_targets(targets, T, B), V)
    total = 0.0
    doutputs = np.empty_like(outputs)
    for t in range(T):
        step_loss, doutputs[t] = loss(outputs[t], targets[t])
        total += step_loss
    _checks.finite_scalar("loss", total)
    return total, hs, caches, doutputs
