"""The forward pass of the tanh RNN (Chapter 1): known values, shapes, determinism, bad input."""

from __future__ import annotations

import numpy as np
import pytest

import bptt


def linspace_model(D=3, H=4, V=2):
    """Deterministic parameters with distinct entries, so that a transposed weight would show."""
    n = H * D + H * H + H + V * H + V
    values = np.linspace(-0.5, 0.5, n)
    sizes = [H * D, H * H, H, V * H, V]
    parts = np.split(values, np.cumsum(sizes)[:-1])
    shapes = [(H, D), (H, H), (H,), (V, H), (V,)]
    names = ["W_xh", "W_hh", "b_h", "W_hy", "b_y"]
    return {k: p.reshape(s) for k, p, s in zip(names, parts, shapes, strict=True)}


def reference_forward(params, x, h0):
    """The recurrence written independently with scalar loops (no matrix products)."""
    T, B, D = x.shape
    H = params["W_hh"].shape[0]
    V = params["W_hy"].shape[0]
    h = [list(row) for row in h0]
    outputs = np.zeros((T, B, V))
    states = np.zeros((T + 1, B, H))
    states[0] = h0
    for t in range(T):
        for b in range(B):
            new = []
            for i in range(H):
                a = params["b_h"][i]
                a += sum(params["W_xh"][i, j] * x[t, b, j] for j in range(D))
                a += sum(params["W_hh"][i, j] * h[b][j] for j in range(H))
                new.append(np.tanh(a))
            h[b] = new
            for v in range(V):
                outputs[t, b, v] = params["b_y"][v] + sum(
                    params["W_hy"][v, j] * new[j] for j in range(H)
                )
        states[t + 1] = np.array(h)
    return outputs, states


def test_known_values_against_independent_loops():
    params = linspace_model()
    T, B = 5, 2
    x = np.linspace(-1.0, 1.0, T * B * 3).reshape(T, B, 3)
    h0 = np.linspace(-0.2, 0.3, B * 4).reshape(B, 4)
    outputs, cache = bptt.rnn_forward(params, x, h0)
    expected_outputs, expected_states = reference_forward(params, x, h0)
    np.testing.assert_allclose(outputs, expected_outputs, rtol=0, atol=1e-14)
    np.testing.assert_allclose(cache.hs, expected_states, rtol=0, atol=1e-14)
    np.testing.assert_allclose(np.tanh(cache.pre), cache.hs[1:], rtol=0, atol=1e-15)
    assert cache.inputs is x or np.array_equal(cache.inputs, x)


def test_one_known_number():
    """A single step worked out by hand: H = D = V = 1."""
    params = {
        "W_xh": np.array([[0.5]]),
        "W_hh": np.array([[-0.3]]),
        "b_h": np.array([0.1]),
        "W_hy": np.array([[2.0]]),
        "b_y": np.array([-1.0]),
    }
    outputs, cache = bptt.rnn_forward(params, np.array([[[1.0]]]), np.array([[0.4]]))
    a = 0.5 * 1.0 - 0.3 * 0.4 + 0.1
    assert cache.pre[0, 0, 0] == pytest.approx(a, abs=1e-15)
    assert outputs[0, 0, 0] == pytest.approx(2.0 * np.tanh(a) - 1.0, abs=1e-15)


@pytest.mark.parametrize(
    ("T", "B", "D", "H", "V"), [(1, 1, 1, 1, 1), (7, 3, 4, 5, 6), (2, 8, 1, 3, 2)]
)
def test_shapes_and_default_h0(T, B, D, H, V):
    params = bptt.init_params(D, H, V, rng=0)
    x = np.random.default_rng(1).standard_normal((T, B, D))
    outputs, cache = bptt.rnn_forward(params, x)
    assert outputs.shape == (T, B, V)
    assert cache.hs.shape == (T + 1, B, H)
    assert cache.pre.shape == (T, B, H)
    assert np.all(cache.hs[0] == 0)
    assert cache.nbytes == x.nbytes + cache.hs.nbytes + cache.pre.nbytes


