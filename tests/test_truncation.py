"""Truncated BPTT(k1, k2): exactness limits, hand truncation, carried state, bad arguments."""

from __future__ import annotations

import numpy as np
import pytest

import bptt
from bptt.algorithms.stepwise import backward_stepwise, forward_stepwise
from bptt.algorithms.truncation import tbptt, truncation_mask
from bptt.experiments.counting import CountingCell
from bptt.params import zeros_like_params

D, H, V, B = 5, 7, 5, 2


@pytest.fixture
def problem():
    rng = np.random.default_rng(0)
    params = bptt.init_params(D, H, V, rng=rng, weight_scale=0.5)
    inputs = rng.integers(0, D, size=(11, B))
    targets = rng.integers(0, V, size=(11, B))
    return params, inputs, targets


def _max_error(a, b):
    return max(bptt.relative_error(a[k], b[k]) for k in a)


@pytest.mark.parametrize(("k1", "k2"), [(1, 11), (3, 11), (4, 20), (11, 11), (11, 50)])
def test_k2_at_least_T_is_full_bptt(problem, k1, k2):
    params, inputs, targets = problem
    loss, grads, h_last = bptt.loss_and_grads_stepwise(params, inputs, targets)
    result = tbptt(params, inputs, targets, k1, k2)
    assert result.loss == pytest.approx(loss, rel=1e-13)
    assert _max_error(result.grads, grads) < 1e-12
    np.testing.assert_allclose(result.h_last, h_last, rtol=0, atol=1e-14)
    assert result.forward_steps == 11
    assert result.updates == -(-11 // k1)


def test_one_chunk_equals_hand_truncation(problem):
    params, inputs, targets = problem
    # TBPTT(k, k) on one chunk of k steps is plain BPTT on that chunk.
    result = tbptt(params, inputs[:4], targets[:4], 4, 4)
    loss, grads, _ = bptt.loss_and_grads_stepwise(params, inputs[:4], targets[:4])
    assert _max_error(result.grads, grads) < 1e-12
    assert result.loss == pytest.approx(loss, rel=1e-13)


def test_general_k1_k2_equals_hand_truncation(problem):
    """TBPTT(3, 5) on 8 steps, computed by hand from two masked BPTT runs."""
    params, inputs, targets = problem
    inputs, targets = inputs[:8], targets[:8]
    outputs, hs, caches = forward_stepwise(params, inputs)
    dout = np.stack([bptt.softmax_cross_entropy(outputs[t], targets[t])[1] for t in range(8)])
    expected = zeros_like_params(params)
    # Backward passes after steps 3, 6 and 8 (0-based 2, 5, 7): losses of the group, window of 5.
    # The last group is cut short by the end of the inputs: its pass still goes back 5 steps.
    for end, group in ((3, range(0, 3)), (6, range(3, 6)), (8, range(6, 8))):
        start = max(0, end - 5)
        masked = np.zeros_like(dout[start:end])
        for s in group:
            masked[s - start] = dout[s]
        g, _ = backward_stepwise(params, hs[start:], caches[start:end], masked)
        for k in expected:
            expected[k] += g[k]
    result = tbptt(params, inputs, targets, 3, 5)
    assert result.updates == 3
    assert _max_error(result.grads, expected) < 1e-12


def test_detach_every_k_is_tbptt_k_k(problem):
    """Chunks of k with the state carried and detached, as in Chapter 4, equal TBPTT(k, k)."""
    params, inputs, targets = problem
    inputs, targets = inputs[:8], targets[:8]  # T a multiple of k, as in Chapter 4's chunks
    k = 4
    total = zeros_like_params(params)
    h = None
    for start in range(0, 8, k):
        chunk = slice(start, start + k)
        _, g, h = bptt.loss_and_grads(params, inputs[chunk], targets[chunk], h)
        for name in total:
            total[name] += g[name]
    result = tbptt(params, inputs, targets, k, k)
    assert _max_error(result.grads, total) < 1e-12
    np.testing.assert_allclose(result.h_last, h, atol=1e-14)


def test_state_is_carried_across_calls(problem):
    params, inputs, targets = problem
    whole = tbptt(params, inputs[:8], targets[:8], 2, 2)
    first = tbptt(params, inputs[:4], targets[:4], 2, 2)
    second = tbptt(params, inputs[4:8], targets[4:8], 2, 2, h0=first.h_last)
    np.testing.assert_allclose(second.h_last, whole.h_last, atol=1e-14)
    summed = {k: first.grads[k] + second.grads[k] for k in whole.grads}
    assert _max_error(summed, whole.grads) < 1e-12
    np.testing.assert_allclose(
        np.concatenate([first.step_losses, second.step_losses]), whole.step_losses, atol=1e-13
    )


def test_truncation_shortens_the_gradient_but_not_the_forward(problem):
    params, inputs, targets = problem
    full = bptt.loss_and_grads_stepwise(params, inputs, targets)
    short = tbptt(params, inputs, targets, 1, 1)
    assert short.loss == pytest.approx(full[0], rel=1e-13)  # same forward pass
    assert _max_error(short.grads, full[1]) > 1e-3  # different (biased) gradient
    # Readout gradients see no recurrence, so truncation leaves them exact.
    assert bptt.relative_error(short.grads["W_hy"], full[1]["W_hy"]) < 1e-12


def test_update_is_called_after_each_backward_and_may_change_params(problem):
    params, inputs, targets = problem
    params = {k: v.copy() for k, v in params.items()}
    seen = []

    def update(grads, t):
        seen.append(t)
        for k in params:
            params[k] -= 0.1 * grads[k]

    before = params["W_hh"].copy()
    result = tbptt(params, inputs, targets, 3, 6, update=update)
    assert seen == [3, 6, 9, 11]
    assert result.updates == 4
    assert not np.allclose(params["W_hh"], before)


def test_works_on_other_cells_and_losses():
    """A float-input model with squared error: the algorithm only uses the cell protocol."""
    rng = np.random.default_rng(1)
    params = bptt.init_params(3, 4, 2, rng=rng, weight_scale=0.6)
    inputs = rng.standard_normal((9, 2, 3))
    targets = rng.standard_normal((9, 2, 2))
    loss, grads, _ = bptt.loss_and_grads_stepwise(params, inputs, targets, loss=bptt.squared_error)
    result = tbptt(params, inputs, targets, 2, 9, loss=bptt.squared_error)
    assert _max_error(result.grads, grads) < 1e-12
    assert result.loss == pytest.approx(loss, rel=1e-13)


def test_truncation_mask():
    mask = truncation_mask(8, 3, 5)
    assert mask.shape == (8, 8)
    np.testing.assert_array_equal(truncation_mask(6, 2, 6), np.tril(np.ones((6, 6), bool)))
    # Loss of step 0 (pass after step 2) reaches step 0 only; loss of step 5 reaches steps 1..5.
    assert mask[0].tolist() == [True] + [False] * 7
    assert mask[5].nonzero()[0].tolist() == [1, 2, 3, 4, 5]
    # The last loss of a group reaches k2 steps, the first k2 - k1 + 1.
    assert mask[2].sum() == 3 and mask[3].sum() == 3 and mask[5].sum() == 5
    # TBPTT(k, k): block diagonal.
    np.testing.assert_array_equal(
        truncation_mask(4, 2, 2), np.array([[1, 0, 0, 0], [1, 1, 0, 0], [0, 0, 1, 0], [0, 0, 1, 1]])
    )


@pytest.mark.parametrize(
    ("k1", "k2", "error", "match"),
    [
        (0, 3, ValueError, "k1 must be an integer >= 1, got 0"),
        (-2, 3, ValueError, "k1 must be an integer >= 1, got -2"),
        (2, 0, ValueError, "k2 must be an integer >= 1, got 0"),
        (2, -1, ValueError, "k2 must be an integer >= 1, got -1"),
        (4, 3, ValueError, "k1 must be <= k2.*got k1=4, k2=3"),
        (2.0, 3, TypeError, "k1 must be an integer"),
        (2, 3.5, TypeError, "k2 must be an integer"),
        (True, 3, TypeError, "k1 must be an integer"),
        ("2", 3, TypeError, "k1 must be an integer"),
    ],
)
def test_bad_k1_k2_rejected(problem, k1, k2, error, match):
    params, inputs, targets = problem
    with pytest.raises(error, match=match):
        tbptt(params, inputs, targets, k1, k2)
    with pytest.raises(error, match=match):
        truncation_mask(8, k1, k2)


def test_other_bad_arguments(problem):
    params, inputs, targets = problem
    with pytest.raises(ValueError, match="targets must have leading shape"):
        tbptt(params, inputs, targets[:5], 2, 3)
    with pytest.raises(ValueError, match="h0 must have shape"):
        tbptt(params, inputs, targets, 2, 3, h0=np.zeros((B + 1, H)))
    with pytest.raises(TypeError, match="update must be a callable"):
        tbptt(params, inputs, targets, 2, 3, update=3)
    with pytest.raises(ValueError, match="T must be an integer >= 1"):
        truncation_mask(0, 1, 1)


def test_memory_is_order_k2_not_T():
    rng = np.random.default_rng(2)
    params = bptt.init_params(D, H, V, rng=rng, weight_scale=0.5)
    inputs = rng.integers(0, D, size=(200, 1))
    targets = rng.integers(0, V, size=(200, 1))
    cell = CountingCell()
    result = tbptt(params, inputs, targets, 3, 7, cell=cell)
    assert cell.peak <= 7 + 1  # the window, plus the step being created
    # and the counting wrapper changes nothing: same gradient as the plain tanh cell.
    plain = tbptt(params, inputs, targets, 3, 7)
    assert _max_error(result.grads, plain.grads) == 0.0


def test_runs_on_the_gru_cell():
    rng = np.random.default_rng(4)
    params = bptt.init_params(D, H, V, rng=rng, weight_scale=0.5, cell=bptt.GRU)
    inputs = rng.integers(0, D, size=(9, B))
    targets = rng.integers(0, V, size=(9, B))
    _, grads, h_last = bptt.loss_and_grads_stepwise(params, inputs, targets, cell=bptt.GRU)
    result = tbptt(params, inputs, targets, 2, 9, cell=bptt.GRU)
    assert _max_error(result.grads, grads) < 1e-12
    np.testing.assert_allclose(result.h_last, h_last, atol=1e-14)
    chunked = tbptt(params, inputs, targets, 3, 3, cell=bptt.GRU)
    assert _max_error(chunked.grads, grads) > 1e-4


def test_every_variant_returns_one_result_type_that_unpacks_like_loss_and_grads():
    from bptt.algorithms.stepwise import BPTTResult

    rng = np.random.default_rng(5)
    params = bptt.init_params(D, H, V, rng=rng, weight_scale=0.5)
    inputs = rng.integers(0, D, size=(6, B))
    targets = rng.integers(0, V, size=(6, B))
    loss, grads, h_last = bptt.loss_and_grads_stepwise(params, inputs, targets)
    results = {
        "tbptt": tbptt(params, inputs, targets, 6, 6),
        "artbp": bptt.artbp(params, inputs, targets, bptt.ConstantTruncation(0.0), rng=0),
        "checkpointed": bptt.loss_and_grads_checkpointed(params, inputs, targets, slots=2),
    }
    for name, result in results.items():
        assert isinstance(result, BPTTResult), name
        r_loss, r_grads, r_h_last = result  # unpacks like the tuple of loss_and_grads
        assert (r_loss, r_grads, r_h_last) == (result.loss, result.grads, result.h_last)
        assert abs(r_loss - loss) < 1e-12 and _max_error(r_grads, grads) < 1e-12, name
        np.testing.assert_allclose(r_h_last, h_last, atol=1e-14)
