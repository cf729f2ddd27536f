"""BPTT through a diagonal linear recurrence by parallel scan (bptt/algorithms/scan.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import bptt
from bptt.algorithms.scan import (
    linear_recurrence,
    linear_recurrence_backward,
    scan_linear,
    scan_linear_backward,
)

LENGTHS = [1, 2, 3, 4, 5, 7, 8, 9, 31, 64, 100, 1000]


def problem(T, shape=(3, 4), seed=0):
    rng = np.random.default_rng(seed)
    a = rng.uniform(-1.0, 1.0, size=(T, *shape))
    b = rng.normal(size=(T, *shape))
    h0 = rng.normal(size=shape)
    direct = rng.normal(size=(T, *shape))  # dl_t/dh_t of a loss sum_t <direct_t, h_t>
    return a, b, h0, direct


@pytest.mark.parametrize("T", LENGTHS)
def test_the_scan_equals_the_loop_forward_and_backward(T):
    a, b, h0, direct = problem(T)
    scan, loop = scan_linear(a, b, h0), linear_recurrence(a, b, h0)
    np.testing.assert_allclose(scan.states, loop.states, rtol=0, atol=1e-12)
    by_scan = scan_linear_backward(a, scan.states, direct, h0)
    by_loop = linear_recurrence_backward(a, loop.states, direct, h0)
    for name in ("a", "b", "h0", "delta"):
        np.testing.assert_allclose(getattr(by_scan, name), getattr(by_loop, name), atol=1e-12)


@pytest.mark.parametrize("T", LENGTHS)
def test_sequential_depth_is_logarithmic_for_the_scan_and_linear_for_the_loop(T):
    a, b, h0, direct = problem(T, shape=(2,))
    bound = 2 * math.ceil(math.log2(T)) + 1
    forward = scan_linear(a, b, h0)
    assert forward.depth <= bound
    assert scan_linear_backward(a, forward.states, direct, h0).depth <= bound
    assert linear_recurrence(a, b, h0).depth == T
    if T >= 64:
        assert forward.depth < T / 3  # the point of the scan


def test_the_loop_gradients_are_the_exact_gradients():
    """Finite differences of L = sum_t <direct_t, h_t> in float64 agree with the backward loop."""
    a, b, h0, direct = problem(12, shape=(3,), seed=1)

    def loss_and_grads(params):
        states = linear_recurrence(params["a"], params["b"], params["h0"]).states
        g = linear_recurrence_backward(params["a"], states, direct, params["h0"])
        return float(np.sum(direct * states)), {"a": g.a, "b": g.b, "h0": g.h0}

    report = bptt.gradcheck(loss_and_grads, {"a": a, "b": b, "h0": h0})
    assert report.passed and report.max_rel_error < 1e-7, report


def test_a_wrong_backward_is_caught():
    """The equality checks can fail: a backward that forgets the carry differs from the loop."""
    a, b, h0, direct = problem(9)
    states = linear_recurrence(a, b, h0).states
    right = linear_recurrence_backward(a, states, direct, h0)
    no_carry = scan_linear_backward(np.zeros_like(a), states, direct, h0)
    assert np.abs(no_carry.delta - right.delta).max() > 1e-3


def test_zero_initial_state_by_default():
    a, b, _, _ = problem(6)
    np.testing.assert_array_equal(
        scan_linear(a, b).states, scan_linear(a, b, np.zeros(a.shape[1:])).states
    )


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda a, b, h0: scan_linear(a, b[:, :2], h0), "a and b must have one shape"),
        (lambda a, b, h0: scan_linear(a[:0], b[:0], h0), "T >= 1"),
        (lambda a, b, h0: scan_linear(a, b, h0[:1]), "h0 must have the shape of one step"),
        (lambda a, b, h0: scan_linear(a, b.astype(str), h0), "b"),
        (lambda a, b, h0: scan_linear_backward(a, b, b[:-1], h0), "dl_dh must have"),
    ],
)
def test_bad_input_names_the_argument(call, message):
    a, b, h0, _ = problem(5)
    with pytest.raises((ValueError, TypeError), match=message):
        call(a, b, h0)
