"""Argument checks shared by the package's public functions.

Every public function validates what it is given and raises a one-line error that names the
argument, says what was expected and what was received, and what to do about it. Keeping the
checks here keeps the numerical code readable.

Arrays are time-major: a batch of sequences is ``(T, B, ...)``. Where a shape contradicts that
layout in a way that batch-first data ``(B, T, ...)`` would explain, the message says so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from numbers import Integral, Real
from typing import Any

import numpy as np

TIME_MAJOR = (
    "arrays are time-major (T, B, ...); for batch-first data (B, T, ...) pass x.swapaxes(0, 1)"
)


def describe(value: Any) -> str:
    """A short one-line description of a value for an error message (never a multi-line repr)."""
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape} and dtype {value.dtype}"
    if isinstance(value, Mapping):
        return f"a {type(value).__name__} with keys {list(value)[:8]}"
    text = " ".join(repr(value).split())
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({type(value).__name__})"


def positive_int(name: str, value: Any, *, minimum: int = 1) -> int:
    """Return ``value`` as an ``int`` if it is an integer >= ``minimum``, else raise."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(
            f"{name} must be an integer >= {minimum}, got {describe(value)}; pass a whole number"
        )
    if value < minimum:
        raise ValueError(
            f"{name} must be an integer >= {minimum}, got {value}; pass a value >= {minimum}"
        )
    return int(value)


def positive_float(name: str, value: Any, *, allow_zero: bool = False) -> float:
    """Return ``value`` as a finite ``float`` > 0 (or >= 0 with ``allow_zero``), else raise."""
    bound = ">= 0" if allow_zero else "> 0"
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(
            f"{name} must be a real number, got {describe(value)}; pass a number {bound}"
        )
    number = float(value)
    ok = number >= 0 if allow_zero else number > 0
    if not np.isfinite(number) or not ok:
        raise ValueError(
            f"{name} must be a finite number {bound}, got {number}; pass a number {bound}"
        )
    return number


def unit_interval(name: str, value: Any) -> float:
    """Return ``value`` as a float in ``[0, 1)`` (a momentum or a decay rate), else raise."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(
            f"{name} must be a real number in [0, 1), got {describe(value)}; pass e.g. 0.9"
        )
    if not 0 <= float(value) < 1:
        raise ValueError(f"{name} must be in [0, 1), got {value}; pass a number such as 0.9")
    return float(value)


def float_dtype(name: str, value: Any) -> np.dtype[Any]:
    """Return ``value`` as a floating numpy dtype, else raise naming ``name``.

    One rule for every function that takes a dtype: a numpy type (``np.float32``), a dtype
    (``np.dtype("float32")``) and its name (``"float32"``, ``"f4"``) are the same thing. ``None``
    is refused rather than read, as numpy would, as float64.
    """
    expected = "a floating dtype such as np.float64 or 'float32'"
    result: np.dtype[Any] | None
    try:
        result = None if value is None else np.dtype(value)
    except (TypeError, ValueError):
        result = None
    if result is None or not np.issubdtype(result, np.floating):
        given = f"{result} ({describe(value)})" if result is not None else describe(value)
        raise TypeError(f"{name} must be {expected}, got {given}; pass 'float64' or 'float32'")
    checked: np.dtype[Any] = result
    return checked


def as_array(name: str, value: Any) -> np.ndarray:
    """``np.asarray(value)``, with a one-line error naming ``name`` for a ragged sequence."""
    try:
        return np.asarray(value)
    except ValueError:  # a ragged nested sequence
        raise ValueError(
            f"{name} must be a rectangular array, got a ragged {type(value).__name__}; "
            "give every row the same length"
        ) from None


def _shape_text(shape: Sequence[int | None]) -> str:
    axes = ["*" if s is None else str(s) for s in shape]
    return f"({axes[0]},)" if len(axes) == 1 else f"({', '.join(axes)})"


def float_array(
    name: str,
    value: Any,
    *,
    ndim: int | None = None,
    shape: Sequence[int | None] | None = None,
    finite: bool = True,
    layout: str = "",
) -> np.ndarray:
    """Return ``value`` as a floating-point array, checking its rank, shape and finiteness.

    Integer or boolean arrays are rejected rather than silently cast: a float input that arrives as
    integers is almost always token ids passed where vectors were meant. ``layout`` (for example
    ``"(T, B, D)"``) is named in a message about a wrong rank.
    """
    array = as_array(name, value)
    if not np.issubdtype(array.dtype, np.floating):
        given = describe(array) if isinstance(value, np.ndarray) else describe(value)
        raise TypeError(
            f"{name} must be a floating-point array, got {given}; "
            "convert it with np.asarray(..., dtype=np.float64)"
        )
    if shape is not None:
        ndim = len(shape)
    if ndim is not None and array.ndim != ndim:
        expected = layout or (_shape_text(shape) if shape is not None else "")
        hint = f"; expected {expected}" if expected else f"; give it {ndim} axes"
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {array.shape}{hint}")
    if shape is not None:
        for axis, (want, got) in enumerate(zip(shape, array.shape, strict=True)):
            if want is not None and want != got:
                raise ValueError(
                    f"{name} must have shape {_shape_text(shape)}, got {array.shape} "
                    f"(axis {axis} differs){f'; expected {layout}' if layout else ''}"
                )
    if finite and not np.all(np.isfinite(array)):
        bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
        first = tuple(int(i) for i in np.argwhere(~np.isfinite(array))[0])
        raise ValueError(
            f"{name} contains {bad} non-finite value(s) (NaN or inf), the first at index {first}; "
            "remove or replace them before calling"
        )
    return array


def id_array(name: str, value: Any, *, upper: int, ndim: int | None = None) -> np.ndarray:
    """Return ``value`` as an integer array of class/token ids in ``[0, upper)``, else raise."""
    array = as_array(name, value)
    if not np.issubdtype(array.dtype, np.integer):
        given = describe(array) if isinstance(value, np.ndarray) else describe(value)
        raise TypeError(
            f"{name} must be an integer array of ids, got {given}; pass class ids "
            "(for one-hot rows use .argmax(axis=-1))"
        )
    if ndim is not None and array.ndim != ndim:
        raise ValueError(
            f"{name} must have {ndim} dimensions, got shape {array.shape}; "
            f"expected ids of shape {'(T, B)' if ndim == 2 else f'with {ndim} axes'}"
        )
    if array.size:
        low, high = int(array.min()), int(array.max())
        if low < 0 or high >= upper:
            raise ValueError(
                f"{name} must hold ids in [0, {upper}), got values from {low} to {high}; "
                f"the model has {upper} classes, so check its sizes against the data"
            )
    return array


def batch_first_hint(shape: tuple[int, ...], T: int, B: int) -> str:
    """``"; <TIME_MAJOR>"`` when an array whose leading axes should be ``(T, B)`` has ``(B, T)``."""
    if T != B and tuple(shape[:2]) == (B, T):
        return f"; {TIME_MAJOR}"
    return ""


def same_dtype(name: str, array: np.ndarray, dtype: np.dtype) -> None:
    """Raise if ``array`` does not have the parameters' floating dtype (no silent up/down casts)."""
    if array.dtype != dtype:
        raise TypeError(
            f"{name} must have the parameters' dtype {dtype}, got {array.dtype}; "
            f"convert it with .astype(np.{dtype})"
        )


