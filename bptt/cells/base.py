"""The cell protocol: one time step and its exact local derivatives.

A *cell* is the unit the book unrolls (Chapter 1, "Unrolling an RNN"). Every gradient algorithm of
the package (full BPTT, truncated BPTT, checkpointed BPTT, gradient checking) is written once
against the small :class:`Cell` protocol below, so it runs unchanged on any cell that implements it.

Cell methods are the inner loop of every algorithm, so they do not validate their arguments; the
drivers that call them (for example :func:`bptt.loss_and_grads_stepwise`) validate once, up front.
"""

from __future__ import annotations

from typing import Any, Protocol, cast, runtime_checkable

import numpy as np
import numpy.typing as npt

from bptt._checks import describe, float_dtype, positive_int

Params = dict[str, np.ndarray]
"""Parameters and gradients: a plain ``dict`` from a name (``"W_hh"``...) to a float array."""


@runtime_checkable
class Cell(Protocol):
    """What a recurrent cell provides: shapes, initialisation, one step and its backward.

    ``step(params, h_prev, x)`` maps the previous state ``(B, S)`` and an input ``(B, D)`` to the
    new state ``(B, S)`` and a *cache*: whatever the backward step needs.
    ``step_backward(params, cache, dh)`` takes the total derivative of the loss with respect to
    the new state and returns
    ``(dh_prev, dparams, dx)``: the derivative with respect to the previous state, this step's
    contribution to the gradient of each of the cell's parameters, and the derivative with respect
    to the input. Explained in Chapter 1 (the step) and Chapter 2 (its derivatives).

    **The state and what the readout sees.** For the tanh cell and the GRU the state *is* the
    hidden state h, ``S = H``. A cell whose state holds more than what the readout reads (the
    LSTM's pair ``(h, c)``) keeps it in one array ``(B, S)`` and adds three optional methods:

    - ``state_size(hidden_size) -> S`` (the LSTM: ``2 H``, the state being ``[h | c]``);
    - ``hidden(state) -> h``: the ``(B, H)`` part the readout reads;
    - ``hidden_backward(dh) -> dstate``: the adjoint of ``hidden``, which takes the readout's
      derivative ``dl/dh`` ``(B, H)`` to a derivative with respect to the whole state ``(B, S)``.

    A cell without them gets the defaults of :func:`state_size`, :func:`hidden` and
    :func:`hidden_backward` (``S = H``, the identity), so the algorithms, which call those
    functions and never the methods directly, run every cell unchanged, at no extra cost for a
    cell whose state is h.

    **Forward mode (optional).** The forward-mode algorithms, RTRL and UORO (Chapter 12), need
    derivatives of a step pushed *forward*. They call :func:`state_jvp` (``J_t v``) and
    :func:`step_jacobians` (``J_t`` and ``dF/dtheta`` per example), whose defaults build them
    exactly from ``step_backward``, so every cell runs; a cell may define the methods of the same
    names to do it cheaper (the tanh cell defines both, the GRU and the LSTM ``state_jvp``), and
    a linear cell may define ``step_tangent(params, x, S_prev) -> S_t`` to advance RTRL's
    sensitivity itself.
    """

    @property
    def name(self) -> str:
        """A short name, e.g. ``"tanh"``."""
        ...

    @property
    def param_names(self) -> tuple[str, ...]:
        """The cell's parameter names; the first is an ``(H, D)`` input weight."""
        ...

    def param_shapes(self, input_size: int, hidden_size: int) -> dict[str, tuple[int, ...]]: ...

    def init_params(
        self,
        input_size: int,
        hidden_size: int,
        rng: np.random.Generator,
        weight_scale: float,
        dtype: npt.DTypeLike,
    ) -> Params: ...

    def step(self, params: Params, h_prev: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, Any]: ...

    def step_backward(
        self, params: Params, cache: Any, dh: np.ndarray
    ) -> tuple[np.ndarray, Params, np.ndarray]: ...


def state_size(cell: Cell, hidden_size: int) -> int:
    """The width S of ``cell``'s state for hidden size H: ``cell.state_size(H)``, else H.

    Explained in Chapter 1 (the state of the tanh cell is h itself, ``S = H``).
    """
    method = getattr(cell, "state_size", None)
    return hidden_size if method is None else int(method(hidden_size))


def hidden(cell: Cell, state: np.ndarray) -> np.ndarray:
    """The part ``(..., B, H)`` of a state ``(..., B, S)`` that the readout reads.

    ``cell.hidden(state)`` if the cell defines it, else the state itself (``S = H``).
    """
    method = getattr(cell, "hidden", None)
    return state if method is None else cast(np.ndarray, method(state))


def hidden_backward(cell: Cell, dh: np.ndarray) -> np.ndarray:
    """The adjoint of :func:`hidden`: ``dl/dh`` ``(B, H)`` as a derivative w.r.t. the state.

    ``cell.hidden_backward(dh)`` if the cell defines it (the LSTM pads ``dl/dc = 0``), else
    ``dh`` itself.
    """
    method = getattr(cell, "hidden_backward", None)
    return dh if method is None else cast(np.ndarray, method(dh))


def param_size(cell: Cell, params: Params) -> int:
    """P, the number of entries of ``cell``'s parameters (the readout's not counted).

    Forward-mode algorithms (:func:`bptt.rtrl`, :func:`bptt.uoro`) flatten the cell's parameters
    into one vector of P entries, in the order of ``cell.param_names``. Explained in Chapter 12.
    """
    return sum(int(np.size(params[name])) for name in cell.param_names)


