"""Checkpointed BPTT: keep a few states, recompute the rest during the backward pass.

Full BPTT keeps every step's record for the backward pass, so its memory grows linearly with the
sequence length T. Checkpointed BPTT keeps only a few things in memory and, when the backward pass
needs a step that is not there, runs the forward pass again from the nearest stored state before
it. Chapter 8 explains the trade-off; this module plans and executes it.

Conventions (the same in the planners, the cost functions and the executor):

* A **slot** holds one stored thing. With ``memorize="hidden"`` (BPTT-HSM of Gruslys et al. 2016)
  that is a hidden state ``h_i`` (an array ``(B, H)``); with ``memorize="internal"`` (their
  BPTT-ISM) it is a step's *record*: its output state ``h_t`` together with the cache that
  ``cell.step`` returned, which lets step t be backpropagated without running it again. The
  initial state ``h_0`` occupies a slot for the whole run in both, since every recomputation of
  the first steps starts from it; ``slots = 1`` means "keep only ``h_0``".
* A **forward step** is one call of ``cell.step``. *Every* call is counted: the first sweep and
  all recomputations. When only hidden states are kept, step t must also be run once more from
  ``h_{t-1}`` to rebuild its cache just before its backward step, so a hidden-state schedule makes
  at least ``2T - 1`` forward steps, while full BPTT (:func:`bptt.loss_and_grads_stepwise`) and a
  record schedule with enough slots make exactly T.
* Working memory that does not grow with T is not counted: the state being advanced, the cache of
  the one step being backpropagated, the error signal ``dL/dh_t`` and the gradient sums.

A schedule is a tuple of actions:

* ``("advance", i, j)``: from the stored state ``h_i`` run steps ``i+1 .. j`` and store ``h_j``
  (``j - i`` forward steps; the states in between are not kept);
* ``("reverse", i, t)``: from the stored ``h_i`` run steps ``i+1 .. t`` (``t - i`` forward steps),
  keep the cache of step t and backpropagate through step t (its loss, readout and cell);
* ``("record", i, t)``: from the stored ``h_i`` run steps ``i+1 .. t`` and store the record of step
  t (``t - i`` forward steps); its state ``h_t`` can then start other runs;
* ``("backward", t)``: backpropagate through step t from its stored record (no forward step), then
  drop the record;
* ``("free", i)``: forget the stored state ``h_i``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise
from math import comb, isqrt
from typing import Any

import numpy as np

from bptt import _checks
from bptt.algorithms.result import BPTTResult
from bptt.algorithms.stepwise import (
    LossFn,
    check_mask,
    check_targets,
    masked_step_backward,
    masked_step_loss,
    masked_update,
)
from bptt.cells import Cell, Params, hidden, hidden_backward
from bptt.losses import softmax_cross_entropy
from bptt.model import Model, model_parts
from bptt.params import check_params, prepare_h0, zeros_like_params
from bptt.readout import readout_backward, readout_forward

Action = tuple[str, int, int] | tuple[str, int]
"""One schedule action, e.g. ``("advance", i, j)`` or ``("free", i)`` (see the module docstring)."""

MEMORIZE = ("hidden", "internal")
"""What a slot holds: a hidden state (BPTT-HSM) or a step's record, state and cache (BPTT-ISM)."""


@dataclass(frozen=True)
class Schedule:
    """A checkpointing plan for a sequence of ``T`` steps.

    Explained in Chapter 8.

    Attributes
    ----------
    T : int
        Number of time steps the plan backpropagates through.
    actions : tuple
        The actions, in order (see the module docstring).
    name : str
        For example ``"optimal, hidden"`` or ``"evenly spaced, internal"``.
    forward_steps : int
        Forward steps (calls of ``cell.step``) the plan performs, counted from its actions.
    peak_stored : int
        Largest number of slots in use at once (stored states and records, ``h_0`` included).
    """

    T: int
    actions: tuple[Action, ...]
    name: str
    forward_steps: int
    peak_stored: int


@dataclass
class CheckpointedResult(BPTTResult):
    """What :func:`loss_and_grads_checkpointed` returns.

    A :class:`~bptt.algorithms.result.BPTTResult`: ``loss, grads, h_last = ...``.

    ``loss`` (sum of per-step losses), ``grads`` (dict like ``params``), ``h_last`` ``(B, H)``, and
    the counters measured while executing: ``forward_steps`` (calls of ``cell.step``),
    ``backward_steps`` (calls of ``cell.step_backward``, always T) and ``peak_stored`` (largest
    number of slots in use at once, ``h_0`` included), with the ``schedule`` executed and
    ``slot_bytes``, the bytes of one slot (so the stored slots peaked at
    ``peak_stored * slot_bytes``).

    Explained in Chapter 8.
    """

    forward_steps: int
    backward_steps: int
    peak_stored: int
    schedule: Schedule
    slot_bytes: int