def mapping_of_arrays(name: str, value: Any, keys: Sequence[str]) -> Mapping[str, np.ndarray]:
    """Check that ``value`` is a mapping with exactly the given keys, whose values are arrays."""
    if not isinstance(value, Mapping):
        raise TypeError(
            f"{name} must be a mapping of parameter arrays, got {describe(value)}; "
            "create one with bptt.init_params"
        )
    missing = [k for k in keys if k not in value]
    extra = [k for k in value if k not in keys]
    if missing or extra:
        raise ValueError(
            f"{name} must have exactly the keys {list(keys)}; missing {missing}, unexpected "
            f"{extra}; create matching parameters with bptt.init_params (and the same cell=)"
        )
    for key in keys:
        if not isinstance(value[key], np.ndarray):
            raise TypeError(
                f"{name}[{key!r}] must be a numpy array, got {describe(value[key])}; convert it "
                "with np.asarray(..., dtype=np.float64)"
            )
    return value


def gradient_mapping(name: str, grads: Any, params: Mapping[str, np.ndarray]) -> None:
    """Check that ``grads`` has one finite float array of the right shape per parameter."""
    if not isinstance(grads, Mapping):
        raise TypeError(
            f"{name} must be a mapping from parameter name to gradient array, got "
            f"{describe(grads)}; pass the grads dict that loss_and_grads returns"
        )
    for key, p in params.items():
        if key not in grads:
            raise ValueError(
                f"{name} has no entry for parameter {key!r}; give one gradient per parameter "
                f"(keys {list(params)})"
            )
        g = float_array(f"{name}[{key!r}]", grads[key], finite=False)
        if g.shape != np.shape(p):
            raise ValueError(
                f"{name}[{key!r}] has shape {g.shape}, parameter has {np.shape(p)}; "
                "pass the gradient of that parameter"
            )


class NonFiniteError(FloatingPointError, ValueError):
    """A NaN or infinite value where a finite one is needed (a loss, a gradient).

    Both a ``FloatingPointError`` (training has diverged) and a ``ValueError`` (bad input to the
    function that refuses it), so either ``except`` catches it.
    """


def finite_scalar(name: str, value: float) -> float:
    """Raise :class:`NonFiniteError` naming ``name`` if a computed scalar is NaN or infinite."""
    if not np.isfinite(value):
        raise NonFiniteError(
            f"{name} is not finite ({value}); training has diverged: lower the learning rate "
            "or clip the gradients (Chapter 9)"
        )
    return float(value)
