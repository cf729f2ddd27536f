"""Creating and validating model parameters: a cell's parameters plus the readout's.

A model is a cell (:mod:`bptt.cells`) followed by the linear readout (:mod:`bptt.readout`). Its
parameters live in one plain ``dict``, for the tanh cell ``W_xh (H, D)``, ``W_hh (H, H)``,
``b_h (H,)``, ``W_hy (V, H)``, ``b_y (V,)``: the layout of ``torch.nn.RNN`` followed by
``torch.nn.Linear``. Introduced in Chapter 1.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from . import _checks
from .cells import TANH, Cell, Params
from .readout import READOUT_NAMES


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
        f"got {rng!r}"
    )


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
        classic setting of the character model in Chapter 4. Chapter 8 studies better choices.
    dtype : numpy floating dtype
        ``float64`` (default; needed for gradient checking) or ``float32``.
    cell : Cell
        The recurrent cell (default: the tanh cell).

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
    dtype = np.dtype(dtype)
    if not np.issubdtype(dtype, np.floating):
        raise TypeError(f"dtype must be a floating dtype such as np.float64, got {dtype}")
    gen = as_generator(rng)
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
    names = (*cell.param_names, *READOUT_NAMES)
    _checks.mapping_of_arrays("params", params, names)
    arrays = {k: _checks.float_array(f"params[{k!r}]", params[k]) for k in names}
    dtypes = {a.dtype for a in arrays.values()}
    if len(dtypes) != 1:
        found = {k: str(a.dtype) for k, a in arrays.items()}
        raise TypeError(f"params must all have one floating dtype, got {found}")
    W_hy = arrays["W_hy"]
    if W_hy.ndim != 2:
        raise ValueError(f"params['W_hy'] must have shape (V, H), got {W_hy.shape}")
    V, H = W_hy.shape
    first = cell.param_names[0]
    if arrays[first].ndim != 2:
        raise ValueError(f"params[{first!r}] must have shape (*, D), got {arrays[first].shape}")
    D = arrays[first].shape[1]
    expected = {**cell.param_shapes(D, H), "W_hy": (V, H), "b_y": (V,)}
    for name, shape in expected.items():
        if arrays[name].shape != shape:
            raise ValueError(
                f"params[{name!r}] must have shape {shape} for D={D}, H={H}, V={V}, "
                f"got {arrays[name].shape}"
            )
    return ModelSizes(D, H, V)


def zeros_like_params(params: Params) -> Params:
    """A dict of zero arrays with the names, shapes and dtypes of ``params``."""
    return {k: np.zeros_like(v) for k, v in params.items()}


def prepare_inputs(inputs: Any, input_size: int, dtype: np.dtype) -> np.ndarray:
    """Return time-major float inputs ``(T, B, D)``; integer ids ``(T, B)`` become one-hot rows.

    Raises a clear error for a wrong rank, a wrong D, non-finite values, ids out of range, or a
    float dtype that differs from the parameters'.
    """
    array = np.asarray(inputs)
    if np.issubdtype(array.dtype, np.integer):
        ids = _checks.id_array("inputs", array, upper=input_size, ndim=2)
        if ids.shape[0] == 0 or ids.shape[1] == 0:
            raise ValueError(f"inputs must have T >= 1 and B >= 1, got shape {ids.shape}")
        onehot = np.zeros((*ids.shape, input_size), dtype=dtype)
        np.put_along_axis(onehot, ids[..., None], 1.0, axis=-1)
        return onehot
    x = _checks.float_array("inputs", array, shape=(None, None, input_size))
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"inputs must have T >= 1 and B >= 1, got shape {x.shape}")
    _checks.same_dtype("inputs", x, dtype)
    return x


def prepare_h0(h0: Any, batch: int, hidden_size: int, dtype: np.dtype) -> np.ndarray:
    """Return the initial state ``(B, H)``: zeros when ``h0`` is None, else the checked array."""
    if h0 is None:
        return np.zeros((batch, hidden_size), dtype=dtype)
    h = _checks.float_array("h0", h0, shape=(batch, hidden_size))
    _checks.same_dtype("h0", h, dtype)
    return h
