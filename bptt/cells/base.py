"""The cell protocol: one time step and its exact local derivatives.

A *cell* is the unit the book unrolls (Chapter 1, "Unrolling an RNN"). Every gradient algorithm of
the package (full BPTT, truncated BPTT, checkpointed BPTT, gradient checking) is written once
against the small :class:`Cell` protocol below, so it runs unchanged on any cell that implements it.

Cell methods are the inner loop of every algorithm, so they do not validate their arguments; the
drivers that call them (for example :func:`bptt.loss_and_grads_stepwise`) validate once, up front.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np

from bptt._checks import describe, positive_int

Params = dict[str, np.ndarray]
"""Parameters and gradients: a plain ``dict`` from a name (``"W_hh"``...) to a float array."""


@runtime_checkable
class Cell(Protocol):
    """What a recurrent cell provides: shapes, initialisation, one step and its backward.

    ``step(params, h_prev, x)`` maps the previous state ``(B, H)`` and an input ``(B, D)`` to the
    new state ``(B, H)`` and a *cache*: whatever the backward step needs.
    ``step_backward(params, cache, dh)`` takes the total derivative of the loss with respect to
    the new state and returns
    ``(dh_prev, dparams, dx)``: the derivative with respect to the previous state, this step's
    contribution to the gradient of each of the cell's parameters, and the derivative with respect
    to the input. Explained in Chapter 1 (the step) and Chapter 2 (its derivatives).
    """

    name: str
    param_names: tuple[str, ...]

    def param_shapes(self, input_size: int, hidden_size: int) -> dict[str, tuple[int, ...]]: ...

    def init_params(
        self,
        input_size: int,
        hidden_size: int,
        rng: np.random.Generator,
        weight_scale: float,
        dtype: np.dtype,
    ) -> Params: ...

    def step(self, params: Params, h_prev: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, Any]: ...

    def step_backward(
        self, params: Params, cache: Any, dh: np.ndarray
    ) -> tuple[np.ndarray, Params, np.ndarray]: ...


def check_cell(cell: Any) -> Cell:
    """Raise a ``TypeError`` unless ``cell`` implements the :class:`Cell` protocol.

    Explained in Chapter 1.
    """
    if not isinstance(cell, Cell):
        raise TypeError(
            f"cell must implement the bptt.Cell protocol (bptt.TANH, bptt.GRU, ...), got "
            f"{describe(cell)}; pass a cell object, not its name"
        )
    return cell


def step_shape_error(cell: Any, params: Params, h_prev: Any, x: Any) -> ValueError:
    """The one-line error for a cell step whose arrays do not fit the parameters."""
    first = cell.param_names[0]
    H, D = np.shape(params[first])
    return ValueError(
        f"{type(cell).__name__}.step needs h_prev of shape (B, H) = (B, {H}) and x of shape "
        f"(B, D) = (B, {D}) with one B, got h_prev {np.shape(h_prev)} and x {np.shape(x)}; "
        "cell methods do not validate: call them through bptt.forward_stepwise"
    )


def check_cell_sizes(input_size: Any, hidden_size: Any, rng: Any) -> tuple[int, int]:
    """Validate the sizes and generator given to a cell's ``init_params``."""
    D = positive_int("input_size", input_size)
    H = positive_int("hidden_size", hidden_size)
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"rng must be a numpy Generator, got {describe(rng)}; pass np.random.default_rng(seed)"
        )
    return D, H


def backward_shape_error(cell: Any, dh: Any, h: Any) -> ValueError:
    """The one-line error for a backward step whose ``dh`` does not have the state's shape."""
    return ValueError(
        f"{type(cell).__name__}.step_backward needs dh of the state's shape {np.shape(h)}, got "
        f"{np.shape(dh)}; pass the derivative of the loss with respect to this step's h_t"
    )
