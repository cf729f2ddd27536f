"""Stacked (deep) recurrent layers as one cell: :class:`StackedCell` and :func:`stack`.

An L-layer network feeds each layer's hidden state to the layer above at the same step::

    h^(1)_t = F_1(h^(1)_{t-1}, x_t)
    h^(l)_t = F_l(h^(l)_{t-1}, h^(l-1)_t)        l = 2 .. L
    o_t     = W_hy h^(L)_t + b_y

each ``F_l`` any cell of the protocol (tanh, GRU, LSTM, mixed freely), all with one hidden size
H. The stack is itself a :class:`~bptt.cells.Cell`: its state is the layers' states side by side,
``[s^(1) | s^(2) | ... | s^(L)]`` ``(B, S_1 + ... + S_L)`` (``S_l = H``, or ``2H`` for an LSTM
layer), and the readout reads the top layer's h through :meth:`StackedCell.hidden`. So full,
truncated and checkpointed BPTT, ARTBP, online learning, RTRL and gradient checking run a deep
network unchanged, and :func:`bptt.init_params` draws its parameters with ``cell=stack(...)``.

The backward step runs the layers top down: layer l's total derivative at step t is what comes
from its own next step (through time) plus what layer l + 1 sends down through its input at the
same step (through depth). :func:`depth_time_gradient_norms` records it for every layer and lag,
the two-dimensional version of Chapter 9's gradient norm against distance back in time.

Parameter names are prefixed by the layer, ``"l0.W_xh"``, ``"l1.W_hh"``...; the readout's
``W_hy`` and ``b_y`` stay unprefixed. Layer 0's input weights are ``(H, D)``, the others'
``(H, H)``. Explained in Chapter 9.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from bptt._checks import describe, positive_int
from bptt.cells.base import (
    Cell,
    Params,
    backward_shape_error,
    check_cell,
    check_cell_sizes,
    hidden,
    hidden_backward,
    state_size,
)


@dataclass(frozen=True)
class StackedCell:
    """L recurrent layers as one cell; layer 1 reads ``x_t``, layer l reads layer l-1's ``h_t``.

    The state is ``[s^(1) | ... | s^(L)]``, each layer's own state side by side (so an ``h0``
    given to an algorithm is that wide: :func:`bptt.cells.state_size`), and parameter ``name`` of
    layer l is ``f"l{l}.{name}"`` (0-based). Use :func:`stack` to build one. Explained in
    Chapter 9.

    Parameters
    ----------
    layers : sequence of Cell
        The layers' cells, bottom (reads the input) first, top (read by the readout) last; any
        cells of the protocol, e.g. ``(bptt.TANH, bptt.GRU, bptt.LSTM)``. All layers share the
        hidden size H given to :func:`bptt.init_params`.
    """

    layers: tuple[Cell, ...]

    def __post_init__(self) -> None:
        layers = self.layers
        if isinstance(layers, str) or not isinstance(layers, Sequence):
            raise TypeError(
                f"layers must be a sequence of cells such as (bptt.TANH, bptt.GRU), got "
                f"{describe(layers)}"
            )
        if len(layers) == 0:
            raise ValueError("layers must hold at least one cell, got an empty sequence")
        for i, layer in enumerate(layers):
            try:
                check_cell(layer)
            except TypeError as error:
                raise TypeError(f"layers[{i}]: {error}") from None
        object.__setattr__(self, "layers", tuple(layers))

    @property
    def name(self) -> str:
        """``"stack(tanh, gru)"``: the layers' names, bottom first."""
        return f"stack({', '.join(layer.name for layer in self.layers)})"

    @property
    def param_names(self) -> tuple[str, ...]:
        """Every layer's parameter names prefixed ``"l<index>."``, layer 0's first."""
        return tuple(
            f"l{i}.{name}" for i, layer in enumerate(self.layers) for name in layer.param_names
        )

    @property
    def depth(self) -> int:
        """The number of layers L."""
        return len(self.layers)

    def state_size(self, hidden_size: int) -> int:
        """The sum of the layers' state sizes (``H`` per tanh or GRU layer, ``2H`` per LSTM)."""
        return sum(state_size(layer, hidden_size) for layer in self.layers)

    def bounds(self, hidden_size: int) -> list[tuple[int, int]]:
        """Column ranges ``(start, stop)`` of each layer's state in the stacked state."""
        out, start = [], 0
        for layer in self.layers:
            stop = start + state_size(layer, hidden_size)
            out.append((start, stop))
            start = stop
        return out

    def hidden_size_of(self, width: int) -> int:
        """The hidden size H of a stacked state ``width`` columns wide (state sizes are linear)."""
        per_unit = self.state_size(1)
        H = width // per_unit
        if H < 1 or self.state_size(H) != width:
            raise ValueError(
                f"a state of the {self.name} cell must have a multiple of {per_unit} columns, "
                f"got {width}; pass states of shape (B, S) = (B, state_size(cell, H))"
            )
        return H

    def hidden(self, state: np.ndarray) -> np.ndarray:
        """The top layer's h, ``(..., B, H)``, of a stacked state ``(..., B, S)``."""
        start, stop = self.bounds(self.hidden_size_of(state.shape[-1]))[-1]
        return hidden(self.layers[-1], state[..., start:stop])

    def hidden_backward(self, dh: np.ndarray) -> np.ndarray:
        """The adjoint of :meth:`hidden`: ``dh`` in the top layer's h columns, zeros elsewhere."""
        H = dh.shape[-1]
        start, stop = self.bounds(H)[-1]
        dstate = np.zeros((*dh.shape[:-1], self.state_size(H)), dtype=dh.dtype)
        dstate[..., start:stop] = hidden_backward(self.layers[-1], dh)
        return dstate

    def layer_params(self, params: Params, layer: int) -> Params:
        """Layer ``layer``'s parameters under the layer cell's own names (no prefix)."""
        prefix = f"l{layer}."
        return {name: params[prefix + name] for name in self.layers[layer].param_names}

    def param_shapes(self, input_size: int, hidden_size: int) -> dict[str, tuple[int, ...]]:
        """Layer 0's shapes for input size D, the others' for input size H, prefixed."""
        shapes: dict[str, tuple[int, ...]] = {}
        for i, layer in enumerate(self.layers):
            width = input_size if i == 0 else hidden_size
            for name, shape in layer.param_shapes(width, hidden_size).items():
                shapes[f"l{i}.{name}"] = shape
        return shapes

    def init_params(
        self,
        input_size: int,
        hidden_size: int,
        rng: np.random.Generator,
        weight_scale: float = 0.01,
        dtype: npt.DTypeLike = np.float64,
    ) -> Params:
        """Each layer's own ``init_params`` (bottom first, from one generator), prefixed."""
        input_size, hidden_size = check_cell_sizes(input_size, hidden_size, rng)
        params: Params = {}
        for i, layer in enumerate(self.layers):
            width = input_size if i == 0 else hidden_size
            drawn = layer.init_params(width, hidden_size, rng, weight_scale, dtype)
            params.update({f"l{i}.{name}": value for name, value in drawn.items()})
        return params

    def step(self, params: Params, h_prev: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, Any]:
        """One step of every layer, bottom up; the cache is the tuple of the layers' caches."""
        H = params[self.param_names[0]].shape[0]
        bounds = self.bounds(H)
        if np.ndim(h_prev) != 2 or np.shape(h_prev)[1] != bounds[-1][1]:
            raise ValueError(
                f"{self.name}.step needs h_prev of shape (B, S) = (B, {bounds[-1][1]}) for "
                f"H = {H}, got {np.shape(h_prev)}; cell methods do not validate: call them "
                "through bptt.forward_stepwise"
            )
        state = np.empty(h_prev.shape, dtype=np.result_type(h_prev, params[self.param_names[0]]))
        caches = []
        below = x
        for i, (layer, (start, stop)) in enumerate(zip(self.layers, bounds, strict=True)):
            new, cache = layer.step(self.layer_params(params, i), h_prev[:, start:stop], below)
            state[:, start:stop] = new
            caches.append(cache)
            below = hidden(layer, new)
        return state, tuple(caches)

    def backward_layers(
        self, params: Params, cache: Any, dh: np.ndarray
    ) -> tuple[np.ndarray, Params, np.ndarray, list[np.ndarray]]:
        """:meth:`step_backward` plus each layer's total derivative at this step, bottom first.

        Layer l's total derivative is its part of ``dh`` (through time) plus what layer l + 1's
        backward step returns for its input, taken to layer l's state by ``hidden_backward``
        (through depth). Explained in Chapter 9.
        """
        H = params[self.param_names[0]].shape[0]
        bounds = self.bounds(H)
        if np.ndim(dh) != 2 or np.shape(dh)[1] != bounds[-1][1]:
            raise backward_shape_error(self, dh, np.empty((np.shape(dh)[0], bounds[-1][1])))
        dh_prev = np.empty_like(dh)
        grads: Params = {}
        deltas: list[np.ndarray] = [dh] * self.depth
        dx: np.ndarray | None = None
        for i in range(self.depth - 1, -1, -1):
            layer, (start, stop) = self.layers[i], bounds[i]
            delta = dh[:, start:stop]
            if dx is not None:  # what the layer above sends down through its input
                delta = delta + hidden_backward(layer, dx)
            deltas[i] = delta
            dprev, layer_grads, dx = layer.step_backward(
                self.layer_params(params, i), cache[i], delta
            )
            dh_prev[:, start:stop] = dprev
            grads.update({f"l{i}.{name}": g for name, g in layer_grads.items()})
        assert dx is not None  # at least one layer
        return dh_prev, {name: grads[name] for name in self.param_names}, dx, deltas

    def step_backward(
        self, params: Params, cache: Any, dh: np.ndarray
    ) -> tuple[np.ndarray, Params, np.ndarray]:
        """Backward of one step through every layer, top down: ``(dh_prev, dparams, dx)``."""
        dh_prev, grads, dx, _ = self.backward_layers(params, cache, dh)
        return dh_prev, grads, dx


