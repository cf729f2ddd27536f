"""Influence balancing: the cell, its closed-form optimum, RTRL, truncated sensitivities."""

from __future__ import annotations

import numpy as np
import pytest

import bptt
from bptt.algorithms.artbp import ConstantTruncation, artbp
from bptt.algorithms.rtrl import rtrl
from bptt.algorithms.truncation import tbptt
from bptt.experiments.influence import (
    InfluenceCell,
    influence_problem,
    optimal_theta,
    stationary_state,
    truncated_sensitivity,
)


def test_cell_matches_the_definition():
    cell = InfluenceCell()
    assert cell.A.shape == (23, 23) and cell.b.tolist() == [1.0] * 10 + [-1.0] * 13
    np.testing.assert_array_equal(cell.A, (np.eye(23) + np.diag(np.ones(22), 1)) / 2)
    s = np.random.default_rng(0).standard_normal((2, 23))
    h, _ = cell.step({"theta": np.array([[0.3]])}, s, np.ones((2, 1)))
    np.testing.assert_allclose(h, s @ cell.A.T + 0.3 * cell.b, atol=1e-15)


def test_defaults_of_the_problem():
    problem = influence_problem(5)
    assert problem.params["theta"].item() == 0.5
    assert problem.h0.shape == (1, 23) and np.all(problem.h0 == 1.0)
    assert problem.inputs.shape == (5, 1, 1) and np.all(problem.targets == 1.0)
    assert bptt.check_params(problem.params, problem.cell) == (1, 23, 1)


def test_gradcheck_of_the_cell_through_bptt():
    problem = influence_problem(30, theta=0.2, n=7, p=3)

    def f(params):
        return bptt.loss_and_grads_stepwise(
            params,
            problem.inputs,
            problem.targets,
            problem.h0,
            cell=problem.cell,
            loss=bptt.squared_error,
        )[:2]

    report = bptt.gradcheck(f, problem.params)
    assert report.passed, report


def test_rtrl_equals_full_bptt():
    problem = influence_problem(150)
    kw = {"cell": problem.cell, "loss": bptt.squared_error}
    loss, grads, h_last = bptt.loss_and_grads_stepwise(
        problem.params, problem.inputs, problem.targets, problem.h0, **kw
    )
    result = rtrl(problem.params, problem.inputs, problem.targets, h0=problem.h0, **kw)
    assert result.loss == pytest.approx(loss, rel=1e-12)
    for k in grads:
        assert bptt.relative_error(result.grads[k], grads[k]) < 1e-12
    np.testing.assert_allclose(result.h_last, h_last, rtol=1e-12)
    assert result.updates == 150


def test_rtrl_gives_every_step_its_gradient():
    """RTRL's gradient at step t is the gradient of l_t alone: TBPTT(1, t) at that step."""
    problem = influence_problem(40)
    kw = {"h0": problem.h0, "cell": problem.cell, "loss": bptt.squared_error}
    online, truncated = [], []
    rtrl(*problem[1:4], update=lambda g, t: online.append(g["theta"].item()), **kw)
    tbptt(*problem[1:4], 1, 40, update=lambda g, t: truncated.append(g["theta"].item()), **kw)
    np.testing.assert_allclose(online, truncated, rtol=1e-12)


def test_closed_form_optimum():
    for n, p in ((23, 10), (10, 7), (5, 0)):
        theta = optimal_theta(n, p)
        s = stationary_state(theta, n, p)
        assert s[0] == pytest.approx(1.0, abs=1e-12)
        cell = InfluenceCell(n, p)
        np.testing.assert_allclose(cell.A @ s + theta * cell.b, s, atol=1e-12)
    assert optimal_theta() == pytest.approx(-1 / 6)
    # The orbit from s_0 = 1 at theta* reaches zero loss.
    problem = influence_problem(300, theta=optimal_theta())
    result = tbptt(*problem[1:4], 1, 1, h0=problem.h0, cell=problem.cell, loss=bptt.squared_error)
    assert result.step_losses[-1] < 1e-20


def test_truncated_sensitivity_wrong_sign_when_short():
    ks = np.arange(0, 200)
    sens = truncated_sensitivity(ks)
    assert sens[0] == 0 and sens[1] == 1.0  # b_1 = +1 acts at once
    assert sens[-1] == pytest.approx(2 * (2 * 10 - 23))
    first_negative = int(ks[np.argmax(sens < 0)])
    assert np.all(sens[1:first_negative] > 0) and np.all(sens[first_negative:] < 0)
    assert first_negative == 41
    assert truncated_sensitivity(5) == pytest.approx(5.0)


def test_truncated_sensitivity_is_what_tbptt_computes():
    """At the stationary state, with dl/do = 1, TBPTT(1, k)'s gradient is the sensitivity."""
    theta = 0.5
    s = stationary_state(theta)
    problem = influence_problem(80, theta=theta)
    targets = np.full_like(problem.targets, s[0] - 1.0)  # o - target = 1 at every step
    for k in (1, 10, 30, 60):
        seen = []
        tbptt(
            problem.params,
            problem.inputs,
            targets,
            1,
            k,
            h0=s[None, :],
            cell=problem.cell,
            loss=bptt.squared_error,
            update=lambda g, t, seen=seen: seen.append(g["theta"].item()),
        )
        assert seen[-1] == pytest.approx(truncated_sensitivity(k), rel=1e-10)


def test_artbp_runs_on_the_influence_cell():
    problem = influence_problem(50)
    kw = {"h0": problem.h0, "cell": problem.cell, "loss": bptt.squared_error}
    _, exact, _ = bptt.loss_and_grads_stepwise(*problem[1:4], **kw)
    result = artbp(*problem[1:4], ConstantTruncation(0.0), rng=0, **kw)
    assert bptt.relative_error(result.grads["theta"], exact["theta"]) < 1e-12


def test_bad_inputs():
    with pytest.raises(ValueError, match="p must be <= n"):
        InfluenceCell(5, 6)
    with pytest.raises(ValueError, match="n must be an integer >= 1"):
        InfluenceCell(0, 0)
    with pytest.raises(ValueError, match="2p = n"):
        optimal_theta(10, 5)
    with pytest.raises(ValueError, match="k must be integer"):
        truncated_sensitivity(2.5)
    with pytest.raises(ValueError, match="k must be integer"):
        truncated_sensitivity(-1)
    with pytest.raises(ValueError, match="steps must be an integer >= 1"):
        influence_problem(0)
    params = bptt.init_params(3, 4, 3, rng=0)
    with pytest.raises(TypeError, match="cell must implement"):
        rtrl(params, np.zeros((2, 1), dtype=int), np.zeros((2, 1), dtype=int), cell="tanh")


def test_truncated_sensitivity_of_an_integer_is_a_float_of_an_array_an_array():
    assert isinstance(truncated_sensitivity(5), float)
    assert isinstance(truncated_sensitivity(np.int64(5)), float)
    many = truncated_sensitivity(np.array([[1, 2], [3, 4]]))
    assert isinstance(many, np.ndarray) and many.shape == (2, 2)
    assert many[1, 1] == pytest.approx(truncated_sensitivity(4))
