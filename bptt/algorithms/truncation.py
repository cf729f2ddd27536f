"""Truncated BPTT in the form of Williams & Peng, TBPTT(k1, k2) (Chapter 6, "Truncated BPTT").

The sequence is processed forward one step at a time, and every ``k1`` steps the gradient of the
losses of those ``k1`` steps is backpropagated through the last ``k2`` steps only. Each loss is
therefore counted exactly once, but it reaches back between ``k2 - k1 + 1`` and ``k2`` steps,
depending on where it falls in its group. Only the last ``k2`` step caches are kept, so the memory
is O(k2) whatever the length of the stream.

The common scheme "carry the hidden state, detach it every k steps" (the chunked training of
Chapter 4) is the special case TBPTT(k, k).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from bptt import _checks
from bptt.algorithms.result import BPTTResult
from bptt.algorithms.stepwise import (
    LossFn,
    check_mask,
    check_update,
    masked_step_backward,
    masked_step_loss,
    masked_update,
    prepare_stream,
)
from bptt.cells import TANH, Cell, Params, hidden, hidden_backward
from bptt.losses import softmax_cross_entropy
from bptt.model import Model, model_parts
from bptt.params import zeros_like_params
from bptt.readout import readout_backward, readout_forward

UpdateFn = Callable[[Params, int], Any]
"""``update(grads, t)``: called after each backward pass; may change ``params`` in place."""


class StepRecord(NamedTuple):
    """What one forward step keeps for a later backward pass: the cell's cache, its state ``h_t``
    and ``dl_t/do_t`` (the readout's input and the loss's derivative, for the direct term), and
    the step's row of the mask, ``keep`` ``(B,)`` booleans (None when nothing is masked)."""

    cache: Any
    h: np.ndarray
    doutput: np.ndarray
    keep: np.ndarray | None = None


def record_step(
    params: Params,
    h: np.ndarray,
    x_t: np.ndarray,
    target_t: Any,
    keep_t: np.ndarray | None,
    *,
    cell: Any,
    loss: LossFn,
) -> tuple[np.ndarray, float, StepRecord]:
    """One forward step of the streaming algorithms: the new state, the step's loss, its record.

    With a mask row ``keep_t`` a padded example's state does not advance and its loss is left
    out (:func:`~bptt.algorithms.stepwise.masked_update`,
    :func:`~bptt.algorithms.stepwise.masked_step_loss`). Shared by :func:`tbptt` and
    :func:`bptt.algorithms.artbp.artbp`. Explained in Chapter 6.
    """
    new, cache = cell.step(params, h, x_t)
    if keep_t is None:
        step_loss, doutput = loss(readout_forward(params, hidden(cell, new)), target_t)
        return new, step_loss, StepRecord(cache, new, doutput)
    h = masked_update(keep_t, new, h)
    outputs = readout_forward(params, hidden(cell, h))
    step_loss, doutput = masked_step_loss(loss, outputs, target_t, keep_t)
    return h, step_loss, StepRecord(cache, h, doutput, keep_t)


@dataclass
class TBPTTResult(BPTTResult):
    """The outcome of :func:`tbptt` (and of :func:`bptt.algorithms.artbp.artbp`).

    A :class:`~bptt.algorithms.result.BPTTResult`: ``loss, grads, h_last = tbptt(...)``.

    Explained in Chapter 6.

    Attributes
    ----------
    loss : float
        Sum of the per-step losses (each computed with the parameters current at that step).
    grads : dict
        Sum of the gradients of all backward passes.
    h_last : ndarray, shape (B, S)
        The final state, to carry into the next call (``S = H``, or ``2H`` for the LSTM's
        ``[h | c]``).
    updates : int
        Number of backward passes (calls of ``update``).
    forward_steps : int
        Number of forward steps, T.
    step_losses : ndarray, shape (T,)
        The loss of every step.
    """

    updates: int
    forward_steps: int
    step_losses: np.ndarray


def check_truncation(k1: Any, k2: Any) -> tuple[int, int]:
    """Validate TBPTT's ``k1`` (steps between backward passes) and ``k2`` (steps backpropagated).

    Both must be integers >= 1 with ``k1 <= k2``: with ``k1 > k2`` the oldest ``k1 - k2`` losses
    of each group would already have left the window of stored steps when their backward pass
    comes, and would silently never contribute to any gradient.
    """
    k1 = _checks.positive_int("k1", k1)
    k2 = _checks.positive_int("k2", k2)
    if k1 > k2:
        raise ValueError(
            f"k1 must be <= k2 (every k1 steps, backpropagate through the last k2 steps), "
            f"got k1={k1}, k2={k2}"
        )
    return k1, k2


def backward_window(
    params: Params,
    steps: Iterable[StepRecord],
    n_losses: int,
    *,
    cell: Cell = TANH,
    carry_scales: Iterable[float] | None = None,
) -> Params:
    """Backpropagate through a window of recorded steps, oldest first.

    The losses of the newest ``n_losses`` steps are injected; the error
    signal flows back through every step of the window and stops at its
    oldest step (the truncation). If ``carry_scales`` is given (one number
    per step, oldest first), the derivative flowing from step ``s`` back to
    step ``s - 1`` is multiplied by ``carry_scales[s]`` (ARTBP's
    compensation factors; the oldest step's scale is never used). A step recorded with a mask
    row passes the derivative of its padded rows straight back, as
    :func:`bptt.backward_stepwise` does. Returns the gradient. Explained in Chapter 6.
    """
    steps = list(steps)
    scales = None if carry_scales is None else list(carry_scales)
    grads = zeros_like_params(params)
    dh_next = None  # the error signal arriving from the step after
    for i in range(len(steps) - 1, -1, -1):
        cache, h, doutput, keep = steps[i]
        delta = np.zeros_like(h) if dh_next is None else dh_next
        if i >= len(steps) - n_losses:  # this step's loss is injected now
            dh_direct, readout_grads = readout_backward(params, hidden(cell, h), doutput)
            delta = delta + hidden_backward(cell, dh_direct)
            for name, g in readout_grads.items():
                grads[name] += g
        dh_next, cell_grads = masked_step_backward(cell, params, cache, delta, keep)
        for name, g in cell_grads.items():
            grads[name] += g
        if scales is not None:
            dh_next = dh_next * scales[i]
    return grads


