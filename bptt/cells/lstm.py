"""The long short-term memory (LSTM) cell of ``torch.nn.LSTM``, on the cell protocol.

With ``sigma`` the logistic sigmoid and ``*`` the element-wise product, one step is::

    i_t = sigma(W_xi x_t + W_hi h_{t-1} + b_i)     input gate
    f_t = sigma(W_xf x_t + W_hf h_{t-1} + b_f)     forget gate
    g_t = tanh(W_xg x_t + W_hg h_{t-1} + b_g)      candidate cell input
    o_t = sigma(W_xo x_t + W_ho h_{t-1} + b_o)     output gate
    c_t = f_t * c_{t-1} + i_t * g_t
    h_t = o_t * tanh(c_t)

the equations and gate order (i, f, g, o) of ``torch.nn.LSTM``, whose ``weight_ih_l0`` stacks
``W_xi, W_xf, W_xg, W_xo`` (each ``(H, D)``) and ``weight_hh_l0`` stacks ``W_hi .. W_ho`` (each
``(H, H)``). PyTorch has two biases per gate, ``bias_ih`` and ``bias_hh``, that only ever act
through their sum, so this cell keeps one per gate: ``b_i = bias_ih_i + bias_hh_i`` and so on
(:func:`bptt.to_torch` puts the sum in ``bias_ih`` and zeros in ``bias_hh``).

The cell state ``c_t`` is the LSTM's memory: ``dc_t/dc_{t-1} = diag(f_t)``, no weight matrix and
no squashing, the "constant error carousel" of Hochreiter and Schmidhuber (1997) with the forget
gate of Gers et al. (2000).

**The state is the pair (h, c)**, kept in one array ``(B, 2H)``, ``[h | c]``
(:meth:`LSTMCell.state_size`); the readout reads the ``h`` half (:meth:`LSTMCell.hidden`). So
every algorithm of the package, written against :class:`bptt.cells.Cell`, runs it unchanged; an
``h0`` given to them is ``(B, 2H)``, ``[h_0 | c_0]``, and the final state they return is too.
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Real
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from bptt._checks import describe
from bptt.cells.base import (
    Params,
    backward_shape_error,
    check_cell_sizes,
    gate_param_shapes,
    gaussian_params,
    step_shape_error,
)
from bptt.cells.gru import sigmoid

GATES = ("i", "f", "g", "o")
"""The LSTM's gates in PyTorch's order: input, forget, candidate (``g``), output."""


def _finite(name: str, value: Any) -> float:
    """``value`` as a float if it is a finite real number, else a ``TypeError``/``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a real number, got {describe(value)}; pass e.g. 1.0")
    if not np.isfinite(float(value)):
        raise ValueError(f"{name} must be finite, got {value}; pass e.g. 1.0")
    return float(value)


