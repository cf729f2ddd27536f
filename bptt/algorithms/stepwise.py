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
from bptt.algorithms.result import BPTTResult
from bptt.cells import Cell, Params, hidden, hidden_backward
from bptt.losses import softmax_cross_entropy, squared_error
from bptt.model import Model, model_parts
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


MASK_LAYOUT = "a (T, B) array of 0/1 (bool or numbers), 0 marking a padded step"


def check_mask(mask: Any, T: int, B: int) -> np.ndarray | None:
    """Validate a ``(T, B)`` mask of 0/1 and return it as booleans (None stays None).

    ``mask[t, b] = 0`` marks step t of sequence b as padding: its loss is not counted and the
    state does not advance through it (see :func:`loss_and_grads_stepwise`). Booleans and numbers
    equal to 0 or 1 are accepted; anything else raises a ``ValueError`` (or a ``TypeError`` for
    what is not an array of numbers) naming ``mask``. Explained in Chapter 4.
    """
    if mask is None:
        return None
    array = _checks.as_array("mask", mask) if not isinstance(mask, str) else np.asarray(mask)
    if array.dtype == bool:
        pass
    elif not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise ValueError(
            f"mask must be {MASK_LAYOUT}, got {_checks.describe(mask)}; pass e.g. "
            "np.arange(T)[:, None] < lengths[None, :]"
        )
    if array.shape != (T, B):
        hint = _checks.batch_first_hint(array.shape, T, B) or ""
        raise ValueError(
            f"mask must have shape (T, B) = {(T, B)} like the inputs, got {array.shape}{hint}"
        )
    if array.dtype != bool:
        bad = ~((array == 0) | (array == 1))
        if np.any(bad):
            first = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(
                f"mask must hold only 0 and 1, got {array[first]!r} at index {first}; "
                f"pass {MASK_LAYOUT}"
            )
        array = array == 1
    return np.ascontiguousarray(array)


def masked_step_loss(
    loss: LossFn, outputs: np.ndarray, targets: np.ndarray, keep: np.ndarray | None
) -> tuple[float, np.ndarray]:
    """One step's loss with the padded rows left out: ``(1/B) sum_b keep[b] l_b`` and its gradient.

    ``loss`` averages over the rows it is given (the package's convention), so it runs on the
    kept rows only and is rescaled from their count to the batch B; the padded rows' targets are
    never read and their output derivatives are zero. ``keep=None`` (no mask) is ``loss`` itself.
    Explained in Chapter 4.
    """
    B = outputs.shape[0]
    if keep is None or keep.all():
        return loss(outputs, targets)
    doutputs = np.zeros_like(outputs)
    rows = np.flatnonzero(keep)
    if rows.size == 0:
        return 0.0, doutputs
    value, d = loss(outputs[rows], targets[rows])
    scale = rows.size / B
    doutputs[rows] = d * scale
    return float(value) * scale, doutputs


def masked_update(keep: np.ndarray | None, new: np.ndarray, old: np.ndarray) -> np.ndarray:
    """The state after a step: ``new`` in the rows kept, ``old`` in the padded ones.

    ``new`` and ``old`` are ``(B, ...)``: a state ``(B, S)``, or what an online algorithm carries
    with it (RTRL's sensitivity ``(B, S, P)``, UORO's ``h~``). ``keep=None`` (no mask) returns
    ``new`` itself. Explained in Chapter 4.
    """
    if keep is None:
        return new
    return np.where(keep.reshape(-1, *(1,) * (new.ndim - 1)), new, old)


def masked_step_backward(
    cell: Cell, params: Params, cache: Any, delta: np.ndarray, keep: np.ndarray | None
) -> tuple[np.ndarray, Params]:
    """``cell.step_backward`` of a masked step: a padded row's ``delta`` passes straight through.

    The cell sees ``delta * keep`` (no gradient flows through a step that was skipped), and the
    derivative returned for the previous state is the cell's in the kept rows and ``delta`` itself
    in the padded ones, whose state was copied unchanged. Explained in Chapter 4.
    """
    if keep is None:
        dh_prev, cell_grads, _ = cell.step_backward(params, cache, delta)
        return dh_prev, cell_grads
    column = keep[:, None]
    dh_prev, cell_grads, _ = cell.step_backward(params, cache, delta * column)
    return np.where(column, dh_prev, delta), cell_grads


def check_update(update: Any) -> None:
    """An online algorithm's ``update(grads, t)`` callback must be callable or None."""
    if update is not None and not callable(update):
        raise TypeError(f"update must be a callable update(grads, t) or None, got {update!r}")


def forward_stepwise(
    params: Params | Model,
    inputs: Any,
    h0: np.ndarray | None = None,
    *,
    cell: Cell | None = None,
    mask: Any = None,
) -> tuple[np.ndarray, np.ndarray, list[Any]]:
    """Unroll ``cell`` over the inputs one step at a time.

    Returns ``(outputs (T, B, V), hs (T + 1, B, S), caches)`` where ``caches[t]`` is what
    ``cell.step_backward`` needs for step ``t + 1``. ``hs`` holds the cell's states, ``S = H``
    but for a cell with a wider state (the LSTM's ``[h | c]``, ``S = 2H``, whose readout reads
    :func:`bptt.cells.hidden` of it). With a ``mask`` ``(T, B)`` (see
    :func:`loss_and_grads_stepwise`) a padded step leaves its row of the state unchanged:
    ``hs[t + 1, b] = hs[t, b]`` where ``mask[t, b] = 0``. Explained in Chapter 2 (unrolling
    itself in Chapter 1).
    """
    params, cell = model_parts(params, cell)
    D, H, V = check_params(params, cell)
    dtype = params["W_hy"].dtype
    x = prepare_inputs(inputs, D, dtype)
    T, B = x.shape[:2]
    h0 = prepare_h0(h0, B, H, dtype, steps=T, cell=cell)
    keep = check_mask(mask, T, B)
    hs = np.empty((T + 1, *h0.shape), dtype=dtype)
    hs[0] = h0
    outputs = np.empty((T, B, V), dtype=dtype)
    caches = []
    for t in range(T):
        new, cache = cell.step(params, hs[t], x[t])
        hs[t + 1] = new if keep is None else masked_update(keep[t], new, hs[t])
        outputs[t] = readout_forward(params, hidden(cell, hs[t + 1]))
        caches.append(cache)
    return outputs, hs, caches


