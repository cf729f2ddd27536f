"""The output layer ``o_t = W_hy h_t + b_y`` and its backward (Chapter 2)."""

from __future__ import annotations

import numpy as np

from bptt.cells import Params

READOUT_NAMES: tuple[str, ...] = ("W_hy", "b_y")
"""Names of the readout parameters: ``W_hy`` ``(V, H)`` and ``b_y`` ``(V,)``."""


def readout_forward(params: Params, h: np.ndarray) -> np.ndarray:
    """Outputs ``(..., B, V)`` from hidden states ``(..., B, H)``: ``h @ W_hy.T + b_y``.

    Explained in Chapter 1.
    """
    try:
        outputs = h @ params["W_hy"].T
    except ValueError:
        raise _shape_error("readout_forward", "h", h, params) from None
    outputs += params["b_y"]  # in place: one output-sized array, not two
    return outputs


def readout_backward(
    params: Params, h: np.ndarray, doutputs: np.ndarray
) -> tuple[np.ndarray, Params]:
    """Derivatives through the readout for one step (``h`` ``(B, H)``, ``doutputs`` ``(B, V)``).

    Returns ``(dh, {"W_hy": ..., "b_y": ...})`` where ``dh`` is this step's *direct* contribution
    to the derivative of the loss with respect to ``h`` (Chapter 2, equation for ``delta_t``).
    """
    V, H = np.shape(params["W_hy"])
    if np.ndim(h) != 2 or np.ndim(doutputs) != 2 or np.shape(h)[0] != np.shape(doutputs)[0]:
        raise ValueError(
            f"readout_backward needs h (B, H) = (B, {H}) and doutputs (B, V) = (B, {V}) with one "
            f"B, got h {np.shape(h)} and doutputs {np.shape(doutputs)}; pass one step's arrays"
        )
    try:
        grads = {"W_hy": doutputs.T @ h, "b_y": doutputs.sum(axis=0)}
        return doutputs @ params["W_hy"], grads
    except ValueError:
        raise _shape_error("readout_backward", "doutputs", doutputs, params) from None


def _shape_error(where: str, name: str, value: np.ndarray, params: Params) -> ValueError:
    V, H = np.shape(params["W_hy"])
    last = H if name == "h" else V
    return ValueError(
        f"{where} needs {name} with last axis {last} ({'H' if name == 'h' else 'V'}) for W_hy of "
        f"shape {(V, H)}, got {name} of shape {np.shape(value)}; pass arrays of this model"
    )
