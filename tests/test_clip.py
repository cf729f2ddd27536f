"""Gradient clipping: by norm it keeps the direction and caps the norm; by value it does not."""

from __future__ import annotations

import numpy as np
import pytest

import bptt


def _grads(seed=0, scale=10.0):
    rng = np.random.default_rng(seed)
    return {"W": rng.standard_normal((4, 3)) * scale, "b": rng.standard_normal(3) * scale}


def _flat(grads):
    return np.concatenate([g.ravel() for g in grads.values()])


@pytest.mark.parametrize("seed", range(20))
def test_global_norm_clipping_preserves_direction_and_caps_norm(seed):
    grads = _grads(seed)
    clipped, before = bptt.clip_by_global_norm(grads, 1.0)
    assert before == pytest.approx(np.linalg.norm(_flat(grads)))
    assert bptt.global_norm(clipped) == pytest.approx(1.0)
    a, c = _flat(grads), _flat(clipped)
    cosine = a @ c / (np.linalg.norm(a) * np.linalg.norm(c))
    assert cosine == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(c, a * (1.0 / before))


def test_small_gradients_are_untouched():
    grads = _grads(scale=0.01)
    clipped, _ = bptt.clip_by_global_norm(grads, 1.0)
    for name in grads:
        np.testing.assert_array_equal(clipped[name], grads[name])


def test_value_clipping_caps_entries_but_turns_the_direction():
    grads = {"w": np.array([100.0, 1.0])}
    clipped = bptt.clip_by_value(grads, 5.0)
    np.testing.assert_array_equal(clipped["w"], [5.0, 1.0])
    cosine = (100 * 5 + 1) / (np.hypot(100, 1) * np.hypot(5, 1))
    assert cosine < 0.99  # the direction changed
    assert np.max(np.abs(bptt.clip_by_value(_grads(), 0.5)["W"])) <= 0.5


def test_errors():
    with pytest.raises(ValueError, match="max_norm"):
        bptt.clip_by_global_norm(_grads(), 0.0)
    with pytest.raises(ValueError, match="limit"):
        bptt.clip_by_value(_grads(), -1.0)
    with pytest.raises(FloatingPointError, match=r"grads\['w'\] is not finite"):
        bptt.clip_by_global_norm({"w": np.array([np.inf, 1.0])}, 1.0)
    with pytest.raises(FloatingPointError, match=r"grads\['w'\] is not finite"):
        bptt.clip_by_value({"w": np.array([np.nan, 1.0])}, 1.0)  # np.clip would keep the NaN
    with pytest.raises(TypeError, match="grads must be a mapping"):
        bptt.clip_by_value([np.ones(2)], 1.0)