def backward_stepwise(
    params: Params | Model,
    hs: np.ndarray,
    caches: list[Any],
    doutputs: np.ndarray,
    *,
    cell: Cell | None = None,
    dh_last: np.ndarray | None = None,
    mask: Any = None,
) -> tuple[Params, np.ndarray]:
    """BPTT one step at a time from ``doutputs`` ``(T, B, V)``; returns ``(grads, dL/dh_0)``.

    At step t the total derivative ``delta_t = dL/dh_t`` is the readout's direct term ``dl_t/dh_t``
    plus ``dh_next``, the part of ``dL/dh_t`` that flows back through ``h_{t+1}``. For a cell
    whose state is wider than h (the LSTM's ``[h | c]``) the derivatives are with respect to the
    whole state, and the direct term enters through :func:`bptt.cells.hidden_backward`.
    With the ``mask`` given to :func:`forward_stepwise`, a padded step passes ``delta_t``
    straight to ``h_{t-1}`` and its cell gets no gradient (give ``doutputs`` zero there, as
    :func:`loss_and_grads_stepwise` does). Explained in Chapter 2.
    """
    params, cell = model_parts(params, cell)
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
    keep = check_mask(mask, T, B)
    grads = zeros_like_params(params)
    dh_next = np.zeros_like(hs[0]) if dh_last is None else dh_last
    for t in range(T - 1, -1, -1):
        dh_direct, readout_grads = readout_backward(params, hidden(cell, hs[t + 1]), doutputs[t])
        delta = hidden_backward(cell, dh_direct) + dh_next
        if keep is None:
            dh_next, cell_grads, _ = cell.step_backward(params, caches[t], delta)
        else:
            dh_next, cell_grads = masked_step_backward(cell, params, caches[t], delta, keep[t])
        for name, g in (*readout_grads.items(), *cell_grads.items()):
            grads[name] += g
    return grads, dh_next


def loss_and_grads_stepwise(
    params: Params | Model,
    inputs: Any,
    targets: Any,
    h0: np.ndarray | None = None,
    *,
    cell: Cell | None = None,
    loss: LossFn = softmax_cross_entropy,
    mask: Any = None,
) -> BPTTResult:
    """Loss summed over steps and its gradient by full BPTT, one time step at a time.

    Same contract as :func:`bptt.loss_and_grads`, for any ``cell`` and any per-step ``loss``
    (:func:`bptt.softmax_cross_entropy` with integer targets ``(T, B)``, or
    :func:`bptt.squared_error` with float targets ``(T, B, V)``). ``h0`` and the returned final
    state are the cell's state ``(B, S)``: ``(B, H)``, or ``[h | c]`` ``(B, 2H)`` for the LSTM.

    **Sequences of different lengths.** ``mask`` ``(T, B)`` of 0/1 (bool or numbers; None means
    all ones and costs nothing) marks padding with 0: a padded step's loss is not counted,
    ``L = (1/B) sum_b sum_t mask[t, b] l_{t,b}`` (still divided by the batch B), and the state
    does not advance through it (row b of ``h_t`` is row b of ``h_{t-1}``), so no gradient flows
    through its cell and the final state of sequence b is its state after its last valid step.
    A batch of sequences padded at the end then gives the mean over b of the losses and
    gradients of each sequence run alone; the padded steps' inputs and targets are never used.
    A custom ``loss`` must average over the rows it is given, as the package's losses do.
    Explained in Chapter 4.
    """
    params, cell = model_parts(params, cell)
    total, hs, caches, doutputs = forward_with_losses(
        params, inputs, targets, h0, cell=cell, loss=loss, mask=mask
    )
    grads, _ = backward_stepwise(params, hs, caches, doutputs, cell=cell, mask=mask)
    return BPTTResult(total, grads, hs[-1].copy())


def forward_with_losses(
    params: Params | Model,
    inputs: Any,
    targets: Any,
    h0: np.ndarray | None = None,
    *,
    cell: Cell | None = None,
    loss: LossFn = softmax_cross_entropy,
    mask: Any = None,
) -> tuple[float, np.ndarray, list[Any], np.ndarray]:
    """Forward pass plus every step's loss: ``(total loss, hs, caches, doutputs (T, B, V))``.

    With a ``mask`` the padded steps' losses are left out (:func:`masked_step_loss`). Raises
    ``FloatingPointError`` if the total loss is not finite. Explained in Chapter 4.
    """
    params, cell = model_parts(params, cell)
    outputs, hs, caches = forward_stepwise(params, inputs, h0, cell=cell, mask=mask)
    T, B, V = outputs.shape
    targets = check_loss(loss, check_targets(targets, T, B), V)
    keep = check_mask(mask, T, B)
    total = 0.0
    doutputs = np.empty_like(outputs)
    for t in range(T):
        if keep is None:
            step_loss, doutputs[t] = loss(outputs[t], targets[t])
        else:
            step_loss, doutputs[t] = masked_step_loss(loss, outputs[t], targets[t], keep[t])
        total += step_loss
    _checks.finite_scalar("loss", total)
    return total, hs, caches, doutputs
