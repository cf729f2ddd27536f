"""UORO (bptt/algorithms/uoro.py): unbiased, and O(1) cell calls (O(H^2) work) per step."""

from __future__ import annotations

import numpy as np
import pytest
from gradient_helpers import z_scores

import bptt
from bptt.algorithms.truncation import tbptt
from bptt.algorithms.uoro import EPSILON, uoro, uoro_scalings
from bptt.experiments.beyond import FastInfluenceCell
from bptt.experiments.counting import CountingCell
from bptt.experiments.influence import influence_problem


def _problem(cell, T=6, B=2, D=3, H=3, seed=0):
    rng = np.random.default_rng(seed)
    params = bptt.init_params(D, H, D, rng=rng, weight_scale=0.6, cell=cell)
    return params, rng.integers(0, D, size=(T, B)), rng.integers(0, D, size=(T, B))


@pytest.mark.parametrize("cell", [bptt.TANH, bptt.GRU, bptt.LSTM], ids=lambda c: c.name)
def test_the_mean_of_many_estimates_is_the_bptt_gradient(cell):
    params, x, y = _problem(cell)
    _, full, _ = bptt.loss_and_grads_stepwise(params, x, y, cell=cell)
    draws = [
        uoro(params, x, y, cell=cell, loss=bptt.softmax_cross_entropy, rng=s).grads
        for s in range(300)
    ]
    for k in cell.param_names:
        z = z_scores(np.array([d[k] for d in draws]), full[k])
        assert np.abs(z).max() < 5, (k, z)
    for k in ("W_hy", "b_y"):  # the readout's gradient is exact
        assert bptt.relative_error(draws[0][k], full[k]) < 1e-12


def test_unbiased_on_influence_balancing_and_truncation_is_not():
    problem = influence_problem(80)
    kw = {"h0": problem.h0, "cell": FastInfluenceCell(), "loss": bptt.squared_error}
    args = (problem.params, problem.inputs, problem.targets)
    exact = bptt.loss_and_grads_stepwise(*args, **kw)[1]["theta"]
    draws = np.array([uoro(*args, rng=s, **kw).grads["theta"] for s in range(400)])
    z = z_scores(draws, exact)
    assert np.abs(z).max() < 4
    truncated = tbptt(*args, 16, 16, **kw).grads["theta"]
    assert np.abs(z_scores(draws, truncated)).max() > 5  # the test can fail


def test_a_biased_variant_is_caught():
    """Without the rho1 nu term in h~ the estimate is biased: the z-test rejects it."""
    problem = influence_problem(40)
    kw = {"h0": problem.h0, "loss": bptt.squared_error}
    args = (problem.params, problem.inputs, problem.targets)
    exact = bptt.loss_and_grads_stepwise(*args, cell=problem.cell, **kw)[1]["theta"]

    class Doubled(FastInfluenceCell):  # J h~ twice too large: a wrong Jacobian-vector product
        def state_jvp(self, params, cache, v):
            return 2 * super().state_jvp(params, cache, v)

    draws = np.array([uoro(*args, cell=Doubled(), rng=s, **kw).grads["theta"] for s in range(200)])
    assert np.abs(z_scores(draws, exact)).max() > 5


def test_cost_per_step_is_one_step_one_jvp_one_backward():
    """Counted: per step UORO calls the cell's step and step_backward once each (O(H^2) each for
    the tanh cell, whose state_jvp is one product with W_hh), and carries S + P numbers."""
    calls = {"jvp": 0}

    class Counting(CountingCell):
        def state_jvp(self, params, cache, v):
            calls["jvp"] += 1
            return bptt.TANH.state_jvp(params, cache.inner, v)

    for H in (4, 16):
        counter = Counting(bptt.TANH)
        calls["jvp"] = 0
        params, x, y = _problem(bptt.TANH, T=10, B=1, H=H)
        uoro(params, x, y, cell=counter, loss=bptt.softmax_cross_entropy)
        assert counter.forward_steps == counter.backward_steps == calls["jvp"] == 10


def test_scalings_are_finite_at_the_start_and_even_in_nu():
    rho0, rho1 = uoro_scalings(np.zeros(3), np.zeros(2), np.ones(3), np.ones(2))
    assert rho0 == pytest.approx(1.0) and rho1 > 0
    assert EPSILON > 0
    local = np.array([1.0, -2.0, 3.0])
    assert uoro_scalings(np.ones(3), np.ones(2), local, np.ones(2)) == uoro_scalings(
        np.ones(3), np.ones(2), -local, -np.ones(2)
    )


def test_bad_rng_is_rejected():
    params, x, y = _problem(bptt.TANH)
    with pytest.raises(TypeError, match="rng"):
        uoro(params, x, y, cell=bptt.TANH, loss=bptt.softmax_cross_entropy, rng="seed")
