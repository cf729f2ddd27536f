"""Deliberately broken and deliberately awkward variants, for Chapter 5 ("Gradient checking").

**Teaching devices only: never train with them.** A gradient check is only worth as much as the
bugs it catches and the false alarms it avoids. This module supplies both kinds of specimen:

* cells that implement the :class:`bptt.Cell` protocol with a *wrong* backward step, each a bug
  that really happens when BPTT is written by hand (:class:`DroppedRecurrenceCell`,
  :class:`TransposedRecurrenceCell`, :class:`MissingTanhDerivativeCell`);
* a cell whose backward is *right* but whose function has a kink (:class:`ReluCell`), and a
  function whose returned gradient is clipped (:func:`loss_and_grads_clipped`): a correct gradient
  that a careless check reports as wrong;
* the naive per-entry relative error (:func:`naive_relative_errors`) whose denominator vanishes
  where a gradient is exactly zero, and :func:`error_vs_eps`, which measures how the error of a
  centred difference depends on its step in a given precision.

Every broken cell inherits the forward step of :class:`bptt.TanhCell` unchanged, so only its
``step_backward`` differs from the correct one; the gradient algorithms of
:mod:`bptt.algorithms.stepwise` run on them through their ``cell=`` argument.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from bptt import _checks
from bptt.algorithms.vectorised import loss_and_grads
from bptt.cells import Params, TanhCell
from bptt.clip import clip_by_value
from bptt.gradcheck import relative_error
from bptt.params import as_generator


@dataclass(frozen=True)
class DroppedRecurrenceCell(TanhCell):
    """Tanh cell whose backward step forgets the gradient flowing to ``h_{t-1}``.

    ``step_backward`` returns ``dh_prev = 0``, so ``delta_t`` keeps only the direct term
    ``dl_t/dh_t`` and nothing flows back from step ``t + 1``: the gradient of truncated BPTT with
    a window of one step, presented as the full gradient. The weight gradients of the last step
    are still right, which is why this bug can survive a check on a sequence of length 1.
    Explained in Chapter 5.
    """

    name: ClassVar[str] = "tanh (bug: dropped recurrence)"

    def step_backward(
        self, params: Params, cache: Any, dh: np.ndarray
    ) -> tuple[np.ndarray, Params, np.ndarray]:
        """The correct step backward, except that ``dh_prev`` is replaced by zeros (the bug)."""
        dh_prev, grads, dx = super().step_backward(params, cache, dh)
        return np.zeros_like(dh_prev), grads, dx


@dataclass(frozen=True)
class TransposedRecurrenceCell(TanhCell):
    """Tanh cell whose backward step multiplies by ``W_hh`` transposed on the way back.

    The correct row-vector form is ``dh_prev = dpre @ W_hh`` (the column form
    ``W_hh^T dpre``); this cell computes ``dpre @ W_hh.T``, the classic slip when moving between the
    two conventions. For a symmetric ``W_hh`` the two coincide, so a check at a symmetric point
    (for example ``W_hh = 0`` or the identity) cannot see the bug. Explained in Chapter 5.
    """

    name: ClassVar[str] = "tanh (bug: transposed W_hh)"

    def step_backward(
        self, params: Params, cache: Any, dh: np.ndarray
    ) -> tuple[np.ndarray, Params, np.ndarray]:
        """The correct step backward, except that ``dh_prev`` uses ``W_hh.T`` (the bug)."""
        _, grads, dx = super().step_backward(params, cache, dh)
        h = cache[2]
        dpre = dh * (1.0 - h * h)
        return dpre @ params["W_hh"].T, grads, dx


@dataclass(frozen=True)
class MissingTanhDerivativeCell(TanhCell):
    """Tanh cell whose backward step skips the factor ``tanh'(pre) = 1 - h_t**2`` everywhere.

    It treats the cell as if it were linear. Near ``h = 0`` (small weights at initialisation)
    ``1 - h**2`` is close to 1, so the error is small exactly where people usually check.
    Explained in Chapter 5.
    """

    name: ClassVar[str] = "tanh (bug: missing tanh')"

    def step_backward(
        self, params: Params, cache: Any, dh: np.ndarray
    ) -> tuple[np.ndarray, Params, np.ndarray]:
        """Backward with ``dpre = dh`` instead of ``dh * (1 - h**2)`` (the bug)."""
        x, h_prev, _ = cache
        dpre = dh
        grads = {"W_xh": dpre.T @ x, "W_hh": dpre.T @ h_prev, "b_h": dpre.sum(axis=0)}
        return dpre @ params["W_hh"], grads, dpre @ params["W_xh"]


@dataclass(frozen=True)
class ReluCell(TanhCell):
    """``h_t = max(0, W_xh x_t + W_hh h_{t-1} + b_h)``, with a *correct* backward step.

    Not a bug: the derivative is exact wherever it exists (``1`` for a positive pre-activation,
    ``0`` for a negative one, and the subgradient ``0`` at exactly 0). It is here because the
    function has a kink at 0, and a centred difference that straddles the kink reports a large
    error for this correct gradient. Explained in Chapter 5.
    """

    name: ClassVar[str] = "relu"

    def step(self, params: Params, h_prev: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, Any]:
        """One step; the cache keeps the pre-activation, since ``h`` cannot tell its sign at 0."""
        pre = x @ params["W_xh"].T + h_prev @ params["W_hh"].T + params["b_h"]
        return np.maximum(pre, 0.0), (x, h_prev, pre)

    def step_backward(
        self, params: Params, cache: Any, dh: np.ndarray
    ) -> tuple[np.ndarray, Params, np.ndarray]:
        """Exact backward: ``dpre = dh * (pre > 0)``."""
        x, h_prev, pre = cache
        dpre = dh * (pre > 0)
        grads = {"W_xh": dpre.T @ x, "W_hh": dpre.T @ h_prev, "b_h": dpre.sum(axis=0)}
        return dpre @ params["W_hh"], grads, dpre @ params["W_xh"]


DROPPED_RECURRENCE = DroppedRecurrenceCell()
TRANSPOSED_RECURRENCE = TransposedRecurrenceCell()
MISSING_TANH_DERIVATIVE = MissingTanhDerivativeCell()
RELU = ReluCell()

BROKEN_CELLS: dict[str, TanhCell] = {
    "dropped recurrence": DROPPED_RECURRENCE,
    "transposed W_hh": TRANSPOSED_RECURRENCE,
    "missing tanh'": MISSING_TANH_DERIVATIVE,
}
"""The broken cells by a short description of their bug."""


def loss_and_grads_clipped(
    params: Params,
    inputs: Any,
    targets: Any,
    h0: np.ndarray | None = None,
    *,
    limit: float = 5.0,
) -> tuple[float, Params, np.ndarray]:
    """:func:`bptt.loss_and_grads` with the gradients clipped element-wise to ``[-limit, limit]``.

    The loss is unchanged but the "gradient" is no longer its derivative wherever an entry was
    clipped, so a gradient check of this function fails although the backward pass is correct.
    Check the raw gradient; clip afterwards, in the training step. Explained in Chapter 5.
    """
    loss, grads, h_last = loss_and_grads(params, inputs, targets, h0)
    return loss, clip_by_value(grads, limit), h_last


def naive_relative_errors(analytic: Any, numerical: Any) -> np.ndarray:
    """The per-entry relative error ``|a - n| / (|a| + |n|)``, which :func:`relative_error` avoids.

    Where an entry of both gradients is exactly zero this is ``0 / 0 = nan``; where the true
    gradient is tiny, rounding noise of the numerical gradient makes it close to 1. No warning is
    raised for the division (the point is to look at the result). Explained in Chapter 5.
    """
    a = np.asarray(analytic, dtype=np.float64)
    n = np.asarray(numerical, dtype=np.float64)
    if a.shape != n.shape:
        raise ValueError(f"analytic and numerical must have one shape, got {a.shape} and {n.shape}")
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio: np.ndarray = np.abs(a - n) / (np.abs(a) + np.abs(n))
    return ratio


def error_vs_eps(
    loss: Callable[[Params], float],
    params: Mapping[str, np.ndarray],
    reference: Mapping[str, np.ndarray],
    eps_values: Sequence[float],
    *,
    directions: int = 20,
    rng: np.random.Generator | int = 0,
) -> np.ndarray:
    """Relative error of centred directional differences of ``loss``, for each step ``eps``.

    For ``directions`` random unit vectors ``v`` (one draw over all parameters, the same for every
    step), the numerical directional derivative ``(loss(p + eps v) - loss(p - eps v)) / (2 eps)``
    is computed in the dtype of ``params`` and compared, with :func:`bptt.relative_error`, with
    ``<reference, v>`` where ``reference`` is a gradient known to be accurate (for example the
    float64 analytic gradient at the same point). The result shows the two errors of a finite
    difference: truncation, O(eps**2), and rounding, O(u / eps) for the unit roundoff u of the
    dtype. ``params`` is not modified. Explained in Chapter 5.

    Returns
    -------
    ndarray, shape (len(eps_values),)
        The relative error for each step.
    """
    if not callable(loss):
        raise TypeError(f"loss must be callable as loss(params), got {loss!r}")
    directions = _checks.positive_int("directions", directions)
    eps_array = np.asarray(eps_values, dtype=np.float64)
    if eps_array.ndim != 1 or eps_array.size == 0 or not np.all(eps_array > 0):
        raise ValueError(
            f"eps_values must be a non-empty sequence of positive steps, got {eps_values}"
        )
    missing = [k for k in params if k not in reference]
    if missing:
        raise ValueError(f"reference is missing the parameter(s) {missing}")
    gen = as_generator(rng)
    names = list(params)
    dtype = np.asarray(params[names[0]]).dtype
    vs = []
    for _ in range(directions):
        v = {k: gen.standard_normal(np.shape(params[k])) for k in names}
        norm = np.sqrt(sum(float(np.sum(a * a)) for a in v.values()))
        vs.append({k: a / norm for k, a in v.items()})
    exact = np.array([sum(float(np.sum(reference[k] * v[k])) for k in names) for v in vs])
    errors = np.empty(eps_array.size)
    for i, eps in enumerate(eps_array):
        numerical = np.empty(directions)
        for j, v in enumerate(vs):
            plus = {k: (params[k] + eps * v[k]).astype(dtype) for k in names}
            minus = {k: (params[k] - eps * v[k]).astype(dtype) for k in names}
            numerical[j] = (float(loss(plus)) - float(loss(minus))) / (2 * eps)
        errors[i] = relative_error(exact, numerical)
    return errors