def tbptt(
    params: Params | Model,
    inputs: Any,
    targets: Any,
    k1: int,
    k2: int,
    *,
    h0: np.ndarray | None = None,
    cell: Cell | None = None,
    loss: LossFn = softmax_cross_entropy,
    update: UpdateFn | None = None,
    mask: Any = None,
) -> TBPTTResult:
    """Truncated BPTT(k1, k2) of Williams & Peng over one stream of inputs.

    Runs the model forward one step at a time; every ``k1`` steps it backpropagates the losses of
    the steps since the previous backward pass through the last ``k2`` steps, starting from zero
    beyond them. At the end of the inputs, a last, shorter group of losses gets its backward pass
    too, also through the last ``k2`` steps (so with ``k2 >= T`` every loss reaches every earlier
    step and the gradient is exact). "Detach the state every ``k`` steps" is TBPTT(k, k) when
    ``k`` divides T (otherwise the last pass reaches ``k`` steps back into the previous chunk).

    Parameters
    ----------
    params : bptt.Model or dict
        A :class:`bptt.Model`, or the cell's parameters and the readout's ``W_hy``, ``b_y``.
    inputs : ndarray
        ``(T, B, D)`` floats or ``(T, B)`` integer ids (one-hot implied).
    targets : ndarray
        Targets for ``loss``: ids ``(T, B)`` or floats ``(T, B, V)``.
    k1 : int
        Steps between two backward passes (>= 1).
    k2 : int
        Steps each backward pass goes through (>= k1). ``k1 == k2 == k`` is the chunked scheme
        "detach the state every k steps"; ``k2 >= T`` gives the exact gradient when ``update``
        is None.
    h0 : ndarray, shape (B, S), optional
        Initial state (zeros by default), e.g. the ``h_last`` of the previous call. Gradients never
        flow into ``h0``. ``S = H``, or ``2H`` for the LSTM (``[h_0 | c_0]``).
    cell : Cell
        Any cell of the cell protocol (default: the tanh cell).
    loss : callable
        Per-step loss ``(outputs (B, V), targets) -> (loss, doutputs)``.
    update : callable, optional
        ``update(grads, t)`` is called after each backward pass, ``t`` being the number of steps
        processed so far; it may change ``params`` in place (online training). Later steps then use
        the new parameters, while steps already stored keep the activations computed before.
    mask : array_like, shape (T, B), optional
        0/1 marking padded steps, as for :func:`bptt.loss_and_grads_stepwise`: their losses are
        not counted (``step_losses[t]`` holds only the valid rows' share) and the state does not
        advance through them. Windows and backward passes stay where they are without a mask.

    Returns
    -------
    TBPTTResult
        ``loss``, ``grads`` (summed over backward passes, also when ``update`` is given),
        ``h_last``, ``updates``, ``forward_steps`` and ``step_losses``.

    Explained in Chapter 6.
    """
    params, cell = model_parts(params, cell)
    k1, k2 = check_truncation(k1, k2)
    x, targets, h = prepare_stream(params, inputs, targets, h0, cell)
    check_update(update)
    T, B = x.shape[:2]
    keep = check_mask(mask, T, B)

    # The only memory that grows with k2; nothing grows with T.
    window: deque[StepRecord] = deque(maxlen=k2)
    total = zeros_like_params(params)
    step_losses = np.empty(T)
    pending = updates = 0
    for t in range(T):
        row = None if keep is None else keep[t]
        h, step_losses[t], record = record_step(
            params, h, x[t], targets[t], row, cell=cell, loss=loss
        )
        window.append(record)
        pending += 1
        if pending == k1 or t == T - 1:
            grads = backward_window(params, window, pending, cell=cell)
            for name, g in grads.items():
                total[name] += g
            pending = 0
            updates += 1
            if update is not None:
                update(grads, t + 1)
    loss_sum = _checks.finite_scalar("loss", float(step_losses.sum()))
    return TBPTTResult(loss_sum, total, h.copy(), updates, T, step_losses)


def truncation_mask(T: int, k1: int, k2: int) -> np.ndarray:
    """Which losses reach which steps under TBPTT(k1, k2): a ``(T, T)`` boolean matrix.

    ``mask[s, r]`` (0-based) is True when the loss of step ``s`` is backpropagated into step ``r``:
    the loss is injected by the backward pass at the end ``b`` of its group of ``k1`` steps (or at
    the last step, for a group cut short by the end of the inputs) and that pass goes back to step
    ``b - k2 + 1``. Full BPTT is the lower triangle.
    Explained in Chapter 6.
    """
    T = _checks.positive_int("T", T)
    k1, k2 = check_truncation(k1, k2)
    s = np.arange(T)[:, None]
    r = np.arange(T)[None, :]
    backward_at = np.minimum((s // k1 + 1) * k1 - 1, T - 1)  # 0-based time of the pass
    return (r <= s) & (r > backward_at - k2)
