"""The fast path for every cell, loss and mask (bptt/algorithms/vectorised_gated.py).

``bptt.loss_and_grads(..., cell=, loss=, mask=)`` against the per-step algorithm
(``bptt.loss_and_grads_stepwise``), against finite differences, and masks against running each
sequence of a padded batch alone.
"""

from __future__ import annotations

import numpy as np
import pytest
from gradient_helpers import rel

import bptt
from bptt.algorithms import vectorised_gated
from bptt.cells import state_size

CELLS = {"tanh": bptt.TANH, "gru": bptt.GRU, "lstm": bptt.LSTM}
LOSSES = {"ce": bptt.softmax_cross_entropy, "se": bptt.squared_error}
# (T, B, D, H, V), with the edge cases T = 1, B = 1 and H = 1.
SHAPES = [(1, 1, 3, 2, 3), (1, 3, 4, 2, 4), (5, 1, 2, 1, 2), (4, 2, 3, 5, 6), (9, 3, 4, 3, 5)]


def problem(cell, T, B, D, H, V, *, seed=0, ids=True, squared=False, h0=True, dtype=np.float64):
    """Parameters at a generic point (weights and biases of order 1), data and an initial state."""
    rng = np.random.default_rng(seed)
    params = bptt.init_params(D, H, V, rng=rng, weight_scale=0.6, dtype=dtype, cell=cell)
    for name, value in params.items():
        if name.startswith("b_"):
            params[name] = (rng.standard_normal(value.shape) * 0.3).astype(dtype)
    inputs = (
        rng.integers(0, D, size=(T, B)) if ids else rng.standard_normal((T, B, D)).astype(dtype)
    )
    if squared:
        targets = rng.standard_normal((T, B, V)).astype(dtype)
    else:
        targets = rng.integers(0, V, size=(T, B))
    S = state_size(cell, H)
    state = np.tanh(rng.standard_normal((B, S))).astype(dtype) if h0 else None
    return params, inputs, targets, state


def assert_same(result, reference, tol=1e-12):
    loss, grads, h_last = result
    ref_loss, ref_grads, ref_h = reference
    assert abs(loss - ref_loss) <= tol * abs(ref_loss)
    assert list(grads) == list(ref_grads)
    for name, g in ref_grads.items():
        assert grads[name].shape == g.shape and grads[name].dtype == g.dtype, name
        assert rel(grads[name], g) <= tol, name
    assert h_last.shape == ref_h.shape
    assert rel(h_last, ref_h) <= tol


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("ids", [True, False])
@pytest.mark.parametrize("h0", [True, False])
def test_equals_stepwise(cell, loss, shape, ids, h0):
    c, f = CELLS[cell], LOSSES[loss]
    params, inputs, targets, state = problem(c, *shape, ids=ids, squared=loss == "se", h0=h0)
    fast = bptt.loss_and_grads(params, inputs, targets, state, cell=c, loss=f)
    slow = bptt.loss_and_grads_stepwise(params, inputs, targets, state, cell=c, loss=f)
    assert_same(fast, slow)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("loss", LOSSES)
def test_float32_runs_in_float32_and_agrees(cell, loss):
    c, f = CELLS[cell], LOSSES[loss]
    params, inputs, targets, state = problem(
        c, 6, 3, 4, 5, 4, ids=False, squared=loss == "se", dtype=np.float32
    )
    fast = bptt.loss_and_grads(params, inputs, targets, state, cell=c, loss=f)
    slow = bptt.loss_and_grads_stepwise(params, inputs, targets, state, cell=c, loss=f)
    assert all(g.dtype == np.float32 for g in fast[1].values()) and fast[2].dtype == np.float32
    assert_same(fast, slow, tol=1e-5)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("masked", [False, True])
def test_gradcheck(cell, loss, masked):
    c, f = CELLS[cell], LOSSES[loss]
    T, B = 5, 3
    params, inputs, targets, state = problem(c, T, B, 3, 3, 4, ids=False, squared=loss == "se")
    mask = np.arange(T)[:, None] < np.array([5, 2, 4]) if masked else None

    def fn(p):
        return bptt.loss_and_grads(p, inputs, targets, state, cell=c, loss=f, mask=mask)

    report = bptt.gradcheck(fn, params)
    assert report.max_rel_error < 1e-7, report


