"""Real-time recurrent learning (RTRL): exact online gradients by forward accumulation.

BPTT accumulates ``delta_t = dL/dh_t`` backward in time; RTRL carries the sensitivity
``S_t = dh_t/dtheta`` forward with the state instead, so every step's gradient is available when
the step is taken. Introduced in Chapter 7 (on one parameter); explained for any cell in
Chapter 12.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bptt import _checks
from bptt.algorithms.stepwise import (
    LossFn,
    check_mask,
    check_update,
    masked_step_loss,
    masked_update,
    prepare_stream,
)
from bptt.algorithms.truncation import TBPTTResult, UpdateFn
from bptt.cells import Cell, Params, hidden, hidden_backward
from bptt.cells.base import param_size, step_jacobians, unflatten_params
from bptt.losses import squared_error
from bptt.model import Model, model_parts
from bptt.params import zeros_like_params
from bptt.readout import readout_backward, readout_forward


def rtrl(
    params: Params | Model,
    inputs: Any,
    targets: Any,
    h0: np.ndarray | None = None,
    *,
    cell: Cell | None = None,
    loss: LossFn = squared_error,
    update: UpdateFn | None = None,
    mask: Any = None,
) -> TBPTTResult:
    """Exact online gradients by forward-mode accumulation (real-time recurrent learning).

    Carries, for every example, the sensitivity ``S_t = dh_t/dtheta`` ``(B, S, P)`` of the state
    to all P entries of the cell's parameters, forward with the state::

        S_t = J_t S_{t-1} + dF/dtheta,    S_0 = 0,    dl_t/dtheta = S_t^T dl_t/dh_t,

    so the gradient of each step's loss is available at once, with no backward pass and no stored
    past. Without updates the summed gradients equal full BPTT's exactly; with updates the
    carried derivative mixes past parameter values, as in any online RTRL. Explained in
    Chapter 12 (introduced in Chapter 7).

    Parameters
    ----------
    params : bptt.Model or dict
        A :class:`bptt.Model`, or the cell's parameters and the readout's ``W_hy``, ``b_y``.
    inputs, targets, h0
        As for :func:`bptt.tbptt`: ``(T, B, D)`` floats or ``(T, B)`` ids, targets for ``loss``,
        and the initial state ``(B, S)`` (zeros by default).
    cell : Cell, optional
        Any cell of the cell protocol; None means the model's cell, or the tanh cell for a dict.
    loss : callable
        Per-step loss ``(outputs (B, V), targets) -> (loss, doutputs)`` (default squared error).
    update : callable, optional
        ``update(grads, t)`` is called after every step with that step's gradient; it may change
        ``params`` in place (online learning).
    mask : array_like, shape (T, B), optional
        0/1 marking padded steps, as for :func:`bptt.loss_and_grads_stepwise`: at a padded step
        an example's state and its sensitivity ``S`` are carried unchanged and its loss and
        gradient are zero, so a padded batch gives the mean of its sequences run alone.

    Returns
    -------
    TBPTTResult
        ``loss``, ``grads`` (summed over steps), ``h_last``, ``updates = forward_steps = T``
        and ``step_losses``.

    Notes
    -----
    The step's two Jacobians come from :func:`bptt.cells.base.step_jacobians`: in closed form for
    the tanh cell, and built from ``step_backward`` VJPs (row i of ``J_t`` and of ``dF/dtheta`` is
    the VJP with ``e_i``) for any other cell. VJPs rather than a forward-mode step written for
    every cell: every cell already has an exact, tested ``step_backward``, so RTRL runs on all of
    them (GRU, LSTM, any new cell) with no new derivative to derive and get wrong; the closed form
    is only a speed-up. A linear cell may instead define ``step_tangent(params, x, S_prev)``
    (the influence-balancing cell does), used as is.

    The cost is what makes RTRL rare: for a dense tanh RNN, ``S_t`` has ``S P ~ H^3`` entries
    per example and ``J_t S_{t-1}`` costs ``H^2 P ~ H^4`` per step.
    """
    params, cell = model_parts(params, cell)
    x, targets, h = prepare_stream(params, inputs, targets, h0, cell)
    check_update(update)
    (T, B), S_width = x.shape[:2], h.shape[1]
    keep = check_mask(mask, T, B)
    P = param_size(cell, params)
    tangent_step = getattr(cell, "step_tangent", None)
    S = np.zeros((B, S_width, P), dtype=h.dtype)  # S_0 = 0
    total = zeros_like_params(params)
    step_losses = np.empty(T)
    for t in range(T):
        row = None if keep is None else keep[t]  # the examples that take step t
        if tangent_step is not None:
            S_next = tangent_step(params, x[t], S)  # the cell advances S_t itself
        else:
            J, local = step_jacobians(cell, params, h, x[t])
            S_next = np.matmul(J, S) + local  # S_t = J_t S_{t-1} + dF/dtheta
        S = masked_update(row, S_next, S)  # a padded example keeps its S and its state
        h = masked_update(row, cell.step(params, h, x[t])[0], h)
        visible = hidden(cell, h)  # what the readout reads
        outputs = readout_forward(params, visible)
        step_losses[t], doutput = masked_step_loss(loss, outputs, targets[t], row)
        dh, grads = readout_backward(params, visible, doutput)  # dh: dl_t/dh_t (0 if padded)
        dh = hidden_backward(cell, dh)
        dtheta = np.einsum("bi,bip->p", dh, S)  # S_t^T dl_t/dh_t, summed over the batch
        grads.update(unflatten_params(cell, params, dtheta))
        for k, g in grads.items():
            total[k] += g
        if update is not None:
            update(grads, t + 1)
    loss_sum = _checks.finite_scalar("loss", float(step_losses.sum()))
    return TBPTTResult(loss_sum, total, h.copy(), T, T, step_losses)
