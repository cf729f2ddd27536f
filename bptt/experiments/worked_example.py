"""BPTT by hand: a scalar trace, per-step gradient contributions and path sums (Chapters 2 and 3).

Three tools that make the derivation of Chapter 2 checkable and the worked example of Chapter 3
readable:

- :func:`trace_scalar_rnn` runs the tanh RNN with D = H = V = 1 and the squared error at every step
  in plain Python floats, one line per equation, and keeps every intermediate value (the numbers of
  Chapter 3's tables).
- :func:`per_step_contributions` runs full BPTT on any model and keeps what the package's backward
  pass adds up: the error signal ``delta_t`` of every step and each step's contribution to every
  parameter's gradient.
- :func:`total_derivative_by_paths` computes ``dL/dh_k`` the long way, as a sum over every later
  loss of a product of step Jacobians: the closed form that the backward recursion evaluates.

Plus the figures of the two chapters (:func:`draw_gradient_flow`, :func:`plot_gradient_decay`) and
the small helpers :func:`numerical_jacobian` and :func:`steps_to_fall_below`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from numbers import Real
from typing import TYPE_CHECKING, Any

import numpy as np

from bptt import _checks
from bptt.algorithms.stepwise import LossFn, forward_with_losses
from bptt.cells import TANH, Cell, Params
from bptt.dynamics import jacobian_product, step_jacobians
from bptt.losses import softmax_cross_entropy
from bptt.readout import readout_backward

if TYPE_CHECKING:
    from matplotlib.axes import Axes

SCALAR_PARAM_NAMES: tuple[str, ...] = ("W_xh", "W_hh", "b_h", "W_hy", "b_y")
"""The parameters of the scalar model, in the package's order."""


def _real(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a real number, got {value!r} ({type(value).__name__})")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{name} must be finite, got {number}")
    return number


def _reals(name: str, values: Any) -> tuple[float, ...]:
    if isinstance(values, str | bytes) or not isinstance(values, Sequence | np.ndarray):
        raise TypeError(f"{name} must be a sequence of numbers, got {values!r}")
    if np.ndim(values) != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {np.shape(values)}")
    out = tuple(_real(f"{name}[{i}]", v) for i, v in enumerate(values))
    if not out:
        raise ValueError(f"{name} must hold at least one value, got an empty sequence")
    return out


