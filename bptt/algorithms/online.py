"""Online SGD on one stream with a choice of gradient algorithm (Chapter 7; UORO in Chapter 12).

The learner walks the stream once. Whenever the algorithm has a gradient (every step for RTRL and
UORO, every ``k1`` steps for truncated BPTT, at each random cut for ARTBP), it takes an SGD step on
the parameters being trained, in place, and the stream continues with the new parameters. Running
the same stream with different algorithms shows what their gradients do to learning.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bptt import _checks
from bptt.algorithms.artbp import TruncationSchedule, artbp
from bptt.algorithms.rtrl import rtrl
from bptt.algorithms.stepwise import LossFn
from bptt.algorithms.truncation import TBPTTResult, check_truncation, tbptt
from bptt.algorithms.uoro import uoro
from bptt.cells import Cell, Params
from bptt.losses import softmax_cross_entropy
from bptt.model import Model, model_parts


@dataclass(frozen=True)
class RTRL:
    """Exact online gradient by forward-mode accumulation, :func:`bptt.rtrl` (any cell)."""

    @property
    def label(self) -> str:
        """Name for plots and tables."""
        return "exact (RTRL)"


@dataclass(frozen=True)
class TBPTT:
    """Truncated BPTT(k1, k2): an update every ``k1`` steps, gradients through ``k2`` steps."""

    k1: int
    k2: int

    def __post_init__(self) -> None:
        check_truncation(self.k1, self.k2)

    @property
    def label(self) -> str:
        """Name for plots and tables."""
        return f"TBPTT({self.k1}, {self.k2})"


@dataclass(frozen=True)
class ARTBP:
    """ARTBP with the given truncation schedule; ``name`` labels it in plots."""

    schedule: TruncationSchedule
    name: str = "ARTBP"

    @property
    def label(self) -> str:
        """Name for plots and tables."""
        return self.name


@dataclass(frozen=True)
class UORO:
    """UORO's unbiased rank-one estimate of RTRL's gradient, :func:`bptt.uoro` (Chapter 12)."""

    @property
    def label(self) -> str:
        """Name for plots and tables."""
        return "UORO"


Method = RTRL | TBPTT | ARTBP | UORO


class _DivergedError(Exception):
    """Raised by the update callback to stop a run whose parameters blew up."""


@dataclass
class OnlineRun:
    """The trace of one online run.

    Attributes
    ----------
    label : str
        The method's label.
    update_steps : ndarray of int
        Stream position ``t`` of each update.
    tracked : ndarray
        ``track(params)`` after each update (e.g. the value of ``theta``).
    step_losses : ndarray
        The loss of every step of the stream; empty if the run diverged (the algorithm was
        stopped before it could return them).
    diverged : bool
        True if the parameters left the ball of radius ``divergence`` (or became non-finite); the
        run stops there.
    params : dict
        The parameters at the end (a copy).
    """

    label: str
    update_steps: np.ndarray
    tracked: np.ndarray
    step_losses: np.ndarray
    diverged: bool
    params: Params = field(repr=False)


def _check_online(
    params: Params,
    method: Any,
    trainable: Sequence[str] | None,
    track: Callable[[Params], float] | None,
) -> tuple[list[str], Callable[[Params], float]]:
    """Check ``method`` and ``trainable``; return the trainable names and the tracker."""
    if not isinstance(method, RTRL | TBPTT | ARTBP | UORO):
        raise TypeError(
            f"method must be RTRL(), TBPTT(k1, k2), ARTBP(schedule) or UORO(), got {method!r}"
        )
    names = list(params) if trainable is None else list(trainable)
    unknown = [k for k in names if k not in params]
    if unknown:
        raise ValueError(f"trainable names {unknown} are not parameters; have {list(params)}")
    if track is not None:
        return names, track

    def norm(p: Params) -> float:  # default tracker: the norm of the trainable parameters
        return float(np.sqrt(sum(float(np.sum(p[k] ** 2)) for k in names)))

    return names, norm


def _left_ball(params: Params, names: Sequence[str], radius: float) -> bool:
    """True if a trainable parameter is non-finite or larger than ``radius`` in absolute value."""
    return any(
        not np.all(np.isfinite(params[k])) or np.abs(params[k]).max() > radius for k in names
    )


def online_sgd(
    params: Params | Model,
    inputs: Any,
    targets: Any,
    method: Method,
    *,
    learning_rate: float,
    decay_steps: float | None = None,
    trainable: Sequence[str] | None = None,
    h0: np.ndarray | None = None,
    cell: Cell | None = None,
    loss: LossFn = softmax_cross_entropy,
    rng: np.random.Generator | int = 0,
    track: Callable[[Params], float] | None = None,
    divergence: float = 1e6,
    mask: Any = None,
) -> OnlineRun:
    """Train ``params`` (a copy) by SGD along one stream, with the gradients of ``method``.

    Explained in Chapter 7 (UORO in Chapter 12).

    Parameters
    ----------
    params, inputs, targets, h0, cell, loss
        The model and the stream, as for :func:`bptt.tbptt`: ``params`` a :class:`bptt.Model`
        or a dict, ``cell=None`` the model's cell (the tanh cell for a dict).
    method : RTRL, TBPTT, ARTBP or UORO
        Which gradient algorithm feeds the updates.
    learning_rate : float
        SGD step size.
    decay_steps : float, optional
        If given, the step size at stream position ``t`` is
        ``learning_rate / (1 + t / decay_steps)``: the decreasing steps of stochastic
        approximation, which let an unbiased but noisy gradient (ARTBP's) settle on the optimum
        instead of jittering around it.
    trainable : sequence of str, optional
        Names of the parameters to update (default: all).
    rng : numpy.random.Generator or int
        Source of ARTBP's truncation draws and of UORO's random signs.
    track : callable, optional
        ``track(params) -> float`` recorded after each update (default: the global norm of the
        trainable parameters).
    divergence : float
        Stop, and report divergence, when a trainable parameter's absolute value exceeds it.
    mask : array_like, shape (T, B), optional
        0/1 marking padded steps, passed to the method's algorithm (as for
        :func:`bptt.loss_and_grads_stepwise`): a padded step moves no state and adds no loss or
        gradient, though RTRL and UORO still call the update there (with a zero gradient for
        the examples padded at that step).

    Returns
    -------
    OnlineRun
        The trace; ``params`` is a dict, the trained copy (also when a Model was given).
    """
    params, cell = model_parts(params, cell)
    names, track = _check_online(params, method, trainable, track)
    learning_rate = _checks.positive_float("learning_rate", learning_rate)
    divergence = _checks.positive_float("divergence", divergence)
    if decay_steps is not None:
        decay_steps = _checks.positive_float("decay_steps", decay_steps)
    params = {k: np.array(v, copy=True) for k, v in params.items()}
    update_steps: list[int] = []
    tracked: list[float] = []

    # The learner: one SGD step whenever the algorithm has a gradient.
    def update(grads: Params, t: int) -> None:
        rate = learning_rate
        if decay_steps is not None:  # decreasing steps: eta / (1 + t / tau)
            rate = learning_rate / (1 + t / decay_steps)
        for k in names:
            params[k] -= rate * grads[k]
        if _left_ball(params, names, divergence):
            raise _DivergedError  # stops the algorithm mid-stream
        update_steps.append(t)
        tracked.append(track(params))

    stream: dict[str, Any] = {"h0": h0, "cell": cell, "loss": loss, "mask": mask}
    step_losses, diverged = np.empty(0), False
    try:
        result: TBPTTResult
        if isinstance(method, RTRL):
            result = rtrl(params, inputs, targets, update=update, **stream)
        elif isinstance(method, UORO):
            result = uoro(params, inputs, targets, update=update, rng=rng, **stream)
        elif isinstance(method, TBPTT):
            k1, k2 = method.k1, method.k2
            result = tbptt(params, inputs, targets, k1, k2, update=update, **stream)
        else:
            schedule = method.schedule
            result = artbp(params, inputs, targets, schedule, rng=rng, update=update, **stream)
        step_losses = result.step_losses
    except _DivergedError:
        diverged = True
    # End of the learner.
    return OnlineRun(
        method.label,
        np.asarray(update_steps, dtype=int),
        np.asarray(tracked),
        step_losses,
        diverged,
        params,
    )
