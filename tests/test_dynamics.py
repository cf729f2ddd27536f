"""Jacobian products, their norms, the Pascanu bound and the influence matrix."""

from __future__ import annotations

import numpy as np
import pytest

import bptt
from bptt import dynamics
from bptt.cells.gru import GRU


def _trajectory(T=8, B=2, D=3, H=5, V=4, seed=0, scale=0.6):
    rng = np.random.default_rng(seed)
    params = bptt.init_params(D, H, V, rng, weight_scale=scale)
    inputs = rng.standard_normal((T, B, D))
    targets = rng.integers(0, V, size=(T, B))
    _, hs, _ = bptt.forward_stepwise(params, inputs)
    return params, inputs, targets, hs


def _h_t_from_h_k(params, inputs, hk, k, t, cell=bptt.TANH):
    if t == k:
        return hk
    return bptt.forward_stepwise(params, inputs[k:t], hk, cell=cell)[1][-1]


@pytest.mark.parametrize(("t", "k"), [(3, 2), (6, 1), (8, 0), (5, 5)])
def test_jacobian_product_against_finite_differences(t, k):
    params, inputs, _, hs = _trajectory()
    J = dynamics.step_jacobians(params, hs)
    P = dynamics.jacobian_product(J, t, k)
    eps = 1e-6
    H = hs.shape[-1]
    for b in range(hs.shape[1]):
        numerical = np.empty((H, H))
        for j in range(H):
            plus, minus = hs[k].copy(), hs[k].copy()
            plus[b, j] += eps
            minus[b, j] -= eps
            diff = _h_t_from_h_k(params, inputs, plus, k, t) - _h_t_from_h_k(
                params, inputs, minus, k, t
            )
            numerical[:, j] = diff[b] / (2 * eps)
        assert bptt.relative_error(P[b], numerical) < 1e-6  # products as small as 1e-4


def test_norms_and_singular_values_agree_with_products():
    params, _, _, hs = _trajectory(T=10)
    J = dynamics.step_jacobians(params, hs)
    norms = dynamics.jacobian_product_norms(J)
    assert norms.shape == (11, 2)
    for lag in range(11):
        P = dynamics.jacobian_product(J, 10, 10 - lag)
        np.testing.assert_allclose(norms[lag], np.linalg.norm(P, 2, axis=(1, 2)), rtol=1e-12)
    sv = dynamics.jacobian_product_singular_values(J, 7, 2)
    assert sv.shape == (2, 5) and np.all(np.diff(sv, axis=1) <= 1e-15)
    np.testing.assert_allclose(sv[:, 0], dynamics.jacobian_product_norms(J, 7)[5], rtol=1e-12)


@pytest.mark.parametrize("activation", ["tanh", "sigmoid"])
def test_run_recurrence_jacobians_against_finite_differences(activation):
    rng = np.random.default_rng(1)
    W = rng.standard_normal((4, 4))
    u = rng.standard_normal((3, 1, 4))
    hs, J = dynamics.run_recurrence(W, u, activation=activation)
    eps = 1e-6
    for t in range(3):
        numerical = np.empty((4, 4))
        for j in range(4):
            h = hs[t, 0].copy()
            h[j] += eps
            plus = dynamics.run_recurrence(W, u[t : t + 1], activation=activation, h0=h[None])[0]
            h[j] -= 2 * eps
            minus = dynamics.run_recurrence(W, u[t : t + 1], activation=activation, h0=h[None])[0]
            numerical[:, j] = (plus[1, 0] - minus[1, 0]) / (2 * eps)
        assert bptt.relative_error(J[t, 0], numerical) < 1e-8


@pytest.mark.parametrize("activation", ["tanh", "sigmoid"])
def test_pascanu_bound_holds_on_random_matrices(activation):
    """Many seeded draws on both sides of the threshold 1/gamma: the bound is never broken."""
    res = dynamics.pascanu_bound_draws(activation, 150, hidden_size=12, batch=2, rng=2013)
    assert res.norms.shape == (150, 31, 2) and res.bounds.shape == (150, 31)
    assert np.all(res.norms <= res.bounds[:, :, None] * (1 + 1e-10))
    grew = 0
    for gamma_sigma, norms in zip(res.gamma_sigma, res.norms, strict=True):
        if gamma_sigma < 1:  # sufficient condition: the products vanish geometrically
            assert np.all(norms[-1] <= gamma_sigma**30 * (1 + 1e-10))
        if np.any(norms[-1] > 1):  # growth happened, so the necessary condition held
            assert gamma_sigma > 1
            grew += 1
    assert grew > 0  # the necessary side is not vacuous: some draws above threshold explode
    assert res.holds.all()


def test_pascanu_bound_draws_rejects_bad_arguments():
    with pytest.raises(ValueError, match="activation must be one of"):
        dynamics.pascanu_bound_draws("relu")
    with pytest.raises(ValueError, match="draws must be an integer >= 1, got 0"):
        dynamics.pascanu_bound_draws("tanh", 0)


