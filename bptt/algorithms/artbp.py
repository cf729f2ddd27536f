"""Anticipated Reweighted Truncated Backpropagation, ARTBP (Tallec & Ollivier, 2017; Chapter 7).

Truncated BPTT is biased: a loss never sends gradient further back than the truncation. ARTBP cuts
the stream at *random* points instead, and makes the estimate unbiased with compensation factors:

* after each step, the gradient is truncated there with a probability ``c``, chosen *before* the
  draw from what is already known (here: the length of the current subsequence);
* if the draw says "do not truncate", the derivative that will later flow back across that point is
  multiplied by ``1 / (1 - c)``.

A loss at step ``s`` reaches step ``r < s`` only if no truncation fell between them, which happens
with probability ``P = prod (1 - c_i)``, and then it is weighted by ``1 / P``: on average exactly
once, as in full BPTT. The backward pass runs over each subsequence once, at its end, so the cost is
that of chunked truncated BPTT with chunks of the same mean length.

How the probabilities are chosen decides the variance. A constant ``c`` gives weights
``(1 - c)^-m`` that grow exponentially with the distance ``m`` covered; a probability that decreases
with the length of the current subsequence (:class:`PowerLawTruncation`) makes long subsequences
only polynomially rare, so the weights grow only polynomially.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from bptt import _checks
from bptt.algorithms.stepwise import (
    LossFn,
    check_mask,
    check_update,
    prepare_stream,
)
from bptt.algorithms.truncation import (
    StepRecord,
    TBPTTResult,
    UpdateFn,
    backward_window,
    record_step,
)
from bptt.cells import Cell, Params
from bptt.losses import softmax_cross_entropy
from bptt.model import Model, model_parts
from bptt.params import as_generator, zeros_like_params


@runtime_checkable
class TruncationSchedule(Protocol):
    """Truncation probabilities: ``probability(length)`` is the probability to cut right after the
    ``length``-th step of the current subsequence (``length >= 1``). Explained in Chapter 7."""

    def probability(self, length: int) -> float: ...


def _probability_in_unit_interval(name: str, value: Any) -> float:
    number = _checks.positive_float(name, value, allow_zero=True)
    if number > 1:
        raise ValueError(f"{name} must be a probability in [0, 1], got {number}")
    return number


@dataclass(frozen=True)
class ConstantTruncation:
    """Truncate after every step with the same probability ``c`` (mean subsequence length 1/c).

    ``c = 0`` never truncates (full BPTT); ``c = 1`` truncates after every step. Simple, but the
    compensation weight of a gradient that crossed ``m`` steps is ``(1 - c)^-m``, exponential in
    ``m``: the variance explodes for long dependencies. Explained in Chapter 7.
    """

    c: float

    def __post_init__(self) -> None:
        _probability_in_unit_interval("c", self.c)

    def probability(self, length: int) -> float:
        """The constant ``c``, whatever the length."""
        return float(self.c)

    def survival(self, length: int | np.ndarray) -> np.ndarray:
        """Probability that a subsequence is longer than ``length`` steps: ``(1 - c)^length``."""
        return (1.0 - self.c) ** np.asarray(length, dtype=float)


@dataclass(frozen=True)
class PowerLawTruncation:
    """Truncation probabilities that make subsequence lengths heavy-tailed (Chapter 7).

    The probability to cut after the ``L``-th step of a subsequence is
    ``c(L) = 1 - ((T0 + L - 1) / (T0 + L)) ** alpha``, so that a subsequence is longer than ``L``
    steps with probability ``(T0 / (T0 + L)) ** alpha``: lengths are typically of order
    ``typical_length`` T0, with a polynomial tail of exponent ``alpha``. The compensation weight
    after ``m`` steps is the inverse, ``((T0 + m) / T0) ** alpha``: polynomial, not exponential.
    This gives the properties Tallec & Ollivier (2017) ask of a schedule (a typical length, and a
    polynomial tail so that long dependencies are reached with only polynomially large weights);
    the parametrisation is this package's own. The mean length is finite for ``alpha > 1``, and
    close to ``1 + T0 / (alpha - 1)``.
    """

    typical_length: float
    alpha: float = 2.0

    def __post_init__(self) -> None:
        _checks.positive_float("typical_length", self.typical_length)
        _checks.positive_float("alpha", self.alpha)

    def probability(self, length: int) -> float:
        """The probability to cut right after the ``length``-th step."""
        t0 = self.typical_length
        return float(1.0 - ((t0 + length - 1) / (t0 + length)) ** self.alpha)

    def survival(self, length: int | np.ndarray) -> np.ndarray:
        """Probability that a subsequence is longer than ``length`` steps."""
        t0 = self.typical_length
        return (t0 / (t0 + np.asarray(length, dtype=float))) ** self.alpha


def mean_length(schedule: Any, horizon: int = 1_000_000) -> float:
    """Mean subsequence length ``sum_{L >= 0} P(length > L)``, summed up to ``horizon`` steps."""
    lengths = np.arange(_checks.positive_int("horizon", horizon))
    return float(np.sum(schedule.survival(lengths)))


def compensation_weights(
    schedule: TruncationSchedule, m: int, draws: int, *, rng: np.random.Generator | int
) -> np.ndarray:
    """Draw ARTBP's weight on a gradient that has to cross ``m`` points from a fresh subsequence.

    The weight is ``1 / prod(1 - c_j)`` if none of the ``m`` draws cut, else 0. Its mean is 1 (that
    is the unbiasedness) and its second moment ``1 / P(no cut)``: the variance that a dependency of
    length ``m`` brings. Returns ``draws`` samples. Explained in Chapter 7.
    """
    m = _checks.positive_int("m", m, minimum=0)
    draws = _checks.positive_int("draws", draws)
    gen = as_generator(rng)
    alive = np.ones(draws, dtype=bool)
    survival = 1.0
    for j in range(1, m + 1):
        c = schedule.probability(j)
        alive &= gen.random(draws) >= c
        survival *= 1.0 - c
    return np.where(alive, 1.0 / survival, 0.0) if survival > 0 else np.zeros(draws)


def _cut_probability(schedule: TruncationSchedule, length: int) -> float:
    """``schedule.probability(length)``, checked to be a probability."""
    c = schedule.probability(length)
    if not 0.0 <= c <= 1.0:
        raise ValueError(f"schedule.probability({length}) must be in [0, 1], got {c}")
    return c


@dataclass
class ARTBPResult(TBPTTResult):
    """:class:`~bptt.TBPTTResult` plus the lengths of the random subsequences.

    Explained in Chapter 7.
    """

    lengths: list[int] = field(default_factory=list)


def artbp(
    params: Params | Model,
    inputs: Any,
    targets: Any,
    schedule: TruncationSchedule,
    *,
    rng: np.random.Generator | int,
    h0: np.ndarray | None = None,
    cell: Cell | None = None,
    loss: LossFn = softmax_cross_entropy,
    update: UpdateFn | None = None,
    mask: Any = None,
) -> ARTBPResult:
    """ARTBP over one stream: random truncations, reweighted so the gradient is unbiased.

    After each forward step the current subsequence (the steps since the last truncation) is cut
    with probability ``c = schedule.probability(length)``. At a cut, and at the end of the inputs,
    the losses of the subsequence are backpropagated through it, the derivative crossing each
    uncut point being multiplied by that point's ``1 / (1 - c)``; then ``update(grads, t)`` is
    called if given. With ``update=None`` the expectation of ``grads`` over the draws is the exact
    gradient of the summed loss (the tests check it).

    Parameters
    ----------
    params, inputs, targets, h0, cell, loss, update, mask
        As for :func:`bptt.tbptt`. The truncation draws do not depend on the ``mask``: a padded
        step can be cut after like any other, and its derivative crosses it unchanged.
    schedule : TruncationSchedule
        The truncation probabilities, e.g. :class:`PowerLawTruncation` or
        :class:`ConstantTruncation`.
    rng : numpy.random.Generator or int
        Source of the truncation draws.

    Returns
    -------
    ARTBPResult
        As :class:`~bptt.algorithms.truncation.TBPTTResult`, plus ``lengths`` of the subsequences.

    Explained in Chapter 7. Memory is the length of the current subsequence: random, and with a
    heavy-tailed schedule occasionally large.
    """
    params, cell = model_parts(params, cell)
    if not isinstance(schedule, TruncationSchedule):
        raise TypeError(
            "schedule must provide probability(length), e.g. PowerLawTruncation(16, 2.0), "
            f"got {schedule!r}"
        )
    gen = as_generator(rng)
    x, targets, h = prepare_stream(params, inputs, targets, h0, cell)
    check_update(update)
    T, B = x.shape[:2]
    keep = check_mask(mask, T, B)

    records: list[StepRecord] = []  # the current subsequence, oldest first
    scales: list[float] = []  # scales[i]: factor from records[i] to [i - 1]
    carry = 1.0  # compensation for the uncut point before the next step
    total = zeros_like_params(params)
    step_losses = np.empty(T)
    lengths: list[int] = []
    for t in range(T):
        row = None if keep is None else keep[t]
        h, step_losses[t], record = record_step(
            params, h, x[t], targets[t], row, cell=cell, loss=loss
        )
        records.append(record)
        scales.append(carry)
        c = _cut_probability(schedule, len(records))
        cut = gen.random() < c  # c was fixed before the draw: "anticipated"
        if cut or t == T - 1:
            grads = backward_window(
                params,
                records,
                len(records),
                cell=cell,
                carry_scales=scales,
            )
            for name, g in grads.items():
                total[name] += g
            lengths.append(len(records))
            records, scales, carry = [], [], 1.0
            if update is not None:
                update(grads, t + 1)
        else:
            carry = 1.0 / (1.0 - c)
    loss_sum = _checks.finite_scalar("loss", float(step_losses.sum()))
    n_updates = len(lengths)
    return ARTBPResult(loss_sum, total, h.copy(), n_updates, T, step_losses, lengths)
