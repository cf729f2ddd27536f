"""Masks for sequences of different lengths in the cell-protocol algorithms.

One meaning everywhere: ``mask[t, b] = 0`` marks step t of sequence b as padding; its loss is not
counted (the sum is still divided by the batch B) and the state does not advance through it. A
batch of sequences padded at the end therefore gives the mean over b of running each sequence
alone on its own valid steps: the central test here, for the tanh cell, the GRU and the LSTM.
"""

from __future__ import annotations

import numpy as np
import pytest
from gradient_helpers import one_by_one

import bptt
from bptt.algorithms import stepwise
from bptt.cells import state_size

CELLS = {"tanh": bptt.TANH, "gru": bptt.GRU, "lstm": bptt.LSTM}
T, D, H, V = 6, 3, 4, 5
LENGTHS = (6, 3, 1, 4)  # different, one of length 1, one full
B = len(LENGTHS)


def lengths_mask(lengths=LENGTHS, steps=T):
    return np.arange(steps)[:, None] < np.asarray(lengths)[None, :]


def problem(cell, *, ids=False, squared=False, seed=0):
    rng = np.random.default_rng(seed)
    params = bptt.init_params(D, H, V, rng, weight_scale=0.5, cell=cell)
    for name, value in params.items():
        if name.startswith("b_"):
            params[name] = value + 0.1 * rng.standard_normal(value.shape)
    inputs = rng.integers(0, D, size=(T, B)) if ids else rng.standard_normal((T, B, D))
    targets = rng.standard_normal((T, B, V)) if squared else rng.integers(0, V, size=(T, B))
    h0 = 0.5 * np.tanh(rng.standard_normal((B, state_size(cell, H))))
    return params, inputs, targets, h0


def close(a, b, tol):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b)) / max(1e-300, float(np.max(np.abs(b))))) <= tol


def assert_same(result, expected, tol=1e-12):
    loss, grads, h_last = result
    loss_e, grads_e, h_last_e = expected
    assert close(loss, loss_e, tol), (loss, loss_e)
    for name in grads_e:
        assert close(grads[name], grads_e[name], tol), name
    assert close(h_last, h_last_e, tol)


def full(cell, loss=bptt.softmax_cross_entropy):
    def run(params, inputs, targets, h0, mask=None):
        return bptt.loss_and_grads_stepwise(
            params, inputs, targets, h0, cell=cell, loss=loss, mask=mask
        )

    return run


@pytest.mark.parametrize("name", CELLS)
@pytest.mark.parametrize("ids", [True, False])
def test_batched_with_lengths_equals_mean_of_one_by_one(name, ids):
    cell = CELLS[name]
    params, inputs, targets, h0 = problem(cell, ids=ids)
    run = full(cell)
    batched = run(params, inputs, targets, h0, mask=lengths_mask())
    alone = one_by_one(lambda x, y, h: run(params, x, y, h), inputs, targets, h0, LENGTHS)
    assert_same(batched, alone)


@pytest.mark.parametrize("name", CELLS)
def test_batched_regression_equals_mean_of_one_by_one(name):
    cell = CELLS[name]
    params, inputs, targets, h0 = problem(cell, squared=True, seed=1)
    run = full(cell, bptt.squared_error)
    batched = run(params, inputs, targets, h0, mask=lengths_mask())
    alone = one_by_one(lambda x, y, h: run(params, x, y, h), inputs, targets, h0, LENGTHS)
    assert_same(batched, alone)


def test_the_equality_test_catches_a_state_that_advances_through_padding(monkeypatch):
    """Shown once: if padding advanced the state, batched != one by one (the test has teeth)."""
    cell = bptt.TANH
    params, inputs, targets, h0 = problem(cell)
    run = full(cell)
    alone = one_by_one(lambda x, y, h: run(params, x, y, h), inputs, targets, h0, LENGTHS)
    monkeypatch.setattr(stepwise, "masked_update", lambda keep, new, old: new)
    broken = run(params, inputs, targets, h0, mask=lengths_mask())
    with pytest.raises(AssertionError):
        assert_same(broken, alone)
    assert not close(broken[2], alone[2], 1e-3)  # the final states differ grossly


@pytest.mark.parametrize("name", CELLS)
@pytest.mark.parametrize("dtype", [bool, np.int64, np.float64])
def test_all_ones_mask_equals_no_mask_bit_for_bit(name, dtype):
    cell = CELLS[name]
    params, inputs, targets, h0 = problem(cell)
    run = full(cell)
    plain = run(params, inputs, targets, h0)
    ones = run(params, inputs, targets, h0, mask=np.ones((T, B), dtype=dtype))
    assert ones[0] == plain[0]
    for key in plain[1]:
        np.testing.assert_array_equal(ones[1][key], plain[1][key])
    np.testing.assert_array_equal(ones[2], plain[2])


@pytest.mark.parametrize("name", CELLS)
def test_padded_inputs_and_targets_have_no_effect(name):
    cell = CELLS[name]
    params, inputs, targets, h0 = problem(cell)
    mask = lengths_mask()
    rng = np.random.default_rng(7)
    garbage_x = np.where(mask[..., None], inputs, 5.0 * rng.standard_normal(inputs.shape))
    garbage_y = np.where(mask, targets, (targets + 1 + rng.integers(0, V - 1, targets.shape)) % V)
    assert np.all(garbage_x[~mask] != inputs[~mask]) and np.all(garbage_y[~mask] != targets[~mask])
    run = full(cell)
    assert_same(
        run(params, garbage_x, garbage_y, h0, mask=mask),
        run(params, inputs, targets, h0, mask=mask),
        1e-14,
    )


