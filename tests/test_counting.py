"""CountingCell counts steps and live caches and changes no result (Chapter 6)."""

from __future__ import annotations

import numpy as np

import bptt
from bptt.experiments.counting import CountingCell


def test_full_bptt_runs_each_step_once_and_keeps_every_cache():
    rng = np.random.default_rng(0)
    params = bptt.init_params(3, 4, 5, rng=rng, weight_scale=0.5)
    inputs = rng.standard_normal((9, 2, 3))
    targets = rng.integers(0, 5, size=(9, 2))
    cell = CountingCell()
    loss, grads, _ = bptt.loss_and_grads_stepwise(params, inputs, targets, cell=cell)
    assert (cell.forward_steps, cell.backward_steps, cell.peak) == (9, 9, 9)
    assert cell.alive == 0  # every cache was freed when the call returned
    plain_loss, plain, _ = bptt.loss_and_grads_stepwise(params, inputs, targets)
    assert loss == plain_loss
    for name in grads:
        np.testing.assert_array_equal(grads[name], plain[name])


def test_wraps_any_cell():
    cell = CountingCell(bptt.GRU)
    assert cell.param_names == bptt.GRU.param_names
    params = bptt.init_params(3, 4, 5, rng=0, cell=cell)
    assert bptt.check_params(params, cell) == bptt.ModelSizes(3, 4, 5)