@dataclass(frozen=True)
class ScalarTrace:
    """Every intermediate value of forward and backward pass of the scalar RNN (Chapter 3).

    Per-step tuples have one entry per step ``t = 1 .. T`` (index ``t - 1``), except ``h`` which
    holds ``h_0 .. h_T`` (index ``t``).

    Attributes
    ----------
    weights : dict
        ``W_xh, W_hh, b_h, W_hy, b_y`` as floats.
    xs, targets : tuple of float
        Inputs ``x_t`` and targets ``y_t``.
    pre : tuple of float
        Pre-activations ``a_t = w_hh h_{t-1} + w_xh x_t + b_h``.
    h : tuple of float
        Hidden states ``h_0 .. h_T``, ``h_t = tanh(a_t)``.
    outputs : tuple of float
        Outputs ``o_t = w_hy h_t + b_y``.
    losses : tuple of float
        ``l_t = (o_t - y_t)**2 / 2``.
    doutputs : tuple of float
        ``dl_t/do_t = o_t - y_t``.
    dh_direct : tuple of float
        The partial derivative ``dl_t/dh_t = w_hy (o_t - y_t)`` (the local term).
    dh_future : tuple of float
        What flows back from step ``t + 1``: ``w_hh * g_{t+1}`` (zero at ``t = T``).
    delta : tuple of float
        The error signal ``delta_t = dL/dh_t = dh_direct + dh_future`` (a total derivative).
    tanh_deriv : tuple of float
        ``tanh'(a_t) = 1 - h_t**2``.
    dpre : tuple of float
        ``g_t = dL/da_t = delta_t * tanh'(a_t)``.
    contributions : dict of str to tuple of float
        Step t's contribution to each parameter's gradient: ``W_hy: (o_t - y_t) h_t``,
        ``b_y: o_t - y_t``,
        ``W_hh: g_t h_{t-1}``, ``W_xh: g_t x_t``, ``b_h: g_t``.
    grads : dict of str to float
        The sums of the contributions: ``dL/dW_xh`` and so on.
    dh0 : float
        ``dL/dh_0 = w_hh * g_1``.
    loss : float
        ``L = sum_t l_t``.
    """

    weights: dict[str, float]
    xs: tuple[float, ...]
    targets: tuple[float, ...]
    pre: tuple[float, ...]
    h: tuple[float, ...]
    outputs: tuple[float, ...]
    losses: tuple[float, ...]
    doutputs: tuple[float, ...]
    dh_direct: tuple[float, ...]
    dh_future: tuple[float, ...]
    delta: tuple[float, ...]
    tanh_deriv: tuple[float, ...]
    dpre: tuple[float, ...]
    contributions: dict[str, tuple[float, ...]]
    grads: dict[str, float]
    dh0: float
    loss: float

    @property
    def steps(self) -> int:
        """The sequence length T."""
        return len(self.xs)

    @property
    def step_factors(self) -> tuple[float, ...]:
        """``|w_hh| tanh'(a_t)``, t = 1 .. T: how much step t scales the gradient flowing back."""
        return tuple(abs(self.weights["W_hh"]) * d for d in self.tanh_deriv)

    @property
    def mean_factor(self) -> float:
        """Geometric mean of :attr:`step_factors`: the average per-step decay of the gradient."""
        return math.prod(self.step_factors) ** (1.0 / self.steps)

    def params(self) -> Params:
        """The weights as package parameters: ``(1, 1)`` matrices and ``(1,)`` biases, float64."""
        return {
            name: np.full((1,) if name.startswith("b") else (1, 1), self.weights[name])
            for name in SCALAR_PARAM_NAMES
        }

    def inputs(self) -> np.ndarray:
        """Inputs as a package array ``(T, B=1, D=1)``."""
        return np.asarray(self.xs, dtype=np.float64).reshape(-1, 1, 1)

    def target_array(self) -> np.ndarray:
        """Targets as a package array ``(T, B=1, V=1)`` for :func:`bptt.squared_error`."""
        return np.asarray(self.targets, dtype=np.float64).reshape(-1, 1, 1)

    def h0_array(self) -> np.ndarray:
        """The initial state as a package array ``(B=1, H=1)``."""
        return np.full((1, 1), self.h[0])

    def grad_arrays(self) -> Params:
        """:attr:`grads` shaped like :meth:`params`, to compare with the package's gradients."""
        return {
            name: np.full((1,) if name.startswith("b") else (1, 1), self.grads[name])
            for name in SCALAR_PARAM_NAMES
        }


