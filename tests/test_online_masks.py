"""Masks and models in the online algorithms: RTRL, UORO and the online SGD learner.

The meaning is the BPTT family's (tests/test_masks.py): ``mask[t, b] = 0`` marks step t of
sequence b as padding, its loss is not counted (the sum is still divided by the batch B) and the
state does not advance through it. RTRL is exact, so a padded batch must give the mean of its
sequences run alone and full BPTT's masked gradient; UORO is random, so its cell gradient must be
unbiased for the masked BPTT gradient, while its loss, readout gradient and states are exact.
"""

from __future__ import annotations

import numpy as np
import pytest
from gradient_helpers import one_by_one, z_scores

import bptt
from bptt.algorithms.online import ARTBP, RTRL, TBPTT, UORO, online_sgd
from bptt.algorithms.rtrl import rtrl
from bptt.algorithms.stepwise import check_mask
from bptt.algorithms.uoro import uoro
from bptt.cells import state_size
from bptt.experiments.influence import influence_problem

CELLS = {"tanh": bptt.TANH, "gru": bptt.GRU, "lstm": bptt.LSTM}
T, D, H, V = 6, 3, 3, 4
LENGTHS = (6, 3, 1, 4)  # different, one of length 1, one full
B = len(LENGTHS)
CE = bptt.softmax_cross_entropy


def lengths_mask(lengths=LENGTHS, steps=T):
    return np.arange(steps)[:, None] < np.asarray(lengths)[None, :]


def problem(cell, *, batch=B, seed=0):
    rng = np.random.default_rng(seed)
    params = bptt.init_params(D, H, V, rng, weight_scale=0.5, cell=cell)
    for name, value in params.items():
        if name.startswith("b_"):
            params[name] = value + 0.1 * rng.standard_normal(value.shape)
    inputs = rng.standard_normal((T, batch, D))
    targets = rng.integers(0, V, size=(T, batch))
    h0 = 0.5 * np.tanh(rng.standard_normal((batch, state_size(cell, H))))
    return params, inputs, targets, h0


def with_garbage(inputs, targets, mask, seed=7):
    """Inputs and targets that differ from the given ones in every padded step, and only there."""
    rng = np.random.default_rng(seed)
    x = np.where(mask[..., None], inputs, 5.0 * rng.standard_normal(inputs.shape))
    y = np.where(mask, targets, (targets + 1 + rng.integers(0, V - 1, targets.shape)) % V)
    assert np.all(x[~mask] != inputs[~mask]) and np.all(y[~mask] != targets[~mask])
    return x, y


def assert_same(result, expected, tol=1e-12):
    """Loss, every gradient and the final state agree (relative error, float64)."""
    loss, grads, h_last = result
    loss_e, grads_e, h_last_e = expected
    assert bptt.relative_error(np.array(loss), np.array(loss_e)) < tol, (loss, loss_e)
    assert set(grads) == set(grads_e)
    for name in grads_e:
        assert bptt.relative_error(grads[name], grads_e[name]) < tol, name
    assert bptt.relative_error(h_last, h_last_e) < tol


def masked_full(params, inputs, targets, h0, cell, mask):
    return bptt.loss_and_grads_stepwise(params, inputs, targets, h0, cell=cell, loss=CE, mask=mask)


def run_rtrl(params, cell, **kw):
    def run(x, y, h, mask=None):
        r = rtrl(params, x, y, h, cell=cell, loss=CE, mask=mask, **kw)
        return r.loss, r.grads, r.h_last

    return run


# RTRL: exact ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", CELLS)
def test_rtrl_with_mask_equals_mean_of_one_by_one_and_masked_bptt(name):
    cell = CELLS[name]
    params, inputs, targets, h0 = problem(cell)
    run = run_rtrl(params, cell)
    batched = run(inputs, targets, h0, mask=lengths_mask())
    assert_same(batched, one_by_one(run, inputs, targets, h0, LENGTHS))
    assert_same(batched, masked_full(params, inputs, targets, h0, cell, lengths_mask()))


def holes_mask():
    """Padding inside the sequences too (not only at their ends): the state waits, then goes on."""
    mask = lengths_mask()
    mask[1:3, 0] = mask[1, 1] = mask[2:4, 3] = False
    return mask


@pytest.mark.parametrize("name", CELLS)
def test_rtrl_with_padding_inside_the_sequences_equals_masked_bptt(name):
    """A padded step in mid-sequence carries S unchanged: later losses still reach behind it."""
    cell = CELLS[name]
    params, inputs, targets, h0 = problem(cell)
    batched = run_rtrl(params, cell)(inputs, targets, h0, mask=holes_mask())
    assert_same(batched, masked_full(params, inputs, targets, h0, cell, holes_mask()))