def stack(cell: Cell | Sequence[Cell], layers: int | None = None) -> StackedCell:
    """A :class:`StackedCell`: ``stack(bptt.TANH, 3)`` or ``stack([bptt.TANH, bptt.LSTM])``.

    Explained in Chapter 9.

    Parameters
    ----------
    cell : Cell or sequence of Cell
        One cell repeated ``layers`` times, or the layers' cells, bottom first.
    layers : int, optional
        The number of layers L when ``cell`` is one cell (required then); not given with a
        sequence.
    """
    if isinstance(cell, Sequence) and not isinstance(cell, str):
        if layers is not None:
            raise TypeError(
                f"layers must not be given with a sequence of cells (it has {len(cell)}), got "
                f"layers={layers!r}; pass stack(cell, layers) or stack([cell, ...])"
            )
        return StackedCell(tuple(cell))
    check_cell(cell)
    if layers is None:
        raise TypeError(
            "layers must be given with one cell: pass e.g. stack(bptt.TANH, 3), or a sequence "
            "of cells"
        )
    return StackedCell((cell,) * positive_int("layers", layers))


def depth_time_gradient_norms(
    cell: StackedCell, params: Params, caches: list[Any], dstate: np.ndarray
) -> np.ndarray:
    """``||dL/ds^(l)_{T - lag}||`` for every lag, layer and example: an array ``(T + 1, L, B)``.

    ``caches`` is the list :func:`bptt.forward_stepwise` returns for a stacked ``cell`` over T
    steps, ``dstate`` ``(B, S)`` the derivative of the loss with respect to the last stacked
    state (for a loss on the last output only, ``cell.hidden_backward`` of the readout's
    ``dl/dh``). The error signal is run back through time and depth; entry ``[lag, l, b]`` is the
    norm of the total derivative with respect to layer l's state at step ``T - lag`` (its whole
    state: ``[h | c]`` for an LSTM layer), lag T being the initial state. Explained in Chapter 9.
    """
    if not isinstance(cell, StackedCell):
        raise TypeError(f"cell must be a StackedCell (bptt.stack(...)), got {describe(cell)}")
    if not isinstance(caches, list) or not caches:
        raise TypeError(
            f"caches must be the non-empty list of step caches from bptt.forward_stepwise, got "
            f"{describe(caches)}"
        )
    H = params[cell.param_names[0]].shape[0]
    bounds = cell.bounds(H)
    dstate = np.asarray(dstate)
    T, B = len(caches), dstate.shape[0]
    norms = np.empty((T + 1, cell.depth, B))
    for lag, t in enumerate(range(T - 1, -1, -1)):
        dstate, _, _, deltas = cell.backward_layers(params, caches[t], dstate)
        norms[lag] = [np.linalg.norm(d, axis=1) for d in deltas]
    norms[T] = [np.linalg.norm(dstate[:, a:b], axis=1) for a, b in bounds]
    return norms