def trace_scalar_rnn(
    w_xh: float,
    w_hh: float,
    b_h: float,
    w_hy: float,
    b_y: float,
    xs: Sequence[float],
    targets: Sequence[float],
    h0: float = 0.0,
) -> ScalarTrace:
    """Forward and backward pass of the scalar tanh RNN, by hand, keeping every intermediate.

    The model is ``a_t = w_hh h_{t-1} + w_xh x_t + b_h``, ``h_t = tanh(a_t)``,
    ``o_t = w_hy h_t + b_y``, ``l_t = (o_t - y_t)**2 / 2`` and ``L = sum_t l_t``: the package's
    tanh cell with D = H = V = 1 and :func:`bptt.squared_error` at every step. Plain float
    arithmetic, one statement per equation of Chapter 2, so that each number of Chapter 3's tables
    has exactly one line that produces it.

    Parameters
    ----------
    w_xh, w_hh, b_h, w_hy, b_y : float
        The five scalar weights.
    xs, targets : sequence of float
        Inputs ``x_1 .. x_T`` and targets ``y_1 .. y_T`` (same length T >= 1).
    h0 : float
        The initial state ``h_0``.

    Returns
    -------
    ScalarTrace

    Explained in Chapter 3.
    """
    weights = {
        "W_xh": _real("w_xh", w_xh),
        "W_hh": _real("w_hh", w_hh),
        "b_h": _real("b_h", b_h),
        "W_hy": _real("w_hy", w_hy),
        "b_y": _real("b_y", b_y),
    }
    xs = _reals("xs", xs)
    targets = _reals("targets", targets)
    if len(targets) != len(xs):
        raise ValueError(
            f"targets must have one value per input: expected {len(xs)}, got {len(targets)}"
        )
    U, W, V = weights["W_xh"], weights["W_hh"], weights["W_hy"]
    T = len(xs)

    # Forward pass, keeping everything.
    h = [_real("h0", h0)]
    pre, o, losses = [], [], []
    for t in range(T):
        a = W * h[t] + U * xs[t] + weights["b_h"]
        pre.append(a)
        h.append(math.tanh(a))
        o.append(V * h[t + 1] + weights["b_y"])
        losses.append(0.5 * (o[t] - targets[t]) ** 2)

    # Backward pass, from t = T down to 1.
    do = [o[t] - targets[t] for t in range(T)]
    dh_direct = [V * do[t] for t in range(T)]
    tanh_deriv = [1.0 - h[t + 1] ** 2 for t in range(T)]
    dh_future, delta, dpre = [0.0] * T, [0.0] * T, [0.0] * T
    flowing_back = 0.0  # dL/dh_T gets nothing from a step T + 1
    for t in range(T - 1, -1, -1):
        dh_future[t] = flowing_back
        delta[t] = dh_direct[t] + dh_future[t]
        dpre[t] = delta[t] * tanh_deriv[t]
        flowing_back = W * dpre[t]  # the part of dL/dh_{t-1} that goes through h_t

    contributions = {
        "W_xh": tuple(dpre[t] * xs[t] for t in range(T)),
        "W_hh": tuple(dpre[t] * h[t] for t in range(T)),  # h[t] is h_{t-1} of step t + 1
        "b_h": tuple(dpre),
        "W_hy": tuple(do[t] * h[t + 1] for t in range(T)),
        "b_y": tuple(do),
    }
    grads = {name: math.fsum(c) for name, c in contributions.items()}
    return ScalarTrace(
        weights=weights,
        xs=xs,
        targets=targets,
        pre=tuple(pre),
        h=tuple(h),
        outputs=tuple(o),
        losses=tuple(losses),
        doutputs=tuple(do),
        dh_direct=tuple(dh_direct),
        dh_future=tuple(dh_future),
        delta=tuple(delta),
        tanh_deriv=tuple(tanh_deriv),
        dpre=tuple(dpre),
        contributions=contributions,
        grads=grads,
        dh0=flowing_back,
        loss=math.fsum(losses),
    )


@dataclass
class StepContributions:
    """What full BPTT computes on the way, step by step (Chapter 2).

    Attributes
    ----------
    loss : float
        The loss summed over steps.
    direct : ndarray, shape (T, B, H)
        ``direct[t - 1]`` is the partial derivative ``dl_t/dh_t`` (through the readout only).
    deltas : ndarray, shape (T, B, H)
        ``deltas[t - 1]`` is the total derivative ``delta_t = dL/dh_t``.
    contributions : list of dict
        ``contributions[t - 1][name]`` is step t's contribution to the gradient of ``name``.
    dh0 : ndarray, shape (B, H)
        ``dL/dh_0``.
    hs : ndarray, shape (T + 1, B, H)
        The hidden states ``h_0 .. h_T`` of the forward pass.
    doutputs : ndarray, shape (T, B, V)
        ``dl_t/do_t`` for every step.
    """

    loss: float
    direct: np.ndarray
    deltas: np.ndarray
    contributions: list[Params]
    dh0: np.ndarray
    hs: np.ndarray
    doutputs: np.ndarray

    def totals(self) -> Params:
        """The gradient: every parameter's contributions summed over the steps."""
        names = self.contributions[0].keys()
        first = self.contributions[0]
        return {
            name: sum((c[name] for c in self.contributions), np.zeros_like(first[name]))
            for name in names
        }