@pytest.mark.parametrize("name", CELLS)
def test_rtrl_padded_inputs_and_targets_change_nothing(name):
    cell = CELLS[name]
    params, inputs, targets, h0 = problem(cell)
    mask = lengths_mask()
    garbage_x, garbage_y = with_garbage(inputs, targets, mask)
    run = run_rtrl(params, cell)
    assert_same(run(garbage_x, garbage_y, h0, mask=mask), run(inputs, targets, h0, mask=mask))


@pytest.mark.parametrize("dtype", [bool, np.int64, np.float64])
def test_rtrl_all_ones_mask_equals_no_mask_bit_for_bit(dtype):
    params, inputs, targets, h0 = problem(bptt.GRU)
    plain = rtrl(params, inputs, targets, h0, cell=bptt.GRU, loss=CE)
    ones = rtrl(
        params, inputs, targets, h0, cell=bptt.GRU, loss=CE, mask=np.ones((T, B), dtype=dtype)
    )
    assert ones.loss == plain.loss
    for name in plain.grads:
        np.testing.assert_array_equal(ones.grads[name], plain.grads[name])
    np.testing.assert_array_equal(ones.h_last, plain.h_last)
    np.testing.assert_array_equal(ones.step_losses, plain.step_losses)


def test_rtrl_mask_with_a_cells_own_tangent_step():
    """The influence-balancing cell advances S itself (step_tangent): padding in mid-stream."""
    problem_ = influence_problem(60)
    mask = np.ones((60, 1), dtype=bool)
    mask[10:25] = False  # padding inside the stream: the state waits, then goes on
    args = (problem_.params, problem_.inputs, problem_.targets, problem_.h0)
    kw = {"cell": problem_.cell, "loss": bptt.squared_error, "mask": mask}
    expected = bptt.loss_and_grads_stepwise(*args, **kw)
    result = rtrl(*args, **kw)
    assert_same((result.loss, result.grads, result.h_last), expected)
    unmasked = bptt.loss_and_grads_stepwise(*args, cell=problem_.cell, loss=bptt.squared_error)
    assert bptt.relative_error(unmasked.grads["theta"], expected.grads["theta"]) > 1e-3


def test_rtrl_step_losses_with_mask_and_updates_every_step():
    params, inputs, targets, h0 = problem(bptt.TANH)
    mask = lengths_mask()
    seen = []
    result = rtrl(
        params, inputs, targets, h0, loss=CE, mask=mask, update=lambda g, t: seen.append(t)
    )
    assert seen == list(range(1, T + 1))
    expected = masked_full(params, inputs, targets, h0, bptt.TANH, mask)
    assert bptt.relative_error(np.array(result.step_losses.sum()), np.array(expected.loss)) < 1e-13
    # at the last step only sequence 0 (of length T) counts, divided by B
    alone = rtrl(params, inputs[:, :1], targets[:, :1], h0[:1], loss=CE)
    assert result.step_losses[-1] == pytest.approx(alone.step_losses[-1] / B, rel=1e-12)


# UORO: unbiased, with exact states, losses and readout -----------------------------------------


UORO_LENGTHS = (5, 2, 4)  # short problems, so that 300 draws per cell take about a second


def uoro_problem(cell):
    params, inputs, targets, h0 = problem(cell, batch=len(UORO_LENGTHS), seed=3)
    mask = lengths_mask(UORO_LENGTHS)[:5]
    mask[1:3, 0] = mask[2, 2] = False  # padding inside sequences: h~ must wait correctly there
    return params, inputs[:5], targets[:5], h0, mask


@pytest.mark.parametrize("name", CELLS)
def test_uoro_with_mask_is_unbiased_for_masked_bptt(name):
    cell = CELLS[name]
    params, inputs, targets, h0, mask = uoro_problem(cell)
    expected = masked_full(params, inputs, targets, h0, cell, mask)
    runs = [
        uoro(params, inputs, targets, h0, cell=cell, loss=CE, mask=mask, rng=s) for s in range(300)
    ]
    for k in cell.param_names:
        z = z_scores(np.array([r.grads[k] for r in runs]), expected.grads[k])
        assert np.abs(z).max() < 5, (k, z)
    first = runs[0]
    for k in ("W_hy", "b_y"):  # the readout's gradient is exact
        assert bptt.relative_error(first.grads[k], expected.grads[k]) < 1e-12, k
    assert bptt.relative_error(np.array(first.loss), np.array(expected.loss)) < 1e-12
    assert bptt.relative_error(first.h_last, expected.h_last) < 1e-12