def one_by_one(cell, loss, params, inputs, targets, state, lengths):
    """The mean over b of running sequence b alone (B = 1) on its own valid steps."""
    B = len(lengths)
    losses, grads, finals = [], [], []
    for b, n in enumerate(lengths):
        h = None if state is None else state[b : b + 1]
        if n == 0:
            losses.append(0.0)
            grads.append({k: np.zeros_like(v) for k, v in params.items()})
            finals.append(h[0] if h is not None else None)
            continue
        result = bptt.loss_and_grads(
            params, inputs[:n, b : b + 1], targets[:n, b : b + 1], h, cell=cell, loss=loss
        )
        losses.append(result[0])
        grads.append(result[1])
        finals.append(result[2][0])
    mean = {k: sum(g[k] for g in grads) / B for k in params}
    return sum(losses) / B, mean, np.stack(finals)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("ids", [True, False])
@pytest.mark.parametrize("lengths", [(7, 3, 1, 5), (1, 7), (4,)])
def test_padded_batch_equals_the_mean_of_one_by_one(cell, loss, ids, lengths):
    c, f = CELLS[cell], LOSSES[loss]
    T, B = max(lengths), len(lengths)
    params, inputs, targets, state = problem(c, T, B, 4, 3, 5, ids=ids, squared=loss == "se")
    mask = np.arange(T)[:, None] < np.array(lengths)
    if not ids:  # padding holds garbage that must not matter
        inputs = np.where(mask[..., None], inputs, 1e3)
    batched = bptt.loss_and_grads(params, inputs, targets, state, cell=c, loss=f, mask=mask)
    reference = one_by_one(c, f, params, inputs, targets, state, lengths)
    assert_same(batched, reference)


@pytest.mark.parametrize("cell", CELLS)
def test_padded_batch_with_the_initial_state_zero(cell):
    c = CELLS[cell]
    params, inputs, targets, _ = problem(c, 6, 3, 4, 3, 5, seed=4)
    lengths = (6, 1, 3)
    mask = (np.arange(6)[:, None] < np.array(lengths)).astype(np.float64)
    batched = bptt.loss_and_grads(params, inputs, targets, cell=c, mask=mask)
    reference = one_by_one(c, bptt.softmax_cross_entropy, params, inputs, targets, None, lengths)
    assert_same(batched, reference)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("B", [1, 3])
def test_a_mask_of_ones_is_no_mask_bit_for_bit(cell, loss, B):
    c, f = CELLS[cell], LOSSES[loss]
    params, inputs, targets, state = problem(c, 5, B, 4, 3, 5, squared=loss == "se")
    plain = bptt.loss_and_grads(params, inputs, targets, state, cell=c, loss=f)
    for ones in (np.ones((5, B), dtype=bool), np.ones((5, B)), np.ones((5, B), dtype=int)):
        masked = bptt.loss_and_grads(params, inputs, targets, state, cell=c, loss=f, mask=ones)
        assert masked[0] == plain[0]
        for name in params:
            np.testing.assert_array_equal(masked[1][name], plain[1][name])
        np.testing.assert_array_equal(masked[2], plain[2])


def test_a_padded_step_changes_nothing_whatever_it_holds():
    params, inputs, targets, state = problem(bptt.LSTM, 5, 2, 4, 3, 5, ids=False)
    mask = np.array([[1, 1], [1, 0], [1, 0], [1, 0], [1, 0]], dtype=bool)
    first = bptt.loss_and_grads(params, inputs, targets, state, cell=bptt.LSTM, mask=mask)
    inputs[1:, 1] = 50.0
    targets[1:, 1] = (targets[1:, 1] + 1) % 5
    second = bptt.loss_and_grads(params, inputs, targets, state, cell=bptt.LSTM, mask=mask)
    assert_same(first, second, tol=0)


@pytest.mark.parametrize(
    "mask",
    [
        np.ones((4, 2)),  # shape
        np.ones((3, 4)),  # batch-first
        np.ones(4),
        np.full((4, 3), 0.5),  # values
        np.full((4, 3), 2),
        np.full((4, 3), -1),
        np.full((4, 3), np.nan),
        np.full((4, 3), "1"),  # dtype
        np.ones((4, 3), dtype=complex),
        "ones",
    ],
)
def test_bad_masks_are_rejected_naming_mask(mask):
    params, inputs, targets, _ = problem(bptt.GRU, 4, 3, 4, 3, 5)
    with pytest.raises((ValueError, TypeError), match="mask"):
        bptt.loss_and_grads(params, inputs, targets, cell=bptt.GRU, mask=mask)


def test_an_all_ones_mask_becomes_no_mask():
    assert vectorised_gated._keep(None, 2, 2) is None
    assert vectorised_gated._keep(np.ones((2, 2)), 2, 2) is None
    keep = vectorised_gated._keep([[1, 0], [0, 1]], 2, 2)
    assert keep is not None and keep.dtype == bool
    assert keep.tolist() == [[True, False], [False, True]]


