"""A cell that counts what an algorithm does with it: steps run, and step caches kept alive.

Wrapping a cell in :class:`CountingCell` changes no number an algorithm computes; it measures cost
by counting instead of timing (Chapter 6 counts truncated BPTT's backward steps and stored
caches with it).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bptt.cells import TANH, Cell, Params, hidden, hidden_backward, state_size


class CountingCell:
    """Any cell of the cell protocol, plus counters.

    Explained in Chapter 6.

    Attributes
    ----------
    forward_steps, backward_steps : int
        Calls of ``step`` and ``step_backward`` so far.
    alive : int
        Step caches currently referenced by the algorithm (a cache is freed when it is dropped).
    peak : int
        The largest ``alive`` seen: the most steps the algorithm stored at once.
    """

    def __init__(self, cell: Cell = TANH) -> None:
        self.cell = cell
        self.name = f"counting {cell.name}"
        self.param_names = cell.param_names
        self.forward_steps = self.backward_steps = self.alive = self.peak = 0

    def state_size(self, hidden_size: int) -> int:
        """The wrapped cell's state size (``2 H`` for the LSTM)."""
        return state_size(self.cell, hidden_size)

    def hidden(self, state: np.ndarray) -> np.ndarray:
        """The wrapped cell's readable part of the state."""
        return hidden(self.cell, state)

    def hidden_backward(self, dh: np.ndarray) -> np.ndarray:
        """The wrapped cell's adjoint of :meth:`hidden`."""
        return hidden_backward(self.cell, dh)

    def param_shapes(self, input_size: int, hidden_size: int) -> dict[str, tuple[int, ...]]:
        """The wrapped cell's parameter shapes."""
        return self.cell.param_shapes(input_size, hidden_size)

    def init_params(self, *args: Any, **kwargs: Any) -> Params:
        """The wrapped cell's initialisation."""
        return self.cell.init_params(*args, **kwargs)

    def step(
        self,
        params: Params,
        h_prev: np.ndarray,
        x: np.ndarray,
    ) -> tuple[np.ndarray, Any]:
        """The wrapped cell's step; its cache counts its own lifetime."""
        self.forward_steps += 1
        h, cache = self.cell.step(params, h_prev, x)
        return h, _CountedCache(self, cache)

    def step_backward(
        self, params: Params, cache: Any, dh: np.ndarray
    ) -> tuple[np.ndarray, Params, np.ndarray]:
        """The wrapped cell's backward step."""
        self.backward_steps += 1
        return self.cell.step_backward(params, cache.inner, dh)


class _CountedCache:
    """A step cache that tells its :class:`CountingCell` when it lives."""

    def __init__(self, owner: CountingCell, inner: Any) -> None:
        self.owner, self.inner = owner, inner
        owner.alive += 1
        owner.peak = max(owner.peak, owner.alive)

    def __del__(self) -> None:
        self.owner.alive -= 1