def per_step_contributions(
    params: Params,
    inputs: Any,
    targets: Any,
    h0: np.ndarray | None = None,
    *,
    cell: Cell = TANH,
    loss: LossFn = softmax_cross_entropy,
) -> StepContributions:
    """Full BPTT that keeps each step's error signal and gradient contributions apart.

    The same backward loop as :func:`bptt.backward_stepwise` (readout backward, then
    ``cell.step_backward`` with ``delta_t`` = direct term + what flows back from ``t + 1``), except
    that nothing is summed: Chapter 2 checks that the sums of these contributions are the
    package's gradients, and that ``delta_t`` equals its closed form
    (:func:`total_derivative_by_paths`). Arguments as for :func:`bptt.loss_and_grads_stepwise`.

    Returns
    -------
    StepContributions

    Explained in Chapter 2.
    """
    total, hs, caches, doutputs = forward_with_losses(
        params, inputs, targets, h0, cell=cell, loss=loss
    )
    T = len(caches)

    direct = np.empty_like(hs[1:])
    deltas = np.empty_like(hs[1:])
    contributions: list[Params] = [{} for _ in range(T)]
    dh_next = np.zeros_like(hs[0])
    for t in range(T - 1, -1, -1):
        direct[t], readout_grads = readout_backward(params, hs[t + 1], doutputs[t])
        deltas[t] = direct[t] + dh_next
        dh_next, cell_grads, _ = cell.step_backward(params, caches[t], deltas[t])
        step = {**cell_grads, **readout_grads}
        contributions[t] = {name: step[name] for name in params}
    return StepContributions(
        loss=total,
        direct=direct,
        deltas=deltas,
        contributions=contributions,
        dh0=dh_next,
        hs=hs,
        doutputs=doutputs,
    )


def total_derivative_by_paths(
    params: Params, hs: np.ndarray, doutputs: np.ndarray, k: int
) -> np.ndarray:
    """``dL/dh_k`` of the tanh RNN as an explicit sum over paths (Chapter 2's closed form).

    ``dL/dh_k = sum_{t = max(k, 1)}^{T} (dh_t/dh_k)^T dl_t/dh_t``, where ``dl_t/dh_t =
    W_hy^T dl_t/do_t`` is the direct term of step t and ``dh_t/dh_k = J_t ... J_{k+1}`` the product
    of step Jacobians (:func:`bptt.dynamics.jacobian_product`). Costs O(T^2) matrix products,
    against O(T) for the backward recursion, which computes the same number.

    Parameters
    ----------
    params : dict
        Tanh-RNN parameters.
    hs : ndarray, shape (T + 1, B, H)
        Hidden states ``h_0 .. h_T`` of the forward pass.
    doutputs : ndarray, shape (T, B, V)
        ``dl_t/do_t`` for t = 1 .. T.
    k : int
        The state to differentiate with respect to, ``0 <= k <= T``.

    Returns
    -------
    ndarray, shape (B, H)

    Explained in Chapter 2.
    """
    W_hy = _checks.float_array("params['W_hy']", params["W_hy"], ndim=2)
    V, H = W_hy.shape
    hs = _checks.float_array("hs", hs, shape=(None, None, H))
    T, B = hs.shape[0] - 1, hs.shape[1]
    doutputs = _checks.float_array("doutputs", doutputs, shape=(T, B, V))
    k = _checks.positive_int("k", k, minimum=0)
    if k > T:
        raise ValueError(f"k must be in [0, T] = [0, {T}], got {k}")
    jacobians = step_jacobians(params, hs)
    total = np.zeros((B, H), dtype=hs.dtype)
    for t in range(max(k, 1), T + 1):
        direct = doutputs[t - 1] @ W_hy  # (B, H): dl_t/dh_t, one row per example
        # Row-vector form of (dh_t/dh_k)^T dl_t/dh_t for each example b.
        total += np.einsum("bi,bij->bj", direct, jacobian_product(jacobians, t, k))
    return total


