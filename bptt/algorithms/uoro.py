"""Unbiased Online Recurrent Optimization (UORO): RTRL's sensitivity, estimated with rank one.

RTRL (:mod:`bptt.algorithms.rtrl`) carries ``S_t = dh_t/dtheta``, ``S P`` numbers per example,
and pays ``O(H^4)`` per step for a tanh RNN. UORO (Tallec and Ollivier, 2018) carries two vectors
instead, ``h~_t`` (state-sized) and ``theta~_t`` (parameter-sized), whose outer product is an
unbiased estimate of ``S_t``::

    h~_t      = rho0 J_t h~_{t-1} + rho1 nu_t
    theta~_t  = theta~_{t-1} / rho0 + nu_t^T (dF/dtheta) / rho1,

with ``nu_t`` a vector of independent random signs. Given the past, ``E[nu nu^T] = I`` and the
cross terms have mean zero, so ``E[h~_t theta~_t^T] = J_t S_{t-1} + dF/dtheta = S_t`` whenever
``h~_{t-1} theta~_{t-1}^T`` was unbiased for ``S_{t-1}``. One step costs one forward-mode
product ``J_t h~`` (:func:`bptt.cells.base.state_jvp`) and one backward step: ``O(H^2)`` for a
tanh RNN. Explained in Chapter 12.
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
from bptt.cells.base import flatten_params, param_size, state_jvp, unflatten_params
from bptt.losses import squared_error
from bptt.model import Model, model_parts
from bptt.params import as_generator, zeros_like_params
from bptt.readout import readout_backward, readout_forward

EPSILON = 1e-7
"""Added to both norms of each scaling ``rho``, so that ``0 / 0`` (at the start) gives 1."""


def uoro_scalings(
    theta_tilde: np.ndarray, j_h_tilde: np.ndarray, local: np.ndarray, nu: np.ndarray
) -> tuple[float, float]:
    """The variance-reducing scalings of Tallec and Ollivier (2018):

    ``rho0 = sqrt(||theta~|| / ||J h~||)`` and ``rho1 = sqrt(||nu^T dF/dtheta|| / ||nu||)``,
    each norm plus :data:`EPSILON`. They balance the two factors of each outer product, which
    minimises the variance the product adds; neither changes sign with ``nu``, so the estimate
    stays unbiased. Explained in Chapter 12.
    """
    rho0 = np.sqrt((np.linalg.norm(theta_tilde) + EPSILON) / (np.linalg.norm(j_h_tilde) + EPSILON))
    rho1 = np.sqrt((np.linalg.norm(local) + EPSILON) / (np.linalg.norm(nu) + EPSILON))
    return float(rho0), float(rho1)


def uoro(
    params: Params | Model,
    inputs: Any,
    targets: Any,
    h0: np.ndarray | None = None,
    *,
    cell: Cell | None = None,
    loss: LossFn = squared_error,
    update: UpdateFn | None = None,
    mask: Any = None,
    rng: np.random.Generator | int = 0,
) -> TBPTTResult:
    """Online gradients from UORO's rank-one estimate ``S_t ~ h~_t theta~_t^T``.

    An unbiased estimate of :func:`bptt.rtrl`'s gradients at ``O(H^2)`` per step for a tanh RNN,
    against RTRL's ``O(H^4)``. Explained in Chapter 12.

    Parameters
    ----------
    params, inputs, targets, h0, cell, loss, update
        As for :func:`bptt.rtrl` (``params`` a :class:`bptt.Model` or a dict; ``cell=None`` the
        model's cell, or the tanh cell): ``update(grads, t)`` is called after every step with
        the estimate of ``dl_t/dtheta``.
    mask : array_like, shape (T, B), optional
        0/1 marking padded steps, as for :func:`bptt.loss_and_grads_stepwise`: a padded
        example's state does not move, its loss and gradient are zero, and its step counts as
        the identity (``J_t = I``, ``dF/dtheta = 0``) in the estimate (see Notes).
    rng : numpy.random.Generator or int
        Source of the random signs ``nu_t``.

    Returns
    -------
    TBPTTResult
        ``grads`` is the sum of the per-step estimates. For the cell's parameters it is random,
        with mean the full BPTT gradient (at fixed parameters, with the same ``mask``); the
        readout's is exact.

    Notes
    -----
    A batch is one system whose state stacks the examples' states: ``h~`` is ``(B, S)``, with
    signs drawn independently for every example, and ``theta~`` one ``(P,)`` vector, so that
    ``nu^T dF/dtheta`` is the batch-summed parameter gradient one ``step_backward`` returns.
    Each step: the cell's step, ``J_t h~`` (:func:`bptt.cells.base.state_jvp`), one backward
    step; the carried memory is ``B S + P`` numbers, against RTRL's ``B S P``.

    At a padded step example b's row of ``h~`` is carried through ``J_t = I`` and still
    multiplied by ``rho0``, as ``theta~`` is divided by it: leaving the row alone would divide
    its estimate ``h~_b theta~^T`` by ``rho0`` and bias it. It gets no sign (``nu_b = 0``, since
    its ``dF/dtheta`` is 0), so its estimate changes only by the other examples' new term
    ``(rho0 / rho1) h~_b (nu^T dF/dtheta)^T``, whose mean is zero: unchanged on average (one
    ``theta~`` for the batch cannot leave one row's product exactly as it was).
    """
    params, cell = model_parts(params, cell)
    x, targets, h = prepare_stream(params, inputs, targets, h0, cell)
    check_update(update)
    gen = as_generator(rng)
    (T, B), S_width = x.shape[:2], h.shape[1]
    keep = check_mask(mask, T, B)
    h_tilde = np.zeros((B, S_width), dtype=h.dtype)
    theta_tilde = np.zeros(param_size(cell, params), dtype=h.dtype)
    total = zeros_like_params(params)
    step_losses = np.empty(T)
    for t in range(T):
        row = None if keep is None else keep[t]  # the examples that take step t
        new, cache = cell.step(params, h, x[t])
        h = masked_update(row, new, h)
        # J_t h~_{t-1}, with J_t = I for a padded example
        j_h_tilde = masked_update(row, state_jvp(cell, params, cache, h_tilde), h_tilde)
        nu = gen.choice(np.array([-1.0, 1.0], dtype=h.dtype), size=(B, S_width))
        if row is not None:
            nu = nu * row[:, None]  # a padded example's dF/dtheta is 0: no noise for it
        local = flatten_params(cell, cell.step_backward(params, cache, nu)[1])  # nu^T dF/dtheta
        rho0, rho1 = uoro_scalings(theta_tilde, j_h_tilde, local, nu)
        h_tilde = rho0 * j_h_tilde + rho1 * nu  # padded rows too, to match theta~ / rho0
        theta_tilde = theta_tilde / rho0 + local / rho1
        visible = hidden(cell, h)
        outputs = readout_forward(params, visible)
        step_losses[t], doutput = masked_step_loss(loss, outputs, targets[t], row)
        dh, grads = readout_backward(params, visible, doutput)
        dh = hidden_backward(cell, dh)
        estimate = float(np.sum(dh * h_tilde)) * theta_tilde  # (dl_t/dh_t . h~_t) theta~_t
        grads.update(unflatten_params(cell, params, estimate))
        for k, g in grads.items():
            total[k] += g
        if update is not None:
            update(grads, t + 1)
    loss_sum = _checks.finite_scalar("loss", float(step_losses.sum()))
    return TBPTTResult(loss_sum, total, h.copy(), T, T, step_losses)