def flatten_params(cell: Cell, grads: Params) -> np.ndarray:
    """The cell's entries of ``grads`` as one vector ``(P,)``, in ``cell.param_names`` order.

    Explained in Chapter 12.
    """
    return np.concatenate([np.ravel(grads[name]) for name in cell.param_names])


def unflatten_params(cell: Cell, params: Params, flat: np.ndarray) -> Params:
    """The inverse of :func:`flatten_params`: arrays shaped like ``params``' cell entries.

    Explained in Chapter 12.
    """
    out: Params = {}
    start = 0
    for name in cell.param_names:
        shape = np.shape(params[name])
        size = int(np.prod(shape, dtype=int))
        out[name] = flat[start : start + size].reshape(shape)
        start += size
    return out


def state_jacobian(cell: Cell, params: Params, cache: Any, batch: int, size: int) -> np.ndarray:
    """The step Jacobian ``J_t = dh_t/dh_{t-1}`` of every example, ``(B, S, S)``, from S VJPs.

    Row i of ``J_t`` is ``e_i^T J_t``: one ``step_backward`` with ``dh = e_i`` for every example
    at once (the state derivative of a batch is per example). Explained in Chapter 12.
    """
    dtype = np.result_type(*(params[name].dtype for name in cell.param_names))
    J = np.empty((batch, size, size), dtype=dtype)
    for i in range(size):
        e = np.zeros((batch, size), dtype=dtype)
        e[:, i] = 1.0
        J[:, i, :] = cell.step_backward(params, cache, e)[0]
    return J


def state_jvp(cell: Cell, params: Params, cache: Any, v: np.ndarray) -> np.ndarray:
    """``J_t v`` for a tangent ``v`` ``(B, S)`` of the previous state: forward mode in the state.

    ``cell.state_jvp(params, cache, v)`` if the cell defines it (the tanh cell, the GRU and the
    LSTM do, at about the cost of one step, O(B H^2)); else the product with the Jacobian built
    by :func:`state_jacobian` from S backward steps (exact, but S times dearer). Explained in
    Chapter 12.
    """
    method = getattr(cell, "state_jvp", None)
    if method is not None:
        return cast(np.ndarray, method(params, cache, v))
    J = state_jacobian(cell, params, cache, v.shape[0], v.shape[1])
    result: np.ndarray = np.einsum("bij,bj->bi", J, v)
    return result


def step_jacobians(
    cell: Cell, params: Params, h_prev: np.ndarray, x: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The two Jacobians of one step for every example: ``J_t`` ``(B, S, S)`` and
    ``dF/dtheta`` ``(B, S, P)`` (the local derivative of ``h_t`` with ``h_{t-1}`` held fixed).

    ``cell.step_jacobians(params, h_prev, x)`` if the cell defines it (the tanh cell writes both
    in closed form); else both come from backward steps, which every cell has: row i of each is
    the VJP with ``e_i``. ``step_backward`` sums the parameter gradient over the batch, so the
    default runs every example on its own (B S backward steps of batch 1): exact for any cell,
    and fine for the small systems RTRL is affordable on. Explained in Chapter 12.
    """
    method = getattr(cell, "step_jacobians", None)
    if method is not None:
        J_m, dF_m = method(params, h_prev, x)
        return cast(np.ndarray, J_m), cast(np.ndarray, dF_m)
    B, S = h_prev.shape
    P = param_size(cell, params)
    _, cache = cell.step(params, h_prev, x)
    J = state_jacobian(cell, params, cache, B, S)
    dF = np.empty((B, S, P), dtype=J.dtype)
    for b in range(B):
        _, cache_b = cell.step(params, h_prev[b : b + 1], x[b : b + 1])
        for i in range(S):
            e = np.zeros((1, S), dtype=J.dtype)
            e[0, i] = 1.0
            dF[b, i] = flatten_params(cell, cell.step_backward(params, cache_b, e)[1])
    return J, dF


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
    S = state_size(cell, H)
    width = f"(B, H) = (B, {H})" if S == H else f"(B, S) = (B, {S}) for H = {H}"
    return ValueError(
        f"{type(cell).__name__}.step needs h_prev of shape {width} and x of shape "
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


def gate_param_shapes(
    param_names: tuple[str, ...], input_size: int, hidden_size: int
) -> dict[str, tuple[int, ...]]:
    """Shapes of a gated cell's parameters: ``W_x* (H, D)``, ``W_h* (H, H)``, biases ``(H,)``."""
    D, H = input_size, hidden_size
    return {
        name: (H, D) if name[:3] == "W_x" else (H, H) if name[:3] == "W_h" else (H,)
        for name in param_names
    }


def gaussian_params(
    shapes: dict[str, tuple[int, ...]],
    rng: np.random.Generator,
    weight_scale: float,
    dtype: npt.DTypeLike,
    biases: dict[str, float] | None = None,
) -> Params:
    """Gaussian weights of standard deviation ``weight_scale``; each ``b_*`` constant.

    A bias is ``biases[name]`` if given there, else 0 (the LSTM's forget-gate bias uses it).
    """
    biases = {} if biases is None else biases
    dtype = float_dtype("dtype", dtype)
    params: Params = {}
    for name, shape in shapes.items():
        if name.startswith("b_"):
            params[name] = np.full(shape, biases.get(name, 0.0), dtype=dtype)
        else:
            params[name] = (rng.standard_normal(shape) * weight_scale).astype(dtype)
    return params