def test_spectral_radius_and_singular_value():
    W = np.array([[0.0, 2.0], [0.0, 0.5]])
    assert dynamics.spectral_radius(W) == pytest.approx(0.5)
    assert dynamics.largest_singular_value(W) == pytest.approx(np.linalg.norm(W, 2))
    assert dynamics.largest_singular_value(W) >= dynamics.spectral_radius(W)


def test_influence_matrix_tanh_matches_jacobian_products():
    params, inputs, targets, hs = _trajectory(T=6)
    M = dynamics.influence_matrix(params, inputs, targets)
    assert M.shape == (6, 7)
    assert np.all(np.isnan(M[np.triu_indices(6, k=2)]))
    outputs = bptt.readout_forward(params, hs[1:])
    J = dynamics.step_jacobians(params, hs)
    for t in range(1, 7):
        _, dout = bptt.softmax_cross_entropy(outputs[t - 1], targets[t - 1])
        g = dout @ params["W_hy"]  # dl_t/dh_t, (B, H)
        for k in range(t + 1):
            P = dynamics.jacobian_product(J, t, k)
            expected = np.linalg.norm(np.einsum("bi,bij->bj", g, P))
            assert M[t - 1, k] == pytest.approx(expected, rel=1e-10)


def test_influence_matrix_gru_against_finite_differences():
    rng = np.random.default_rng(4)
    params = bptt.init_params(3, 4, 2, rng, weight_scale=0.8, cell=GRU)
    inputs = rng.standard_normal((5, 1, 3))
    targets = rng.standard_normal((5, 1, 2))
    M = dynamics.influence_matrix(params, inputs, targets, cell=GRU, loss=bptt.squared_error)
    _, hs, _ = bptt.forward_stepwise(params, inputs, cell=GRU)
    t, k, eps = 5, 2, 1e-6

    def l_t(hk):
        h = _h_t_from_h_k(params, inputs, hk, k, t, cell=GRU)
        return bptt.squared_error(bptt.readout_forward(params, h), targets[t - 1])[0]

    grad = np.empty(4)
    for j in range(4):
        plus, minus = hs[k].copy(), hs[k].copy()
        plus[0, j] += eps
        minus[0, j] -= eps
        grad[j] = (l_t(plus) - l_t(minus)) / (2 * eps)
    assert M[t - 1, k] == pytest.approx(np.linalg.norm(grad), rel=1e-7)


def test_errors():
    params, _, _, hs = _trajectory()
    J = dynamics.step_jacobians(params, hs)
    with pytest.raises(ValueError, match="t must be at most"):
        dynamics.jacobian_product_norms(J, 99)
    with pytest.raises(ValueError, match="activation"):
        dynamics.run_recurrence(np.eye(2), np.zeros((3, 1, 2)), activation="relu")
    with pytest.raises(ValueError, match="drive"):
        dynamics.run_recurrence(np.eye(2), np.zeros((3, 1, 5)))
    with pytest.raises(ValueError, match="square"):
        dynamics.largest_singular_value(np.ones((2, 3)))
    with pytest.raises(ValueError, match="activation"):
        dynamics.pascanu_bound(np.eye(2), [1, 2], activation="relu")


def test_tanh_derivative_is_one_at_zero_and_below_one_elsewhere():
    a = np.linspace(-6, 6, 1201)
    d = dynamics.tanh_derivative(a)
    assert dynamics.tanh_derivative(0) == 1.0
    assert np.all(d[a != 0] < 1.0) and np.all(d > 0)
    np.testing.assert_allclose(d, 1 / np.cosh(a) ** 2, rtol=0, atol=1e-15)
    with pytest.raises(TypeError, match="a must be a floating-point array"):
        dynamics.tanh_derivative(np.array([True]))


def test_saturation_threshold_separates_slopes_below_the_level():
    for level in (0.5, 0.1, 0.01):
        a_sat = dynamics.saturation_threshold(level)
        assert dynamics.tanh_derivative(a_sat) == pytest.approx(level, rel=1e-12)
        assert (
            dynamics.tanh_derivative(a_sat * 1.001)
            < level
            < dynamics.tanh_derivative(a_sat * 0.999)
        )
    assert dynamics.saturation_threshold() == pytest.approx(1.8184464592320668)
    for bad in (0.0, 1.0, 1.5):
        with pytest.raises(ValueError, match="level"):
            dynamics.saturation_threshold(bad)


def test_saturated_fraction_counts_units_with_a_small_slope():
    a_sat = dynamics.saturation_threshold(0.1)
    hs = np.tanh(np.array([0.0, 0.5, -1.0, 0.99 * a_sat, 1.01 * a_sat, -3.0, 10.0, -a_sat * 2]))
    assert dynamics.saturated_fraction(hs) == 4 / 8
    assert dynamics.saturated_fraction(hs, level=0.5) > 4 / 8
    with pytest.raises(ValueError, match=r"hs must hold tanh outputs in \[-1, 1\]"):
        dynamics.saturated_fraction(np.array([0.5, 1.5]))
    with pytest.raises(ValueError, match="hs must not be empty"):
        dynamics.saturated_fraction(np.zeros(0))
    with pytest.raises(TypeError, match="hs must be a floating-point array"):
        dynamics.saturated_fraction(np.array([0, 1]))
