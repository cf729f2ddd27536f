"""Checkpointed BPTT: exact gradients, counters equal to the plan, DP against brute force."""

from __future__ import annotations

import heapq

import numpy as np
import pytest

import bptt
from bptt.algorithms.checkpointing import (
    _count,
    evenly_spaced_schedule,
    hsm_cost_table,
    ism_cost_table,
    loss_and_grads_checkpointed,
    optimal_forward_steps,
    optimal_schedule,
    revolve_forward_steps,
)
from bptt.cells.gru import GRU

D, H, V, B = 5, 6, 4, 3


def _problem(T, cell=bptt.TANH, seed=0):
    rng = np.random.default_rng(seed)
    params = bptt.init_params(D, H, V, rng=rng, weight_scale=0.5, cell=cell)
    inputs = rng.integers(0, D, size=(T, B))
    targets = rng.integers(0, V, size=(T, B))
    h0 = 0.5 * rng.standard_normal((B, H))
    return params, inputs, targets, h0


def _max_error(a, b):
    return max(bptt.relative_error(a[k], b[k]) for k in a)


@pytest.mark.parametrize("T", [1, 2, 3, 7, 16, 25])
@pytest.mark.parametrize("slots", [1, 2, 3, 4, 6, 24, 25, 26, 100])
@pytest.mark.parametrize("memorize", ["hidden", "internal"])
def test_optimal_checkpointing_equals_full_bptt(T, slots, memorize):
    params, inputs, targets, h0 = _problem(T)
    if memorize == "internal" and slots == 1:  # h_0 alone leaves no room for a record
        with pytest.raises(ValueError, match="slots must be >= 2 with memorize='internal'"):
            loss_and_grads_checkpointed(params, inputs, targets, h0, slots=1, memorize=memorize)
        return
    loss, grads, h_last = bptt.loss_and_grads_stepwise(params, inputs, targets, h0)
    result = loss_and_grads_checkpointed(
        params, inputs, targets, h0, slots=slots, memorize=memorize
    )
    assert _max_error(result.grads, grads) < 1e-12
    assert result.loss == pytest.approx(loss, rel=1e-12)
    np.testing.assert_allclose(result.h_last, h_last, rtol=0, atol=1e-14)
    # the executed counters are exactly the plan's, and the plan's are the DP's
    assert result.forward_steps == optimal_forward_steps(T, slots, memorize=memorize)
    if memorize == "hidden":
        assert result.forward_steps == hsm_cost_table(T, slots)[T, slots]
        assert result.peak_stored == min(slots, max(T - 1, 1))
    else:
        records = min(slots - 1, T)
        assert result.forward_steps == ism_cost_table(T, records)[T, records]
        assert result.peak_stored == 1 + records
    assert result.forward_steps == result.schedule.forward_steps
    assert result.backward_steps == T
    assert result.peak_stored == result.schedule.peak_stored <= slots


@pytest.mark.parametrize("T", [1, 5, 16, 30])
@pytest.mark.parametrize("segment", [None, 1, 4, 7, 40])
@pytest.mark.parametrize("memorize", ["hidden", "internal"])
def test_evenly_spaced_equals_full_bptt_and_costs_no_less_than_optimal(T, segment, memorize):
    params, inputs, targets, h0 = _problem(T, seed=1)
    _, grads, _ = bptt.loss_and_grads_stepwise(params, inputs, targets, h0)
    schedule = evenly_spaced_schedule(T, segment, memorize=memorize)
    result = loss_and_grads_checkpointed(params, inputs, targets, h0, schedule=schedule)
    assert _max_error(result.grads, grads) < 1e-12
    assert result.forward_steps == schedule.forward_steps
    assert result.peak_stored == schedule.peak_stored
    slots = max(schedule.peak_stored, 2)
    assert optimal_forward_steps(T, slots, memorize=memorize) <= schedule.forward_steps


def test_evenly_spaced_default_is_sqrt_T():
    schedule = evenly_spaced_schedule(1000, memorize="hidden")
    assert schedule.actions[0] == ("advance", 0, 32)  # ceil(sqrt(1000)) = 32
    assert schedule.peak_stored == 32 + 30  # 32 checkpoints, 30 states inside the last segment
    assert schedule.forward_steps == 992 + 2 * 1000 - 32
    chen = evenly_spaced_schedule(1000)  # records inside a segment: each step run twice at most
    assert chen.forward_steps == 1000 + 992
    assert chen.peak_stored == 31 + 32  # 31 checkpoints below a full segment of 32 records