class RecordedSigns(np.random.Generator):
    """Records the sign arrays UORO draws (with ``choice``), or hands out given ones in order."""

    def __init__(self, signs=None):
        super().__init__(np.random.PCG64(11))
        self.replay = signs is not None
        self.signs = [] if signs is None else list(signs)

    def choice(self, *args, **kwargs):
        if self.replay:
            return self.signs.pop(0)
        self.signs.append(super().choice(*args, **kwargs))
        return self.signs[-1]


@pytest.mark.parametrize("name", CELLS)
def test_uoro_a_fully_padded_step_leaves_the_estimate_as_it_was(name):
    """A step where every example is padded changes no estimate h~ theta~^T: the rescaling by rho0
    is applied to h~ and theta~ alike. So the stream with that step left out, fed the same signs
    for the other steps, gives the same gradients (to UORO's EPSILON in the rho's). Leaving the
    padded rows of h~ unscaled would divide their estimate by rho0: off by percents here."""
    cell = CELLS[name]
    params, inputs, targets, h0 = problem(cell)
    mask = lengths_mask()
    mask[2] = False
    kw = {"cell": cell, "loss": CE}
    signs = RecordedSigns()
    padded = uoro(params, inputs, targets, h0, mask=mask, rng=signs, **kw)
    assert len(signs.signs) == T
    rest = [t for t in range(T) if t != 2]
    replay = RecordedSigns(signs.signs[:2] + signs.signs[3:])
    skipped = uoro(params, inputs[rest], targets[rest], h0, mask=mask[rest], rng=replay, **kw)
    assert_same(
        (padded.loss, padded.grads, padded.h_last),
        (skipped.loss, skipped.grads, skipped.h_last),
        1e-8,
    )


@pytest.mark.parametrize("name", CELLS)
def test_uoro_padded_row_keeps_its_state_after_its_last_valid_step(name):
    cell = CELLS[name]
    params, inputs, targets, h0 = problem(cell)
    result = uoro(params, inputs, targets, h0, cell=cell, loss=CE, mask=lengths_mask(), rng=1)
    for b, n in enumerate(LENGTHS):
        alone = bptt.forward_stepwise(params, inputs[:n, b : b + 1], h0[b : b + 1], cell=cell)[1]
        np.testing.assert_allclose(result.h_last[b], alone[-1, 0], rtol=0, atol=1e-14)


@pytest.mark.parametrize("name", CELLS)
def test_uoro_padded_inputs_and_targets_change_nothing(name):
    cell = CELLS[name]
    params, inputs, targets, h0 = problem(cell)
    mask = lengths_mask()
    garbage_x, garbage_y = with_garbage(inputs, targets, mask)

    def run(x, y):
        r = uoro(params, x, y, h0, cell=cell, loss=CE, mask=mask, rng=2)
        return r.loss, r.grads, r.h_last

    assert_same(run(garbage_x, garbage_y), run(inputs, targets))


def test_uoro_all_ones_mask_equals_no_mask_bit_for_bit():
    params, inputs, targets, h0 = problem(bptt.LSTM)
    kw = {"cell": bptt.LSTM, "loss": CE, "rng": 4}
    plain = uoro(params, inputs, targets, h0, **kw)
    ones = uoro(params, inputs, targets, h0, mask=np.ones((T, B)), **kw)
    assert ones.loss == plain.loss
    for name in plain.grads:
        np.testing.assert_array_equal(ones.grads[name], plain.grads[name])


# Models, and bad masks ------------------------------------------------------------------------


ALGORITHMS = {
    "rtrl": lambda p, x, y, h, **kw: rtrl(p, x, y, h, loss=CE, **kw),
    "uoro": lambda p, x, y, h, **kw: uoro(p, x, y, h, loss=CE, rng=0, **kw),
}


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_a_model_is_accepted_and_a_second_cell_refused(algorithm):
    run = ALGORITHMS[algorithm]
    params, inputs, targets, h0 = problem(bptt.GRU)
    model = bptt.Model(bptt.GRU, params)
    mask = lengths_mask()
    expected = run(params, inputs, targets, h0, cell=bptt.GRU, mask=mask)
    for result in (
        run(model, inputs, targets, h0, mask=mask),
        run(model, inputs, targets, h0, cell=bptt.GRU, mask=mask),  # its own cell: fine
    ):
        assert result.loss == expected.loss
        for name in expected.grads:
            np.testing.assert_array_equal(result.grads[name], expected.grads[name])
        np.testing.assert_array_equal(result.h_last, expected.h_last)
    with pytest.raises(ValueError, match="cell must be left out"):
        run(model, inputs, targets, h0, cell=bptt.TANH)


