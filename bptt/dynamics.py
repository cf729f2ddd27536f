"""Jacobians of the recurrence and their products (Chapter 2 derives them, Chapter 8 studies them).

For the tanh cell ``h_t = tanh(W_xh x_t + W_hh h_{t-1} + b_h)`` the Jacobian of one step is
``dh_t/dh_{t-1} = diag(1 - h_t**2) W_hh``, and by the chain rule the Jacobian across several steps
is the ordered product ``dh_t/dh_k = J_t J_{t-1} ... J_{k+1}``.
"""

from __future__ import annotations

import numpy as np

from . import _checks
from .cells import Params


def step_jacobians(params: Params, hs: np.ndarray) -> np.ndarray:
    """Jacobians ``J_t = dh_t/dh_{t-1} = diag(1 - h_t**2) W_hh`` of every step of a trajectory.

    Parameters
    ----------
    params : dict
        Tanh-RNN parameters (only ``W_hh`` is used).
    hs : ndarray, shape (T + 1, B, H)
        Hidden states ``h_0 .. h_T`` (``RNNCache.hs``).

    Returns
    -------
    ndarray, shape (T, B, H, H)
        ``J[t - 1]`` is ``dh_t/dh_{t-1}`` for each example of the batch.

    Explained in Chapter 2.
    """
    W_hh = _checks.float_array("params['W_hh']", params["W_hh"], ndim=2)
    H = W_hh.shape[0]
    hs = _checks.float_array("hs", hs, shape=(None, None, H))
    if hs.shape[0] < 2:
        raise ValueError(f"hs must hold h_0 .. h_T with T >= 1, got shape {hs.shape}")
    deriv = 1.0 - hs[1:] ** 2  # (T, B, H)
    return deriv[..., :, None] * W_hh  # row i of W_hh scaled by tanh'(pre_i)


def jacobian_product(jacobians: np.ndarray, t: int, k: int) -> np.ndarray:
    """``dh_t/dh_k = J_t J_{t-1} ... J_{k+1}`` from :func:`step_jacobians`; identity if t = k.

    Returns an array ``(B, H, H)``. Explained in Chapter 2 (and its norm in Chapter 8).
    """
    J = _checks.float_array("jacobians", jacobians, ndim=4)
    T, B, H, _ = J.shape
    t = _checks.positive_int("t", t, minimum=0)
    k = _checks.positive_int("k", k, minimum=0)
    if not k <= t <= T:
        raise ValueError(f"need 0 <= k <= t <= T = {T}, got k={k}, t={t}")
    product = np.broadcast_to(np.eye(H, dtype=J.dtype), (B, H, H)).copy()
    for s in range(k + 1, t + 1):  # left-multiply by J_s: the latest step ends up leftmost
        product = J[s - 1] @ product
    return product
