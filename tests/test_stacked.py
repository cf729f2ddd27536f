"""Stacked layers as one cell (bptt/cells/stack.py), run by every algorithm unchanged."""

from __future__ import annotations

import numpy as np
import pytest
from gradient_helpers import numerical_grads, rel

import bptt
from bptt.cells import StackedCell, depth_time_gradient_norms, hidden, state_size
from bptt.cells.stack import stack
from bptt.readout import readout_backward

T, B, D, H, V = 5, 2, 3, 4, 3
MIXED = {
    "tanh+gru": (bptt.TANH, bptt.GRU),
    "lstm+tanh": (bptt.LSTM, bptt.TANH),
    "tanh+gru+lstm": (bptt.TANH, bptt.GRU, bptt.LSTM),
    "lstm+lstm+gru": (bptt.LSTM, bptt.LSTM, bptt.GRU),
}


def problem(cell, *, seed=0, ids=False, squared=False, batch=B):
    rng = np.random.default_rng(seed)
    params = bptt.init_params(D, H, V, rng, weight_scale=0.6, cell=cell)
    for name, value in params.items():
        if "b_" in name:
            params[name] = value + 0.1 * rng.standard_normal(value.shape)
    inputs = rng.integers(0, D, size=(T, batch)) if ids else rng.standard_normal((T, batch, D))
    targets = rng.standard_normal((T, batch, V)) if squared else rng.integers(0, V, size=(T, batch))
    h0 = 0.5 * np.tanh(rng.standard_normal((batch, state_size(cell, H))))
    return params, inputs, targets, h0


def test_init_params_names_shapes_and_state():
    cell = stack([bptt.TANH, bptt.GRU, bptt.LSTM])
    assert cell.name == "stack(tanh, gru, lstm)" and cell.depth == 3
    params = bptt.init_params(D, H, V, 0, cell=cell)
    assert list(params) == [*cell.param_names, "W_hy", "b_y"]
    assert params["l0.W_xh"].shape == (H, D)  # layer 0 reads x
    assert params["l1.W_xz"].shape == (H, H) and params["l2.W_xi"].shape == (H, H)
    assert params["W_hy"].shape == (V, H)
    np.testing.assert_array_equal(params["l2.b_f"], 1.0)  # the LSTM layer's own forget bias
    assert state_size(cell, H) == H + H + 2 * H
    assert bptt.check_params(params, cell) == (D, H, V)
    assert stack(bptt.GRU, 3) == StackedCell((bptt.GRU,) * 3)
    assert isinstance(cell, bptt.Cell) and hash(cell) == hash(
        stack([bptt.TANH, bptt.GRU, bptt.LSTM])
    )


@pytest.mark.parametrize("name", ["tanh", "gru", "lstm"])
def test_one_layer_stack_equals_the_plain_cell(name):
    cell = {"tanh": bptt.TANH, "gru": bptt.GRU, "lstm": bptt.LSTM}[name]
    params, inputs, targets, h0 = problem(cell)
    one = stack(cell, 1)
    stacked = {("l0." + k if k in cell.param_names else k): v for k, v in params.items()}
    loss, grads, h_last = bptt.loss_and_grads_stepwise(params, inputs, targets, h0, cell=cell)
    loss_s, grads_s, h_last_s = bptt.loss_and_grads_stepwise(stacked, inputs, targets, h0, cell=one)
    assert abs(loss_s - loss) <= 1e-15 * abs(loss)
    for k, g in grads.items():
        assert np.max(np.abs(grads_s["l0." + k if k in cell.param_names else k] - g)) <= 1e-15
    assert np.max(np.abs(h_last_s - h_last)) <= 1e-15
    # the same draw from one generator as the plain cell
    drawn = bptt.init_params(D, H, V, 3, cell=one)
    plain = bptt.init_params(D, H, V, 3, cell=cell)
    for k, v in plain.items():
        np.testing.assert_array_equal(drawn["l0." + k if k in cell.param_names else k], v)