def _check_T_slots(T: Any, slots: Any) -> tuple[int, int]:
    return _checks.positive_int("T", T), _checks.positive_int("slots", slots)


def _check_memorize(memorize: Any, slots: int) -> str:
    if not isinstance(memorize, str) or memorize not in MEMORIZE:
        raise ValueError(f"memorize must be one of {MEMORIZE}, got {memorize!r}")
    if memorize == "internal" and slots < 2:
        raise ValueError(
            f"slots must be >= 2 with memorize='internal' (h_0 and one record), got {slots}"
        )
    return memorize


_IMPOSSIBLE = 2**60
"""Cost standing for "cannot be done" in the tables (small enough that sums do not overflow)."""

_TABLES: dict[tuple[str, int], np.ndarray] = {}
"""Cost tables already computed, by (kind, T). A column depends only on the one before it, so a
table for more slots extends a table for fewer."""


def _cost_table(kind: str, T: int, slots: int) -> np.ndarray:
    """Columns ``0 .. slots`` of the HSM table ``C`` or of the ISM table ``R`` (see below)."""
    C = _TABLES.get((kind, T))
    t_all = np.arange(T + 1, dtype=np.int64)
    if C is None:  # column 1: C[t, 1] = R[t, 1] = t (t + 1) / 2
        C = np.stack([np.zeros(T + 1, dtype=np.int64), t_all * (t_all + 1) // 2], axis=1)
        if kind == "ism":  # no record at all: impossible for t >= 1
            C[1:, 0] = _IMPOSSIBLE
    if C.shape[1] <= slots:
        done = C.shape[1]
        C = np.concatenate([C, np.zeros((T + 1, slots + 1 - done), dtype=np.int64)], axis=1)
        for m in range(done, slots + 1):
            if kind == "hsm":  # every state a step needs fits: 2t - 1 forward steps
                easy = min(T, m + 1)
                C[1 : easy + 1, m] = 2 * t_all[1 : easy + 1] - 1
            else:  # every record fits: t forward steps
                easy = min(T, m)
                C[1 : easy + 1, m] = t_all[1 : easy + 1]
            for t in range(easy + 1, T + 1):
                C[t, m] = np.min(_candidates(kind, C, t, m))
        _TABLES[(kind, T)] = C
    return C[:, : slots + 1]


def _candidates(kind: str, C: np.ndarray, t: int, m: int) -> np.ndarray:
    """The costs of every first split y of the recurrence for ``(t, m)`` (index 0 is y = 1)."""
    y = np.arange(1, t + (kind == "ism"), dtype=np.int64)
    costs: np.ndarray
    if kind == "hsm":  # y = 1 .. t-1: y + C[t - y, m - 1] + C[y, m]
        costs = y + C[t - 1 : 0 : -1, m - 1] + C[1:t, m]
    else:  # y = 1 .. t: y + R[t - y, m - 1] + R[y - 1, m]
        costs = y + C[t - 1 :: -1, m - 1] + C[0:t, m]
    return costs


def hsm_cost_table(T: int, slots: int) -> np.ndarray:
    """The dynamic programme of BPTT-HSM: ``C[t, m]`` forward steps for t steps and m slots.

    ``C[t, m]`` is the least number of forward steps needed to backpropagate through ``t`` steps
    when ``m`` slots, each holding a hidden state, are available, one of them taken by the start
    state. With ``C[0, m] = 0``, ``C[1, m] = 1`` and ``C[t, 1] = t (t + 1) / 2`` (only the start
    is kept, so step t is reached again from it for every t), the recurrence of Gruslys et al.
    (2016) is

        C[t, m] = min over 1 <= y < t of  y + C[t - y, m - 1] + C[y, m]:

    advance ``y`` steps and store the state there, backpropagate the right part with one slot
    fewer, free that slot, then the left part. Rows ``t <= m + 1`` equal ``2 t - 1``.
    Returns an int64 array of shape ``(T + 1, slots + 1)``; column 0 is unused.
    Explained in Chapter 8.
    """
    T, slots = _check_T_slots(T, slots)
    return _cost_table("hsm", T, slots).copy()


def ism_cost_table(T: int, records: int) -> np.ndarray:
    """The dynamic programme of BPTT-ISM: ``R[t, m]`` forward steps for t steps and m records.

    The start state is given (it is ``h_0`` or the state inside a record, counted elsewhere), and
    ``m`` records may be stored. With ``R[0, m] = 0``, ``R[t, 1] = t (t + 1) / 2`` and
    ``R[t, m] = t`` for ``t <= m``,

        R[t, m] = min over 1 <= y <= t of  y + R[t - y, m - 1] + R[y - 1, m]:

    run ``y`` steps and store the record of step y, backpropagate the steps after it with one
    record fewer, backpropagate step y from its record and drop it, then the ``y - 1`` steps before
    it. With ``slots`` slots (``h_0`` included) the cost is ``R[T, slots - 1]``. Returns an int64
    array of shape ``(T + 1, records + 1)``; column 0 holds ``2**60`` for ``t >= 1`` (no record,
    no backward pass). Explained in Chapter 8.
    """
    T = _checks.positive_int("T", T)
    records = _checks.positive_int("records", records)
    return _cost_table("ism", T, records).copy()


def revolve_forward_steps(T: int, slots: int) -> int:
    """Forward steps of the optimal hidden-state schedule from Griewank's binomial formula.

    With ``s = slots`` and ``beta(s, r) = (s + r)! / (s! r!)``, let ``r`` be the smallest integer
    with ``T <= beta(s, r)``. Griewank (1992) shows that the least number of *extra* forward steps
    (advances) needed to reverse T steps with s stored states is ``r T - beta(s + 1, r - 1)``;
    adding the T forward steps that rebuild each step's cache gives the count of
    :func:`hsm_cost_table`. The tests and Chapter 8 check that the two agree.
    """
    T, s = _check_T_slots(T, slots)
    r = 0
    while comb(s + r, s) < T:
        r += 1
    extra = r * T - (comb(s + r, s + 1) if r >= 1 else 0)  # beta(s+1, r-1) = C(s+r, s+1)
    return T + extra


def optimal_forward_steps(T: int, slots: int, *, memorize: str = "hidden") -> int:
    """Forward steps the optimal schedule performs for ``(T, slots)``.

    Every call of ``cell.step`` is counted, the first sweep included (see the module docstring).
    Both variants are Griewank's binomial count (:func:`revolve_forward_steps`), which is instant
    for any T: for hidden states it is ``revolve_forward_steps(T, slots)``, equal to the dynamic
    programme :func:`hsm_cost_table`; for records it is the number of *extra* forward steps of
    revolve for ``T + 1`` steps and ``slots - 1`` states, equal to :func:`ism_cost_table` (a
    record's forward step is the "taped" forward that revolve counts apart). The tests check both
    equalities. Explained in Chapter 8.
    """
    T, slots = _check_T_slots(T, slots)
    if _check_memorize(memorize, slots) == "hidden":
        return revolve_forward_steps(T, slots)
    return revolve_forward_steps(T + 1, slots - 1) - (T + 1)


def _count(T: int, actions: list[Action], name: str) -> Schedule:
    """Count forward steps and peak slots of an action list, checking that it is valid."""
    stored, records, forward, peak, next_step = {0}, set(), 0, 1, T
    for action in actions:
        kind, i = action[0], action[1]
        if kind == "free":
            stored.discard(i)
            continue
        if kind == "backward":
            if i not in records or i != next_step:
                raise ValueError(f"invalid schedule action {action}: no record or wrong step")
            records.discard(i)
            stored.discard(i)
            next_step -= 1
            continue
        assert len(action) == 3  # advance, reverse or record: (kind, i, j)
        j = action[2]
        if i not in stored or not i < j <= T:
            raise ValueError(f"invalid schedule action {action}: h_{i} not stored or bad range")
        forward += j - i
        if kind in ("advance", "record"):
            stored.add(j)
            if kind == "record":
                records.add(j)
            peak = max(peak, len(stored))
        else:
            if j != next_step:
                raise ValueError(f"invalid schedule: reversed step {j}, expected {next_step}")
            next_step -= 1
    if next_step != 0:
        raise ValueError(f"invalid schedule: steps 1..{next_step} were never reversed")
    return Schedule(T=T, actions=tuple(actions), name=name, forward_steps=forward, peak_stored=peak)


def optimal_schedule(T: int, slots: int, *, memorize: str = "hidden") -> Schedule:
    """The optimal schedule for T steps and ``slots`` slots (``h_0`` included).

    ``memorize="hidden"``: slots hold hidden states (BPTT-HSM, the same cost as Griewank's revolve).
    ``memorize="internal"``: slots hold step records (BPTT-ISM). The plan follows the splits the
    dynamic programme (:func:`hsm_cost_table` or :func:`ism_cost_table`) chooses, so its
    ``forward_steps`` equals :func:`optimal_forward_steps`, and it never uses more than ``slots``
    slots. Slots that cannot help (beyond ``T - 1`` states or ``T`` records) are left unused.
    Explained in Chapter 8.
    """
    T, slots = _check_T_slots(T, slots)
    memorize = _check_memorize(memorize, slots)
    hidden = memorize == "hidden"
    m_top = min(slots, max(T - 1, 1)) if hidden else min(slots - 1, T)
    kind = "hsm" if hidden else "ism"
    if m_top >= (T - 1 if hidden else T):  # everything fits: store as you go, no table needed
        if hidden:  # h_0 .. h_{T-2}, then each step is run once more before its backward step
            actions: list[Action] = [("advance", t, t + 1) for t in range(T - 2)]
            if T >= 2:
                actions.append(("reverse", T - 2, T))
            for t in range(T - 1 if T >= 2 else 1, 0, -1):
                actions.append(("reverse", t - 1, t))
                if t > 1:
                    actions.append(("free", t - 1))
        else:  # a record of every step: full BPTT
            actions = [("record", t, t + 1) for t in range(T)]
            actions += [("backward", t) for t in range(T, 0, -1)]
        return _count(T, actions, f"optimal, {memorize}")
    C = _cost_table(kind, T, m_top)
    actions = []
    # An explicit stack of sub-problems (start, length, slots) instead of recursion: the left
    # parts can nest T deep. Plain actions pushed between sub-problems run in between.
    stack: list[Any] = [(0, T, m_top)]
    while stack:
        item = stack.pop()
        if isinstance(item[0], str):
            actions.append(item)
            continue
        s, t, m = item
        if t == 0:
            continue
        if hidden and (t == 1 or m == 1):  # keep only the start: reach each step from it
            actions.extend(("reverse", s, s + k) for k in range(t, 0, -1))
            continue
        y = 1 + int(np.argmin(_candidates(kind, C, t, m)))
        if hidden:
            actions.append(("advance", s, s + y))
            stack += [(s, y, m), ("free", s + y), (s + y, t - y, m - 1)]
        else:
            actions.append(("record", s, s + y))
            stack += [(s, y - 1, m), ("backward", s + y), (s + y, t - y, m - 1)]
    return _count(T, actions, f"optimal, {memorize}")


def evenly_spaced_schedule(
    T: int, segment: int | None = None, *, memorize: str = "internal"
) -> Schedule:
    """Checkpoints every ``segment`` steps (default ``ceil(sqrt(T))``), after Chen et al. (2016).

    The first sweep stores ``h_0, h_k, h_2k, ...``. Then each segment, last first, is run again
    from its checkpoint and backpropagated. With ``memorize="internal"`` (Chen et al.'s scheme)
    the run keeps every step's record, so the steps are then backpropagated without running them
    again: about ``2 T`` forward steps in about ``T / k + k`` slots (``2 sqrt(T)`` for the default
    k). With ``memorize="hidden"`` the run keeps only the states, and each step is run once more
    before its backward step: about ``3 T`` forward steps. Explained in Chapter 8.
    """
    T = _checks.positive_int("T", T)
    k = isqrt(T - 1) + 1 if segment is None else _checks.positive_int("segment", segment)
    k = min(k, T)
    _check_memorize(memorize, 2)
    starts = list(range(0, T, k))
    actions: list[Action] = [("advance", a, b) for a, b in pairwise(starts)]
    for a in reversed(starts):
        b = min(a + k, T)
        if memorize == "internal":
            actions.extend(("record", t - 1, t) for t in range(a + 1, b + 1))
            actions.extend(("backward", t) for t in range(b, a, -1))
        else:
            actions.extend(("advance", i, i + 1) for i in range(a, b - 1))
            for t in range(b, a, -1):
                actions.append(("reverse", t - 1, t))
                if t - 1 > a:
                    actions.append(("free", t - 1))
        if a > 0:
            actions.append(("free", a))
    return _count(T, actions, f"evenly spaced, {memorize}")


def _one_hot_inputs(
    inputs: Any, D: int, dtype: np.dtype[Any]
) -> tuple[int, int, Callable[[int], np.ndarray]]:
    """Validate inputs once; return T, B and a function giving the (B, D) input of step t.

    Token ids are turned into one-hot rows one step at a time, so the inputs cost no more than
    the caller's id array (the whole one-hot tensor would be ``T B D`` numbers).
    """
    array = np.asarray(inputs)
    if np.issubdtype(array.dtype, np.integer):
        ids = _checks.id_array("inputs", array, upper=D, ndim=2)

        def x_at(t: int) -> np.ndarray:
            x = np.zeros((ids.shape[1], D), dtype=dtype)
            x[np.arange(ids.shape[1]), ids[t - 1]] = 1.0
            return x

    else:
        ids = _checks.float_array("inputs", array, shape=(None, None, D))
        _checks.same_dtype("inputs", ids, dtype)

        def x_at(t: int) -> np.ndarray:
            step: np.ndarray = ids[t - 1]
            return step

    if ids.shape[0] == 0 or ids.shape[1] == 0:
        raise ValueError(f"inputs must have T >= 1 and B >= 1, got shape {ids.shape}")
    return ids.shape[0], ids.shape[1], x_at


def _step(
    cell: Cell, params: Params, h: np.ndarray, x: np.ndarray, keep: np.ndarray | None, t: int
) -> tuple[np.ndarray, Any]:
    """Step t (1-based) from ``h``: the new state (padded rows kept as they were) and the cache."""
    new, cache = cell.step(params, h, x)
    return (new if keep is None else masked_update(keep[t - 1], new, h)), cache


def _nbytes(value: Any) -> int:
    """Bytes of the distinct arrays in a step's ``(state, cache)`` (nested tuples, lists, dicts).

    An array held twice (a cache keeping the new state itself) is counted once.
    """
    arrays: dict[tuple[int, int], int] = {}
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, np.ndarray):
            arrays[(item.__array_interface__["data"][0], item.nbytes)] = item.nbytes
        elif isinstance(item, tuple | list):
            pending.extend(item)
        elif isinstance(item, dict):
            pending.extend(item.values())
    return sum(arrays.values())


def _slots_in_budget(memory_budget: Any, slot_bytes: int, memorize: str) -> int:
    """The most slots of ``slot_bytes`` that ``memory_budget`` bytes hold (at least the minimum)."""
    budget = _checks.positive_int("memory_budget", memory_budget)
    fewest = 2 if memorize == "internal" else 1
    slots = budget // slot_bytes
    if slots < fewest:
        what = "h_0 and one record" if memorize == "internal" else "h_0"
        raise ValueError(
            f"memory_budget must hold at least {fewest} slot(s) ({what}) of {slot_bytes} bytes, "
            f"that is {fewest * slot_bytes} bytes, got {budget}; give a larger budget"
        )
    return slots


def loss_and_grads_checkpointed(
    params: Params | Model,
    inputs: Any,
    targets: Any,
    h0: np.ndarray | None = None,
    *,
    slots: int | None = None,
    memory_budget: int | None = None,
    memorize: str = "hidden",
    schedule: Schedule | None = None,
    cell: Cell | None = None,
    loss: LossFn = softmax_cross_entropy,
    mask: Any = None,
) -> CheckpointedResult:
    """Full-BPTT loss and gradient with bounded memory, by checkpointing and recomputation.

    Give at most one of ``slots``, ``memory_budget`` and ``schedule``. With none, the optimal
    schedule for ``1 + ceil(sqrt(T))`` slots is used: memory growing like the square root of T,
    as for evenly spaced checkpoints, for fewer recomputations.

    Parameters
    ----------
    params, inputs, targets, h0, cell, loss, mask
        As for :func:`bptt.loss_and_grads_stepwise` (a ``mask`` ``(T, B)`` marks padded steps;
        every recomputation applies it as the first sweep does).
    slots : int, optional
        Number of slots (``h_0`` included); the optimal schedule for it is used.
    memory_budget : int, optional
        Bytes the stored slots may take: the largest number of slots that fits (a state
        ``(B, S)``, or with ``memorize="internal"`` a state and one step's cache, measured on the
        first step) and the optimal schedule for that many. The parameters, the gradients, the
        inputs and the working memory that does not grow with T come on top. A budget too small
        for the fewest slots the schedule needs raises a ``ValueError`` saying how many bytes
        that takes.
    memorize : {"hidden", "internal"}
        With ``slots`` or ``memory_budget``: what a slot holds, a hidden state (BPTT-HSM, the
        default) or a step's record (BPTT-ISM).
    schedule : Schedule, optional
        A plan from :func:`optimal_schedule` or :func:`evenly_spaced_schedule` for this T.

    Returns
    -------
    CheckpointedResult
        Loss, gradients (equal to full BPTT's up to rounding), final state, the measured counters
        ``forward_steps`` and ``peak_stored``, and ``slot_bytes``, the size of one slot.

    Each step's loss is evaluated once, when the step is reversed. Explained in Chapter 8.
    """
    params, cell = model_parts(params, cell)
    D, H, _ = check_params(params, cell)
    dtype = params["W_hy"].dtype
    T, B, x_at = _one_hot_inputs(inputs, D, dtype)
    targets = check_targets(targets, T, B)
    keep = check_mask(mask, T, B)
    state0 = prepare_h0(h0, B, H, dtype, cell=cell)
    given = [
        name
        for name, value in (
            ("slots", slots),
            ("memory_budget", memory_budget),
            ("schedule", schedule),
        )
        if value is not None
    ]
    if len(given) > 1:
        raise TypeError(
            f"give at most one of slots=, memory_budget= and schedule=, got {' and '.join(given)}"
        )
    memorize = _check_memorize(memorize, 2)
    slot_bytes = state0.nbytes
    if memorize == "internal":  # a record: the step's state and its cache
        slot_bytes = _nbytes(cell.step(params, state0, x_at(1)))
    if schedule is None:
        if memory_budget is not None:
            slots = _slots_in_budget(memory_budget, slot_bytes, memorize)
        elif slots is None:
            slots = 2 + isqrt(T - 1)  # h_0 and ceil(sqrt(T)) more
        schedule = optimal_schedule(T, _checks.positive_int("slots", slots), memorize=memorize)
    elif not isinstance(schedule, Schedule):
        raise TypeError(f"schedule must be a bptt.Schedule, got {type(schedule).__name__}")
    elif schedule.T != T:
        raise ValueError(f"schedule is for T = {schedule.T} steps but the inputs have T = {T}")

    stored = {0: state0}  # h_0 and the states inside records
    records: dict[int, Any] = {}  # step -> its cache
    grads = zeros_like_params(params)
    dh_next = np.zeros_like(stored[0])  # dL/dh_t flowing back from step t + 1
    total, forward, backward, peak, h_last = 0.0, 0, 0, 1, None
    for action in schedule.actions:
        kind = action[0]
        if kind == "free":
            del stored[action[1]]
            continue
        if kind == "backward":
            j = action[1]
            h, cache = stored.pop(j), records.pop(j)
        else:
            assert len(action) == 3  # advance, reverse or record: (kind, i, j)
            _, i, j = action
            h = stored[i]
            for t in range(i + 1, j):  # states that are passed through, not kept
                h = _step(cell, params, h, x_at(t), keep, t)[0]
            h, cache = _step(cell, params, h, x_at(j), keep, j)
            forward += j - i
            if j == T:
                h_last = h
            if kind in ("advance", "record"):
                stored[j] = h
                if kind == "record":
                    records[j] = cache
                peak = max(peak, len(stored))
                continue
        # "reverse" or "backward" of step j: its loss, then back through the readout and the cell
        visible = hidden(cell, h)  # what the readout reads: h itself, or the h of [h | c]
        outputs = readout_forward(params, visible)
        if keep is None:
            step_loss, dout = loss(outputs, targets[j - 1])
        else:
            step_loss, dout = masked_step_loss(loss, outputs, targets[j - 1], keep[j - 1])
        total += step_loss
        dh_direct, readout_grads = readout_backward(params, visible, dout)
        delta = hidden_backward(cell, dh_direct) + dh_next
        row = None if keep is None else keep[j - 1]
        dh_next, cell_grads = masked_step_backward(cell, params, cache, delta, row)
        backward += 1
        for name, g in (*readout_grads.items(), *cell_grads.items()):
            grads[name] += g
    _checks.finite_scalar("loss", total)
    return CheckpointedResult(
        loss=total,
        grads=grads,
        h_last=np.array(h_last),
        forward_steps=forward,
        backward_steps=backward,
        peak_stored=peak,
        schedule=schedule,
        slot_bytes=slot_bytes,
    )