@pytest.mark.parametrize("slots", [1, 2, 5])
def test_any_cell_and_squared_error(slots):
    T = 9
    params, _, _, h0 = _problem(T, cell=GRU, seed=2)
    rng = np.random.default_rng(3)
    inputs = rng.standard_normal((T, B, D))
    targets = rng.standard_normal((T, B, V))
    loss, grads, _ = bptt.loss_and_grads_stepwise(
        params, inputs, targets, h0, cell=GRU, loss=bptt.squared_error
    )
    result = loss_and_grads_checkpointed(
        params, inputs, targets, h0, slots=slots, cell=GRU, loss=bptt.squared_error
    )
    assert _max_error(result.grads, grads) < 1e-12
    assert result.loss == pytest.approx(loss, rel=1e-12)


def _brute_force_cost(T, slots):
    """Least forward steps over *all* action sequences, by Dijkstra on (stored set, next step).

    Independent of the recurrence: any state may be stored or freed at any time, as long as at
    most ``slots`` states (h_0 included) are stored at once.
    """
    start = (frozenset([0]), T)  # stored states, next step to reverse
    best = {start: 0}
    queue = [(0, 0, start)]
    tie = 0
    while queue:
        cost, _, (stored, r) = heapq.heappop(queue)
        if r == 0:
            return cost
        if cost > best[(stored, r)]:
            continue
        moves = []
        for i in stored:
            if i < r:
                moves.append((cost + r - i, (stored, r - 1)))  # reverse step r from h_i
                if len(stored) < slots:
                    for j in range(i + 1, r):
                        if j not in stored:
                            moves.append((cost + j - i, (stored | {j}, r)))  # advance, store h_j
            if i != 0:
                moves.append((cost, (stored - {i}, r)))  # free h_i
        for new_cost, node in moves:
            if new_cost < best.get(node, np.inf):
                best[node] = new_cost
                tie += 1
                heapq.heappush(queue, (new_cost, tie, node))
    raise AssertionError("unreachable")


@pytest.mark.parametrize("T", range(1, 8))
@pytest.mark.parametrize("slots", [1, 2, 3, 4, 8])
def test_cost_function_against_brute_force(T, slots):
    assert hsm_cost_table(T, slots)[T, slots] == _brute_force_cost(T, slots)
    assert optimal_forward_steps(T, slots) == _brute_force_cost(T, slots)


def _brute_force_records_cost(T, slots):
    """Least forward steps when slots hold h_0 and step records, by Dijkstra on (records, next)."""
    start = (frozenset(), T)  # stored records, next step to backpropagate
    best = {start: 0}
    queue, tie = [(0, 0, start)], 0
    while queue:
        cost, _, (records, r) = heapq.heappop(queue)
        if r == 0:
            return cost
        if cost > best[(records, r)]:
            continue
        moves = []
        if r in records:
            moves.append((cost, (records - {r}, r - 1)))  # backward of step r from its record
        for i in {0} | records:
            for j in range(i + 1, r + 1):
                if j not in records and len(records) + 1 < slots:
                    moves.append((cost + j - i, (records | {j}, r)))  # record step j from h_i
        for i in records:
            if i != r:
                moves.append((cost, (records - {i}, r)))  # drop a record
        for new_cost, node in moves:
            if new_cost < best.get(node, np.inf):
                best[node] = new_cost
                tie += 1
                heapq.heappush(queue, (new_cost, tie, node))
    raise AssertionError("unreachable")


@pytest.mark.parametrize("T", range(1, 8))
@pytest.mark.parametrize("slots", [2, 3, 4, 9])
def test_record_cost_function_against_brute_force(T, slots):
    assert optimal_forward_steps(T, slots, memorize="internal") == _brute_force_records_cost(
        T, slots
    )


