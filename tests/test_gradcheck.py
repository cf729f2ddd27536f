"""Tests of numerical gradient checking (bptt/gradcheck.py)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import bptt


def quadratic(params):
    """f(p) = sum_k sum(c_k * p_k**2) / 2 with gradient c_k * p_k (cubic term makes eps matter)."""
    loss = 0.0
    grads = {}
    for k, p in params.items():
        c = np.arange(1, p.size + 1, dtype=float).reshape(p.shape)
        loss += float(np.sum(c * p * p)) / 2 + float(np.sum(p**3)) / 6
        grads[k] = c * p + p * p / 2
    return loss, grads


def small_problem(scale=0.5):
    rng = np.random.default_rng(0)
    params = bptt.init_params(4, 3, 4, rng=rng, weight_scale=scale)
    inputs = rng.integers(0, 4, size=(5, 2))
    targets = rng.integers(0, 4, size=(5, 2))
    return params, inputs, targets


def test_relative_error_hand_computed():
    a = np.array([1.0, -2.0, 0.0])
    n = np.array([1.0, -2.5, 0.5])
    # max|a - n| = 0.5, max(|a| + |n|) = 4.5
    assert bptt.relative_error(a, n) == pytest.approx(0.5 / 4.5, rel=1e-15)
    assert bptt.relative_error(a, a) == 0.0
    assert bptt.relative_error(np.zeros(3), np.zeros(3)) == 0.0
    # tiny arrays are compared against the floor 1e-8, not against themselves
    assert bptt.relative_error(np.array([1e-12]), np.array([-1e-12])) == pytest.approx(2e-4)
    assert bptt.relative_error(np.zeros(0), np.zeros(0)) == 0.0
    with pytest.raises(ValueError, match="analytic and numerical must have one shape"):
        bptt.relative_error(np.zeros(2), np.zeros(3))


def test_gradcheck_passes_a_correct_model():
    params, inputs, targets = small_problem()
    report = bptt.gradcheck(lambda p: bptt.loss_and_grads(p, inputs, targets), params)
    assert report.passed
    assert report.max_rel_error < 1e-7
    assert set(report.checks) == set(params)
    for name, check in report.checks.items():
        assert check.mode == "all"
        assert check.checked == params[name].size
        assert check.shape == params[name].shape


def test_gradcheck_restores_params_exactly():
    params, inputs, targets = small_problem()
    before = {k: v.copy() for k, v in params.items()}
    bptt.gradcheck(lambda p: bptt.loss_and_grads(p, inputs, targets), params)
    bptt.gradcheck(lambda p: bptt.loss_and_grads(p, inputs, targets), params, directions=3)
    for k in params:
        np.testing.assert_array_equal(params[k], before[k])


def test_gradcheck_catches_a_wrong_gradient():
    params, inputs, targets = small_problem()
    _, grads, _ = bptt.loss_and_grads(params, inputs, targets)
    grads = {k: v.copy() for k, v in grads.items()}
    grads["W_hh"][1, 2] += 1e-3
    report = bptt.gradcheck(
        lambda p: bptt.loss_and_grads(p, inputs, targets)[0], params, grads=grads
    )
    assert not report.passed
    assert report.checks["W_hh"].rel_error > 1e-4
    assert report.checks["W_xh"].rel_error < 1e-7
    assert "FAILED" in str(report)
    assert "NO" in str(report)


def test_gradcheck_on_known_function():
    params = {"a": np.array([[0.3, -1.2], [2.0, 0.1]]), "b": np.array([0.5])}
    report = bptt.gradcheck(quadratic, params, eps=1e-4)
    # centred differences are exact for quadratics; the cubic term leaves eps**2 / 6 per entry
    for check in report.checks.values():
        np.testing.assert_allclose(check.numerical, check.analytic, atol=1e-8)
    assert report.passed


def test_sampled_entries():
    params, inputs, targets = small_problem()
    report = bptt.gradcheck(
        lambda p: bptt.loss_and_grads(p, inputs, targets), params, max_entries=5, rng=1
    )
    assert report.checks["W_hh"].mode == "sampled"
    assert report.checks["W_hh"].checked == 5
    assert report.checks["b_h"].mode == "all"  # 3 entries < 5
    assert report.passed
    again = bptt.gradcheck(
        lambda p: bptt.loss_and_grads(p, inputs, targets), params, max_entries=5, rng=1
    )
    np.testing.assert_array_equal(report.checks["W_xh"].analytic, again.checks["W_xh"].analytic)


def test_directional_mode():
    params, inputs, targets = small_problem()
    report = bptt.gradcheck(
        lambda p: bptt.loss_and_grads(p, inputs, targets), params, directions=4, rng=0
    )
    assert all(c.mode == "directions" and c.checked == 4 for c in report.checks.values())
    assert report.passed
    # a wrong gradient is caught along random directions too
    _, grads, _ = bptt.loss_and_grads(params, inputs, targets)
    wrong = dict(grads, W_hh=grads["W_hh"].T.copy())
    report = bptt.gradcheck(
        lambda p: bptt.loss_and_grads(p, inputs, targets), params, grads=wrong, directions=4
    )
    assert report.checks["W_hh"].rel_error > 1e-3


def test_non_contiguous_parameter_is_really_perturbed():
    base = np.arange(1.0, 7.0).reshape(2, 3)
    params = {"w": base.T}  # a transposed view: not C-contiguous
    assert not params["w"].flags.c_contiguous
    report = bptt.gradcheck(quadratic, params, eps=1e-4)
    assert report.passed


def test_rows_and_str():
    params, inputs, targets = small_problem()
    report = bptt.gradcheck(lambda p: bptt.loss_and_grads(p, inputs, targets), params)
    rows = report.rows()
    assert [r["parameter"] for r in rows] == list(params)
    assert all(r["ok"] for r in rows)
    text = str(report)
    assert text.splitlines()[-1].startswith("PASSED: max relative error")
    assert len(text.splitlines()) == len(params) + 3


def test_float32_warns():
    params, inputs, targets = small_problem()
    p32 = {k: v.astype(np.float32) for k, v in params.items()}
    with pytest.warns(UserWarning, match="check in float64"):
        bptt.gradcheck(lambda p: bptt.loss_and_grads(p, inputs, targets), p32, eps=1e-2)


def test_no_warning_in_float64():
    params, inputs, targets = small_problem()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bptt.gradcheck(lambda p: bptt.loss_and_grads(p, inputs, targets), params)


def test_bad_arguments():
    params, inputs, targets = small_problem()

    def f(p):
        return bptt.loss_and_grads(p, inputs, targets)

    with pytest.raises(TypeError, match="f must be callable"):
        bptt.gradcheck(3, params)
    with pytest.raises(TypeError, match="params must be a non-empty mapping"):
        bptt.gradcheck(f, {})
    with pytest.raises(ValueError, match=r"eps must be a finite number > 0, got -0\.1"):
        bptt.gradcheck(f, params, eps=-0.1)
    with pytest.raises(ValueError, match="tol must be a finite number > 0"):
        bptt.gradcheck(f, params, tol=0.0)
    with pytest.raises(ValueError, match="directions must be an integer >= 0"):
        bptt.gradcheck(f, params, directions=-1)
    with pytest.raises(ValueError, match="max_entries must be an integer >= 1"):
        bptt.gradcheck(f, params, max_entries=0)
    with pytest.raises(TypeError, match="rng must be a numpy Generator"):
        bptt.gradcheck(f, params, rng="seed")
    with pytest.raises(ValueError, match="did not return"):
        bptt.gradcheck(lambda p: f(p)[0], params)
    with pytest.raises(ValueError, match=r"grads is missing the parameter\(s\) \['b_y'\]"):
        grads = {k: v for k, v in f(params)[1].items() if k != "b_y"}
        bptt.gradcheck(f, params, grads=grads)
    with pytest.raises(ValueError, match=r"grads\['W_hh'\] has shape \(2, 2\)"):
        bptt.gradcheck(f, params, grads=dict(f(params)[1], W_hh=np.zeros((2, 2))))
