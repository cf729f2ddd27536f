"""Creating and validating model parameters: a cell's parameters plus the readout's.

A model is a cell (:mod:`bptt.cells`) followed by the linear readout (:mod:`bptt.readout`). Its
parameters live in one plain ``dict``, for the tanh cell ``W_xh (H, D)``, ``W_hh (H, H)``,
``b_h (H,)``, ``W_hy (V, H)``, ``b_y (V,)``: the layout of ``torch.nn.RNN`` followed by
``torch.nn.Linear``; the GRU's and the LSTM's follow ``torch.nn.GRU`` and ``torch.nn.LSTM``
gate by gate (:mod:`bptt.interop` converts). Introduced in Chapter 1.
"""

from __future__ import annotations

import os
from typing import Any, NamedTuple

import numpy as np

from bptt import _checks
from bptt.cells import TANH, Cell, Params, check_cell, state_size
from bptt.readout import READOUT_NAMES


class ModelSizes(NamedTuple):
    """Input size D, hidden size H and output size V of a model's parameters.

    Explained in Chapter 1.
    """

    input_size: int
    hidden_size: int
    output_size: int


def as_generator(rng: Any, name: str = "rng") -> np.random.Generator:
    """Return a ``np.random.Generator`` from a generator or an integer seed, else raise."""
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, int | np.integer) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    raise TypeError(
        f"{name} must be a numpy Generator (np.random.default_rng(seed)) or an integer seed, "
        f"got {_checks.describe(rng)}; pass e.g. {name}=0"
    )


