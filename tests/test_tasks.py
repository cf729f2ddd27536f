"""The adding problem and the temporal-order task: structure, seeding, statistics."""

from __future__ import annotations

import numpy as np
import pytest

from bptt.experiments.tasks import (
    ADDING_BASELINE_MSE,
    TEMPORAL_ORDER_CLASSES,
    TEMPORAL_ORDER_SYMBOLS,
    adding_baseline_loss,
    adding_problem,
    temporal_order,
    temporal_order_baseline_loss,
)
from bptt.losses import softmax_cross_entropy


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


def test_temporal_order_structure():
    T, B = 100, 400
    inputs, targets = temporal_order(T, B, 0)
    assert inputs.shape == (T, B, 8) and targets.shape == (B,)
    assert targets.dtype == np.int64 and set(np.unique(targets)) <= {0, 1, 2, 3}
    np.testing.assert_array_equal(inputs.sum(axis=-1), 1.0)  # one symbol per step
    symbols = inputs.argmax(axis=-1)
    sym = {name: k for k, name in enumerate(TEMPORAL_ORDER_SYMBOLS)}
    np.testing.assert_array_equal(symbols[0], sym["E"])
    np.testing.assert_array_equal(symbols[-1], sym["B"])
    relevant = (symbols == sym["X"]) | (symbols == sym["Y"])
    np.testing.assert_array_equal(relevant.sum(axis=0), 2)  # exactly two relevant symbols
    assert np.all(symbols[1:-1][~relevant[1:-1]] < 4)  # the rest are distractors a-d
    t1 = relevant.argmax(axis=0)
    t2 = T - 1 - relevant[::-1].argmax(axis=0)
    assert t1.min() >= 10 and t1.max() <= 20 and t2.min() >= 50 and t2.max() <= 60
    cols = np.arange(B)
    first_y = symbols[t1, cols] == sym["Y"]
    second_y = symbols[t2, cols] == sym["Y"]
    np.testing.assert_array_equal(targets, 2 * first_y + second_y)
    names = [TEMPORAL_ORDER_CLASSES[c] for c in targets]
    expected = [
        TEMPORAL_ORDER_SYMBOLS[symbols[a, b]] + TEMPORAL_ORDER_SYMBOLS[symbols[c, b]]
        for a, c, b in zip(t1, t2, cols, strict=True)
    ]
    assert names == expected


def test_temporal_order_statistics_and_baseline():
    inputs, targets = temporal_order(30, 40_000, 1)
    np.testing.assert_allclose(np.bincount(targets, minlength=4) / 40_000, 0.25, atol=0.01)
    symbols = inputs.argmax(axis=-1)[1:-1]
    distractors = symbols[symbols < 4]
    np.testing.assert_allclose(
        np.bincount(distractors, minlength=4) / distractors.size, 0.25, atol=0.005
    )
    assert temporal_order_baseline_loss() == pytest.approx(np.log(4.0), abs=1e-15)
    # the uniform answer's cross-entropy is ln 4 whatever the targets
    logits = np.zeros((len(targets), 4))
    assert softmax_cross_entropy(logits, targets)[0] == pytest.approx(np.log(4.0))


def test_temporal_order_seeded_and_small():
    a = temporal_order(10, 5, 3)
    b = temporal_order(10, 5, np.random.default_rng(3))
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    inputs, _ = temporal_order(10, 200, 0, dtype=np.float32)
    assert inputs.dtype == np.float32
    relevant = inputs[..., 4:6].sum(axis=-1)
    np.testing.assert_array_equal(relevant.sum(axis=0), 2)  # T = 10 still has two
    steps = np.nonzero(relevant)[0]
    assert set(steps) <= {1, 2, 5, 6}


def test_temporal_order_errors():
    with pytest.raises(ValueError, match="seq_length"):
        temporal_order(9, 4, 0)
    with pytest.raises(TypeError, match="batch_size"):
        temporal_order(20, 2.5, 0)
    with pytest.raises(TypeError, match="rng"):
        temporal_order(20, 2, None)
