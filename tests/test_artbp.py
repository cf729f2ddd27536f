"""ARTBP: exact when never truncated, unbiased in expectation, schedules, bad inputs."""

from __future__ import annotations

import numpy as np
import pytest

import bptt
from bptt.algorithms.artbp import ConstantTruncation, PowerLawTruncation, artbp, mean_length
from bptt.algorithms.truncation import tbptt


@pytest.fixture
def problem():
    rng = np.random.default_rng(3)
    params = bptt.init_params(4, 5, 4, rng=rng, weight_scale=0.8)
    inputs = rng.integers(0, 4, size=(10, 2))
    targets = rng.integers(0, 4, size=(10, 2))
    return params, inputs, targets


def _max_error(a, b):
    return max(bptt.relative_error(a[k], b[k]) for k in a)


def test_probability_zero_is_full_bptt(problem):
    params, inputs, targets = problem
    loss, grads, h_last = bptt.loss_and_grads_stepwise(params, inputs, targets)
    result = artbp(params, inputs, targets, ConstantTruncation(0.0), rng=0)
    assert result.lengths == [10]
    assert result.updates == 1
    assert _max_error(result.grads, grads) < 1e-12
    assert result.loss == pytest.approx(loss, rel=1e-13)
    np.testing.assert_allclose(result.h_last, h_last, atol=1e-14)


def test_probability_one_is_tbptt_1_1(problem):
    params, inputs, targets = problem
    result = artbp(params, inputs, targets, ConstantTruncation(1.0), rng=0)
    assert result.lengths == [1] * 10
    assert _max_error(result.grads, tbptt(params, inputs, targets, 1, 1).grads) < 1e-12


def test_one_draw_equals_hand_reweighting(problem):
    """Replay the draws: each subsequence is BPTT with the uncut points' factors 1/(1 - c)."""
    params, inputs, targets = problem
    schedule = PowerLawTruncation(2.0, 1.5)
    result = artbp(params, inputs, targets, schedule, rng=7)
    assert sum(result.lengths) == 10 and len(result.lengths) >= 2
    # The part of the gradient produced at step r by the loss of step s is (BPTT from s back to r)
    # minus (BPTT from s back to r + 1); ARTBP weights it by the factors of the points crossed.
    outputs, hs, caches = bptt.forward_stepwise(params, inputs)
    dout = np.stack([bptt.softmax_cross_entropy(outputs[t], targets[t])[1] for t in range(10)])
    expected = {k: np.zeros_like(v) for k, v in params.items()}
    start = 0
    for length in result.lengths:
        for s in range(start, start + length):
            # loss s reaches back to `start`; the contribution at step r is weighted by the
            # product of 1/(1 - c(j)) over the uncut points between r and s.
            for r in range(start, s + 1):
                weight = np.prod(
                    [1 / (1 - schedule.probability(j - start + 1)) for j in range(r, s)]
                )
                single = np.zeros_like(dout[r : s + 1])
                single[-1] = dout[s]
                g_to_r, _ = bptt.backward_stepwise(params, hs[r:], caches[r : s + 1], single)
                g_to_r1 = {k: np.zeros_like(v) for k, v in params.items()}
                if r < s:
                    g_to_r1, _ = bptt.backward_stepwise(
                        params, hs[r + 1 :], caches[r + 1 : s + 1], single[1:]
                    )
                for k in expected:  # the part of the gradient produced at step r only
                    expected[k] += weight * (g_to_r[k] - g_to_r1[k])
        start += length
    assert _max_error(result.grads, expected) < 1e-10


@pytest.mark.parametrize("schedule", [PowerLawTruncation(2.0, 2.0), ConstantTruncation(0.3)])
def test_unbiased_in_expectation(problem, schedule):
    params, inputs, targets = problem
    _, exact, _ = bptt.loss_and_grads_stepwise(params, inputs, targets)
    draws = 400
    samples = {k: np.empty((draws, *v.shape)) for k, v in params.items()}
    rng = np.random.default_rng(11)
    for i in range(draws):
        g = artbp(params, inputs, targets, schedule, rng=rng).grads
        for k in samples:
            samples[k][i] = g[k]
    biased = tbptt(params, inputs, targets, 2, 2).grads
    for k, s in samples.items():
        mean = s.mean(axis=0)
        stderr = s.std(axis=0, ddof=1) / np.sqrt(draws)
        # Entries with (almost) no randomness, e.g. the readout's, must match exactly.
        z = np.abs(mean - exact[k]) / np.maximum(stderr, 1e-12)
        assert np.all(z < 4.5), (k, z.max())
    # ...while a fixed truncation is measurably off.
    z_trunc = np.abs(biased["W_hh"] - exact["W_hh"]) / np.maximum(
        samples["W_hh"].std(axis=0, ddof=1) / np.sqrt(draws), 1e-12
    )
    assert z_trunc.max() > 10


