"""BPTT through a diagonal linear recurrence, by parallel scan in O(log T) sequential steps.

The recurrence ``h_t = a_t * h_{t-1} + b_t`` (element-wise, ``t = 1 .. T``) is the core of
state-space models and linear recurrent units. Two of its steps compose into one step of the same
form::

    (a_2, b_2) after (a_1, b_1)  =  (a_2 * a_1,  a_2 * b_1 + b_2)

and this composition is associative, so all the prefixes ``h_1 .. h_T`` can be computed by a
*scan*: combine neighbours in pairs, recurse on the half-length sequence, then fill in the
positions in between. Each level is one vectorised operation over the whole sequence, and there are
about ``2 log2 T`` levels instead of ``T`` dependent steps (Blelloch, 1990).

Backpropagation through time for this recurrence is itself a linear recurrence, running backwards:
``delta_t = dl_t/dh_t + a_{t+1} * delta_{t+1}`` (the step Jacobian is ``diag(a_{t+1})``). So the
backward pass is the same scan on the reversed sequence, and the exact BPTT gradient comes in
O(log T) sequential steps too. :func:`linear_recurrence` and :func:`linear_recurrence_backward`
are the plain sequential loops that the scans must equal. Explained in Chapter 12.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from bptt import _checks


@dataclass(frozen=True)
class ScanResult:
    """The states ``h_1 .. h_T`` (shape ``(T, ...)``) and the number of sequential steps taken.

    Explained in Chapter 12.
    """

    states: np.ndarray
    depth: int


@dataclass(frozen=True)
class LinearGrads:
    """Gradients of a loss through ``h_t = a_t * h_{t-1} + b_t``, and the scan's depth.

    ``a`` and ``b`` have the shape of the coefficients ``(T, ...)``, ``h0`` that of the initial
    state; ``delta`` holds the total derivatives ``dL/dh_t``; ``depth`` counts the sequential
    steps of the backward pass (``T`` for the loop). Explained in Chapter 12.
    """

    a: np.ndarray
    b: np.ndarray
    h0: np.ndarray
    delta: np.ndarray
    depth: int


def _coefficients(a: Any, b: Any, h0: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    a = _checks.float_array("a", a)
    b = _checks.float_array("b", b)
    if a.ndim < 1 or a.shape[0] == 0:
        raise ValueError(f"a must have shape (T, ...) with T >= 1, got {a.shape}")
    if a.shape != b.shape:
        raise ValueError(
            f"a and b must have one shape (T, ...), got a {a.shape} and b {b.shape}; "
            "broadcast them to the state's shape first"
        )
    h0 = np.zeros(a.shape[1:], dtype=a.dtype) if h0 is None else _checks.float_array("h0", h0)
    if h0.shape != a.shape[1:]:
        raise ValueError(f"h0 must have the shape of one step, {a.shape[1:]}, got {h0.shape}")
    return a, b, h0


def _scan(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Inclusive scan of the steps ``(a_t, b_t)`` under composition; returns the prefixes.

    Prefix ``t`` is the single step equivalent to steps ``1 .. t``: ``h_t = A_t * h_0 + B_t``.
    The third value counts the vectorised operations that had to wait for one another.
    """
    T = a.shape[0]
    if T == 1:
        return a, b, 0
    pairs = T // 2
    # Level down: compose neighbours (0, 1), (2, 3), ... into one step each.
    first_a, first_b = a[0 : 2 * pairs : 2], b[0 : 2 * pairs : 2]
    second_a, second_b = a[1 : 2 * pairs : 2], b[1 : 2 * pairs : 2]
    odd_a, odd_b, depth = _scan(second_a * first_a, second_a * first_b + second_b)
    # Level up: the prefix at an even position is one more step after the odd prefix before it.
    even_a, even_b = a[2::2], b[2::2]
    n_even = even_a.shape[0]
    A = np.empty_like(a)
    B = np.empty_like(b)
    A[0], B[0] = a[0], b[0]
    A[1::2], B[1::2] = odd_a, odd_b
    A[2::2] = even_a * odd_a[:n_even]
    B[2::2] = even_a * odd_b[:n_even] + even_b
    return A, B, depth + 2