def _available_memory() -> int | None:
    """Physical memory in bytes, or None where the platform does not say."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, OSError, ValueError):
        return None


def _check_memory(nbytes: int, hidden_size: int) -> None:
    available = _available_memory()
    if available is not None and nbytes > available:
        raise ValueError(
            f"hidden_size={hidden_size} needs {_bytes_text(nbytes)} for the parameters alone, "
            f"more than this machine's {_bytes_text(available)} of memory; "
            "choose a smaller hidden_size"
        )


def _bytes_text(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "bytes" else f"{int(n)} bytes"
        n /= 1024
    raise AssertionError("unreachable")


def init_params(
    input_size: int,
    hidden_size: int,
    output_size: int,
    rng: np.random.Generator | int,
    *,
    weight_scale: float = 0.01,
    dtype: Any = np.float64,
    cell: Cell = TANH,
) -> Params:
    """Draw the parameters of a ``cell`` + linear readout model.

    Parameters
    ----------
    input_size, hidden_size, output_size : int
        D, H and V. For a character model D = V = the vocabulary size.
    rng : numpy.random.Generator or int
        Source of randomness (or a seed for one); the package never uses the global ``np.random``.
    weight_scale : float
        Standard deviation of the Gaussian weights; biases start at zero. The default 0.01 is the
        classic setting of the character model in Chapter 4. Chapter 9 studies better choices.
    dtype : numpy floating dtype
        ``float64`` (default; needed for gradient checking) or ``float32``.
    cell : Cell
        The recurrent cell (default: the tanh cell; or ``bptt.GRU``, or ``bptt.LSTM``, whose
        forget-gate bias starts at :attr:`bptt.cells.LSTMCell.forget_bias`, 1.0: pass
        ``bptt.cells.LSTMCell(forget_bias=0.0)`` for a zero start).

    Returns
    -------
    dict of str to ndarray
        The cell's parameters and ``W_hy`` ``(V, H)``, ``b_y`` ``(V,)``.

    Explained in Chapter 1.
    """
    D = _checks.positive_int("input_size", input_size)
    H = _checks.positive_int("hidden_size", hidden_size)
    V = _checks.positive_int("output_size", output_size)
    weight_scale = _checks.positive_float("weight_scale", weight_scale)
    dtype = _checks.float_dtype("dtype", dtype)
    check_cell(cell)
    gen = as_generator(rng)
    shapes = {**cell.param_shapes(D, H), "W_hy": (V, H), "b_y": (V,)}
    _check_memory(sum(int(np.prod(s)) for s in shapes.values()) * dtype.itemsize, H)
    params = cell.init_params(D, H, gen, weight_scale, dtype)
    params["W_hy"] = (gen.standard_normal((V, H)) * weight_scale).astype(dtype)
    params["b_y"] = np.zeros(V, dtype=dtype)
    return params


def check_params(params: Any, cell: Cell = TANH) -> ModelSizes:
    """Validate a model's parameters and return its sizes.

    Checks the names, that every array is floating point with one common dtype, that the shapes
    agree with each other, and that no value is NaN or infinite. Raises ``TypeError`` or
    ``ValueError`` naming the offending parameter.

    Explained in Chapter 1.
    """
    check_cell(cell)
    names = (*cell.param_names, *READOUT_NAMES)
    _checks.mapping_of_arrays("params", params, names)
    arrays = {k: _checks.float_array(f"params[{k!r}]", params[k]) for k in names}
    dtypes = {a.dtype for a in arrays.values()}
    if len(dtypes) != 1:
        found = {k: str(a.dtype) for k, a in arrays.items()}
        raise TypeError(
            f"params must all have one floating dtype, got {found}; convert them all with "
            "{k: v.astype(np.float64) for k, v in params.items()}"
        )
    W_hy = arrays["W_hy"]
    if W_hy.ndim != 2:
        raise ValueError(
            f"params['W_hy'] must have shape (V, H), got {W_hy.shape}; create the parameters "
            "with bptt.init_params"
        )
    V, H = W_hy.shape
    first = cell.param_names[0]
    if arrays[first].ndim != 2:
        raise ValueError(
            f"params[{first!r}] must have shape (H, D), got {arrays[first].shape}; create the "
            "parameters with bptt.init_params"
        )
    D = arrays[first].shape[1]
    expected = {**cell.param_shapes(D, H), "W_hy": (V, H), "b_y": (V,)}
    for name, shape in expected.items():
        if arrays[name].shape != shape:
            raise ValueError(
                f"params[{name!r}] must have shape {shape} for D={D}, H={H}, V={V}, "
                f"got {arrays[name].shape}; create consistent parameters with bptt.init_params"
            )
    return ModelSizes(D, H, V)


def zeros_like_params(params: Params) -> Params:
    """A dict of zero arrays with the names, shapes and dtypes of ``params``."""
    return {k: np.zeros_like(v) for k, v in params.items()}


INPUT_LAYOUT = "time-major floats (T, B, D) or integer ids (T, B)"


def check_inputs(inputs: Any, input_size: int, dtype: np.dtype) -> np.ndarray:
    """Return validated time-major inputs: integer ids ``(T, B)`` or floats ``(T, B, D)``.

    Raises a clear error for a wrong rank, a wrong D, non-finite values, ids out of range, or a
    float dtype that differs from the parameters'. Explained in Chapter 1.
    """
    array = _checks.as_array("inputs", inputs) if not isinstance(inputs, str) else inputs
    if isinstance(array, np.ndarray) and np.issubdtype(array.dtype, np.integer):
        array = _checks.id_array("inputs", array, upper=input_size, ndim=2)
    else:
        array = _checks.float_array(
            "inputs", array, shape=(None, None, input_size), layout=INPUT_LAYOUT
        )
        _checks.same_dtype("inputs", array, dtype)
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(
            f"inputs must have T >= 1 and B >= 1, got shape {array.shape}; pass at least one "
            "step of one sequence"
        )
    return array


def prepare_inputs(inputs: Any, input_size: int, dtype: np.dtype) -> np.ndarray:
    """Return time-major float inputs ``(T, B, D)``; integer ids ``(T, B)`` become one-hot rows.

    Validates as :func:`check_inputs` does.
    """
    x = check_inputs(inputs, input_size, dtype)
    if x.ndim == 3:
        return x
    onehot = np.zeros((*x.shape, input_size), dtype=dtype)
    np.put_along_axis(onehot, x[..., None], 1.0, axis=-1)
    return onehot


def prepare_h0(
    h0: Any,
    batch: int,
    hidden_size: int,
    dtype: np.dtype[Any],
    *,
    steps: int | None = None,
    cell: Cell | None = None,
) -> np.ndarray:
    """Return the initial state ``(B, S)``: zeros when ``h0`` is None, else the checked array.

    ``S`` is the width of ``cell``'s state, :func:`bptt.cells.state_size` (``H`` for the tanh
    cell and the GRU, and when no ``cell`` is given; ``2 H`` for the LSTM, whose state is
    ``[h | c]``). ``steps`` (the inputs' T) lets the message point out batch-first inputs: an
    ``h0`` with T rows where B were expected. Explained in Chapter 1.
    """
    width = hidden_size if cell is None else state_size(cell, hidden_size)
    layout = "(B, H)"
    if cell is not None and width != hidden_size:
        layout = f"(B, S), S = {width} the {cell.name} cell's state size for H = {hidden_size}"
    if h0 is None:
        return np.zeros((batch, width), dtype=dtype)
    given = np.shape(h0) if not isinstance(h0, str) else ()
    if steps is not None and steps != batch and len(given) == 2 and given == (steps, width):
        raise ValueError(
            f"h0 must have shape {(batch, width)}, got {given}: {layout} was expected, and "
            f"its {steps} rows match the inputs' first axis, read as T; {_checks.TIME_MAJOR}"
        )
    h = _checks.float_array("h0", h0, shape=(batch, width), layout=layout)
    _checks.same_dtype("h0", h, dtype)
    return h
