"""Jacobians of the recurrence and their products (Chapter 2 derives them, Chapter 9 studies them).

For the tanh cell ``h_t = tanh(W_xh x_t + W_hh h_{t-1} + b_h)`` the Jacobian of one step is
``dh_t/dh_{t-1} = diag(1 - h_t**2) W_hh``, and by the chain rule the Jacobian across several steps
is the ordered product ``dh_t/dh_k = J_t J_{t-1} ... J_{k+1}``. Chapter 9 adds the tools that
measure these products: their norms and singular values along a trajectory, the bound of Pascanu et
al. (2013), and the matrix of ``||dl_t/dh_k||`` for every pair of steps, for any cell.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from bptt import _checks
from bptt.algorithms.stepwise import LossFn, check_targets, forward_stepwise
from bptt.cells import TANH, Cell, Params, hidden, hidden_backward
from bptt.losses import softmax_cross_entropy
from bptt.params import as_generator
from bptt.readout import readout_backward


def step_jacobians(params: Params, hs: np.ndarray) -> np.ndarray:
    """Jacobians ``J_t = dh_t/dh_{t-1} = diag(1 - h_t**2) W_hh`` of every step of a trajectory.

    Parameters
    ----------
    params : dict
        Tanh-RNN parameters (only ``W_hh`` is used).
    hs : ndarray, shape (T + 1, B, H)
        Hidden states ``h_0 .. h_T`` (``RNNCache.hs``).

    Returns
    -------
    ndarray, shape (T, B, H, H)
        ``J[t - 1]`` is ``dh_t/dh_{t-1}`` for each example of the batch.

    Explained in Chapter 2.
    """
    W_hh = _checks.float_array("params['W_hh']", params["W_hh"], ndim=2)
    H = W_hh.shape[0]
    hs = _checks.float_array("hs", hs, shape=(None, None, H))
    if hs.shape[0] < 2:
        raise ValueError(f"hs must hold h_0 .. h_T with T >= 1, got shape {hs.shape}")
    deriv = 1.0 - hs[1:] ** 2  # (T, B, H)
    jacobians: np.ndarray = deriv[..., :, None] * W_hh  # row i of W_hh scaled by tanh'(pre_i)
    return jacobians


def jacobian_product(jacobians: np.ndarray, t: int, k: int) -> np.ndarray:
    """``dh_t/dh_k = J_t J_{t-1} ... J_{k+1}`` from :func:`step_jacobians`; identity if t = k.

    Returns an array ``(B, H, H)``. Explained in Chapter 2 (and its norm in Chapter 9).
    """
    J = _checks.float_array("jacobians", jacobians, ndim=4)
    T, B, H, _ = J.shape
    t = _checks.positive_int("t", t, minimum=0)
    k = _checks.positive_int("k", k, minimum=0)
    if not k <= t <= T:
        raise ValueError(f"need 0 <= k <= t <= T = {T}, got k={k}, t={t}")
    product = np.broadcast_to(np.eye(H, dtype=J.dtype), (B, H, H)).copy()
    for s in range(k + 1, t + 1):  # left-multiply by J_s: the latest step ends up leftmost
        product = J[s - 1] @ product
    return product


# --- Chapter 9: how large the products are -------------------------------------------------------

ACTIVATION_DERIVATIVE_BOUND = {"tanh": 1.0, "sigmoid": 0.25}
"""``gamma``, the largest value of the activation's derivative: ``tanh'(0) = 1``,
``sigma'(0) = 1/4``."""


SATURATION_LEVEL = 0.1
"""A tanh unit counts as *saturated* when its slope ``tanh'(a) = 1 - tanh(a)**2`` is below this."""


def tanh_derivative(a: object) -> np.ndarray:
    """The slope ``tanh'(a) = 1 - tanh(a)**2`` elementwise; it is 1 at 0 and below 1 elsewhere.

    Explained in Chapter 9.
    """
    arr = np.asarray(a)
    if np.issubdtype(arr.dtype, np.integer):  # tanh'(0) with an integer 0 is fine
        arr = arr.astype(np.float64)
    arr = _checks.float_array("a", arr)
    slope: np.ndarray = 1.0 - np.tanh(arr) ** 2
    return slope