@pytest.mark.parametrize("mix", ["tanh+gru", "tanh+gru+lstm"])
def test_full_bptt_gradient_matches_finite_differences_entry_by_entry(mix):
    """2 and 3 layers of mixed cells, every entry, against the tests' own centred differences."""
    cell = stack(MIXED[mix])
    params, inputs, targets, h0 = problem(cell, seed=2)

    def f(p):
        return bptt.loss_and_grads_stepwise(p, inputs, targets, h0, cell=cell)

    _, grads, _ = f(params)
    # eps = 1e-5: some entries are ~1e-3, where the rounding of eps = 1e-6 reaches 1e-7
    numerical = numerical_grads(lambda p: f(p)[0], params, eps=1e-5)
    worst = max(rel(grads[k], numerical[k]) for k in params)
    assert worst < 1e-7, worst


@pytest.mark.parametrize("mix", MIXED)
@pytest.mark.parametrize("squared", [False, True])
def test_full_bptt_passes_gradcheck(mix, squared):
    cell = stack(MIXED[mix])
    params, inputs, targets, h0 = problem(cell, seed=2, squared=squared)
    loss = bptt.squared_error if squared else bptt.softmax_cross_entropy

    def f(p):
        return bptt.loss_and_grads_stepwise(p, inputs, targets, h0, cell=cell, loss=loss)

    report = bptt.gradcheck(f, params, max_entries=4)
    assert report.passed and report.max_rel_error < 1e-7, report


@pytest.mark.parametrize("mix", MIXED)
def test_truncated_checkpointed_artbp_and_rtrl_run_the_stack_unchanged(mix):
    cell = stack(MIXED[mix])
    params, inputs, targets, h0 = problem(cell, seed=3, ids=True)
    loss, grads, h_last = bptt.loss_and_grads_stepwise(params, inputs, targets, h0, cell=cell)

    def same(result, tol=1e-13):
        assert abs(result.loss - loss) <= tol * abs(loss)
        for k, g in grads.items():
            assert rel(result.grads[k], g) <= tol, k
        assert np.max(np.abs(result.h_last - h_last)) <= tol

    same(bptt.tbptt(params, inputs, targets, T, T, h0=h0, cell=cell))
    same(bptt.loss_and_grads_checkpointed(params, inputs, targets, h0, slots=2, cell=cell))
    same(bptt.artbp(params, inputs, targets, bptt.ConstantTruncation(0.0), rng=0, h0=h0, cell=cell))
    squared_targets = np.random.default_rng(4).standard_normal((T, B, V))
    loss, grads, h_last = bptt.loss_and_grads_stepwise(
        params, inputs, squared_targets, h0, cell=cell, loss=bptt.squared_error
    )
    same(bptt.rtrl(params, inputs, squared_targets, cell=cell, h0=h0), 1e-10)


def test_masks_on_a_stack_equal_one_by_one():
    cell = stack([bptt.GRU, bptt.LSTM])
    lengths = (5, 2)
    params, inputs, targets, h0 = problem(cell, seed=5)
    mask = np.arange(T)[:, None] < np.asarray(lengths)[None, :]
    loss, grads, h_last = bptt.loss_and_grads_stepwise(
        params, inputs, targets, h0, cell=cell, mask=mask
    )
    alone = [
        bptt.loss_and_grads_stepwise(
            params, inputs[:n, b : b + 1], targets[:n, b : b + 1], h0[b : b + 1], cell=cell
        )
        for b, n in enumerate(lengths)
    ]
    assert abs(loss - np.mean([a[0] for a in alone])) <= 1e-12 * abs(loss)
    for k in grads:
        assert rel(grads[k], np.mean([a[1][k] for a in alone], axis=0)) <= 1e-12, k
    assert np.max(np.abs(h_last - np.concatenate([a[2] for a in alone]))) <= 1e-12


def _perturbed_last_loss(cell, params, inputs, targets, h0, where, v):
    """Last-step squared error with ``v`` added to layer ``l``'s state at step ``t`` (1-based).

    An independent forward loop over the layers, so the perturbation reaches both the layer
    above at step t (depth) and the same layer at step t + 1 (time).
    """
    t_hit, l_hit = where
    bounds = cell.bounds(H)
    states = [h0[:, a:b].copy() for a, b in bounds]
    for t in range(1, T + 1):
        below = inputs[t - 1]
        for i, layer in enumerate(cell.layers):
            states[i], _ = layer.step(cell.layer_params(params, i), states[i], below)
            if (t, i) == (t_hit, l_hit):
                states[i] = states[i] + v
            below = hidden(layer, states[i])
    outputs = below @ params["W_hy"].T + params["b_y"]
    return bptt.squared_error(outputs, targets)[0]