def test_seeded_draws_repeat(problem):
    params, inputs, targets = problem
    schedule = PowerLawTruncation(3.0)
    a = artbp(params, inputs, targets, schedule, rng=5)
    b = artbp(params, inputs, targets, schedule, rng=np.random.default_rng(5))
    assert a.lengths == b.lengths
    assert _max_error(a.grads, b.grads) == 0.0


def test_update_called_at_every_cut(problem):
    params, inputs, targets = problem
    seen = []
    result = artbp(
        params, inputs, targets, PowerLawTruncation(1.0), rng=2, update=lambda g, t: seen.append(t)
    )
    assert seen == list(np.cumsum(result.lengths))
    assert result.updates == len(seen)


def test_schedules():
    power = PowerLawTruncation(16.0, 2.0)
    lengths = np.arange(1, 500)
    c = np.array([power.probability(int(L)) for L in lengths])
    assert np.all((c > 0) & (c < 1)) and np.all(np.diff(c) < 0)  # decreasing in the length
    # survival = product of (1 - c), and equals (T0 / (T0 + L))^alpha
    np.testing.assert_allclose(np.cumprod(1 - c), power.survival(lengths), rtol=1e-12)
    assert mean_length(power) == pytest.approx(1 + 16 / (2 - 1), rel=0.05)
    const = ConstantTruncation(0.1)
    assert const.probability(7) == 0.1
    assert mean_length(const) == pytest.approx(10.0)
    # Same mean length, very different tails: compensation weights 1/survival after 300 steps.
    const = ConstantTruncation(1 / mean_length(power))
    assert 1 / const.survival(300) > 1000 * (1 / power.survival(300))


def test_bad_inputs(problem):
    params, inputs, targets = problem
    with pytest.raises(ValueError, match=r"c must be a probability in \[0, 1\], got 1.5"):
        ConstantTruncation(1.5)
    with pytest.raises(ValueError, match="c must be a finite number >= 0"):
        ConstantTruncation(-0.1)
    with pytest.raises(ValueError, match="typical_length must be a finite number > 0"):
        PowerLawTruncation(0.0)
    with pytest.raises(ValueError, match="alpha must be a finite number > 0"):
        PowerLawTruncation(5.0, -1.0)
    with pytest.raises(TypeError, match="schedule must provide probability"):
        artbp(params, inputs, targets, 0.5, rng=0)
    with pytest.raises(TypeError, match="rng must be a numpy Generator"):
        artbp(params, inputs, targets, ConstantTruncation(0.5), rng=None)
    with pytest.raises(TypeError, match="update must be a callable"):
        artbp(params, inputs, targets, ConstantTruncation(0.5), rng=0, update="sgd")

    class Broken:
        def probability(self, length):
            return 2.0

    with pytest.raises(ValueError, match=r"schedule.probability\(1\) must be in \[0, 1\]"):
        artbp(params, inputs, targets, Broken(), rng=0)


def test_compensation_weights_mean_one_second_moment_inverse_survival():
    from bptt.algorithms.artbp import compensation_weights

    for schedule in (PowerLawTruncation(8.0, 2.0), ConstantTruncation(0.1)):
        w = compensation_weights(schedule, 15, 100_000, rng=0)
        se = w.std() / np.sqrt(w.size)
        assert abs(w.mean() - 1.0) < 4 * se
        assert np.mean(w**2) == pytest.approx(1 / schedule.survival(15), rel=0.05)
    assert np.all(compensation_weights(ConstantTruncation(0.3), 0, 5, rng=0) == 1.0)
    assert np.all(compensation_weights(ConstantTruncation(1.0), 3, 5, rng=0) == 0.0)