def saturation_threshold(level: float = SATURATION_LEVEL) -> float:
    """The ``|a|`` beyond which ``tanh'(a) < level``: ``artanh(sqrt(1 - level))``.

    Explained in Chapter 9.

    Parameters
    ----------
    level : float
        A slope in (0, 1).
    """
    level = _checks.positive_float("level", level)
    if not level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    return float(np.arctanh(np.sqrt(1.0 - level)))


def saturated_fraction(hs: object, level: float = SATURATION_LEVEL) -> float:
    """Fraction of the entries of tanh states ``hs`` whose slope ``1 - h**2`` is below ``level``.

    ``hs`` is any array of tanh outputs (for instance ``RNNCache.hs[1:]``, without ``h_0``), so
    every entry lies in [-1, 1]. A saturated unit passes less than ``level`` of the signal it
    receives, forwards and backwards. Explained in Chapter 9.
    """
    h = _checks.float_array("hs", hs)
    if h.size == 0:
        raise ValueError("hs must not be empty")
    if np.any(np.abs(h) > 1.0):
        raise ValueError(f"hs must hold tanh outputs in [-1, 1], got max |h| = {np.abs(h).max()}")
    saturation_threshold(level)  # checks level
    return float(np.mean(1.0 - h * h < level))


def _square(name: str, W: object) -> np.ndarray:
    W = _checks.float_array(name, W, ndim=2)
    if W.shape[0] != W.shape[1]:
        raise ValueError(f"{name} must be a square matrix, got shape {W.shape}")
    return W


def spectral_radius(W: object) -> float:
    """Largest modulus of the eigenvalues of a square matrix. Explained in Chapter 9."""
    return float(np.max(np.abs(np.linalg.eigvals(_square("W", W)))))


def largest_singular_value(W: object) -> float:
    """Spectral norm ``||W||_2``, the largest singular value. Explained in Chapter 9."""
    return float(np.linalg.norm(_square("W", W), ord=2))


def jacobian_product_norms(jacobians: np.ndarray, t: int | None = None) -> np.ndarray:
    """Spectral norms ``||dh_t/dh_{t - lag}||_2`` for every lag ``0 .. t``.

    Parameters
    ----------
    jacobians : ndarray, shape (T, B, H, H)
        Output of :func:`step_jacobians` (or :func:`run_recurrence`).
    t : int, optional
        The late step (default T).

    Returns
    -------
    ndarray, shape (t + 1, B)
        Row ``lag`` holds the norm for each example; row 0 is the identity's norm, 1.

    The products are built by one right-multiplication per lag,
    ``dh_t/dh_{k-1} = (dh_t/dh_k) J_k``, so all lags cost what the longest one costs.
    Explained in Chapter 9.
    """
    J = _checks.float_array("jacobians", jacobians, ndim=4)
    T, B, H, _ = J.shape
    t = T if t is None else _checks.positive_int("t", t, minimum=0)
    if t > T:
        raise ValueError(f"t must be at most T = {T}, got {t}")
    norms = np.empty((t + 1, B))
    product = np.broadcast_to(np.eye(H), (B, H, H)).copy()
    norms[0] = 1.0
    for lag in range(1, t + 1):
        product = product @ J[t - lag]  # J[t - lag] is dh_{t-lag+1}/dh_{t-lag}
        norms[lag] = np.linalg.norm(product, ord=2, axis=(1, 2))
    return norms


def jacobian_product_singular_values(jacobians: np.ndarray, t: int, k: int) -> np.ndarray:
    """Singular values ``(B, H)``, largest first, of ``dh_t/dh_k``. Explained in Chapter 9."""
    return np.linalg.svd(jacobian_product(jacobians, t, k), compute_uv=False)