def test_a_fully_padded_step_and_sequence_count_nothing():
    params, inputs, targets, h0 = problem(bptt.TANH)
    mask = lengths_mask((6, 3, 0, 4))  # sequence 2 is all padding
    loss, grads, h_last = bptt.loss_and_grads_stepwise(params, inputs, targets, h0, mask=mask)
    np.testing.assert_array_equal(h_last[2], h0[2])  # its state never moved
    keep = [0, 1, 3]
    sub = bptt.loss_and_grads_stepwise(
        params, inputs[:, keep], targets[:, keep], h0[keep], mask=mask[:, keep]
    )
    # the empty sequence adds 0 to the sum, which is still divided by B = 4, not 3
    assert close(loss, sub[0] * 3 / 4, 1e-13)
    for name in grads:
        assert close(grads[name], sub[1][name] * 3 / 4, 1e-13), name


@pytest.mark.parametrize("name", CELLS)
def test_tbptt_with_k_equal_T_and_mask_equals_full(name):
    cell = CELLS[name]
    params, inputs, targets, h0 = problem(cell)
    mask = lengths_mask()
    expected = full(cell)(params, inputs, targets, h0, mask=mask)
    result = bptt.tbptt(params, inputs, targets, T, T, h0=h0, cell=cell, mask=mask)
    assert_same((result.loss, result.grads, result.h_last), expected)
    assert close(result.step_losses.sum(), expected[0], 1e-13)


@pytest.mark.parametrize("name", CELLS)
def test_tbptt_one_by_one_when_lengths_fill_the_windows(name):
    """With lengths that are multiples of k1 every sequence's windows are its own: exact."""
    cell = CELLS[name]
    params, inputs, targets, h0 = problem(cell)
    lengths = (6, 2, 4, 2)

    def run(x, y, h, mask=None):
        r = bptt.tbptt(params, x, y, 2, 3, h0=h, cell=cell, mask=mask)
        return r.loss, r.grads, r.h_last

    batched = run(inputs, targets, h0, mask=lengths_mask(lengths))
    assert_same(batched, one_by_one(run, inputs, targets, h0, lengths))


@pytest.mark.parametrize("name", CELLS)
def test_artbp_with_mask(name):
    cell = CELLS[name]
    params, inputs, targets, h0 = problem(cell)
    mask = lengths_mask()

    def artbp(c, x=inputs, y=targets, h=h0, m=mask):
        r = bptt.artbp(params, x, y, bptt.ConstantTruncation(c), rng=0, h0=h, cell=cell, mask=m)
        return r.loss, r.grads, r.h_last

    # never cut: full BPTT with the mask
    assert_same(artbp(0.0), full(cell)(params, inputs, targets, h0, mask=mask))
    # cut after every step: TBPTT(1, 1) with the mask, and the mean of one by one
    r = bptt.tbptt(params, inputs, targets, 1, 1, h0=h0, cell=cell, mask=mask)
    assert_same(artbp(1.0), (r.loss, r.grads, r.h_last))
    alone = one_by_one(lambda x, y, h: artbp(1.0, x, y, h, None), inputs, targets, h0, LENGTHS)
    assert_same(artbp(1.0), alone)


@pytest.mark.parametrize("name", CELLS)
@pytest.mark.parametrize(("slots", "memorize"), [(1, "hidden"), (3, "hidden"), (3, "internal")])
def test_checkpointed_with_mask_equals_full(name, slots, memorize):
    cell = CELLS[name]
    params, inputs, targets, h0 = problem(cell, ids=True)
    mask = lengths_mask()
    expected = full(cell)(params, inputs, targets, h0, mask=mask)
    r = bptt.loss_and_grads_checkpointed(
        params, inputs, targets, h0, slots=slots, memorize=memorize, cell=cell, mask=mask
    )
    assert_same((r.loss, r.grads, r.h_last), expected)


BAD_MASKS = {
    "shape": (np.ones((T, B + 1), dtype=bool), "(T, B) = (6, 4)"),
    "batch first": (np.ones((B, T), dtype=bool), "time-major"),
    "rank": (np.ones(T, dtype=bool), "(6,)"),
    "value 2": (np.full((T, B), 2), "only 0 and 1"),
    "value 0.5": (np.full((T, B), 0.5), "0.5"),
    "nan": (np.full((T, B), np.nan), "only 0 and 1"),
    "strings": (np.full((T, B), "1"), "0/1"),
    "object": (np.full((T, B), None), "0/1"),
}


def _calls(params, inputs, targets, mask):
    yield lambda: bptt.loss_and_grads_stepwise(params, inputs, targets, mask=mask)
    yield lambda: bptt.forward_stepwise(params, inputs, mask=mask)
    yield lambda: bptt.tbptt(params, inputs, targets, 2, 3, mask=mask)
    yield lambda: bptt.artbp(
        params, inputs, targets, bptt.ConstantTruncation(0.5), rng=0, mask=mask
    )
    yield lambda: bptt.loss_and_grads_checkpointed(params, inputs, targets, slots=2, mask=mask)


@pytest.mark.parametrize("case", BAD_MASKS)
def test_bad_masks_are_rejected_naming_mask(case):
    mask, expected = BAD_MASKS[case]
    params, inputs, targets, _ = problem(bptt.TANH, ids=True)
    for call in _calls(params, inputs, targets, mask):
        with pytest.raises(ValueError, match="mask") as info:
            call()
        assert expected in str(info.value), str(info.value)


def test_backward_stepwise_rejects_a_bad_mask():
    params, inputs, _, _ = problem(bptt.TANH)
    outputs, hs, caches = bptt.forward_stepwise(params, inputs)
    with pytest.raises(ValueError, match="mask must have shape"):
        bptt.backward_stepwise(params, hs, caches, np.zeros_like(outputs), mask=np.ones((T, 1)))
