"""The gated recurrent unit (GRU) of ``torch.nn.GRU``, on the cell protocol (Chapter 9).

With ``sigma`` the logistic sigmoid and ``*`` the element-wise product, one step is::

    r_t = sigma(W_xr x_t + W_hr h_{t-1} + b_r)                 reset gate
    z_t = sigma(W_xz x_t + W_hz h_{t-1} + b_z)                 update gate
    n_t = tanh(W_xn x_t + b_xn + r_t * (W_hn h_{t-1} + b_hn))  candidate state
    h_t = (1 - z_t) * n_t + z_t * h_{t-1}

exactly the equations of ``torch.nn.GRU``, so a model trained here runs in PyTorch with the same
weights (:func:`bptt.to_torch`). ``z_t`` is the fraction of the state that is *kept*: where it is
near 1 the state is copied, ``h_t ~ h_{t-1}``, and the Jacobian ``dh_t/dh_{t-1}`` contains the
term ``diag(z_t)``, close to the identity: an additive path along which gradients need not
vanish. Chapter 9 measures it.

The parameters are PyTorch's, split by gate: ``weight_ih_l0`` stacks ``W_xr, W_xz, W_xn``
(each ``(H, D)``) and ``weight_hh_l0`` stacks ``W_hr, W_hz, W_hn`` (each ``(H, H)``). PyTorch has
two biases per gate; for r and z only their sum acts, so ``b_r`` and ``b_z`` are those sums, but the
candidate's two cannot be merged: ``b_hn`` sits inside the product with ``r_t``, ``b_xn`` outside.

The GRU of Cho et al. (2014) differs in two ways that change no idea of Chapter 9: it applies the
reset gate *before* the matrix, ``W_hn (r_t * h_{t-1})``, and its update gate (as written by
Chung et al. 2014) is the fraction *rewritten*, ``h_t = (1 - z_t) * h_{t-1} + z_t * n_t``.

Because :class:`GRUCell` implements :class:`bptt.cells.Cell`, every algorithm of the package
(full BPTT, truncation, checkpointing, gradient checking) runs on it unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from bptt.cells.base import (
    Params,
    backward_shape_error,
    check_cell_sizes,
    gate_param_shapes,
    gaussian_params,
    step_shape_error,
)


def sigmoid(a: npt.ArrayLike) -> np.ndarray:
    """Logistic sigmoid ``1 / (1 + exp(-a))``, written to never overflow in ``exp``."""
    a = np.asarray(a)
    e = np.exp(-np.abs(a))
    result: np.ndarray = np.where(a >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
    return result


@dataclass(frozen=True)
class GRUCell:
    """The GRU of ``torch.nn.GRU``: ``W_x* (H, D)``, ``W_h* (H, H)`` for gates r, z, n, and biases.

    The biases are ``b_r``, ``b_z`` (each the sum of PyTorch's two biases of that gate), ``b_xn``
    and ``b_hn`` (PyTorch's ``bias_ih`` and ``bias_hh`` of the candidate), all ``(H,)``.
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
        "b_xn",
        "b_hn",
    )

    def param_shapes(self, input_size: int, hidden_size: int) -> dict[str, tuple[int, ...]]:
        """Shapes for input size D and hidden size H: ``(H, D)``, ``(H, H)`` and ``(H,)``."""
        return gate_param_shapes(self.param_names, input_size, hidden_size)

    def init_params(
        self,
        input_size: int,
        hidden_size: int,
        rng: np.random.Generator,
        weight_scale: float = 0.01,
        dtype: npt.DTypeLike = np.float64,
    ) -> Params:
        """Gaussian weights with standard deviation ``weight_scale`` and zero biases."""
        input_size, hidden_size = check_cell_sizes(input_size, hidden_size, rng)
        return gaussian_params(self.param_shapes(input_size, hidden_size), rng, weight_scale, dtype)

    def step(self, params: Params, h_prev: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, Any]:
        """One step: returns ``h_t`` ``(B, H)`` and the cache ``(x, h_prev, r, z, n, hn)``.

        ``hn = W_hn h_{t-1} + b_hn`` is kept: the backward step needs it for ``dl/dr_t``.
        """
        p = params
        try:
            r = sigmoid(x @ p["W_xr"].T + h_prev @ p["W_hr"].T + p["b_r"])
            z = sigmoid(x @ p["W_xz"].T + h_prev @ p["W_hz"].T + p["b_z"])
            hn = h_prev @ p["W_hn"].T + p["b_hn"]
            n = np.tanh(x @ p["W_xn"].T + p["b_xn"] + r * hn)
        except ValueError:
            raise step_shape_error(self, params, h_prev, x) from None
        h = (1.0 - z) * n + z * h_prev
        return h, (x, h_prev, r, z, n, hn)

    def step_backward(
        self, params: Params, cache: Any, dh: np.ndarray
    ) -> tuple[np.ndarray, Params, np.ndarray]:
        """Backward of one step from ``dh`` = total derivative of the loss w.r.t. ``h_t``.

        Each gate's derivative is read off its output: ``sigma' = s (1 - s)``, ``tanh' = 1 - n**2``.
        """
        p = params
        x, h_prev, r, z, n, hn = cache
        if np.shape(dh) != h_prev.shape:
            raise backward_shape_error(self, dh, h_prev)
        dh_prev = dh * z  # the additive path: no weight matrix, no squashing
        da_n = dh * (1.0 - z) * (1.0 - n * n)
        da_z = dh * (h_prev - n) * z * (1.0 - z)
        da_r = da_n * hn * r * (1.0 - r)
        d_hn = da_n * r  # derivative w.r.t. hn = W_hn h_prev + b_hn
        dh_prev += d_hn @ p["W_hn"] + da_z @ p["W_hz"] + da_r @ p["W_hr"]
        grads = {
            "W_xz": da_z.T @ x,
            "W_xr": da_r.T @ x,
            "W_xn": da_n.T @ x,
            "W_hz": da_z.T @ h_prev,
            "W_hr": da_r.T @ h_prev,
            "W_hn": d_hn.T @ h_prev,
            "b_z": da_z.sum(axis=0),
            "b_r": da_r.sum(axis=0),
            "b_xn": da_n.sum(axis=0),
            "b_hn": d_hn.sum(axis=0),
        }
        dx = da_z @ p["W_xz"] + da_r @ p["W_xr"] + da_n @ p["W_xn"]
        return dh_prev, grads, dx

    def state_jvp(self, params: Params, cache: Any, v: np.ndarray) -> np.ndarray:
        """Forward mode in the state: ``J_t v`` for a tangent ``v`` ``(B, H)`` of ``h_{t-1}``.

        The step differentiated along ``v``: each gate's pre-activation moves by
        ``W_h* v``, and ``h_t = (1 - z) n + z h_{t-1}`` by
        ``dz * (h_{t-1} - n) + (1 - z) * dn + z * v``. Three products with ``(H, H)``
        matrices, O(B H^2), what UORO needs per step. Explained in Chapter 12.
        """
        p = params
        _, h_prev, r, z, n, hn = cache
        dr = (v @ p["W_hr"].T) * r * (1.0 - r)
        dz = (v @ p["W_hz"].T) * z * (1.0 - z)
        dn = (1.0 - n * n) * (dr * hn + r * (v @ p["W_hn"].T))
        result: np.ndarray = dz * (h_prev - n) + (1.0 - z) * dn + z * v
        return result


GRU = GRUCell()
"""The shared instance of :class:`GRUCell`: pass ``cell=bptt.GRU`` to any algorithm."""
