"""The tanh (Elman) cell, the book's main cell (Chapter 1; its derivatives in Chapter 2)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from bptt.cells.base import (
    Params,
    backward_shape_error,
    check_cell_sizes,
    gaussian_params,
    step_shape_error,
)


@dataclass(frozen=True)
class TanhCell:
    """The Elman cell ``h_t = tanh(W_xh x_t + W_hh h_{t-1} + b_h)``, the book's main cell.

    Weights are stored as in the math (and as in ``torch.nn.RNN``): ``W_xh`` is ``(H, D)``, ``W_hh``
    is ``(H, H)``, ``b_h`` is ``(H,)``. Rows of the batched arrays are examples, so the code
    computes ``x @ W_xh.T``. Explained in Chapter 1; its derivatives in Chapter 2.
    """

    name: ClassVar[str] = "tanh"
    param_names: ClassVar[tuple[str, ...]] = ("W_xh", "W_hh", "b_h")

    def param_shapes(self, input_size: int, hidden_size: int) -> dict[str, tuple[int, ...]]:
        """Shapes of ``W_xh``, ``W_hh`` and ``b_h`` for input size D and hidden size H."""
        return {
            "W_xh": (hidden_size, input_size),
            "W_hh": (hidden_size, hidden_size),
            "b_h": (hidden_size,),
        }

    def init_params(
        self,
        input_size: int,
        hidden_size: int,
        rng: np.random.Generator,
        weight_scale: float = 0.01,
        dtype: npt.DTypeLike = np.float64,
    ) -> Params:
        """Gaussian weights with standard deviation ``weight_scale`` and a zero bias."""
        input_size, hidden_size = check_cell_sizes(input_size, hidden_size, rng)
        return gaussian_params(self.param_shapes(input_size, hidden_size), rng, weight_scale, dtype)

    def step(self, params: Params, h_prev: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, Any]:
        """One step: returns ``h_t`` ``(B, H)`` and the cache ``(x_t, h_{t-1}, h_t)``."""
        try:
            pre = x @ params["W_xh"].T + h_prev @ params["W_hh"].T + params["b_h"]
        except ValueError:
            raise step_shape_error(self, params, h_prev, x) from None
        h = np.tanh(pre)
        return h, (x, h_prev, h)

    def step_backward(
        self, params: Params, cache: Any, dh: np.ndarray
    ) -> tuple[np.ndarray, Params, np.ndarray]:
        """Backward of one step, given ``dh`` = total derivative of the loss w.r.t. ``h_t``.

        The derivative of tanh is read off the output, ``1 - h_t**2``, so the pre-activation need
        not be kept (Chapter 8 counts what that saves).
        """
        x, h_prev, h = cache
        if np.shape(dh) != h.shape:
            raise backward_shape_error(self, dh, h)
        dpre = dh * (1.0 - h * h)
        grads = {"W_xh": dpre.T @ x, "W_hh": dpre.T @ h_prev, "b_h": dpre.sum(axis=0)}
        return dpre @ params["W_hh"], grads, dpre @ params["W_xh"]

    def state_jvp(self, params: Params, cache: Any, v: np.ndarray) -> np.ndarray:
        """Forward mode in the state: ``J_t v = (1 - h_t**2) * (W_hh v)`` for a batch ``(B, H)``.

        One product with ``W_hh``, O(B H^2): what UORO pays per step. Explained in Chapter 12.
        """
        _, _, h = cache
        result: np.ndarray = (1.0 - h * h) * (v @ params["W_hh"].T)
        return result

    def step_jacobians(
        self, params: Params, h_prev: np.ndarray, x: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """``J_t = diag(1 - h_t**2) W_hh`` ``(B, H, H)`` and ``dh_t/dtheta`` ``(B, H, P)``.

        With ``d = 1 - h_t**2``: ``dh_i/dW_xh[j, k] = d_i [i = j] x_k``, the same with
        ``h_{t-1}`` for ``W_hh``, and ``dh_i/db_h[j] = d_i [i = j]``; the columns follow
        ``param_names`` (each array flattened row by row). Explained in Chapter 12.
        """
        h, _ = self.step(params, h_prev, x)
        d = 1.0 - h * h  # (B, H)
        B, H = d.shape
        eye = np.eye(H, dtype=d.dtype)
        local = d[:, :, None] * eye  # (B, H, H): d_i [i = j]
        parts = [
            (local[:, :, :, None] * x[:, None, None, :]).reshape(B, H, -1),
            (local[:, :, :, None] * h_prev[:, None, None, :]).reshape(B, H, -1),
            local,
        ]
        J: np.ndarray = d[:, :, None] * params["W_hh"][None]
        return J, np.concatenate(parts, axis=2)


TANH = TanhCell()
"""The shared instance of :class:`TanhCell` used as every algorithm's default cell."""