def test_token_ids_equal_one_hot_inputs():
    params = bptt.init_params(6, 4, 6, rng=3, weight_scale=0.5)
    ids = np.random.default_rng(0).integers(0, 6, size=(5, 3))
    out_ids, cache_ids = bptt.rnn_forward(params, ids)
    out_dense, cache_dense = bptt.rnn_forward(params, np.eye(6)[ids])
    np.testing.assert_allclose(out_ids, out_dense, rtol=0, atol=1e-14)
    np.testing.assert_allclose(cache_ids.hs, cache_dense.hs, rtol=0, atol=1e-14)


def test_cell_protocol_matches_vectorised_forward():
    params = bptt.init_params(3, 5, 2, rng=4, weight_scale=0.7)
    x = np.random.default_rng(5).standard_normal((6, 2, 3))
    outputs, cache = bptt.rnn_forward(params, x)
    stepped_outputs, hs, caches = bptt.forward_stepwise(params, x)
    np.testing.assert_allclose(hs, cache.hs, rtol=0, atol=1e-14)
    np.testing.assert_allclose(stepped_outputs, outputs, rtol=0, atol=1e-14)
    assert len(caches) == 6


def test_determinism_with_a_seed():
    a = bptt.init_params(3, 4, 5, rng=np.random.default_rng(42))
    b = bptt.init_params(3, 4, 5, rng=42)
    c = bptt.init_params(3, 4, 5, rng=43)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])
    assert not np.array_equal(a["W_hh"], c["W_hh"])


def test_forward_does_not_modify_its_arguments():
    params = bptt.init_params(3, 4, 5, rng=0)
    snapshot = {k: v.copy() for k, v in params.items()}
    x = np.ones((4, 2, 3))
    h0 = np.full((2, 4), 0.1)
    bptt.rnn_forward(params, x, h0)
    for name in params:
        np.testing.assert_array_equal(params[name], snapshot[name])
    assert np.all(x == 1) and np.all(h0 == 0.1)


def test_float32_parameters_give_float32_outputs():
    params = bptt.init_params(3, 4, 5, rng=0, dtype=np.float32)
    outputs, cache = bptt.rnn_forward(params, np.ones((2, 1, 3), dtype=np.float32))
    assert outputs.dtype == np.float32 and cache.hs.dtype == np.float32


@pytest.fixture
def params():
    return bptt.init_params(3, 4, 5, rng=0)


@pytest.mark.parametrize(
    ("inputs", "error", "message"),
    [
        (np.zeros((4, 3)), ValueError, r"inputs must have 3 dimensions, got shape \(4, 3\)"),
        (np.zeros((2, 4, 2, 3)), ValueError, "inputs must have 3 dimensions"),
        (np.zeros((4, 2, 5)), ValueError, r"inputs must have shape \(\*, \*, 3\), got \(4, 2, 5\)"),
        (np.zeros((0, 2, 3)), ValueError, "T >= 1 and B >= 1"),
        (np.zeros((4, 0, 3)), ValueError, "T >= 1 and B >= 1"),
        (np.full((4, 2, 3), np.nan), ValueError, "inputs contains 24 non-finite"),
        (np.zeros((4, 2, 3), dtype=np.float32), TypeError, "dtype float64, got float32"),
        (np.zeros((4, 2, 3), dtype=complex), TypeError, "inputs must be a floating-point array"),
        (np.array([[0, 3]]), ValueError, r"ids in \[0, 3\), got values from 0 to 3"),
        (np.array([[-1, 0]]), ValueError, r"ids in \[0, 3\), got values from -1 to 0"),
        (np.zeros((2, 3, 1), dtype=int), ValueError, "inputs must have 2 dimensions"),
    ],
)
def test_bad_inputs_are_rejected_clearly(params, inputs, error, message):
    with pytest.raises(error, match=message):
        bptt.rnn_forward(params, inputs)


def test_bad_h0_is_rejected(params):
    x = np.zeros((3, 2, 3))
    with pytest.raises(ValueError, match=r"h0 must have shape \(2, 4\), got \(1, 4\)"):
        bptt.rnn_forward(params, x, np.zeros((1, 4)))
    with pytest.raises(ValueError, match="h0 contains 2 non-finite"):
        bptt.rnn_forward(params, x, np.array([[0, 0, np.inf, 0]] * 2, dtype=float))
    with pytest.raises(TypeError, match="h0 must be a floating-point array"):
        bptt.rnn_forward(params, x, np.zeros((2, 4), dtype=int))
