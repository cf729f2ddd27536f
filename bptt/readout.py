"""The output layer ``o_t = W_hy h_t + b_y`` and its backward (Chapter 2)."""

from __future__ import annotations

import numpy as np

from .cells import Params

READOUT_NAMES: tuple[str, ...] = ("W_hy", "b_y")
"""Names of the readout parameters: ``W_hy`` ``(V, H)`` and ``b_y`` ``(V,)``."""


def readout_forward(params: Params, h: np.ndarray) -> np.ndarray:
    """Outputs ``(..., B, V)`` from hidden states ``(..., B, H)``: ``h @ W_hy.T + b_y``.

    Explained in Chapter 1.
    """
    outputs = h @ params["W_hy"].T
    outputs += params["b_y"]  # in place: one output-sized array, not two
    return outputs


def readout_backward(
    params: Params, h: np.ndarray, doutputs: np.ndarray
) -> tuple[np.ndarray, Params]:
    """Derivatives through the readout for one step (``h`` ``(B, H)``, ``doutputs`` ``(B, V)``).

    Returns ``(dh, {"W_hy": ..., "b_y": ...})`` where ``dh`` is this step's *direct* contribution
    to the derivative of the loss with respect to ``h`` (Chapter 2, equation for ``delta_t``).
    """
    grads = {"W_hy": doutputs.T @ h, "b_y": doutputs.sum(axis=0)}
    return doutputs @ params["W_hy"], grads