def test_a_dict_without_cell_means_the_tanh_cell():
    params, inputs, targets, h0 = problem(bptt.TANH)
    for run in ALGORITHMS.values():
        plain = run(params, inputs, targets, h0)
        tanh = run(params, inputs, targets, h0, cell=bptt.TANH)
        assert plain.loss == tanh.loss


BAD_MASKS = {
    "shape": np.ones((T, B + 1), dtype=bool),
    "batch first": np.ones((B, T), dtype=bool),
    "value 2": np.full((T, B), 2),
    "value 0.5": np.full((T, B), 0.5),
    "strings": np.full((T, B), "1"),
}


def _message(mask):
    with pytest.raises(ValueError, match="mask") as info:
        check_mask(mask, T, B)
    return str(info.value)


@pytest.mark.parametrize("case", BAD_MASKS)
def test_bad_masks_are_refused_with_check_masks_message(case):
    mask = BAD_MASKS[case]
    params, inputs, targets, h0 = problem(bptt.TANH)
    expected = _message(mask)
    calls = [
        lambda run=run: run(params, inputs, targets, h0, mask=mask) for run in ALGORITHMS.values()
    ]
    for method in (RTRL(), UORO(), TBPTT(2, 3), ARTBP(bptt.ConstantTruncation(0.5))):
        calls.append(
            lambda method=method: online_sgd(
                params, inputs, targets, method, learning_rate=0.1, h0=h0, mask=mask
            )
        )
    for call in calls:
        with pytest.raises(ValueError) as info:
            call()
        assert str(info.value) == expected


# The online learner passes the mask on -----------------------------------------------------------


METHODS = {
    "rtrl": RTRL(),
    "uoro": UORO(),
    "tbptt": TBPTT(2, 3),
    "artbp": ARTBP(bptt.ConstantTruncation(0.3)),
}


def _learn(params, inputs, targets, h0, method, rate=0.05, **kw):
    return online_sgd(
        params, inputs, targets, method, learning_rate=rate, h0=h0, loss=CE, rng=5, **kw
    )


@pytest.mark.parametrize("method", METHODS)
def test_online_sgd_with_mask_ignores_padded_inputs_and_targets(method):
    params, inputs, targets, h0 = problem(bptt.GRU)
    mask = lengths_mask()
    garbage_x, garbage_y = with_garbage(inputs, targets, mask)
    model = bptt.Model(bptt.GRU, params)
    clean = _learn(model, inputs, targets, h0, METHODS[method], mask=mask)
    dirty = _learn(model, garbage_x, garbage_y, h0, METHODS[method], mask=mask)
    np.testing.assert_allclose(dirty.step_losses, clean.step_losses, rtol=1e-12, atol=0)
    for name in params:
        np.testing.assert_allclose(dirty.params[name], clean.params[name], rtol=1e-12, atol=1e-15)
    assert any(not np.array_equal(clean.params[k], params[k]) for k in params)  # it learned


@pytest.mark.parametrize("method", ["rtrl", "tbptt", "artbp"])
def test_online_sgd_a_fully_padded_sequence_halves_the_gradient(method):
    """Row 1 all padding: the batch's gradient is row 0's divided by B = 2, at every update, so
    twice the learning rate retraces row 0 run alone (UORO's signs depend on B: left out)."""
    params, inputs, targets, h0 = problem(bptt.TANH, batch=2)
    mask = np.ones((T, 2), dtype=bool)
    mask[:, 1] = False
    batched = _learn(params, inputs, targets, h0, METHODS[method], rate=0.1, mask=mask)
    alone = _learn(params, inputs[:, :1], targets[:, :1], h0[:1], METHODS[method], rate=0.05)
    assert batched.update_steps.tolist() == alone.update_steps.tolist()
    for name in params:
        assert bptt.relative_error(batched.params[name], alone.params[name]) < 1e-12, name
    np.testing.assert_allclose(batched.step_losses, alone.step_losses / 2, rtol=1e-12)


def test_online_sgd_takes_a_model_and_refuses_a_second_cell():
    params, inputs, targets, h0 = problem(bptt.LSTM)
    model = bptt.Model(bptt.LSTM, params)
    run = _learn(model, inputs, targets, h0, RTRL())
    expected = _learn(params, inputs, targets, h0, RTRL(), cell=bptt.LSTM)
    for name in params:
        np.testing.assert_array_equal(run.params[name], expected.params[name])
    np.testing.assert_array_equal(model.params["W_hy"], params["W_hy"])  # trained a copy
    with pytest.raises(ValueError, match="cell must be left out"):
        _learn(model, inputs, targets, h0, RTRL(), cell=bptt.GRU)
