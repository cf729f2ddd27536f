"""Tests of bptt.experiments.worked_example: the scalar trace, per-step contributions, path sums."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pytest

import bptt
from bptt.experiments.plotting import COLUMN_WIDTH_IN, assert_legible, draw_unrolled_graph
from bptt.experiments.worked_example import (
    ScalarTrace,
    draw_gradient_flow,
    numerical_jacobian,
    per_step_contributions,
    plot_gradient_decay,
    steps_to_fall_below,
    total_derivative_by_paths,
    trace_scalar_rnn,
)

WEIGHTS = {"w_xh": 0.5, "w_hh": 0.8, "b_h": 0.1, "w_hy": 1.2, "b_y": -0.1}


def test_trace_one_step_by_hand():
    # T = 1: everything by hand.
    tr = trace_scalar_rnn(0.5, 0.8, 0.1, 1.2, -0.1, [2.0], [0.3], h0=0.25)
    a = 0.8 * 0.25 + 0.5 * 2.0 + 0.1
    h = math.tanh(a)
    y = 1.2 * h - 0.1
    g = 1.2 * (y - 0.3) * (1 - h * h)
    assert tr.pre == pytest.approx((a,), abs=1e-15)
    assert tr.h == pytest.approx((0.25, h), abs=1e-15)
    # the output is o_t, the target y_t (the book's notation)
    assert tr.outputs == pytest.approx((y,), abs=1e-15)
    assert tr.doutputs == pytest.approx((y - 0.3,), abs=1e-15)
    assert tr.loss == pytest.approx(0.5 * (y - 0.3) ** 2, abs=1e-15)
    assert tr.dh_future == (0.0,)
    assert tr.grads["W_hh"] == pytest.approx(g * 0.25, abs=1e-15)
    assert tr.grads["W_xh"] == pytest.approx(g * 2.0, abs=1e-15)
    assert tr.grads["b_h"] == pytest.approx(g, abs=1e-15)
    assert tr.grads["W_hy"] == pytest.approx((y - 0.3) * h, abs=1e-15)
    assert tr.grads["b_y"] == pytest.approx(y - 0.3, abs=1e-15)
    assert tr.dh0 == pytest.approx(0.8 * g, abs=1e-15)


def test_trace_two_steps_recursion():
    tr = trace_scalar_rnn(**WEIGHTS, xs=[1.0, -0.5], targets=[0.2, 0.4], h0=0.0)
    h1 = math.tanh(0.5 * 1.0 + 0.1)
    h2 = math.tanh(0.8 * h1 + 0.5 * -0.5 + 0.1)
    d2 = 1.2 * (1.2 * h2 - 0.1 - 0.4)
    g2 = d2 * (1 - h2**2)
    d1 = 1.2 * (1.2 * h1 - 0.1 - 0.2) + 0.8 * g2
    assert tr.delta == pytest.approx((d1, d2), rel=1e-14)
    assert tr.dh_future[0] == pytest.approx(0.8 * g2, rel=1e-14)
    # h_0 = 0: the first step contributes nothing to W_hh.
    assert tr.contributions["W_hh"][0] == 0.0
    assert tr.steps == 2
    assert math.prod(tr.step_factors) == pytest.approx(tr.mean_factor**2, rel=1e-14)


@pytest.mark.parametrize("h0", [0.0, 0.7])
@pytest.mark.parametrize("T", [1, 3, 6])
def test_trace_agrees_with_package_and_numerical(T, h0):
    rng = np.random.default_rng(T)
    xs = rng.standard_normal(T).tolist()
    targets = rng.standard_normal(T).tolist()
    tr = trace_scalar_rnn(**WEIGHTS, xs=xs, targets=targets, h0=h0)
    assert isinstance(tr, ScalarTrace)
    params = tr.params()

    def f(p):
        return bptt.loss_and_grads_stepwise(
            p, tr.inputs(), tr.target_array(), tr.h0_array(), loss=bptt.squared_error
        )

    loss, grads, h_last = f(params)
    assert loss == pytest.approx(tr.loss, rel=1e-13)
    assert h_last[0, 0] == pytest.approx(tr.h[-1], rel=1e-14)
    for name, g in tr.grad_arrays().items():
        assert bptt.relative_error(grads[name], g) < 1e-12, name
    report = bptt.gradcheck(f, params, grads=tr.grad_arrays())
    assert report.passed, str(report)
    # dL/dh_0 from the vectorised backward pass, with the squared-error output gradient.
    outputs, cache = bptt.rnn_forward(params, tr.inputs(), tr.h0_array())
    _, doutputs = bptt.squared_error(outputs, tr.target_array())
    _, dh0 = bptt.rnn_backward(params, cache, doutputs)
    assert dh0[0, 0] == pytest.approx(tr.dh0, rel=1e-12)


def test_trace_params_shapes_and_sums():
    tr = trace_scalar_rnn(**WEIGHTS, xs=[1.0, 0.5, -1.0], targets=[0.5, 0.3, -0.2])
    shapes = {k: v.shape for k, v in tr.params().items()}
    assert shapes == {"W_xh": (1, 1), "W_hh": (1, 1), "b_h": (1,), "W_hy": (1, 1), "b_y": (1,)}
    bptt.check_params(tr.params())
    for name, parts in tr.contributions.items():
        assert tr.grads[name] == pytest.approx(sum(parts), rel=1e-14)
    assert tr.inputs().shape == (3, 1, 1)
    assert tr.target_array().shape == (3, 1, 1)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"xs": [1.0, 2.0], "targets": [1.0]}, ValueError, "targets must have one value per input"),
        ({"xs": [], "targets": []}, ValueError, "xs must hold at least one value"),
        ({"xs": [1.0, float("nan")], "targets": [1.0, 2.0]}, ValueError, r"xs\[1\] must be finite"),
        ({"xs": "abc", "targets": [1.0]}, TypeError, "xs must be a sequence"),
        ({"xs": [[1.0]], "targets": [1.0]}, ValueError, "xs must be one-dimensional"),
        ({"xs": [1.0], "targets": [1.0], "h0": None}, TypeError, "h0 must be a real number"),
    ],
)
def test_trace_bad_input(kwargs, error, match):
    with pytest.raises(error, match=match):
        trace_scalar_rnn(**WEIGHTS, **kwargs)


def test_trace_bad_weight():
    with pytest.raises(TypeError, match="w_hh must be a real number"):
        trace_scalar_rnn(0.5, "0.8", 0.1, 1.2, 0.0, [1.0], [1.0])
    with pytest.raises(ValueError, match="w_xh must be finite"):
        trace_scalar_rnn(float("inf"), 0.8, 0.1, 1.2, 0.0, [1.0], [1.0])


def _random_model(rng, D, H, V, T, B):
    params = bptt.init_params(D, H, V, rng=rng, weight_scale=0.5)
    params["b_h"] = rng.standard_normal(H) * 0.1
    params["b_y"] = rng.standard_normal(V) * 0.1
    inputs = rng.standard_normal((T, B, D))
    targets = rng.integers(0, V, size=(T, B))
    h0 = rng.standard_normal((B, H)) * 0.5
    return params, inputs, targets, h0


@pytest.mark.parametrize(("D", "H", "V", "T", "B"), [(3, 4, 5, 6, 2), (1, 1, 2, 1, 1)])
def test_per_step_contributions_sum_to_package_gradients(D, H, V, T, B):
    rng = np.random.default_rng(1)
    params, inputs, targets, h0 = _random_model(rng, D, H, V, T, B)
    steps = per_step_contributions(params, inputs, targets, h0)
    loss, grads, _ = bptt.loss_and_grads(params, inputs, targets, h0)
    assert steps.loss == pytest.approx(loss, rel=1e-13)
    assert len(steps.contributions) == T
    totals = steps.totals()
    assert list(totals) == list(params)
    for name in params:
        assert bptt.relative_error(totals[name], grads[name]) < 1e-12, name
    outputs, cache = bptt.rnn_forward(params, inputs, h0)
    _, doutputs = bptt.softmax_cross_entropy(outputs, targets)
    _, dh0 = bptt.rnn_backward(params, cache, doutputs)
    assert bptt.relative_error(steps.dh0, dh0) < 1e-12
    assert steps.deltas.shape == steps.direct.shape == (T, B, H)
    # The last step has nothing flowing back into it: delta_T is its direct term.
    np.testing.assert_array_equal(steps.deltas[-1], steps.direct[-1])


def test_per_step_contributions_squared_error():
    rng = np.random.default_rng(2)
    params, inputs, _, h0 = _random_model(rng, 2, 3, 2, 4, 3)
    targets = rng.standard_normal((4, 3, 2))
    steps = per_step_contributions(params, inputs, targets, h0, loss=bptt.squared_error)
    _, grads, _ = bptt.loss_and_grads_stepwise(params, inputs, targets, h0, loss=bptt.squared_error)
    for name in params:
        assert bptt.relative_error(steps.totals()[name], grads[name]) < 1e-12


def test_per_step_contributions_bad_targets():
    rng = np.random.default_rng(3)
    params, inputs, targets, _ = _random_model(rng, 2, 3, 4, 5, 2)
    with pytest.raises(ValueError, match="targets must have leading shape"):
        per_step_contributions(params, inputs, targets[:-1])


@pytest.mark.parametrize(("H", "T", "B"), [(1, 1, 1), (3, 5, 2), (4, 7, 1)])
def test_total_derivative_by_paths_matches_backward(H, T, B):
    rng = np.random.default_rng(H + T)
    params, inputs, targets, h0 = _random_model(rng, 2, H, 3, T, B)
    steps = per_step_contributions(params, inputs, targets, h0)
    for k in range(1, T + 1):
        paths = total_derivative_by_paths(params, steps.hs, steps.doutputs, k)
        assert bptt.relative_error(paths, steps.deltas[k - 1]) < 1e-12, k
    paths0 = total_derivative_by_paths(params, steps.hs, steps.doutputs, 0)
    assert bptt.relative_error(paths0, steps.dh0) < 1e-12


def test_total_derivative_by_paths_bad_k():
    rng = np.random.default_rng(4)
    params, inputs, targets, _ = _random_model(rng, 2, 3, 3, 4, 1)
    steps = per_step_contributions(params, inputs, targets)
    with pytest.raises(ValueError, match=r"k must be in \[0, T\] = \[0, 4\], got 5"):
        total_derivative_by_paths(params, steps.hs, steps.doutputs, 5)
    with pytest.raises(ValueError, match="k must be an integer >= 0"):
        total_derivative_by_paths(params, steps.hs, steps.doutputs, -1)
    with pytest.raises(ValueError, match="doutputs must have shape"):
        total_derivative_by_paths(params, steps.hs, steps.doutputs[:-1], 1)


def test_numerical_jacobian_of_linear_map():
    A = np.array([[1.0, 2.0, 0.5], [-3.0, 0.0, 4.0]])
    J = numerical_jacobian(lambda v: A @ v, np.array([0.3, -0.2, 1.0]))
    assert J.shape == (2, 3)
    np.testing.assert_allclose(J, A, atol=1e-9)
    with pytest.raises(TypeError, match="fn must be callable"):
        numerical_jacobian(3, np.zeros(2))
    with pytest.raises(TypeError, match="x must be a floating-point array"):
        numerical_jacobian(lambda v: v, np.zeros(2, dtype=int))


# Factors whose power lands exactly on 0.01 (0.1, 0.01 ** 0.5...) are left out: there "below" and
# the ceiling formula (which counts "at or below") differ by rounding of the last bit.
@pytest.mark.parametrize("factor", [0.2, 0.5, 0.5907, 0.9, 0.99])
def test_steps_to_fall_below(factor):
    n = steps_to_fall_below(factor)
    assert factor**n < 0.01 <= factor ** (n - 1)
    assert n == math.ceil(math.log(0.01) / math.log(factor))


def test_steps_to_fall_below_bad_input():
    with pytest.raises(ValueError, match=r"factor must be in \(0, 1\)"):
        steps_to_fall_below(1.0)
    with pytest.raises(ValueError, match="factor must be a finite number > 0"):
        steps_to_fall_below(0.0)
    with pytest.raises(ValueError, match=r"fraction must be in \(0, 1\)"):
        steps_to_fall_below(0.5, 2.0)


def test_figures_have_labels():
    fig = plot_gradient_decay([0.5, 0.9], steps=10, highlight=0.6)
    ax = fig.axes[0]
    assert ax.get_xlabel() and ax.get_ylabel() and ax.get_yscale() == "log"
    assert len(ax.get_lines()) >= 3
    plt.close(fig)
    fig = draw_gradient_flow(2)
    assert fig.axes
    plt.close(fig)
    with pytest.raises(ValueError, match="factors must be > 0"):
        plot_gradient_decay([0.5, -1.0])
    with pytest.raises(TypeError, match="steps must be an integer"):
        draw_gradient_flow(2.5)


@pytest.mark.parametrize("folded", [True, False])
@pytest.mark.parametrize("steps", [1, 2, 4, 6])
def test_unrolled_graph_fits_the_column_and_is_legible(steps, folded):
    fig = draw_unrolled_graph(steps, folded=folded)
    assert fig.get_size_inches()[0] <= COLUMN_WIDTH_IN + 1e-12
    assert_legible(fig)
    plt.close(fig)


@pytest.mark.parametrize("steps", [1, 3, 5])
def test_gradient_flow_fits_the_column_and_is_legible(steps):
    fig = draw_gradient_flow(steps)
    assert fig.get_size_inches()[0] <= COLUMN_WIDTH_IN + 1e-12
    assert_legible(fig)
    plt.close(fig)


def test_gradient_decay_is_a_book_figure_and_legible():
    fig = plot_gradient_decay([0.3, 0.5, 0.7, 0.9, 0.99], steps=30, highlight=0.59)
    assert COLUMN_WIDTH_IN - 0.2 <= fig.get_size_inches()[0] <= COLUMN_WIDTH_IN
    assert_legible(fig)
    plt.close(fig)