def scan_linear(a: Any, b: Any, h0: Any = None) -> ScanResult:
    """All states of ``h_t = a_t * h_{t-1} + b_t`` by a parallel scan.

    Parameters
    ----------
    a, b : array_like, shape (T, ...)
        The coefficients of every step (element-wise; a diagonal linear recurrence).
    h0 : array_like, shape (...), optional
        The initial state (zeros by default).

    Returns
    -------
    ScanResult
        ``states`` ``(T, ...)``, equal to :func:`linear_recurrence` up to rounding, and ``depth``,
        the number of sequential vectorised steps: at most ``2 ceil(log2 T) + 1``.
        Explained in Chapter 12.
    """
    a, b, h0 = _coefficients(a, b, h0)
    A, B, depth = _scan(a, b)
    return ScanResult(states=A * h0 + B, depth=depth + 1)


def linear_recurrence(a: Any, b: Any, h0: Any = None) -> ScanResult:
    """The same states as :func:`scan_linear`, one step after another (``depth`` is ``T``).

    Explained in Chapter 12.
    """
    a, b, h = _coefficients(a, b, h0)
    states = np.empty_like(a)
    for t in range(a.shape[0]):
        h = a[t] * h + b[t]
        states[t] = h
    return ScanResult(states=states, depth=a.shape[0])


def _gradients(
    a: np.ndarray, h0: np.ndarray, states: np.ndarray, delta: np.ndarray, depth: int
) -> LinearGrads:
    previous = np.concatenate([h0[None], states[:-1]])  # h_{t-1} for t = 1 .. T
    return LinearGrads(a=delta * previous, b=delta, h0=a[0] * delta[0], delta=delta, depth=depth)


def _direct(name: str, dl_dh: Any, shape: tuple[int, ...]) -> np.ndarray:
    direct = _checks.float_array(name, dl_dh)
    if direct.shape != shape:
        raise ValueError(f"{name} must have the states' shape {shape}, got {direct.shape}")
    return direct


def scan_linear_backward(a: Any, states: Any, dl_dh: Any, h0: Any = None) -> LinearGrads:
    """BPTT through ``h_t = a_t * h_{t-1} + b_t`` by a parallel scan running backwards in time.

    Parameters
    ----------
    a : array_like, shape (T, ...)
        The recurrence's multiplicative coefficients.
    states : array_like, shape (T, ...)
        ``h_1 .. h_T`` from the forward pass.
    dl_dh : array_like, shape (T, ...)
        The direct derivative of the loss with respect to each state, ``dl_t/dh_t``.
    h0 : array_like, shape (...), optional
        The initial state (zeros by default).

    Returns
    -------
    LinearGrads
        ``dL/da_t = delta_t * h_{t-1}``, ``dL/db_t = delta_t``, ``dL/dh_0 = a_1 * delta_1``,
        where ``delta_t = dl_t/dh_t + a_{t+1} * delta_{t+1}`` comes from one scan of the reversed
        sequence (the same associative composition as the forward pass); ``depth`` is at most
        ``2 ceil(log2 T) + 1``. Explained in Chapter 12.
    """
    a, states, h0 = _coefficients(a, states, h0)
    direct = _direct("dl_dh", dl_dh, states.shape)
    # delta_t = a_{t+1} * delta_{t+1} + direct_t: reversed in time, a linear recurrence whose
    # coefficient at reversed step s is a_{T-s+2} (and 0 at the first, where delta_{T+1} = 0).
    carry = np.concatenate([np.zeros_like(a[:1]), a[:0:-1]])
    _, B, depth = _scan(carry, direct[::-1])  # with h_0 = 0 here, only B matters
    return _gradients(a, h0, states, B[::-1].copy(), depth + 1)


def linear_recurrence_backward(a: Any, states: Any, dl_dh: Any, h0: Any = None) -> LinearGrads:
    """The gradients of :func:`scan_linear_backward` by the plain backward loop of BPTT.

    Explained in Chapter 12.
    """
    a, states, h0 = _coefficients(a, states, h0)
    direct = _direct("dl_dh", dl_dh, states.shape)
    delta = np.empty_like(direct)
    carried = np.zeros_like(h0)
    for t in range(a.shape[0] - 1, -1, -1):
        delta[t] = direct[t] + carried
        carried = a[t] * delta[t]  # the step Jacobian diag(a_t) carries delta_t to h_{t-1}
    return _gradients(a, h0, states, delta, a.shape[0])
