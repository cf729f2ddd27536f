"""The influence-balancing task of Tallec & Ollivier (2017): where truncation fails (Chapter 7).

A linear system with a scalar parameter ``theta``::

    h_t = A h_{t-1} + theta * b,    A = (I + N) / 2,    loss_t = (h_t^1 - 1)^2 / 2

where ``N`` has ones on its superdiagonal (coordinate ``i`` is fed by coordinate ``i + 1``), and
``b`` holds ``p`` entries +1 followed by ``n - p`` entries -1. The first coordinate feels ``theta``
through ``b_1 = +1`` at once, and through the ``-1`` entries only after they have travelled down the
chain, about ``2 i`` steps for coordinate ``i``. With ``p < n / 2`` the long-term effect is the
opposite of the short-term one, so a gradient truncated too early has the wrong sign.

The system is written as a cell of the cell protocol (:class:`InfluenceCell`), with a constant
input ``x_t = 1`` and the readout ``W_hy = e_1``: truncated BPTT and ARTBP run on it unchanged. The
exact online gradient comes from forward-mode accumulation, RTRL (:func:`rtrl`): the sensitivity
``S_t = dh_t/dtheta`` is carried forward with the state.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar, NamedTuple, overload

import numpy as np
import numpy.typing as npt

from bptt import _checks
from bptt.cells import Params


@dataclass(frozen=True)
class InfluenceCell:
    """The linear cell ``h_t = A h_{t-1} + b (theta x_t)`` of influence balancing (Chapter 7).

    ``theta`` is stored as a ``(1, D)`` array (D = 1: the input is the constant 1), so the cell
    fits the protocol of :mod:`bptt.cells`; ``A`` and ``b`` are fixed by ``n`` and ``p``.
    """

    n: int = 23
    p: int = 10
    name: ClassVar[str] = "influence"
    param_names: ClassVar[tuple[str, ...]] = ("theta",)

    def __post_init__(self) -> None:
        _checks.positive_int("n", self.n)
        _checks.positive_int("p", self.p, minimum=0)
        if self.p > self.n:
            raise ValueError(f"p must be <= n (p entries +1 among n), got p={self.p}, n={self.n}")

    @cached_property
    def A(self) -> np.ndarray:
        """``(I + N) / 2``, ``N`` the matrix with ones on the superdiagonal."""
        return (np.eye(self.n) + np.eye(self.n, k=1)) / 2

    @cached_property
    def b(self) -> np.ndarray:
        """``p`` entries +1 followed by ``n - p`` entries -1."""
        return np.where(np.arange(self.n) < self.p, 1.0, -1.0)

    def param_shapes(self, input_size: int, hidden_size: int) -> dict[str, tuple[int, ...]]:
        """``theta`` is ``(1, D)``; the hidden size must be ``n``."""
        return {"theta": (1, input_size)}

    def init_params(
        self,
        input_size: int,
        hidden_size: int,
        rng: np.random.Generator,
        weight_scale: float = 0.01,
        dtype: npt.DTypeLike = np.float64,
    ) -> Params:
        """A Gaussian ``theta``; :func:`influence_problem` sets the task's ``theta_0`` instead."""
        return {"theta": (rng.standard_normal((1, input_size)) * weight_scale).astype(dtype)}

    def step(
        self,
        params: Params,
        h_prev: np.ndarray,
        x: np.ndarray,
    ) -> tuple[np.ndarray, Any]:
        """``h_t = A h_{t-1} + b (theta x_t)`` for a batch ``(B, n)`` of rows.

        The cache is ``x_t``, all that the backward step needs.
        """
        drive = x @ params["theta"].T  # (B, 1): theta x_t for each sequence
        h = h_prev @ self.A.T + drive * self.b
        return h, x

    def step_backward(
        self, params: Params, cache: Any, dh: np.ndarray
    ) -> tuple[np.ndarray, Params, np.ndarray]:
        """Backward of one step: ``dh A``, ``d theta = (dh . b) x``, ``dx = (dh . b) theta``."""
        x = cache
        u = dh @ self.b  # (B,): derivative with respect to the scalar drive theta x_t
        return dh @ self.A, {"theta": u[None, :] @ x}, u[:, None] @ params["theta"]

    def step_tangent(self, params: Params, x: np.ndarray, tangent: np.ndarray) -> np.ndarray:
        """Forward mode: ``S_t = dh_t/dtheta`` ``(B, n, D)`` from ``S_{t-1}``, for :func:`rtrl`.

        Differentiating the step: ``dh_t/dtheta_j = A dh_{t-1}/dtheta_j + x_{t,j} b``.
        """
        # numpy's stubs type einsum, multi-axis indexing and arithmetic on arrays of unknown
        # dtype as Any: the annotation says what the result is
        s_t: np.ndarray = (
            np.einsum("ik,bkd->bid", self.A, tangent) + self.b[None, :, None] * x[:, None, :]
        )
        return s_t


