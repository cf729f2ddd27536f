"""Tests of the optimisers (bptt/optim.py) and gradient clipping (bptt/clip.py)."""

from __future__ import annotations

import numpy as np
import pytest

import bptt


def fresh():
    return {"w": np.array([1.0, -2.0, 0.5]), "b": np.array([0.25])}


GRADS = {"w": np.array([0.5, -1.0, 0.0]), "b": np.array([2.0])}


def test_sgd_one_step():
    params = fresh()
    bptt.SGD(0.1).step(params, GRADS)
    np.testing.assert_allclose(params["w"], [0.95, -1.9, 0.5], rtol=1e-15)
    np.testing.assert_allclose(params["b"], [0.05], rtol=1e-14)


def test_sgd_momentum_two_steps():
    params = fresh()
    opt = bptt.SGD(0.1, momentum=0.9)
    opt.step(params, GRADS)
    opt.step(params, GRADS)
    # velocity: g, then 0.9 g + g = 1.9 g; total step 0.1 * 2.9 g
    np.testing.assert_allclose(params["w"], fresh()["w"] - 0.29 * GRADS["w"], rtol=1e-14)


def test_adagrad_one_and_two_steps():
    params = fresh()
    opt = bptt.Adagrad(0.1, eps=1e-8)
    opt.step(params, GRADS)
    # first step: lr * g / sqrt(g**2 + eps), i.e. about lr * sign(g)
    expected = fresh()["w"] - 0.1 * GRADS["w"] / np.sqrt(GRADS["w"] ** 2 + 1e-8)
    np.testing.assert_allclose(params["w"], expected, rtol=1e-15)
    assert params["w"][2] == 0.5  # a zero gradient does not move the parameter
    opt.step(params, GRADS)
    expected = expected - 0.1 * GRADS["w"] / np.sqrt(2 * GRADS["w"] ** 2 + 1e-8)
    np.testing.assert_allclose(params["w"], expected, rtol=1e-15)
    np.testing.assert_allclose(opt.state["w"]["sum_sq"], 2 * GRADS["w"] ** 2)


def test_adam_one_step():
    params = fresh()
    bptt.Adam(0.01, eps=1e-8).step(params, GRADS)
    # bias correction makes the first step lr * g / (|g| + eps)
    expected = fresh()["w"] - 0.01 * GRADS["w"] / (np.abs(GRADS["w"]) + 1e-8)
    np.testing.assert_allclose(params["w"], expected, rtol=1e-15)


@pytest.mark.parametrize("name", ["sgd", "adagrad", "adam"])
def test_state_dict_round_trip(name):
    options = {"momentum": 0.5} if name == "sgd" else {}
    rng = np.random.default_rng(0)
    grads = [{k: rng.standard_normal(v.shape) for k, v in fresh().items()} for _ in range(4)]
    params_a = fresh()
    opt_a = bptt.make_optimizer(name, 0.05, **options)
    for g in grads[:2]:
        opt_a.step(params_a, g)
    state = opt_a.state_dict()
    params_b = {k: v.copy() for k, v in params_a.items()}
    opt_b = bptt.make_optimizer(name, 0.05, **options)
    opt_b.load_state_dict(state)
    assert opt_b.steps == 2
    for g in grads[2:]:
        opt_a.step(params_a, g)
        opt_b.step(params_b, g)
    for k in params_a:
        np.testing.assert_array_equal(params_a[k], params_b[k])
    # the saved state is a copy, not a view of the live arrays
    saved = {k: v.copy() for k, v in state["arrays"].items()}
    for k in saved:
        np.testing.assert_array_equal(state["arrays"][k], saved[k])


def test_load_state_of_another_optimizer():
    state = bptt.Adagrad(0.1).state_dict()
    with pytest.raises(ValueError, match="optimizer state is for 'adagrad', not 'adam'"):
        bptt.Adam(0.1).load_state_dict(state)


