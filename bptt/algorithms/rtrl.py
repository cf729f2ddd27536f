"""Real-time recurrent learning (RTRL): exact online gradients by forward accumulation (Chapter 7).

BPTT accumulates ``dL/dh_t`` backward in time; RTRL carries the sensitivity ``S_t = dh_t/dtheta``
forward with the state instead, so every step's gradient is available when the step is taken.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bptt import _checks
from bptt.algorithms.stepwise import LossFn, check_update, prepare_stream
from bptt.algorithms.truncation import TBPTTResult, UpdateFn
from bptt.cells import Params, hidden, hidden_backward
from bptt.losses import squared_error
from bptt.params import zeros_like_params
from bptt.readout import readout_backward, readout_forward


def rtrl(
    params: Params,
    inputs: Any,
    targets: Any,
    *,
    cell: Any,
    h0: np.ndarray | None = None,
    loss: LossFn = squared_error,
    update: UpdateFn | None = None,
) -> TBPTTResult:
    """Exact online gradients by forward-mode accumulation (real-time recurrent learning).

    Carries the sensitivity ``S_t = dh_t/dtheta`` forward with the state (``cell.step_tangent``),
    so the gradient of each step's loss is available at once, with no backward pass and no stored
    past: ``dl_t/dtheta = S_t^T dl_t/dh_t``. ``update(grads, t)`` is called after every step.
    Without updates the summed gradients equal full BPTT's exactly; with updates the carried
    derivative mixes past parameter values, as in any online RTRL. The cost per step is that of
    propagating one tangent per parameter entry: affordable here (one parameter), prohibitive for
    large networks (H^2 entries, each with an (H,) tangent). Explained in Chapter 7.
    """
    if not hasattr(cell, "step_tangent"):
        raise TypeError(f"rtrl needs a cell with step_tangent (e.g. InfluenceCell), got {cell!r}")
    if len(cell.param_names) != 1:
        raise ValueError(f"rtrl supports cells with one parameter array, got {cell.param_names}")
    name = cell.param_names[0]
    x, targets, h = prepare_stream(params, inputs, targets, h0, cell)
    check_update(update)
    (T, B), H = x.shape[:2], h.shape[1]
    S = np.zeros((B, H, params[name].size), dtype=h.dtype)  # S_0 = 0
    total = zeros_like_params(params)
    step_losses = np.empty(T)
    for t in range(T):
        S = cell.step_tangent(params, x[t], S)  # S_t = J_t S_{t-1} + local
        h, _ = cell.step(params, h, x[t])
        visible = hidden(cell, h)  # what the readout reads (the state itself for these cells)
        step_losses[t], doutput = loss(readout_forward(params, visible), targets[t])
        dh, grads = readout_backward(params, visible, doutput)  # dh: dl_t/dh_t
        dh = hidden_backward(cell, dh)
        dtheta = np.einsum("bi,bid->d", dh, S)  # S_t^T dl_t/dh_t
        grads[name] = dtheta.reshape(params[name].shape)
        for k, g in grads.items():
            total[k] += g
        if update is not None:
            update(grads, t + 1)
    loss_sum = _checks.finite_scalar("loss", float(step_losses.sum()))
    return TBPTTResult(loss_sum, total, h.copy(), T, T, step_losses)