def run_recurrence(
    W: object,
    drive: object,
    *,
    activation: str = "tanh",
    h0: object | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Run ``h_t = f(W h_{t-1} + u_t)`` and return the states and the step Jacobians.

    A bare recurrence, without readout, for studying the products of Jacobians with either
    activation of :data:`ACTIVATION_DERIVATIVE_BOUND`.

    Parameters
    ----------
    W : ndarray, shape (H, H)
        Recurrent matrix.
    drive : ndarray, shape (T, B, H)
        ``u_t``: the input term (``W_xh x_t + b_h`` in the RNN).
    activation : {"tanh", "sigmoid"}
    h0 : ndarray, shape (B, H), optional
        Initial state (zeros by default).

    Returns
    -------
    hs : ndarray, shape (T + 1, B, H)
    jacobians : ndarray, shape (T, B, H, H)
        ``jacobians[t - 1] = dh_t/dh_{t-1} = diag(f'(a_t)) W``.

    Explained in Chapter 9.
    """
    W = _square("W", W)
    H = W.shape[0]
    u = _checks.float_array("drive", drive, shape=(None, None, H))
    if activation not in ACTIVATION_DERIVATIVE_BOUND:
        raise ValueError(
            f"activation must be one of {sorted(ACTIVATION_DERIVATIVE_BOUND)}, got {activation!r}"
        )
    T, B = u.shape[:2]
    hs = np.empty((T + 1, B, H))
    hs[0] = 0.0 if h0 is None else _checks.float_array("h0", h0, shape=(B, H))
    derivs = np.empty((T, B, H))
    for t in range(T):
        a = hs[t] @ W.T + u[t]
        if activation == "tanh":
            hs[t + 1] = np.tanh(a)
            derivs[t] = 1.0 - hs[t + 1] ** 2
        else:
            hs[t + 1] = 1.0 / (1.0 + np.exp(-a))
            derivs[t] = hs[t + 1] * (1.0 - hs[t + 1])
    return hs, derivs[..., :, None] * W


def pascanu_bound(W: object, lags: object, activation: str = "tanh") -> np.ndarray:
    """The bound ``||dh_t/dh_{t-lag}|| <= (gamma * ||W||_2) ** lag`` of Pascanu et al. (2013).

    ``gamma`` bounds the activation's derivative (1 for tanh, 1/4 for the sigmoid). With
    ``||W||_2 < 1/gamma`` the bound decays geometrically: vanishing is then certain (sufficient
    condition); so exploding requires ``||W||_2 > 1/gamma`` (necessary condition). Explained in
    Chapter 9.
    """
    if activation not in ACTIVATION_DERIVATIVE_BOUND:
        raise ValueError(
            f"activation must be one of {sorted(ACTIVATION_DERIVATIVE_BOUND)}, got {activation!r}"
        )
    gamma = ACTIVATION_DERIVATIVE_BOUND[activation]
    return (gamma * largest_singular_value(W)) ** np.asarray(lags, dtype=np.float64)


@dataclass
class BoundDraws:
    """Random recurrent matrices checked against :func:`pascanu_bound` (Chapter 9).

    Attributes
    ----------
    gamma_sigma : ndarray, shape (draws,)
        ``gamma * ||W||_2`` of each draw: below 1 vanishing is certain, above 1 it may explode.
    norms : ndarray, shape (draws, steps + 1, batch)
        ``||dh_T/dh_{T-lag}||`` for every lag 0..steps and every trajectory of the batch.
    bounds : ndarray, shape (draws, steps + 1)
        The bound ``(gamma * ||W||_2) ** lag`` of each draw.
    """

    gamma_sigma: np.ndarray
    norms: np.ndarray
    bounds: np.ndarray

    @property
    def holds(self) -> np.ndarray:
        """Per draw: the bound holds at every lag for every trajectory (up to rounding)."""
        within: np.ndarray = np.all(
            self.norms <= self.bounds[:, :, None] * (1 + 1e-10), axis=(1, 2)
        )
        return within


def pascanu_bound_draws(
    activation: str = "tanh",
    draws: int = 200,
    *,
    hidden_size: int = 16,
    steps: int = 30,
    batch: int = 1,
    rng: np.random.Generator | int = 2013,
) -> BoundDraws:
    """Draw random ``W`` on both sides of the threshold ``1/gamma`` and measure Jacobian products.

    Each draw scales a Gaussian matrix to ``||W||_2 = sigma`` with ``gamma * sigma`` uniform in
    [0.3, 3], runs the recurrence ``h_t = f(W h_{t-1} + u_t)`` on random drives of random strength
    (for the sigmoid, centred where its slope is largest), and records every lag's product norm
    and the bound. Explained in Chapter 9.
    """
    gamma = ACTIVATION_DERIVATIVE_BOUND.get(activation)
    if gamma is None:
        raise ValueError(
            f"activation must be one of {sorted(ACTIVATION_DERIVATIVE_BOUND)}, got {activation!r}"
        )
    draws = _checks.positive_int("draws", draws)
    H = _checks.positive_int("hidden_size", hidden_size)
    T = _checks.positive_int("steps", steps)
    B = _checks.positive_int("batch", batch)
    gen = as_generator(rng)
    gamma_sigma, norms, bounds = [], [], []
    for _ in range(draws):
        sigma = gen.uniform(0.3, 3.0) / gamma
        W = gen.standard_normal((H, H))
        W *= sigma / largest_singular_value(W)
        u = gen.standard_normal((T, B, H)) * gen.uniform(0.05, 1.0)
        if activation == "sigmoid":
            u -= 0.5 * W.sum(axis=1)  # pre-activation near 0, where the state is near 1/2
        _, J = run_recurrence(W, u, activation=activation)
        gamma_sigma.append(gamma * sigma)
        norms.append(jacobian_product_norms(J))
        bounds.append(pascanu_bound(W, np.arange(T + 1), activation))
    return BoundDraws(np.array(gamma_sigma), np.array(norms), np.array(bounds))


def backprop_state_norms(
    params: Params, caches: list[Any], dh: np.ndarray, t: int, *, cell: Cell = TANH
) -> np.ndarray:
    """Norms ``||dl/dh_k||`` for ``k = 0 .. t`` of a loss ``l`` that reads only ``h_t``.

    ``dh`` ``(B, S)`` is ``dl/dh_t``, the derivative with respect to the cell's state (``S = H``;
    for the LSTM ``S = 2H`` and the norms are those of ``dl/d[h_k | c_k]``: pass
    :func:`bptt.cells.hidden_backward` of the readout's ``dl/dh_t``). It is carried back one step
    at a time by the cell's own ``step_backward`` (a vector-Jacobian product), so this works for
    any cell, the GRU included. ``caches`` is the list :func:`bptt.forward_stepwise` returns. The
    norm is taken over the whole batch ``(B, S)``. Returns an array of length ``t + 1`` indexed by
    ``k``. Explained in Chapter 9.
    """
    t = _checks.positive_int("t", t, minimum=0)
    if t > len(caches):
        raise ValueError(f"t must be at most T = {len(caches)}, got {t}")
    norms = np.empty(t + 1)
    v = np.asarray(dh)
    norms[t] = np.linalg.norm(v)
    for k in range(t - 1, -1, -1):
        v = cell.step_backward(params, caches[k], v)[0]  # caches[k] made h_{k+1} from h_k
        norms[k] = np.linalg.norm(v)
    return norms


def influence_matrix(
    params: Params,
    inputs: object,
    targets: object,
    h0: np.ndarray | None = None,
    *,
    cell: Cell = TANH,
    loss: LossFn = softmax_cross_entropy,
) -> np.ndarray:
    """The "who influences whom" matrix ``M[t - 1, k] = ||dl_t/dh_k||`` for ``0 <= k <= t <= T``.

    Row ``t - 1`` is how strongly the loss of step t depends on each earlier state; entries with
    ``k > t`` (the future cannot influence the past) are NaN. Each row follows one loss back on
    its own; BPTT's ``delta_k`` is the sum over ``t >= k`` of the vectors ``dl_t/dh_k`` whose
    norms fill column k. Costs O(T**2) backward steps. Explained in Chapter 9.
    """
    outputs, hs, caches = forward_stepwise(params, inputs, h0, cell=cell)
    T, B = outputs.shape[:2]
    targets = check_targets(targets, T, B)
    M = np.full((T, T + 1), np.nan)
    for t in range(1, T + 1):
        _, doutputs = loss(outputs[t - 1], targets[t - 1])
        dh, _ = readout_backward(params, hidden(cell, hs[t]), doutputs)
        dh = hidden_backward(cell, dh)  # w.r.t. the whole state ([h | c] for the LSTM)
        M[t - 1, : t + 1] = backprop_state_norms(params, caches, dh, t, cell=cell)
    return M
