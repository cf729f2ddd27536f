"""Memory benchmark: peak MB and time of full vs checkpointed BPTT at T = 1000 (Chapter 8).

Run it with ``python -m benchmarks memory`` (or ``make bench`` for every benchmark). Peaks are
measured with tracemalloc above the parameters and inputs, in a separate run from the timing so
that tracing does not slow the timed run; times are the best of three runs.
"""

from __future__ import annotations

import numpy as np

import bptt
from bptt.algorithms.checkpointing import (
    evenly_spaced_schedule,
    loss_and_grads_checkpointed,
    optimal_schedule,
)
from bptt.memory import bptt_memory, measure_peak_bytes, random_problem, time_call

T, B, D, H, V = 1000, 32, 65, 256, 65
DTYPE = np.float32


def main() -> None:
    params, inputs, targets = random_problem(T, B, D, H, V, DTYPE, rng=0)
    model = bptt_memory(T, B, D, H, V, DTYPE)
    print(f"T={T} B={B} D={D} H={H} V={V} {np.dtype(DTYPE).name}; MB = 10**6 bytes")
    print(f"model of the loss_and_grads peak: {model.peak_bytes / 1e6:.1f} MB")
    schedules = [optimal_schedule(T, s) for s in (1000, 200, 50, 20)]
    schedules += [optimal_schedule(T, s, memorize="internal") for s in (1001, 51, 20)]
    schedules += [evenly_spaced_schedule(T, memorize=m) for m in ("internal", "hidden")]
    runs = [
        ("full, vectorised (loss_and_grads)", bptt.loss_and_grads, {}),
        ("full, per step (loss_and_grads_stepwise)", bptt.loss_and_grads_stepwise, {}),
    ]
    runs += [
        (f"{s.name}, {s.peak_stored} slots", loss_and_grads_checkpointed, {"schedule": s})
        for s in schedules
    ]
    # Times relative to the per-step full BPTT, which runs the same cell and readout code.
    header = f"{'method':44s} {'peak MB':>8s} {'time s':>7s} {'x step':>7s} {'fwd steps':>9s}"
    print(header)
    reference = time_call(bptt.loss_and_grads_stepwise, params, inputs, targets, repeat=3)
    for name, fn, kwargs in runs:
        peak, result = measure_peak_bytes(fn, params, inputs, targets, **kwargs)
        seconds = time_call(fn, params, inputs, targets, repeat=3, **kwargs)
        steps = result.forward_steps if "schedule" in kwargs else T
        print(f"{name:44s} {peak / 1e6:8.1f} {seconds:7.2f} {seconds / reference:7.2f} {steps:9d}")


if __name__ == "__main__":
    main()