@dataclass(frozen=True)
class LSTMCell:
    """The LSTM of ``torch.nn.LSTM``: ``W_x* (H, D)``, ``W_h* (H, H)``, ``b_* (H,)`` for i, f, g, o.

    The state is ``[h | c]`` ``(B, 2H)``. Explained in Chapter 10 (the LSTM, its backward pass and
    the constant error carousel).

    Parameters
    ----------
    forget_bias : float
        The value :meth:`init_params` gives the forget-gate bias ``b_f`` (default 1.0). With
        ``b_f = 0`` the forget gate starts near ``sigma(0) = 1/2`` and the cell state halves at
        every step, so its gradient vanishes like ``2**-lag`` before training has begun; a bias of
        1 starts it near ``sigma(1) = 0.73``. Jozefowicz et al. (2015) found that adding 1 to the
        forget-gate bias closed most of the gap between the LSTM and the best architectures they
        searched; Gers et al. (2000), who introduced the forget gate, started it open as well.
        Use ``0.0`` for PyTorch's own start (its biases are drawn around 0).
    """

    forget_bias: float = 1.0
    name: ClassVar[str] = "lstm"
    param_names: ClassVar[tuple[str, ...]] = (
        "W_xi",
        "W_xf",
        "W_xg",
        "W_xo",
        "W_hi",
        "W_hf",
        "W_hg",
        "W_ho",
        "b_i",
        "b_f",
        "b_g",
        "b_o",
    )

    def __post_init__(self) -> None:
        _finite("forget_bias", self.forget_bias)

    def state_size(self, hidden_size: int) -> int:
        """The state ``[h | c]`` has ``2 H`` columns."""
        return 2 * hidden_size

    def hidden(self, state: np.ndarray) -> np.ndarray:
        """The ``h`` half of the state ``(..., B, 2H)``: what the readout reads."""
        return state[..., : state.shape[-1] // 2]

    def hidden_backward(self, dh: np.ndarray) -> np.ndarray:
        """The adjoint of :meth:`hidden`: ``[dh | 0]``, as the readout does not read ``c``."""
        dstate = np.zeros((*dh.shape[:-1], 2 * dh.shape[-1]), dtype=dh.dtype)
        dstate[..., : dh.shape[-1]] = dh
        return dstate

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
        *,
        forget_bias: float | None = None,
    ) -> Params:
        """Gaussian weights with standard deviation ``weight_scale``; biases zero but ``b_f``.

        ``b_f`` is ``forget_bias`` (default: the cell's :attr:`forget_bias`, 1.0 for
        :data:`bptt.LSTM`); see the class docstring for why.
        """
        input_size, hidden_size = check_cell_sizes(input_size, hidden_size, rng)
        bias = self.forget_bias if forget_bias is None else _finite("forget_bias", forget_bias)
        return gaussian_params(
            self.param_shapes(input_size, hidden_size), rng, weight_scale, dtype, {"b_f": bias}
        )

    def step(self, params: Params, h_prev: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, Any]:
        """One step from the state ``[h_{t-1} | c_{t-1}]`` ``(B, 2H)``; returns ``[h_t | c_t]``.

        The cache is ``(x, h_{t-1}, c_{t-1}, i, f, g, o, tanh(c_t))``.
        """
        p = params
        H = p["W_hi"].shape[0]
        if np.ndim(h_prev) != 2 or np.shape(h_prev)[1] != 2 * H:
            raise step_shape_error(self, params, h_prev, x)
        h, c_prev = h_prev[:, :H], h_prev[:, H:]
        try:
            i = sigmoid(x @ p["W_xi"].T + h @ p["W_hi"].T + p["b_i"])
            f = sigmoid(x @ p["W_xf"].T + h @ p["W_hf"].T + p["b_f"])
            g = np.tanh(x @ p["W_xg"].T + h @ p["W_hg"].T + p["b_g"])
            o = sigmoid(x @ p["W_xo"].T + h @ p["W_ho"].T + p["b_o"])
        except ValueError:
            raise step_shape_error(self, params, h_prev, x) from None
        c = f * c_prev + i * g
        tanh_c = np.tanh(c)
        state = np.empty_like(h_prev, dtype=c.dtype)
        state[:, :H] = o * tanh_c
        state[:, H:] = c
        return state, (x, h, c_prev, i, f, g, o, tanh_c)

    def step_backward(
        self, params: Params, cache: Any, dh: np.ndarray
    ) -> tuple[np.ndarray, Params, np.ndarray]:
        """Backward of one step from ``dh = [dL/dh_t | dL/dc_t]`` ``(B, 2H)``.

        ``dL/dc_t`` gains the path through ``h_t = o_t tanh(c_t)``; then
        ``dL/dc_{t-1} = f_t * dL/dc_t``, the carousel, and the gates' derivatives are read off
        their outputs (``sigma' = s (1 - s)``, ``tanh' = 1 - g**2``).
        """
        p = params
        x, h_prev, c_prev, i, f, g, o, tanh_c = cache
        H = h_prev.shape[1]
        if np.shape(dh) != (h_prev.shape[0], 2 * H):
            raise backward_shape_error(self, dh, np.empty((h_prev.shape[0], 2 * H)))
        dh_t, dc = dh[:, :H], dh[:, H:] + dh[:, :H] * o * (1.0 - tanh_c * tanh_c)
        da = {
            "i": dc * g * i * (1.0 - i),
            "f": dc * c_prev * f * (1.0 - f),
            "g": dc * i * (1.0 - g * g),
            "o": dh_t * tanh_c * o * (1.0 - o),
        }
        dstate = np.empty_like(dh)
        dstate[:, H:] = dc * f  # the constant error carousel: no matrix, no squashing
        dh_prev = dstate[:, :H]
        dh_prev[...] = 0.0
        dx = np.zeros_like(x)
        grads: Params = {}
        for gate in GATES:
            d = da[gate]
            grads[f"W_x{gate}"] = d.T @ x
            grads[f"W_h{gate}"] = d.T @ h_prev
            dh_prev += d @ p[f"W_h{gate}"]
            dx += d @ p[f"W_x{gate}"]
        for gate in GATES:
            grads[f"b_{gate}"] = da[gate].sum(axis=0)
        return dstate, {name: grads[name] for name in self.param_names}, dx

    def state_jvp(self, params: Params, cache: Any, v: np.ndarray) -> np.ndarray:
        """Forward mode in the state: ``J_t v`` for a tangent ``v`` ``(B, 2H)``, ``[v_h, v_c]``.

        Each gate's pre-activation moves by its recurrent weight times ``v_h``; then the cell
        state moves by ``dc = df c_prev + f v_c + di g + i dg`` and the output by
        ``dh = do tanh(c_t) + o (1 - tanh(c_t)^2) dc``; the result is ``[dh, dc]``. Four
        products with ``(H, H)`` matrices, O(B H^2), what UORO needs per step. Explained in
        Chapter 12.
        """
        p = params
        _, _, c_prev, i, f, g, o, tanh_c = cache
        H = i.shape[1]
        vh, vc = v[:, :H], v[:, H:]
        di = (vh @ p["W_hi"].T) * i * (1.0 - i)
        df = (vh @ p["W_hf"].T) * f * (1.0 - f)
        dg = (vh @ p["W_hg"].T) * (1.0 - g * g)
        do = (vh @ p["W_ho"].T) * o * (1.0 - o)
        dc = df * c_prev + f * vc + di * g + i * dg
        out = np.empty_like(v, dtype=dc.dtype)
        out[:, :H] = do * tanh_c + o * (1.0 - tanh_c * tanh_c) * dc
        out[:, H:] = dc
        return out


LSTM = LSTMCell()
"""The shared instance of :class:`LSTMCell` (forget-gate bias 1.0): ``cell=bptt.LSTM``."""
