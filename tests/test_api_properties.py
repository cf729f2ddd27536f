"""Property tests of the array entry points: any input ends in a right result or a clear error.

Hypothesis draws shapes, dtypes and values (NaN and inf included), mostly near valid input so
that both outcomes are exercised. Every call must end either in a result that satisfies a simple
invariant (the vectorised loss equals the step-by-step one, probabilities sum to one, clipping
bounds every entry...) or in a ``ValueError``/``TypeError`` whose message is one line and names
the argument at fault. Nothing else (no ``IndexError``, no ``AttributeError``, no NaN result).
"""

from __future__ import annotations

import os
import tempfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir
from hypothesis.extra import numpy as hnp

import bptt

# Hypothesis keeps caches in a folder; keep it out of the working tree.
set_hypothesis_home_dir(os.path.join(tempfile.gettempdir(), "bptt-hypothesis"))
FAST = settings(max_examples=60, deadline=None, database=None)  # no .hypothesis folder
DTYPES = st.sampled_from([np.float64, np.float64, np.float32, np.int64, np.bool_, np.complex128])


def clear(error: BaseException, *names: str) -> None:
    """A ``ValueError``/``TypeError`` whose one-line message names one of ``names``."""
    assert isinstance(error, ValueError | TypeError), f"{type(error).__name__}: {error}"
    message = str(error)
    assert "\n" not in message, message
    assert any(name in message for name in names), message


def arrays(shape, dtype, *, low=-3, high=3):
    """Arrays of the given shape and dtype, with NaN and inf among the float values."""
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        elements = st.floats(allow_nan=True, allow_infinity=True, width=dtype.itemsize * 8)
        elements = st.one_of(st.floats(-3, 3, width=dtype.itemsize * 8), elements)
    elif dtype.kind == "i":
        elements = st.integers(low, high)
    else:
        elements = None
    return hnp.arrays(dtype, shape, elements=elements)


shapes = hnp.array_shapes(min_dims=0, max_dims=3, max_side=4)


def any_dtype(shape, low=-1, high=4):
    return DTYPES.flatmap(lambda dtype: arrays(shape, dtype, low=low, high=high))


@st.composite
def rnn_problems(draw):
    """A model, and inputs, targets and h0 that are valid, nearly valid, or anything at all."""
    D, H, V, T, B = (draw(st.integers(1, 4)) for _ in range(5))
    params = bptt.init_params(
        D, H, V, rng=draw(st.integers(0, 2**16)), weight_scale=draw(st.floats(0.01, 2.0))
    )
    valid_inputs = st.one_of(
        arrays((T, B), np.int64, low=-1, high=D),  # ids, sometimes out of range
        arrays((T, B, D), np.float64),  # floats, sometimes NaN or inf
    )
    any_inputs = st.builds(
        lambda shape, dtype: (shape, dtype), hnp.array_shapes(max_dims=4, max_side=4), DTYPES
    ).flatmap(lambda sd: arrays(*sd))
    inputs = draw(st.one_of(valid_inputs, valid_inputs, any_inputs))
    targets = draw(
        st.one_of(
            arrays((T, B), np.int64, low=0, high=V - 1),
            arrays((T, B), np.int64, low=-1, high=V),
            arrays((B, T), np.int64, low=0, high=V - 1),  # batch-first
            arrays((T, B), np.float64),
        )
    )
    h0 = draw(
        st.one_of(
            st.none(), arrays((B, H), np.float64), arrays((H, B), np.float64), any_dtype((B,))
        )
    )
    return params, inputs, targets, h0


def snapshot(*arrays):
    return [None if a is None else np.array(a, copy=True) for a in arrays]


def unchanged(before, after):
    return all(
        (a is None and b is None) or np.array_equal(a, b, equal_nan=a.dtype.kind in "fc")
        for a, b in zip(before, after, strict=True)
    )