def test_step_errors():
    params = fresh()
    with pytest.raises(ValueError, match="grads has no entry for parameter 'b'"):
        bptt.SGD(0.1).step(params, {"w": GRADS["w"]})
    with pytest.raises(ValueError, match=r"grads\['w'\] has shape \(2,\), parameter has \(3,\)"):
        bptt.SGD(0.1).step(params, {"w": np.zeros(2), "b": GRADS["b"]})
    np.testing.assert_array_equal(params["w"], fresh()["w"])  # nothing was updated


def test_constructor_errors():
    with pytest.raises(ValueError, match="learning_rate must be a finite number > 0"):
        bptt.SGD(0.0)
    with pytest.raises(TypeError, match="learning_rate must be a real number"):
        bptt.Adagrad("0.1")
    with pytest.raises(ValueError, match=r"momentum must be in \[0, 1\)"):
        bptt.SGD(0.1, momentum=1.0)
    with pytest.raises(ValueError, match=r"beta2 must be in \[0, 1\)"):
        bptt.Adam(0.1, beta2=1.0)
    with pytest.raises(ValueError, match="optimizer must be one of"):
        bptt.make_optimizer("rmsprop", 0.1)
    assert isinstance(bptt.make_optimizer("adagrad", 0.1), bptt.Adagrad)


def test_clip_by_value():
    grads = {"a": np.array([-7.0, 0.5, 6.0]), "b": np.array([[5.0, -5.0]])}
    clipped = bptt.clip_by_value(grads, 5.0)
    np.testing.assert_array_equal(clipped["a"], [-5.0, 0.5, 5.0])
    np.testing.assert_array_equal(clipped["b"], [[5.0, -5.0]])
    assert grads["a"][0] == -7.0  # the input is not modified
    with pytest.raises(ValueError, match="limit must be a finite number > 0"):
        bptt.clip_by_value(grads, -1.0)


def test_global_norm_and_clip_by_global_norm():
    grads = {"a": np.array([3.0, 0.0]), "b": np.array([[4.0]])}
    assert bptt.global_norm(grads) == pytest.approx(5.0)
    clipped, norm = bptt.clip_by_global_norm(grads, 1.0)
    assert norm == pytest.approx(5.0)
    assert bptt.global_norm(clipped) == pytest.approx(1.0)
    np.testing.assert_allclose(clipped["a"], [0.6, 0.0])  # direction preserved
    same, norm = bptt.clip_by_global_norm(grads, 10.0)
    np.testing.assert_array_equal(same["a"], grads["a"])
    with pytest.raises(FloatingPointError, match=r"grads\['a'\] is not finite"):
        bptt.clip_by_global_norm({"a": np.array([np.nan])}, 1.0)
    with pytest.raises(FloatingPointError, match="gradient norm is not finite"):
        bptt.clip_by_global_norm({"a": np.array([1e200, 1e200])}, 1.0)  # the sum overflows
    with pytest.raises(FloatingPointError, match=r"grads\['a'\] is not finite"):
        bptt.clip_by_value({"a": np.array([np.inf])}, 1.0)  # clipping would hide it
    with pytest.raises(ValueError, match="max_norm must be a finite number > 0"):
        bptt.clip_by_global_norm(grads, 0.0)


@pytest.mark.parametrize("name", ["sgd", "adagrad", "adam"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_gradients_are_refused_by_name_and_change_nothing(name, bad):
    params = fresh()
    opt = bptt.make_optimizer(name, 0.1)
    opt.step(params, GRADS)
    before = ({k: v.copy() for k, v in params.items()}, opt.state_dict())
    grads = {"w": GRADS["w"].copy(), "b": np.array([bad])}
    with pytest.raises(FloatingPointError, match=rf"grads\['b'\] has 1 non-finite.*{name} refused"):
        opt.step(params, grads)
    with pytest.raises(ValueError):  # also a ValueError: bad input to step
        opt.step(params, grads)
    for k in params:
        np.testing.assert_array_equal(params[k], before[0][k])
    after = opt.state_dict()
    assert after["steps"] == before[1]["steps"] == 1
    for k, a in before[1]["arrays"].items():
        np.testing.assert_array_equal(after["arrays"][k], a)
