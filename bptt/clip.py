"""Gradient clipping: element-wise and by global norm (Chapter 4 uses it; Chapter 9 explains it)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from bptt import _checks
from bptt.cells import Params


def _gradients(grads: object) -> dict[str, np.ndarray]:
    """Check that ``grads`` maps names to floating-point arrays (non-finite values allowed)."""
    if not isinstance(grads, Mapping):
        raise TypeError(
            f"grads must be a mapping from parameter name to gradient array, got "
            f"{_checks.describe(grads)}; pass the grads dict that loss_and_grads returns"
        )
    return {k: _checks.float_array(f"grads[{k!r}]", g, finite=False) for k, g in grads.items()}


def _finite(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Refuse NaN or inf gradients by name: clipping would hide them, not repair them."""
    for name, g in arrays.items():
        if not np.all(np.isfinite(g)):
            raise _checks.NonFiniteError(
                f"grads[{name!r}] is not finite (NaN or inf); clipping cannot repair it: "
                "training has diverged, lower the learning rate (Chapter 9)"
            )
    return arrays


def global_norm(grads: Mapping[str, np.ndarray]) -> float:
    """Euclidean norm of all gradients taken together, ``sqrt(sum_k ||g_k||^2)``.

    Explained in Chapter 9.
    """
    arrays = _gradients(grads)
    with np.errstate(over="ignore"):  # an overflow gives inf, which the callers refuse
        return float(
            np.sqrt(sum(float(np.sum(np.square(g, dtype=np.float64))) for g in arrays.values()))
        )


def clip_by_value(grads: Mapping[str, np.ndarray], limit: float) -> Params:
    """Clip every entry to ``[-limit, limit]`` (changes the direction of the gradient).

    This is the clipping of the classic character model (``limit = 5``). Returns new arrays. A
    NaN or infinite entry raises ``FloatingPointError``: clipping would hide it.

    Explained in Chapter 9 (used in Chapter 4).
    """
    limit = _checks.positive_float("limit", limit)
    arrays = _finite(_gradients(grads))
    return {k: np.clip(g, -limit, limit) for k, g in arrays.items()}


def clip_by_global_norm(grads: Mapping[str, np.ndarray], max_norm: float) -> tuple[Params, float]:
    """Rescale all gradients by ``max_norm / ||g||`` when ``||g|| > max_norm``.

    The form of Pascanu et al. (2013).

    The direction is preserved and the norm capped. Returns ``(clipped, norm_before)``. A
    non-finite norm raises ``FloatingPointError``: rescaling cannot repair NaN or inf.

    Explained in Chapter 9 (used in Chapter 4).
    """
    max_norm = _checks.positive_float("max_norm", max_norm)
    arrays = _finite(_gradients(grads))
    norm = global_norm(arrays)
    _checks.finite_scalar("gradient norm", norm)  # finite entries can still overflow the sum
    scale = max_norm / norm if norm > max_norm else 1.0
    return {k: g * scale for k, g in arrays.items()}, norm
