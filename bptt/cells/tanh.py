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


TANH = TanhCell()
"""The shared instance of :class:`TanhCell` used as every algorithm's default cell."""