def numerical_jacobian(fn: Callable[[np.ndarray], Any], x: Any, eps: float = 1e-6) -> np.ndarray:
    """Centred-difference Jacobian ``d fn(x) / d x`` of a map between 1-D float arrays.

    Returns an array ``(m, n)`` with entry ``[i, j] = d fn(x)_i / d x_j``, ``n = x.size`` and
    ``m = fn(x).size``. Used in Chapter 2 to check the Jacobian of the tanh step.
    """
    if not callable(fn):
        raise TypeError(f"fn must be callable as fn(x), got {fn!r}")
    x = _checks.float_array("x", x, ndim=1)
    eps = _checks.positive_float("eps", eps)
    columns = []
    for j in range(x.size):
        step = np.zeros_like(x)
        step[j] = eps
        plus = np.asarray(fn(x + step), dtype=np.float64).reshape(-1)
        minus = np.asarray(fn(x - step), dtype=np.float64).reshape(-1)
        columns.append((plus - minus) / (2 * eps))
    return np.stack(columns, axis=1)


def steps_to_fall_below(factor: float, fraction: float = 0.01) -> int:
    """Fewest steps n with ``factor**n < fraction``: how far back a gradient stays above it.

    A gradient multiplied by ``factor`` in (0, 1) at every step backwards falls below ``fraction``
    of its starting size after this many steps (counted by repeated multiplication, which Chapter 3
    compares with the closed form ``ceil(log(fraction) / log(factor))``). Raises ``ValueError`` for
    a factor that does not shrink the gradient.
    """
    factor = _checks.positive_float("factor", factor)
    fraction = _checks.positive_float("fraction", fraction)
    if factor >= 1.0:
        raise ValueError(f"factor must be in (0, 1) for the gradient to shrink, got {factor}")
    if fraction >= 1.0:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    steps, size = 0, 1.0
    while size >= fraction:
        size *= factor
        steps += 1
    return steps


def plot_gradient_decay(
    factors: Sequence[float],
    steps: int = 30,
    *,
    highlight: float | None = None,
    threshold: float = 0.01,
    ax: Axes | None = None,
) -> Any:
    """Plot ``factor**k`` against the number of steps k back, on a log scale, for several factors.

    ``highlight`` (for example the worked example's own factor) is drawn thicker and marked where it
    crosses ``threshold``, drawn as a dotted line. Drawn with
    :func:`bptt.experiments.plotting.book_figure`, as wide as the book's text column. Returns the
    figure. Used in Chapter 3.
    """
    # imported here so that ``import bptt`` stays light
    from bptt.experiments.plotting import COLUMN_WIDTH_IN, book_figure

    values = _reals("factors", factors)
    if any(f <= 0 for f in values):
        raise ValueError(f"factors must be > 0, got {values}")
    steps = _checks.positive_int("steps", steps)
    threshold = _checks.positive_float("threshold", threshold)
    if ax is None:
        # a little narrower than the column: the saved image's padding then still fits it
        fig, ax = book_figure(width=COLUMN_WIDTH_IN - 0.15, height=4.0)
    else:
        fig = ax.figure
    k = np.arange(steps + 1)
    for f in values:
        ax.plot(k, f**k, marker=".", linewidth=1.4, label=f"factor {f:.2f}")
    if highlight is not None:
        highlight = _real("highlight", highlight)
        label = f"worked example {highlight:.3f}"
        ax.plot(k, highlight**k, color="black", linewidth=2.6, label=label)
        if 0 < highlight < 1:
            n = steps_to_fall_below(highlight, threshold)
            if n <= steps:
                ax.plot([n], [highlight**n], "o", color="black", markersize=8, zorder=5)
                ax.annotate(
                    f"below {threshold:.0%} after {n} steps",
                    (n, highlight**n),
                    textcoords="offset points",
                    xytext=(12, -18),
                    bbox={"facecolor": "white", "edgecolor": "grey", "pad": 2.0},
                    zorder=6,
                )
    ax.axhline(threshold, color="grey", linestyle=":", linewidth=1.2)
    ax.set_yscale("log")
    ax.set_ylim(max(1e-8, min(f**steps for f in values) / 2), 2.0)  # keep the 1 % line readable
    ax.set_xlabel("steps k the gradient has flowed back")
    ax.set_ylabel("relative gradient magnitude (factor$^k$)")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="lower left")
    return fig