@pytest.mark.parametrize("mix", ["tanh+tanh+tanh", "tanh+gru+lstm"])
def test_depth_time_gradients_match_finite_differences(mix):
    layers = (bptt.TANH,) * 3 if mix == "tanh+tanh+tanh" else MIXED[mix]
    cell = stack(layers)
    params, inputs, _, h0 = problem(cell, seed=6)
    last_targets = np.random.default_rng(7).standard_normal((B, V))
    outputs, hs, caches = bptt.forward_stepwise(params, inputs, h0, cell=cell)
    _, dlast = bptt.squared_error(outputs[-1], last_targets)
    dh, _ = readout_backward(params, hidden(cell, hs[-1]), dlast)
    dstate = cell.hidden_backward(dh)
    norms = depth_time_gradient_norms(cell, params, caches, dstate)
    assert norms.shape == (T + 1, cell.depth, B)
    # the vectors themselves, by the same recursion, checked against finite differences
    deltas, d = {}, dstate
    for t in range(T, 0, -1):
        d, _, _, per_layer = cell.backward_layers(params, caches[t - 1], d)
        for i, delta in enumerate(per_layer):
            deltas[t, i] = delta
            np.testing.assert_allclose(norms[T - t, i], np.linalg.norm(delta, axis=1), rtol=1e-14)
    rng = np.random.default_rng(8)
    eps = 1e-6
    for t, i in [(T, 0), (T, cell.depth - 1), (T - 1, 1), (2, 0), (1, cell.depth - 1)]:
        v = rng.standard_normal(deltas[t, i].shape)
        plus = _perturbed_last_loss(cell, params, inputs, last_targets, h0, (t, i), eps * v)
        minus = _perturbed_last_loss(cell, params, inputs, last_targets, h0, (t, i), -eps * v)
        numerical = (plus - minus) / (2 * eps)
        analytic = float(np.sum(deltas[t, i] * v))
        assert abs(numerical - analytic) <= 1e-7 * max(1e-8, abs(analytic) + abs(numerical))
    # lag T: the initial state, the dL/dh_0 of backward_stepwise
    doutputs = np.zeros_like(outputs)
    doutputs[-1] = dlast
    _, dh0 = bptt.backward_stepwise(params, hs, caches, doutputs, cell=cell)
    expected = [np.linalg.norm(dh0[:, a:b], axis=1) for a, b in cell.bounds(H)]
    np.testing.assert_allclose(norms[T], expected, rtol=1e-14)


@pytest.mark.parametrize(
    ("call", "error", "text"),
    [
        (lambda: stack([]), ValueError, "at least one cell"),
        (lambda: stack(bptt.TANH), TypeError, "layers must be given"),
        (lambda: stack(bptt.TANH, 0), ValueError, "layers must be an integer >= 1"),
        (lambda: stack(bptt.TANH, 2.0), TypeError, "layers must be an integer"),
        (lambda: stack([bptt.TANH], 2), TypeError, "layers must not be given"),
        (lambda: stack("tanh", 2), TypeError, "cell must implement"),
        (lambda: stack([bptt.TANH, "gru"]), TypeError, "layers[1]"),
        (lambda: StackedCell(bptt.TANH), TypeError, "sequence of cells"),
    ],
)
def test_bad_stacks_are_rejected(call, error, text):
    with pytest.raises(error) as info:
        call()
    assert text in str(info.value)


def test_a_wrong_initial_state_names_h0_and_the_width():
    cell = stack([bptt.TANH, bptt.LSTM])
    params, inputs, targets, _ = problem(cell)
    with pytest.raises(ValueError, match=r"h0 must have shape \(2, 12\)"):
        bptt.loss_and_grads_stepwise(params, inputs, targets, np.zeros((B, H)), cell=cell)
    with pytest.raises(ValueError, match="multiple of 3 columns"):
        cell.hidden(np.zeros((B, 7)))
    with pytest.raises(TypeError, match="StackedCell"):
        depth_time_gradient_norms(bptt.TANH, params, [None], np.zeros((B, 3 * H)))