class InfluenceProblem(NamedTuple):
    """Everything a gradient algorithm needs to run on the influence-balancing stream."""

    cell: InfluenceCell
    params: Params
    inputs: np.ndarray
    targets: np.ndarray
    h0: np.ndarray


def influence_problem(
    steps: int, *, theta: float = 0.5, n: int = 23, p: int = 10, s0: float = 1.0
) -> InfluenceProblem:
    """The stream of ``steps`` steps with the task's defaults ``n = 23``, ``p = 10``,
    ``theta_0 = 0.5`` and every coordinate of the initial state ``h_0`` equal to ``s0 = 1``:
    constant inputs 1, targets 1, readout ``e_1`` (Chapter 7)."""
    steps = _checks.positive_int("steps", steps)
    theta = float(_checks.float_array("theta", np.asarray(theta, dtype=float), ndim=0))
    s0 = float(_checks.float_array("s0", np.asarray(s0, dtype=float), ndim=0))
    cell = InfluenceCell(n, p)
    readout = np.zeros((1, n))
    readout[0, 0] = 1.0
    params = {"theta": np.array([[theta]]), "W_hy": readout, "b_y": np.zeros(1)}
    ones = np.ones((steps, 1, 1))
    return InfluenceProblem(cell, params, ones, ones.copy(), np.full((1, n), s0))


def optimal_theta(n: int = 23, p: int = 10) -> float:
    """The ``theta`` whose stationary state has ``h^1 = 1`` (zero loss): ``1 / (2 (2p - n))``.

    At a fixed point ``h = A h + theta b``, so ``h = theta (I - A)^-1 b``, and
    ``(I - A)^-1 = 2 (I - N)^-1 = 2 (I + N + N^2 + ...)`` is twice the upper triangle of ones:
    ``h^1 = 2 theta (b_1 + ... + b_n) = 2 theta (2p - n)``. Derived in Chapter 7.
    """
    cell = InfluenceCell(n, p)
    if 2 * cell.p == cell.n:
        raise ValueError(f"with 2p = n = {n} the stationary h^1 does not depend on theta")
    return 1.0 / (2.0 * (2 * cell.p - cell.n))


def stationary_state(theta: float, n: int = 23, p: int = 10) -> np.ndarray:
    """The fixed point ``h = theta (I - A)^-1 b`` of the system (every orbit converges to it)."""
    cell = InfluenceCell(n, p)
    return float(theta) * np.linalg.solve(np.eye(cell.n) - cell.A, cell.b)


@overload
def truncated_sensitivity(k: int | np.integer[Any], n: int = 23, p: int = 10) -> float: ...


@overload
def truncated_sensitivity(k: npt.ArrayLike, n: int = 23, p: int = 10) -> np.ndarray: ...


def truncated_sensitivity(k: npt.ArrayLike, n: int = 23, p: int = 10) -> float | np.ndarray:
    """``d h_t^1 / d theta`` seen by a backward pass of ``k`` steps: ``sum_{m < k} (A^m b)_1``.

    ``k`` may be an integer (the result is a float) or an array of them (an array of the same
    shape); ``k -> infinity`` gives the true long-term
    sensitivity ``2 (2p - n)``. Truncated BPTT follows the sign of this number. Chapter 7.
    """
    ks = np.asarray(k)
    if not np.issubdtype(ks.dtype, np.integer) or np.any(ks < 0):
        raise ValueError(f"k must be integer(s) >= 0, got {k!r}")
    cell = InfluenceCell(n, p)
    terms = np.empty(int(ks.max(initial=0)))
    v = cell.b.copy()
    for m in range(terms.size):  # terms[m] = (A^m b)_1, the influence of theta m steps back
        terms[m] = v[0]
        v = cell.A @ v
    partial = np.concatenate([[0.0], np.cumsum(terms)])
    if ks.ndim == 0:
        return float(partial[int(ks)])
    return np.asarray(partial[ks])
