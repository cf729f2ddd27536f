"""Tests of numerical gradient checking (bptt/gradcheck.py)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import bptt
from bptt.experiments import faults
from bptt.gradcheck import measure_noise


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
    assert all(r["fd error"] < 1e-3 for r in rows)
    assert "fd error" in text.splitlines()[0]


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
    with pytest.raises(ValueError, match=r"grads has no entry for parameter 'b_y'"):
        grads = {k: v for k, v in f(params)[1].items() if k != "b_y"}
        bptt.gradcheck(f, params, grads=grads)
    with pytest.raises(ValueError, match=r"grads\['W_hh'\] has shape \(2, 2\)"):
        bptt.gradcheck(f, params, grads=dict(f(params)[1], W_hh=np.zeros((2, 2))))


# -- The default step and error measure (issue: a correct gradient reported FAILED) --------------


def readme_problem():
    """The README's first snippet: W_hh's gradient (~1e-3) is tiny beside the loss (~32)."""
    params = bptt.init_params(3, 16, 5, rng=np.random.default_rng(0))
    inputs = np.random.default_rng(1).normal(size=(20, 8, 3))
    targets = np.zeros((20, 8), dtype=int)
    return params, lambda p: bptt.loss_and_grads(p, inputs, targets)


def old_defaults(f, params, grads=None):
    """The check as it was: one centred difference at eps = 1e-5 against the bare tolerance."""
    report = bptt.gradcheck(f, params, grads=grads, method="centred", eps=1e-5, noise=0.0)
    return report.max_rel_error <= 1e-7, report


def test_readme_gradient_passes_with_the_new_defaults_and_failed_with_the_old():
    params, f = readme_problem()
    report = bptt.gradcheck(f, params)
    assert report.passed and report.conclusive
    assert report.max_rel_error < 1e-7  # within the bare tolerance, not only the fd error
    assert str(report).splitlines()[-1].startswith("PASSED")
    old_passed, old = old_defaults(f, params)
    assert not old_passed and old.checks["W_hh"].rel_error > 1e-7  # the bug of the issue


def problem(seed, H, T, B, scale, kind="ids", h0=True, D=3, V=4, cell=bptt.TANH):
    gen = np.random.default_rng(seed)
    params = bptt.init_params(D, H, V, rng=gen, weight_scale=scale, cell=cell)
    if kind == "ids":
        inputs = gen.integers(0, D, size=(T, B))
    else:  # dense floats; "tiny" inputs give W_xh a gradient 1e4 times smaller than usual
        inputs = gen.standard_normal((T, B, D)) * (1e-4 if kind == "tiny" else 1.0)
    targets = gen.integers(0, V, size=(T, B))
    state = np.tanh(gen.standard_normal((B, H))) if h0 else None
    return params, inputs, targets, state


CLASSIC = [(s, H, T, B, 0.01, "ids", False) for s in (0, 1) for H, T, B in [(1, 1, 1), (4, 6, 3)]]
GENERIC = [
    (s, H, T, B, scale, "dense", True)
    for s in (2, 3)
    for H, T, B in [(2, 3, 1), (6, 10, 3)]
    for scale in (0.1, 0.5, 1.0)
]
TINY = [(4, 5, 8, 2, scale, "tiny", h0) for scale in (0.01, 0.5) for h0 in (False, True)]
LARGE = [(0, 8, 12, 2, 0.01, "ids", False), (5, 3, 20, 2, 2.0, "ids", True)]
SWEEP = CLASSIC + GENERIC + TINY + LARGE + [(6, 4, 15, 1, 1.5, "dense", True)]


@pytest.mark.parametrize(("seed", "H", "T", "B", "scale", "kind", "h0"), SWEEP)
def test_correct_gradients_never_fail_with_defaults(seed, H, T, B, scale, kind, h0):
    params, inputs, targets, state = problem(seed, H, T, B, scale, kind, h0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = bptt.gradcheck(lambda p: bptt.loss_and_grads(p, inputs, targets, state), params)
    assert report.passed, str(report)
    # A margin: the errors stay well inside what the check allows.
    for c in report.checks.values():
        assert c.rel_error <= 0.5 * (report.tol + c.fd_error), str(report)
    # Only gradients that are tiny beside the loss (tiny inputs at the classic scale) are too
    # small to check finely, and the report then says so, with a warning.
    assert report.conclusive or (kind == "tiny" and scale == 0.01), str(report)
    assert len(caught) == (0 if report.conclusive else 1)


@pytest.mark.parametrize("seed", [0, 1])
def test_correct_gru_gradient_passes(seed):
    params, inputs, targets, _ = problem(seed, 3, 6, 2, 0.5, "dense", cell=bptt.GRU)
    f = lambda p: bptt.loss_and_grads_stepwise(p, inputs, targets, cell=bptt.GRU)  # noqa: E731
    report = bptt.gradcheck(f, params)
    assert report.passed and report.conclusive and report.max_rel_error < 1e-7


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("bug", list(faults.BROKEN_CELLS))
def test_broken_cells_still_fail_clearly(seed, bug):
    params, inputs, targets, state = problem(seed, 4, 6, 3, 0.5, "ids")
    _, grads, _ = bptt.loss_and_grads_stepwise(
        params, inputs, targets, state, cell=faults.BROKEN_CELLS[bug]
    )
    loss = lambda p: bptt.loss_and_grads(p, inputs, targets, state)[0]  # noqa: E731
    report = bptt.gradcheck(loss, params, grads=grads)
    assert not report.passed and str(report).splitlines()[-1].startswith("FAILED")
    worst = max(report.checks.values(), key=lambda c: c.rel_error)
    assert worst.rel_error > 1e-2 and worst.rel_error > 1e4 * (report.tol + worst.fd_error)


def test_a_small_wrong_entry_in_a_tiny_gradient_is_still_caught():
    params, f = readme_problem()
    _, grads, _ = f(params)
    wrong = grads["W_hh"].copy()
    wrong[3, 4] += 1e-3 * np.abs(wrong).max()  # off by 0.1 % of the largest entry
    box = {"W_hh": params["W_hh"]}  # check W_hh alone, the array whose gradient is tiny
    report = bptt.gradcheck(lambda b: f({**params, **b})[0], box, grads={"W_hh": wrong})
    assert not report.passed and report.conclusive
    right = bptt.gradcheck(lambda b: f({**params, **b})[0], box, grads={"W_hh": grads["W_hh"]})
    assert right.passed


def test_richardson_removes_the_step_squared_error():
    params = {"x": np.array([0.3, 1.1, -0.7])}

    def f(p):
        return float(np.sum(np.sin(3 * p["x"]))), {"x": 3 * np.cos(3 * p["x"])}

    centred = bptt.gradcheck(f, params, method="centred", eps=1e-3)
    richardson = bptt.gradcheck(f, params, eps=1e-3)
    # centred: error ~ eps**2 * 27 / 6 relative; Richardson: ~ eps**4
    assert 1e-7 < centred.max_rel_error < 1e-5
    assert richardson.max_rel_error < 1e-11
    assert np.all(richardson.checks["x"].step == 1e-3)  # the large step was good enough


def test_a_step_that_straddles_a_kink_is_replaced_by_a_smaller_one():
    params, inputs, targets, _ = problem(2, 4, 3, 1, 0.5, "ids", h0=False)
    # put unit 0's first pre-activation just above the ReLU's kink at 0 (h_0 = 0)
    params["b_h"][0] = -params["W_xh"][0, inputs[0, 0]] + 3e-6
    f = lambda p: bptt.loss_and_grads_stepwise(p, inputs, targets, cell=faults.RELU)  # noqa: E731
    centred = bptt.gradcheck(f, params, method="centred", eps=1e-5)
    default = bptt.gradcheck(f, params, eps=1e-5)
    assert centred.checks["b_h"].rel_error > 1e-2  # the plain difference straddles the kink
    assert default.passed and default.checks["b_h"].rel_error < 1e-7
    assert default.checks["b_h"].step[0] == pytest.approx(1e-7)  # eps / 100 stays on one side


def test_where_no_step_works_the_check_is_inconclusive_not_failed():
    # An unstable fixed point: h = 0 with a recurrence that expands, so the loss changes on a
    # scale far below any step tried. A correct gradient; finite differences cannot see it.
    params, inputs, targets, _ = problem(0, 16, 30, 1, 0.5, "tiny", h0=False, D=4)
    f = lambda p: bptt.loss_and_grads(p, inputs * 1e-2, targets)  # noqa: E731
    with pytest.warns(UserWarning, match="inconclusive for"):
        report = bptt.gradcheck(f, params, directions=2)
    assert report.passed and not report.conclusive
    assert "INCONCLUSIVE" in str(report) and "b_h" in report.coarse
    old_passed, _ = old_defaults(f, params)
    assert not old_passed


def test_measured_noise_matches_a_known_noise():
    sigma = 1e-9

    def noisy(p):
        # smooth part plus a deterministic pseudo-random error of standard deviation sigma
        seed = int.from_bytes(p["x"].tobytes()[:8], "little")
        return float(np.sum(p["x"] ** 2)) + sigma * np.random.default_rng(seed).standard_normal()

    params = {"x": np.array([0.5, -0.25, 1.0])}
    estimates = [measure_noise(noisy, params, rng=s) for s in range(5)]
    assert all(sigma / 3 < e < 3 * sigma for e in estimates), estimates
    np.testing.assert_array_equal(params["x"], [0.5, -0.25, 1.0])  # restored exactly


def test_noise_of_the_package_loss_is_a_few_units_of_rounding():
    params, f = readme_problem()
    loss = f(params)[0]
    noise = bptt.gradcheck(f, params, max_entries=1).noise
    unit = np.finfo(np.float64).eps * loss
    assert 0.4 * unit <= noise < 10 * unit


def test_noise_can_be_given_and_fd_error_follows_it():
    params, f = readme_problem()
    quiet = bptt.gradcheck(f, params, max_entries=5)
    with pytest.warns(UserWarning, match="inconclusive"):
        loud = bptt.gradcheck(f, params, noise=1e-9, max_entries=5)
    floor = bptt.gradcheck(f, params, noise=0.0, max_entries=5)
    assert loud.noise == 1e-9 and floor.noise == 0.5 * np.finfo(float).eps * f(params)[0]
    assert loud.checks["W_hh"].fd_error > quiet.checks["W_hh"].fd_error


def test_float32_check_is_flagged_as_coarse():
    params, inputs, targets = small_problem(scale=0.01)
    p32 = {k: v.astype(np.float32) for k, v in params.items()}
    with pytest.warns(UserWarning):
        report = bptt.gradcheck(lambda p: bptt.loss_and_grads(p, inputs, targets), p32)
    assert report.max_fd_error > 1e-3 and not report.conclusive
