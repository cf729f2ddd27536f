"""The adding problem: structure, seeding, and statistics against their closed form."""

from __future__ import annotations

import numpy as np
import pytest

from bptt.experiments.tasks import ADDING_BASELINE_MSE, adding_baseline_loss, adding_problem


def test_structure():
    inputs, targets = adding_problem(20, 50, 0)
    assert inputs.shape == (20, 50, 2) and targets.shape == (50, 1)
    markers = inputs[..., 1]
    np.testing.assert_array_equal(markers.sum(axis=0), 2.0)
    first, second = markers[:10].argmax(axis=0), 10 + markers[10:].argmax(axis=0)
    np.testing.assert_array_equal(markers[:10].sum(axis=0), 1.0)
    values = inputs[..., 0]
    cols = np.arange(50)
    np.testing.assert_allclose(targets[:, 0], values[first, cols] + values[second, cols])
    assert values.min() >= 0 and values.max() <= 1


def test_seeded():
    a = adding_problem(10, 4, 7)
    b = adding_problem(10, 4, np.random.default_rng(7))
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert adding_problem(10, 4, 0, dtype=np.float32)[0].dtype == np.float32


def test_baseline_loss_matches_closed_form():
    # The sum of two independent U(0, 1) has mean 1 and variance 1/6.
    _, targets = adding_problem(30, 200_000, 1)
    assert targets.mean() == pytest.approx(1.0, abs=0.005)
    mse = float(np.mean((targets - 1.0) ** 2))
    assert mse == pytest.approx(ADDING_BASELINE_MSE, rel=0.01)
    assert adding_baseline_loss() == pytest.approx(1 / 12)
    # The best constant is the mean, so no constant does better than the baseline.
    assert np.mean((targets - targets.mean()) ** 2) <= mse


def test_marker_positions_are_uniform_in_each_half():
    inputs, _ = adding_problem(10, 50_000, 2)
    counts = inputs[..., 1].sum(axis=1)
    np.testing.assert_allclose(counts / 50_000, 1 / 5, atol=0.01)


def test_errors():
    with pytest.raises(ValueError, match="seq_length"):
        adding_problem(1, 4, 0)
    with pytest.raises(TypeError, match="batch_size"):
        adding_problem(5, 2.5, 0)
    with pytest.raises(TypeError, match="rng"):
        adding_problem(5, 2, None)