def test_dp_equals_griewank_binomial_formula():
    table = hsm_cost_table(120, 15)
    records = ism_cost_table(120, 15)
    for t in range(1, 121):
        for m in range(1, 16):
            assert table[t, m] == revolve_forward_steps(t, m), (t, m)
            assert records[t, m] == revolve_forward_steps(t + 1, m) - (t + 1), (t, m)
            assert records[t, m] == optimal_forward_steps(t, m + 1, memorize="internal")


def test_known_values():
    # one slot: step t is reached again from h_0 for every t
    assert optimal_forward_steps(10, 1) == 55
    # enough slots: one sweep plus one rebuild of every step but the last
    assert optimal_forward_steps(10, 9) == optimal_forward_steps(10, 500) == 19
    assert optimal_forward_steps(1000, 50) == 2948
    # records: enough slots for all T is full BPTT, T forward steps
    assert optimal_forward_steps(10, 11, memorize="internal") == 10
    assert optimal_forward_steps(10, 2, memorize="internal") == 55
    assert optimal_forward_steps(1000, 51, memorize="internal") == 1950


def test_schedule_never_exceeds_slots_and_reverses_every_step_once():
    schedule = optimal_schedule(40, 4)
    reversed_steps = [a[2] for a in schedule.actions if a[0] == "reverse"]
    assert reversed_steps == list(range(40, 0, -1))
    assert schedule.peak_stored == 4


@pytest.mark.parametrize(
    ("T", "slots", "error", "match"),
    [
        (0, 3, ValueError, "T must be an integer >= 1"),
        (5, 0, ValueError, "slots must be an integer >= 1"),
        (5, -2, ValueError, "slots must be an integer >= 1"),
        (5, 2.5, TypeError, "slots must be an integer"),
        (5.0, 2, TypeError, "T must be an integer"),
    ],
)
def test_invalid_T_and_slots_rejected(T, slots, error, match):
    for fn in (optimal_forward_steps, optimal_schedule, hsm_cost_table, revolve_forward_steps):
        with pytest.raises(error, match=match):
            fn(T, slots)


def test_invalid_memorize_rejected():
    with pytest.raises(ValueError, match="memorize must be one of"):
        optimal_schedule(5, 2, memorize="cells")
    with pytest.raises(ValueError, match="slots must be >= 2 with memorize='internal'"):
        optimal_forward_steps(5, 1, memorize="internal")
    with pytest.raises(ValueError, match="records must be an integer >= 1"):
        ism_cost_table(5, 0)


def test_invalid_arguments_of_the_executor():
    params, inputs, targets, _ = _problem(6)
    with pytest.raises(
        TypeError,
        match="at most one of slots=, memory_budget= and schedule=, got slots and schedule",
    ):
        loss_and_grads_checkpointed(
            params, inputs, targets, slots=2, schedule=optimal_schedule(6, 2)
        )
    with pytest.raises(TypeError, match="got slots and memory_budget"):
        loss_and_grads_checkpointed(params, inputs, targets, slots=2, memory_budget=10**6)
    with pytest.raises(ValueError, match="slots must be an integer >= 1, got 0"):
        loss_and_grads_checkpointed(params, inputs, targets, slots=0)
    with pytest.raises(ValueError, match="schedule is for T = 5 steps but the inputs have T = 6"):
        loss_and_grads_checkpointed(params, inputs, targets, schedule=optimal_schedule(5, 2))
    with pytest.raises(TypeError, match=r"schedule must be a bptt\.Schedule"):
        loss_and_grads_checkpointed(params, inputs, targets, schedule=[("reverse", 0, 6)])
    with pytest.raises(ValueError, match="targets must have leading shape"):
        loss_and_grads_checkpointed(params, inputs, targets[:3], slots=2)
    with pytest.raises(ValueError, match="segment must be an integer >= 1"):
        evenly_spaced_schedule(6, 0)


def test_invalid_schedule_is_detected():
    with pytest.raises(ValueError, match=r"steps 1\.\.2 were never reversed"):
        _count(3, [("reverse", 0, 3)], "bad")
    with pytest.raises(ValueError, match="h_1 not stored"):
        _count(3, [("reverse", 1, 3)], "bad")
    with pytest.raises(ValueError, match="reversed step 2, expected 3"):
        _count(3, [("reverse", 0, 2)], "bad")