def test_other_cells_and_losses_point_to_the_stepwise_path():
    params, inputs, targets, _ = problem(bptt.TANH, 3, 2, 4, 3, 5)

    class Custom(bptt.TanhCell):
        pass

    with pytest.raises(TypeError, match="loss_and_grads_stepwise"):
        bptt.loss_and_grads(params, inputs, targets, cell=Custom())
    with pytest.raises(TypeError, match=r"cell must be bptt\.TANH, bptt\.GRU or bptt\.LSTM"):
        bptt.loss_and_grads(params, inputs, targets, cell="gru")

    def custom_loss(outputs, target):
        return bptt.softmax_cross_entropy(outputs, target)

    with pytest.raises(TypeError, match="loss_and_grads_stepwise") as info:
        bptt.loss_and_grads(params, inputs, targets, loss=custom_loss)
    assert "loss must be" in str(info.value)


@pytest.mark.parametrize("cell", CELLS)
def test_targets_must_fit_the_loss(cell):
    c = CELLS[cell]
    params, inputs, targets, _ = problem(c, 3, 2, 4, 3, 5)
    with pytest.raises(TypeError, match="targets"):
        bptt.loss_and_grads(params, inputs, targets, cell=c, loss=bptt.squared_error)
    with pytest.raises(ValueError, match="targets"):
        bptt.loss_and_grads(params, inputs, np.zeros((3, 2, 4)), cell=c, loss=bptt.squared_error)
    with pytest.raises(ValueError, match="targets"):
        bptt.loss_and_grads(params, inputs, targets + 5, cell=c)


def test_wrong_h0_for_the_lstm_names_the_state_size():
    params, inputs, targets, _ = problem(bptt.LSTM, 3, 2, 4, 3, 5)
    with pytest.raises(ValueError, match="h0"):
        bptt.loss_and_grads(params, inputs, targets, np.zeros((2, 3)), cell=bptt.LSTM)


def test_params_of_another_cell_are_rejected():
    params, inputs, targets, _ = problem(bptt.TANH, 3, 2, 4, 3, 5)
    with pytest.raises((TypeError, ValueError), match="params"):
        bptt.loss_and_grads(params, inputs, targets, cell=bptt.GRU)


@pytest.mark.parametrize("cell", CELLS)
def test_arguments_are_left_alone(cell):
    c = CELLS[cell]
    params, inputs, targets, state = problem(c, 4, 2, 4, 3, 5, ids=False)
    copies = [{k: v.copy() for k, v in params.items()}, inputs.copy(), targets.copy(), state.copy()]
    mask = np.array([[1, 1], [1, 1], [0, 1], [0, 1]])
    bptt.loss_and_grads(params, inputs, targets, state, cell=c, mask=mask)
    for name in params:
        np.testing.assert_array_equal(params[name], copies[0][name])
    np.testing.assert_array_equal(inputs, copies[1])
    np.testing.assert_array_equal(targets, copies[2])
    np.testing.assert_array_equal(state, copies[3])


@pytest.mark.parametrize("cell", ["gru", "lstm"])
@pytest.mark.parametrize("B", [1, 4])
def test_blocks_of_backward_factors_change_nothing(monkeypatch, cell, B):
    c = CELLS[cell]
    params, inputs, targets, state = problem(c, 11, B, 4, 3, 5, ids=False)
    whole = bptt.loss_and_grads(params, inputs, targets, state, cell=c)
    monkeypatch.setattr(vectorised_gated, "GATE_BLOCK", 2 * B * 3)  # blocks of 2 steps
    assert_same(bptt.loss_and_grads(params, inputs, targets, state, cell=c), whole, tol=0)


def test_diverged_loss_raises():
    params, inputs, targets, _ = problem(bptt.GRU, 3, 2, 4, 3, 5, squared=True)
    params["W_hy"] *= 1e300
    with pytest.raises(FloatingPointError, match="loss"):
        bptt.loss_and_grads(params, inputs, targets, cell=bptt.GRU, loss=bptt.squared_error)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("B", [1, 4])
def test_masked_equals_masked_stepwise(cell, loss, B):
    c, f = CELLS[cell], LOSSES[loss]
    T = 6
    params, inputs, targets, state = problem(c, T, B, 4, 3, 5, ids=False, squared=loss == "se")
    lengths = np.array([6, 2, 1, 4][:B]) if B > 1 else np.array([3])
    mask = np.arange(T)[:, None] < lengths
    fast = bptt.loss_and_grads(params, inputs, targets, state, cell=c, loss=f, mask=mask)
    slow = bptt.loss_and_grads_stepwise(params, inputs, targets, state, cell=c, loss=f, mask=mask)
    assert_same(fast, slow)
