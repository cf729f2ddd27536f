"""The gated recurrent unit (GRU), on the same cell protocol as the tanh cell (Chapter 9).

With ``sigma`` the logistic sigmoid and ``*`` the element-wise product, one step is::

    z_t = sigma(W_xz x_t + W_hz h_{t-1} + b_z)           update gate
    r_t = sigma(W_xr x_t + W_hr h_{t-1} + b_r)           reset gate
    n_t = tanh(W_xn x_t + W_hn (r_t * h_{t-1}) + b_n)    candidate state
    h_t = (1 - z_t) * h_{t-1} + z_t * n_t

the GRU of Cho et al. (2014) with the update gate written as in Chung et al. (2014): ``z_t`` is the
fraction of the state that is *rewritten*. Where ``z_t`` is near 0 the state is copied,
``h_t ~ h_{t-1}``, and the Jacobian ``dh_t/dh_{t-1}`` contains the term ``diag(1 - z_t)``, close to
the identity: an additive path along which gradients need not vanish. Chapter 9 measures it.

Because :class:`GRUCell` implements :class:`bptt.cells.Cell`, every algorithm of the package
(full BPTT, truncation, checkpointing, gradient checking) runs on it unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from bptt.cells.base import Params, backward_shape_error, check_cell_sizes, step_shape_error


def sigmoid(a: np.ndarray) -> np.ndarray:
    """Logistic sigmoid ``1 / (1 + exp(-a))``, written to never overflow in ``exp``."""
    e = np.exp(-np.abs(a))
    return np.where(a >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


@dataclass(frozen=True)
class GRUCell:
    """The GRU cell: parameters ``W_x* (H, D)``, ``W_h* (H, H)``, ``b_* (H,)`` for gates z, r, n.

    ``W_xz`` comes first in :attr:`param_names` because :func:`bptt.check_params` reads the input
    size D from the second axis of a cell's first parameter. Explained in Chapter 9.
    """

    name: ClassVar[str] = "gru"
    param_names: ClassVar[tuple[str, ...]] = (
        "W_xz",
        "W_xr",
        "W_xn",
        "W_hz",
        "W_hr",
        "W_hn",
        "b_z",
        "b_r",
        "b_n",
    )

    def param_shapes(self, input_size: int, hidden_size: int) -> dict[str, tuple[int, ...]]:
        """Shapes for input size D and hidden size H: ``(H, D)``, ``(H, H)`` and ``(H,)``."""
        D, H = input_size, hidden_size
        shapes: dict[str, tuple[int, ...]] = {}
        for gate in "zrn":
            shapes[f"W_x{gate}"] = (H, D)
            shapes[f"W_h{gate}"] = (H, H)
            shapes[f"b_{gate}"] = (H,)
        return {name: shapes[name] for name in self.param_names}

    def init_params(
        self,
        input_size: int,
        hidden_size: int,
        rng: np.random.Generator,
        weight_scale: float = 0.01,
        dtype: np.dtype = np.float64,
    ) -> Params:
        """Gaussian weights with standard deviation ``weight_scale`` and zero biases."""
        input_size, hidden_size = check_cell_sizes(input_size, hidden_size, rng)
        params = {}
        for name, shape in self.param_shapes(input_size, hidden_size).items():
            if name.startswith("b_"):
                params[name] = np.zeros(shape, dtype=dtype)
            else:
                params[name] = (rng.standard_normal(shape) * weight_scale).astype(dtype)
        return params

    def step(self, params: Params, h_prev: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, Any]:
        """One step: returns ``h_t`` ``(B, H)`` and the cache ``(x, h_prev, z, r, n)``."""
        p = params
        try:
            z = sigmoid(x @ p["W_xz"].T + h_prev @ p["W_hz"].T + p["b_z"])
            r = sigmoid(x @ p["W_xr"].T + h_prev @ p["W_hr"].T + p["b_r"])
            n = np.tanh(x @ p["W_xn"].T + (r * h_prev) @ p["W_hn"].T + p["b_n"])
        except ValueError:
            raise step_shape_error(self, params, h_prev, x) from None
        h = (1.0 - z) * h_prev + z * n
        return h, (x, h_prev, z, r, n)

    def step_backward(
        self, params: Params, cache: Any, dh: np.ndarray
    ) -> tuple[np.ndarray, Params, np.ndarray]:
        """Backward of one step from ``dh`` = total derivative of the loss w.r.t. ``h_t``.

        Each gate's derivative is read off its output: ``sigma' = s (1 - s)``, ``tanh' = 1 - n**2``.
        """
        p = params
        x, h_prev, z, r, n = cache
        if np.shape(dh) != h_prev.shape:
            raise backward_shape_error(self, dh, h_prev)
        dh_prev = dh * (1.0 - z)  # the additive path: no weight matrix, no squashing
        da_n = dh * z * (1.0 - n * n)
        da_z = dh * (n - h_prev) * z * (1.0 - z)
        d_rh = da_n @ p["W_hn"]  # derivative w.r.t. the product r * h_prev
        da_r = d_rh * h_prev * r * (1.0 - r)
        dh_prev += d_rh * r + da_z @ p["W_hz"] + da_r @ p["W_hr"]
        grads = {
            "W_xz": da_z.T @ x,
            "W_xr": da_r.T @ x,
            "W_xn": da_n.T @ x,
            "W_hz": da_z.T @ h_prev,
            "W_hr": da_r.T @ h_prev,
            "W_hn": da_n.T @ (r * h_prev),
            "b_z": da_z.sum(axis=0),
            "b_r": da_r.sum(axis=0),
            "b_n": da_n.sum(axis=0),
        }
        dx = da_z @ p["W_xz"] + da_r @ p["W_xr"] + da_n @ p["W_xn"]
        return dh_prev, grads, dx


GRU = GRUCell()
"""The shared instance of :class:`GRUCell`: pass ``cell=bptt.GRU`` to any algorithm."""