@FAST
@given(rnn_problems())
def test_loss_and_grads_is_right_or_refuses_clearly(problem):
    params, inputs, targets, h0 = problem
    before = snapshot(inputs, targets, h0, *params.values())
    try:
        loss, grads, h_last = bptt.loss_and_grads(params, inputs, targets, h0)
    except Exception as error:  # the property is which errors happen
        clear(error, "inputs", "targets", "h0", "loss")
        with pytest.raises(type(error)):  # the stepwise path refuses the same input
            bptt.loss_and_grads_stepwise(params, inputs, targets, h0)
    else:
        assert np.isfinite(loss) and loss >= 0
        slow_loss, slow_grads, slow_h = bptt.loss_and_grads_stepwise(params, inputs, targets, h0)
        assert loss == pytest.approx(slow_loss, rel=1e-12, abs=1e-12)
        for k in params:
            assert np.all(np.isfinite(grads[k]))
            np.testing.assert_allclose(grads[k], slow_grads[k], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(h_last, slow_h, rtol=1e-12, atol=1e-14)
    assert unchanged(before, snapshot(inputs, targets, h0, *params.values()))


logits_and_targets = shapes.flatmap(
    lambda shape: st.tuples(arrays(shape, np.float64), any_dtype(shape[:-1]))
)
outputs_and_targets = shapes.flatmap(
    lambda shape: st.tuples(
        arrays(shape, np.float64),
        st.one_of(arrays(shape, np.float64), any_dtype(shape), arrays(shape[::-1], np.float64)),
    )
)


@FAST
@given(logits_and_targets)
def test_softmax_cross_entropy_is_right_or_refuses_clearly(data):
    logits, targets = data
    before = snapshot(logits, targets)
    try:
        loss, dlogits = bptt.softmax_cross_entropy(logits, targets)
    except Exception as error:
        clear(error, "logits", "targets")
    else:
        assert np.isfinite(loss) and loss >= 0
        batch = logits.shape[-2]
        # (p - onehot) / B: every row sums to 0, and p = B * dlogits + onehot lies in [0, 1]
        np.testing.assert_allclose(dlogits.sum(axis=-1), 0.0, atol=1e-12)
        p = dlogits * batch
        where = targets[..., None]
        np.put_along_axis(p, where, np.take_along_axis(p, where, -1) + 1, -1)
        assert np.all(p >= -1e-12) and np.all(p <= 1 + 1e-12)
        np.testing.assert_allclose(p, bptt.softmax(logits), atol=1e-12)
    assert unchanged(before, snapshot(logits, targets))


@FAST
@given(outputs_and_targets)
def test_squared_error_is_right_or_refuses_clearly(data):
    outputs, targets = data
    try:
        loss, grad = bptt.squared_error(outputs, targets)
    except Exception as error:
        clear(error, "outputs", "targets", "squared error")
    else:
        batch = outputs.shape[-2]
        assert np.isfinite(loss)
        assert loss == pytest.approx(0.5 * np.sum((outputs - targets) ** 2) / batch)
        np.testing.assert_allclose(grad, (outputs - targets) / batch)


gradient_dicts = st.dictionaries(
    st.sampled_from(["W_xh", "W_hh", "b_h", "w"]),
    hnp.array_shapes(min_dims=0, max_dims=2, max_side=3).flatmap(
        lambda s: DTYPES.flatmap(lambda d: arrays(s, d))
    ),
    min_size=1,
    max_size=3,
)
limits = st.one_of(st.floats(1e-3, 10), st.floats(allow_nan=True), st.integers(-2, 5))


@FAST
@given(gradient_dicts, limits)
def test_clip_by_value_bounds_every_entry_or_refuses_clearly(grads, limit):
    before = {k: v.copy() for k, v in grads.items()}
    try:
        clipped = bptt.clip_by_value(grads, limit)
    except Exception as error:
        clear(error, "grads", "limit")
    else:
        for k, g in clipped.items():
            assert np.all(np.abs(g) <= limit)
            np.testing.assert_array_equal(g, np.clip(before[k], -limit, limit))
    assert all(np.array_equal(grads[k], before[k], equal_nan=True) for k in grads)


@FAST
@given(gradient_dicts, limits)
def test_clip_by_global_norm_caps_the_norm_or_refuses_clearly(grads, max_norm):
    try:
        clipped, norm = bptt.clip_by_global_norm(grads, max_norm)
    except Exception as error:
        clear(error, "grads", "max_norm", "gradient norm")
    else:
        assert np.isfinite(norm)
        assert bptt.global_norm(clipped) <= max_norm * (1 + 1e-6)  # float32 rounding
        assert norm == pytest.approx(bptt.global_norm(grads))


pairs = st.integers(1, 3).flatmap(
    lambda n: st.tuples(arrays((n,), np.float64), arrays((n,), np.float64))
)


@FAST
@given(st.sampled_from(["sgd", "adagrad", "adam"]), pairs)
def test_optimisers_update_finitely_or_refuse_and_change_nothing(name, data):
    start, gradient = data
    start = np.nan_to_num(start)  # parameters are finite; the gradient may not be
    params = {"w": start.copy()}
    opt = bptt.make_optimizer(name, 0.1)
    try:
        opt.step(params, {"w": gradient})
    except Exception as error:
        clear(error, "grads['w']")
        assert not np.all(np.isfinite(gradient))
        np.testing.assert_array_equal(params["w"], start)
        assert opt.steps == 0 and opt.state == {}
    else:
        assert np.all(np.isfinite(gradient)) and np.all(np.isfinite(params["w"]))


size = st.one_of(st.integers(-1, 4), st.floats(0, 3), st.text(max_size=1))


@FAST
@given(
    st.tuples(size, size, size),
    st.one_of(st.integers(0, 5), st.none(), st.floats(0, 1)),
    st.one_of(st.floats(allow_nan=True), st.floats(1e-3, 1)),
)
def test_init_params_makes_valid_parameters_or_refuses_clearly(sizes, rng, scale):
    try:
        params = bptt.init_params(*sizes, rng=rng, weight_scale=scale)
    except Exception as error:
        clear(error, "input_size", "hidden_size", "output_size", "rng", "weight_scale")
    else:
        assert bptt.check_params(params) == tuple(sizes)


@settings(max_examples=15, deadline=None, database=None)
@given(st.integers(1, 3), st.integers(1, 3), st.integers(1, 4), st.integers(0, 1000))
def test_gradcheck_passes_the_package_gradient_at_random_points(H, B, T, seed):
    gen = np.random.default_rng(seed)
    params = bptt.init_params(2, H, 3, rng=gen, weight_scale=gen.uniform(0.05, 1.0))
    inputs, targets = gen.integers(0, 2, size=(T, B)), gen.integers(0, 3, size=(T, B))
    report = bptt.gradcheck(lambda p: bptt.loss_and_grads(p, inputs, targets), params)
    assert report.passed, str(report)
