"""Gradient clipping: element-wise and by global norm (Chapter 4 uses it; Chapter 8 explains it)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from . import _checks
from .cells import Params


def global_norm(grads: Mapping[str, np.ndarray]) -> float:
    """Euclidean norm of all gradients taken together, ``sqrt(sum_k ||g_k||^2)``.

    Explained in Chapter 8.
    """
    return float(
        np.sqrt(sum(float(np.sum(np.square(g, dtype=np.float64))) for g in grads.values()))
    )


def clip_by_value(grads: Mapping[str, np.ndarray], limit: float) -> Params:
    """Clip every entry to ``[-limit, limit]`` (changes the direction of the gradient).

    This is the clipping of the classic character model (``limit = 5``). Returns new arrays.

    Explained in Chapter 8 (used in Chapter 4).
    """
    limit = _checks.positive_float("limit", limit)
    return {k: np.clip(g, -limit, limit) for k, g in grads.items()}


def clip_by_global_norm(grads: Mapping[str, np.ndarray], max_norm: float) -> tuple[Params, float]:
    """Rescale all gradients by ``max_norm / ||g||`` when ``||g|| > max_norm``.

    The form of Pascanu et al. (2013).

    The direction is preserved and the norm capped. Returns ``(clipped, norm_before)``. A
    non-finite norm raises ``FloatingPointError``: rescaling cannot repair NaN or inf.

    Explained in Chapter 8 (used in Chapter 4).
    """
    max_norm = _checks.positive_float("max_norm", max_norm)
    norm = global_norm(grads)
    _checks.finite_scalar("gradient norm", norm)
    scale = max_norm / norm if norm > max_norm else 1.0
    return {k: g * scale for k, g in grads.items()}, norm
