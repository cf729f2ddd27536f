"""Chapter 12's experiment functions (bptt/experiments/beyond.py), run small."""

from __future__ import annotations

import numpy as np
import pytest

from bptt.algorithms.online import RTRL, TBPTT, UORO
from bptt.experiments.beyond import (
    cost_against_length,
    forward_mode_cost,
    growth_exponent,
    influence_runs,
    method_table,
)
from bptt.experiments.influence import optimal_theta


def test_influence_runs_rtrl_and_uoro_converge_tbptt_diverges():
    runs = influence_runs(20_000, methods=(RTRL(), TBPTT(16, 16), UORO()))
    theta_star = optimal_theta()
    assert abs(runs["exact (RTRL)"].tracked[-1] - theta_star) < 1e-3
    assert abs(runs["UORO"].tracked[-1] - theta_star) < 1e-3
    assert runs["TBPTT(16, 16)"].diverged


def test_forward_mode_cost_counts_what_each_carries():
    rows = forward_mode_cost((4, 8), steps=2, repeat=1)
    for row in rows:
        assert row.P == row.H * row.H + row.H * 4 + row.H
        assert row.rtrl_floats == row.H * row.P and row.uoro_floats == row.H + row.P
    assert growth_exponent([4, 8], [rows[0].rtrl_floats, rows[1].rtrl_floats]) > 2.5
    assert growth_exponent([4, 8], [rows[0].uoro_floats, rows[1].uoro_floats]) < 2.1


def test_method_table_exact_methods_are_exact_and_truncation_is_biased():
    rows = {row.name.split(" (")[0]: row for row in method_table(32, 4, k=4, draws=5)}
    for name in ("full BPTT", "checkpointed BPTT", "RTRL", "parallel scan"):
        assert rows[name].bias < 1e-12 and rows[name].variance == 0
    assert rows["TBPTT(4, 4)"].bias > 1e-3 and rows["TBPTT(4, 4)"].variance == 0
    assert rows["ARTBP"].variance > 0 and rows["UORO"].variance > 0
    assert rows["parallel scan"].depth < rows["full BPTT"].depth
    assert [rows[n].online for n in ("full BPTT", "RTRL", "UORO")] == [False, True, True]


def test_cost_against_length_shapes():
    costs = cost_against_length((8, 16), hidden_size=3, k=4)
    assert [c.name for c in costs][-1] == "parallel scan"
    for c in costs:
        assert c.seconds.shape == c.peak_bytes.shape == (2,)
        assert np.all(c.seconds > 0) and np.all(c.peak_bytes > 0)


def test_bad_sizes_are_rejected():
    with pytest.raises(ValueError, match="draws"):
        method_table(8, 2, draws=1)
