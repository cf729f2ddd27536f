"""The one-unit recurrent model of Pascanu et al. (2013) and its "cliff" (Chapter 9).

The model is ``h_t = w * sigma(h_{t-1}) + b`` for ``t = 1 .. T`` from a fixed ``h_0``, with the
squared loss ``L = (h_T - target)**2`` on the last state only. As ``w`` grows, the map
``h -> w sigma(h) + b`` goes through a bifurcation: a second stable fixed point appears, and for the
``w`` where the trajectory switches from one basin to the other ``h_T`` jumps. The loss surface has
a near-vertical wall there, a cliff, where the gradient explodes.

All functions broadcast over arrays of ``w`` and ``b``, so a whole curve or surface is computed at
once, and the gradient is exact: BPTT on a scalar recurrence.
"""

from __future__ import annotations

from numbers import Real
from typing import Any

import numpy as np

from bptt import _checks
from bptt.cells.gru import sigmoid


def _finite(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    number = float(value)
    if not np.isfinite(number):
        raise ValueError(f"{name} must be finite, got {value}")
    return number


def cliff_forward(w: Any, b: Any, *, steps: int = 50, h0: float = 0.5) -> np.ndarray:
    """States ``h_0 .. h_T`` of ``h_t = w sigma(h_{t-1}) + b``, shape ``(T + 1, *broadcast)``.

    Explained in Chapter 9.
    """
    steps = _checks.positive_int("steps", steps)
    w, b = np.broadcast_arrays(
        _checks.float_array("w", np.asarray(w, dtype=np.float64)),
        _checks.float_array("b", np.asarray(b, dtype=np.float64)),
    )
    h0 = _finite("h0", h0)
    hs = np.empty((steps + 1, *w.shape))
    hs[0] = h0
    for t in range(steps):
        hs[t + 1] = w * sigmoid(hs[t]) + b
    return hs


def cliff_loss_and_grad(
    w: Any,
    b: Any,
    *,
    steps: int = 50,
    h0: float = 0.5,
    target: float = 0.7,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Loss ``(h_T - target)**2`` and its exact gradient ``(dL/dw, dL/db)``, elementwise.

    Backward pass (Chapter 2's recursion on one unit): ``delta_T = 2 (h_T - target)``, then for
    ``t = T .. 1``: ``dL/dw += delta_t sigma(h_{t-1})``, ``dL/db += delta_t`` and
    ``delta_{t-1} = delta_t w sigma'(h_{t-1})``. The factor ``J_t = w sigma'(h_{t-1})`` is this
    model's step Jacobian; ``sigma' <= 1/4``. Explained in Chapter 9.
    """
    target = _finite("target", target)
    hs = cliff_forward(w, b, steps=steps, h0=h0)
    w = np.broadcast_to(np.asarray(w, dtype=np.float64), hs.shape[1:])
    loss = (hs[-1] - target) ** 2
    delta = 2.0 * (hs[-1] - target)
    dw = np.zeros_like(loss)
    db = np.zeros_like(loss)
    for t in range(hs.shape[0] - 1, 0, -1):
        s = sigmoid(hs[t - 1])
        dw += delta * s
        db += delta
        delta = delta * w * s * (1.0 - s)
    return loss, dw, db
