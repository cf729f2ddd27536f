"""Chapter 9's experiments: the last-step loss, gradient norm vs lag, and the training runs."""

from __future__ import annotations

import numpy as np
import pytest

import bptt
from bptt.cells.gru import GRU
from bptt.experiments import vanishing
from bptt.experiments.tasks import adding_problem


@pytest.mark.parametrize("cell", [bptt.TANH, GRU], ids=["tanh", "gru"])
def test_last_step_loss_gradcheck(cell):
    params = vanishing.make_adding_model(cell, 5, 0, weight_scale=0.5)
    inputs, targets = adding_problem(6, 3, 1)
    report = bptt.gradcheck(
        lambda p: vanishing.last_step_loss_and_grads(p, inputs, targets, cell=cell), params
    )
    assert report.passed, str(report)


def test_tanh_fast_path_equals_stepwise():
    params = vanishing.make_adding_model(bptt.TANH, 5, 0, recurrent="orthogonal")
    inputs, targets = adding_problem(7, 3, 1)
    loss, grads, h = vanishing.last_step_loss_and_grads(params, inputs, targets)
    outputs, hs, caches = bptt.forward_stepwise(params, inputs)
    ref_loss, dlast = bptt.squared_error(outputs[-1], targets)
    doutputs = np.zeros_like(outputs)
    doutputs[-1] = dlast
    ref_grads, _ = bptt.backward_stepwise(params, hs, caches, doutputs)
    assert loss == pytest.approx(ref_loss, rel=1e-13)
    np.testing.assert_allclose(h, hs[-1], rtol=1e-13)
    for name in params:
        assert bptt.relative_error(grads[name], ref_grads[name]) < 1e-12


def test_gradient_norm_vs_lag():
    params = vanishing.make_adding_model(bptt.TANH, 6, 0, weight_scale=0.01)
    inputs, targets = adding_problem(12, 4, 2)
    norms = vanishing.gradient_norm_vs_lag(params, inputs, targets)
    assert norms.shape == (13,)
    assert np.all(np.diff(norms) < 0)  # tiny W_hh: the signal shrinks at every step back
    gru = vanishing.make_adding_model(GRU, 6, 0, weight_scale=0.1)
    gru["b_z"][:] = 4.0  # z near 1, mostly copying: the additive path keeps the signal
    gnorms = vanishing.gradient_norm_vs_lag(gru, inputs, targets, cell=GRU)
    assert gnorms[-1] / gnorms[0] > 0.5 > norms[-1] / norms[0]


def test_train_adding_small_run():
    run = vanishing.train_adding(
        10, cell=GRU, hidden_size=8, steps=60, batch_size=16, test_size=100, rng=0
    )
    assert len(run.losses) == 60 and len(run.grad_norms) == 60
    assert not run.diverged and np.isfinite(run.test_loss)
    assert run.baseline == pytest.approx(1 / 12)
    again = vanishing.train_adding(
        10, cell=GRU, hidden_size=8, steps=60, batch_size=16, test_size=100, rng=0
    )
    assert again.losses == run.losses  # seeded


def test_divergence_is_detected_and_clipping_prevents_it():
    common = dict(
        hidden_size=16,
        steps=200,
        batch_size=32,
        test_size=100,
        optimizer="sgd",
        learning_rate=0.3,
        spectral_radius=2.0,  # at 1.5 only some seeds diverge within 200 updates
        weight_scale=0.1,
        input_scale=1.0,
        rng=0,
    )
    wild = vanishing.train_adding(40, **common)
    assert wild.diverged and len(wild.losses) < 200 and np.isnan(wild.test_loss)
    tame = vanishing.train_adding(40, clip_norm=1.0, **common)
    assert not tame.diverged and len(tame.losses) == 200
    valued = vanishing.train_adding(40, clip_value=0.1, **common)
    assert not valued.diverged


def test_adding_sweep_shape():
    settings = {"a": {"recurrent": "orthogonal"}, "g": {"cell": "gru"}}
    results = vanishing.adding_sweep(
        (4, 6), settings, hidden_size=4, steps=3, batch_size=4, test_size=8
    )
    assert list(results) == ["a", "g"]
    assert [r.seq_length for r in results["g"]] == [4, 6]
    assert results["g"][0].label == "g"


def test_errors():
    with pytest.raises(ValueError, match="seq_length"):
        vanishing.train_adding(1)
    with pytest.raises(ValueError, match="kind"):
        vanishing.train_adding(5, recurrent="xavier", steps=1)
    params = vanishing.make_adding_model(bptt.TANH, 3, 0)
    inputs, _ = adding_problem(4, 2, 0)
    with pytest.raises(ValueError, match="targets"):
        vanishing.last_step_loss_and_grads(params, inputs, np.zeros((3, 1)))
