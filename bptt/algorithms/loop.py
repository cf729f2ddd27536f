"""Full BPTT for the tanh RNN with softmax cross-entropy as one plain loop (Chapter 4).

:func:`loss_and_grads_loop` is the whole algorithm on one screen, in the shape of the loss function
of min-char-rnn (Karpathy 2015): a forward loop over time, then a backward loop. It differs in
three ways: it is batched (every sequence of the batch is a *column*, as in the book's equations),
its softmax goes through the log-sum-exp trick, and it checks its arguments. It shares no numerics
with :func:`bptt.loss_and_grads` or :func:`bptt.loss_and_grads_stepwise`, so the tests use it as
their independent reference and hold all three equal to 1e-12.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bptt import _checks
from bptt.algorithms.result import BPTTResult
from bptt.cells import Params
from bptt.params import check_params, prepare_h0, prepare_inputs


def _columns(
    params: Params, inputs: Any, targets: Any, h0: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Checked arguments in column form: ``x (T, D, B)``, ``targets (T, B)``, ``h_0 (H, B)``."""
    D, H, V = check_params(params)
    dtype = params["W_hh"].dtype
    x = prepare_inputs(inputs, D, dtype)  # (T, B, D); token ids become one-hot rows
    T, B = x.shape[:2]
    y = _checks.id_array("targets", targets, upper=V)
    if y.shape != (T, B):
        raise ValueError(f"targets must have shape (T, B) = {(T, B)}, got {y.shape}")
    h = prepare_h0(h0, B, H, dtype)
    return x.transpose(0, 2, 1), y, h.T


def loss_and_grads_loop(
    params: Params, inputs: Any, targets: Any, h0: np.ndarray | None = None
) -> BPTTResult:
    """Softmax cross-entropy of a tanh RNN and its BPTT gradient, one loop.

    Arguments and results as for :func:`bptt.loss_and_grads`: inputs are
    floats ``(T, B, D)`` or token ids ``(T, B)``, targets ids ``(T, B)``,
    ``h0`` is ``(B, H)``. Returns the loss (summed over time, averaged over
    the batch), the gradients (names and shapes of ``params``) and the final
    state ``(B, H)``. Code step ``t`` is the book's step ``t + 1``.
    Explained in Chapter 4.
    """
    x, y, h = _columns(params, inputs, targets, h0)  # x[t] (D, B), h (H, B)
    W_xh, W_hh, W_hy = params["W_xh"], params["W_hh"], params["W_hy"]
    b_h, b_y = params["b_h"][:, None], params["b_y"][:, None]
    T, B = y.shape
    batch = np.arange(B)

    # Forward: a_t, h_t = tanh(a_t), o_t = W_hy h_t + b_y, and l_t.
    hs, ps, loss = [h], [], 0.0  # hs[t] is h_t; hs[0] = h_0
    for t in range(T):
        hs.append(np.tanh(W_hh @ hs[t] + W_xh @ x[t] + b_h))
        o = W_hy @ hs[t + 1] + b_y  # (V, B)
        m = o.max(axis=0)  # log-sum-exp: exp never sees a large logit
        log_p = o - m - np.log(np.exp(o - m).sum(axis=0))
        loss -= log_p[y[t], batch].sum() / B  # batch mean of -log p[y]
        ps.append(np.exp(log_p))
    _checks.finite_scalar("loss", loss)  # a diverged model stops here

    # Backward, from the last step to the first.
    grads = {name: np.zeros_like(value) for name, value in params.items()}
    g_next = np.zeros_like(h)  # g_{T+1} = 0
    for t in reversed(range(T)):
        do = ps[t].copy()
        do[y[t], batch] -= 1.0
        do /= B  # dl_t/do_t = (p_t - e_{y_t}) / B
        grads["W_hy"] += do @ hs[t + 1].T
        grads["b_y"] += do.sum(axis=1)
        delta = W_hy.T @ do + W_hh.T @ g_next  # delta_t = dL/dh_t
        g = (1.0 - hs[t + 1] ** 2) * delta  # g_t = dL/da_t
        grads["W_hh"] += g @ hs[t].T  # sum over the batch of g h^T
        grads["W_xh"] += g @ x[t].T
        grads["b_h"] += g.sum(axis=1)
        g_next = g
    return BPTTResult(float(loss), grads, hs[T].T.copy())