def draw_gradient_flow(steps: int = 3, ax: Axes | None = None) -> Any:
    """Draw the backward pass on the unrolled graph: where each ``delta_t`` gets its two terms.

    Forward edges are drawn faintly; backward edges are drawn as dashed arrows against them: from
    each loss down to its state (the direct term ``dl_t/dh_t``), and from each state to the one
    before (``J_{t+1}^T delta_{t+1}``), ending at ``h_0``. At most as wide as the book's text column
    (:data:`bptt.experiments.plotting.COLUMN_WIDTH_IN`), so its labels keep their size on the page.
    Returns the figure. Used in Chapter 2.
    """
    # the node and edge style of Chapter 1's figure; imported here so ``import bptt`` stays light
    from bptt.experiments.plotting import COLUMN_WIDTH_IN, _arrow, _node, book_figure

    steps = _checks.positive_int("steps", steps)
    if ax is None:
        width_units, height_units = 1.9 * steps + 2.6, 4.6  # the axes limits set below
        scale = min(0.7, COLUMN_WIDTH_IN / width_units)  # inches per unit of the drawing
        fig, ax = book_figure(width=scale * width_units, height=scale * height_units)
    else:
        fig = ax.figure
    back = "#6a1b9a"
    faint = "#bbbbbb"
    y_x, y_h, y_o, y_l = 0.0, 1.3, 2.6, 3.6
    x0 = 0.4
    _node(ax, x0, y_h, "$h_0$", "h")
    for t in range(1, steps + 1):
        xt = x0 + 1.9 * t
        _node(ax, xt, y_x, f"$x_{t}$", "x")
        _node(ax, xt, y_h, f"$h_{t}$", "h")
        _node(ax, xt, y_o, f"$o_{t}$", "o")
        _node(ax, xt, y_l, rf"$\ell_{t}$", "l")
        _arrow(ax, (xt, y_x), (xt, y_h), faint)
        _arrow(ax, (xt - 1.9, y_h), (xt, y_h), faint, rad=0.25)
        _arrow(ax, (xt, y_h), (xt, y_o), faint)
        _arrow(ax, (xt, y_o), (xt, y_l), faint)
        # Backward edges: against the forward ones, dashed.
        for start, end, label, offset in (
            ((xt, y_l), (xt, y_o), None, (0, 0)),
            ((xt, y_o), (xt, y_h), r"$W_{hy}^\top$", (-0.38, 0)),
        ):
            shifted = ((start[0] - 0.12, start[1]), (end[0] - 0.12, end[1]))
            _arrow(ax, *shifted, back, linestyle="--", linewidth=1.8)
            if label:
                ax.text(
                    start[0] + offset[0] - 0.12,
                    (start[1] + end[1]) / 2 + 0.25,
                    label,
                    color=back,
                    fontsize=10,
                    ha="center",
                    va="center",
                )
        _arrow(ax, (xt, y_h), (xt - 1.9, y_h), back, rad=0.25, linestyle="--", linewidth=1.8)
        ax.text(
            xt - 0.95,
            y_h + 0.45,
            rf"$J_{t}^\top$",
            color=back,
            fontsize=11,
            ha="center",
            va="center",
        )
        ax.text(xt + 0.45, y_h - 0.42, rf"$\delta_{t}$", color=back, fontsize=12, ha="center")
    ax.text(
        x0,
        y_h + 0.55,
        r"$\frac{\mathrm{d}L}{\mathrm{d}h_0}$",
        color=back,
        fontsize=14,
        ha="center",
    )
    ax.text(
        x0 + 1.9 * steps + 0.55,
        y_x,
        "forward: grey\nbackward: dashed",
        fontsize=9,
        ha="left",
        va="center",
        color="black",
    )
    ax.set_xlim(-0.2, x0 + 1.9 * steps + 2.0)
    ax.set_ylim(-0.5, 4.1)
    ax.set_aspect("equal")
    ax.axis("off")
    return fig
