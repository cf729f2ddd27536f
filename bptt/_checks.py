"""Argument checks shared by the package's public functions.

Every public function validates what it is given and raises an error that names the argument, what
was expected and what was received. Keeping the checks here keeps the numerical code readable.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from numbers import Integral, Real
from typing import Any

import numpy as np


def _describe(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape} and dtype {value.dtype}"
    return f"{value!r} ({type(value).__name__})"


def positive_int(name: str, value: Any, *, minimum: int = 1) -> int:
    """Return ``value`` as an ``int`` if it is an integer >= ``minimum``, else raise."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be an integer >= {minimum}, got {_describe(value)}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")
    return int(value)


def positive_float(name: str, value: Any, *, allow_zero: bool = False) -> float:
    """Return ``value`` as a finite ``float`` > 0 (or >= 0 with ``allow_zero``), else raise."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a real number, got {_describe(value)}")
    value = float(value)
    ok = value >= 0 if allow_zero else value > 0
    if not np.isfinite(value) or not ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a finite number {bound}, got {value}")
    return value


def float_array(
    name: str,
    value: Any,
    *,
    ndim: int | None = None,
    shape: Sequence[int | None] | None = None,
    finite: bool = True,
) -> np.ndarray:
    """Return ``value`` as a floating-point array, checking its rank, shape and finiteness.

    Integer or boolean arrays are rejected rather than silently cast: a float input that arrives as
    integers is almost always token ids passed where vectors were meant.
    """
    array = np.asarray(value)
    if not np.issubdtype(array.dtype, np.floating):
        raise TypeError(f"{name} must be a floating-point array, got {_describe(array)}")
    if shape is not None:
        ndim = len(shape)
    if ndim is not None and array.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {array.shape}")
    if shape is not None:
        for axis, (want, got) in enumerate(zip(shape, array.shape, strict=True)):
            if want is not None and want != got:
                axes = ["*" if s is None else str(s) for s in shape]
                expected = f"({axes[0]},)" if len(axes) == 1 else f"({', '.join(axes)})"
                raise ValueError(
                    f"{name} must have shape {expected}, got {array.shape} (axis {axis} differs)"
                )
    if finite and not np.all(np.isfinite(array)):
        bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
        raise ValueError(f"{name} contains {bad} non-finite value(s) (NaN or inf)")
    return array


def id_array(name: str, value: Any, *, upper: int, ndim: int | None = None) -> np.ndarray:
    """Return ``value`` as an integer array of class/token ids in ``[0, upper)``, else raise."""
    array = np.asarray(value)
    if not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"{name} must be an integer array of ids, got {_describe(array)}")
    if ndim is not None and array.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {array.shape}")
    if array.size:
        low, high = int(array.min()), int(array.max())
        if low < 0 or high >= upper:
            raise ValueError(
                f"{name} must hold ids in [0, {upper}), got values from {low} to {high}"
            )
    return array


def same_dtype(name: str, array: np.ndarray, dtype: np.dtype) -> None:
    """Raise if ``array`` does not have the parameters' floating dtype (no silent up/down casts)."""
    if array.dtype != dtype:
        raise TypeError(
            f"{name} must have the parameters' dtype {dtype}, got {array.dtype}; "
            f"convert it with .astype(np.{dtype})"
        )


def mapping_of_arrays(name: str, value: Any, keys: Sequence[str]) -> Mapping[str, np.ndarray]:
    """Check that ``value`` is a mapping with exactly the given keys."""
    if not isinstance(value, Mapping):
        raise TypeError(f"{name} must be a mapping of parameter arrays, got {_describe(value)}")
    missing = [k for k in keys if k not in value]
    extra = [k for k in value if k not in keys]
    if missing or extra:
        raise ValueError(
            f"{name} must have exactly the keys {list(keys)}; missing {missing}, unexpected {extra}"
        )
    return value


def finite_scalar(name: str, value: float) -> float:
    """Raise a ``FloatingPointError`` naming ``name`` if a computed scalar is NaN or infinite."""
    if not np.isfinite(value):
        raise FloatingPointError(f"{name} is not finite ({value}); training has diverged")
    return float(value)
