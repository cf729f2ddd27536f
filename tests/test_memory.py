"""The analytic memory model of full BPTT against the peak that tracemalloc measures."""

from __future__ import annotations

import numpy as np
import pytest

import bptt
from bptt.algorithms.checkpointing import loss_and_grads_checkpointed, optimal_schedule
from bptt.memory import (
    MODEL_ABS_TOL,
    MODEL_REL_TOL,
    bptt_memory,
    measure_peak_bytes,
    random_problem,
    time_call,
)

# The model counts the arrays; Python objects and small temporaries add a little. Stated
# tolerance (Chapter 8 quotes it): within 5 % of the model, plus 64 KiB for the fixed overhead.
REL_TOL, ABS_TOL = MODEL_REL_TOL, MODEL_ABS_TOL
assert (REL_TOL, ABS_TOL) == (0.05, 64 * 1024)


@pytest.mark.parametrize(
    ("T", "B", "D", "H", "V", "dtype"),
    [
        (30, 4, 10, 16, 10, np.float64),
        (120, 8, 27, 64, 27, np.float64),
        (200, 16, 65, 128, 65, np.float32),
        (60, 4, 10, 16, 150, np.float64),  # V >> H: the softmax phase is the peak
    ],
)
def test_model_matches_measured_peak(T, B, D, H, V, dtype):
    params, inputs, targets = random_problem(T, B, D, H, V, dtype, rng=0)
    peak, (loss, grads, _) = measure_peak_bytes(bptt.loss_and_grads, params, inputs, targets)
    model = bptt_memory(T, B, D, H, V, dtype)
    assert abs(peak - model.peak_bytes) <= REL_TOL * model.peak_bytes + ABS_TOL
    assert np.isfinite(loss)
    assert grads["W_hh"].dtype == dtype


def test_model_matches_measured_peak_for_dense_inputs():
    T, B, D, H, V = 150, 8, 16, 64, 16
    params, _, targets = random_problem(T, B, D, H, V, rng=2)
    inputs = np.random.default_rng(3).standard_normal((T, B, D))
    peak, _ = measure_peak_bytes(bptt.loss_and_grads, params, inputs, targets)
    model = bptt_memory(T, B, D, H, V, token_ids=False)
    assert abs(peak - model.peak_bytes) <= REL_TOL * model.peak_bytes + ABS_TOL


def test_model_counts():
    m = bptt_memory(1000, 64, 65, 1024, 65, np.float32)
    assert m.hidden_state_bytes == 1001 * 64 * 1024 * 4
    assert m.cache_bytes == (1001 + 1000) * 64 * 1024 * 4
    assert m.nbytes("inputs (token ids)") == 1000 * 64 * 8
    assert m.itemsize == 4
    m64 = bptt_memory(1000, 64, 65, 1024, 65, np.float64)
    assert m64.peak_bytes == 2 * m.peak_bytes
    dense = bptt_memory(10, 2, 3, 4, 5, token_ids=False)
    assert dense.elements["inputs"] == 10 * 2 * 3


def test_checkpointed_peak_grows_by_one_state_per_slot():
    T, B, D, H, V = 200, 16, 20, 64, 20
    params, inputs, targets = random_problem(T, B, D, H, V, rng=1)
    peaks = {}
    for slots in (10, 110):
        schedule = optimal_schedule(T, slots)
        peaks[slots], _ = measure_peak_bytes(
            loss_and_grads_checkpointed, params, inputs, targets, schedule=schedule
        )
    per_slot = (peaks[110] - peaks[10]) / 100
    assert per_slot == pytest.approx(B * H * 8, rel=0.05)


def test_measure_peak_inside_an_active_trace():
    import tracemalloc

    tracemalloc.start()
    try:
        peak, result = measure_peak_bytes(np.ones, 1_000_000)
        assert tracemalloc.is_tracing()
    finally:
        tracemalloc.stop()
    assert result.nbytes <= peak < result.nbytes + ABS_TOL


def test_time_call():
    assert time_call(sum, [1, 2], repeat=2) >= 0
    with pytest.raises(ValueError, match="repeat must be an integer >= 1"):
        time_call(sum, [1], repeat=0)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"T": 0}, ValueError, "T must be an integer >= 1, got 0"),
        ({"H": 2.0}, TypeError, "H must be an integer"),
        ({"B": -1}, ValueError, "B must be an integer >= 1"),
        ({"dtype": np.int32}, TypeError, "dtype must be a floating dtype"),
    ],
)
def test_invalid_sizes_rejected(kwargs, error, match):
    sizes = {"T": 10, "B": 2, "D": 3, "H": 4, "V": 5, **kwargs}
    with pytest.raises(error, match=match):
        bptt_memory(**sizes)
