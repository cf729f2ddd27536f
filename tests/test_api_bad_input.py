# ruff: noqa: E501  (the cases are a table: one line each)
"""Bad input to the public API: one clear line, the right exception, and nothing modified.

Every case calls a public entry point with one thing wrong and asserts:

- the exception type (``ValueError`` or ``TypeError``; a NaN or inf gradient is refused with
  ``FloatingPointError``, which is also a ``ValueError``);
- a one-line message that names the argument and shows what was given, and says what to do
  (the clause after ``;``);
- that none of the arguments was modified (every array is compared with a copy taken before).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import bptt
from bptt import GRU

D, H, V, T, B = 4, 3, 5, 6, 2


def params(cell=bptt.TANH):
    return bptt.init_params(D, H, V, rng=0, weight_scale=0.5, cell=cell)


def ids():
    return np.random.default_rng(1).integers(0, D, size=(T, B))


def labels():
    return np.random.default_rng(2).integers(0, V, size=(T, B))


def floats(*shape):
    return np.random.default_rng(3).standard_normal(shape)


def grads():
    return bptt.loss_and_grads(params(), ids(), labels())[1]


def with_(name, value, cell=bptt.TANH):
    return {**params(cell), name: value}


def cache():
    return bptt.rnn_forward(params(), ids())[1]


def forward():
    return bptt.forward_stepwise(params(), ids())


def loss_of(p):
    return bptt.loss_and_grads(p, ids(), labels())


Case = tuple[Callable[..., Any], tuple, dict, type, str, str]
# (function, args, kwargs, exception, argument named, what was given shown)

CASES: dict[str, Case] = {
    # -- loss_and_grads: params
    "lg params not a mapping": (bptt.loss_and_grads, ([1, 2], ids(), labels()), {}, TypeError, "params", "[1, 2]"),
    "lg params missing key": (bptt.loss_and_grads, ({k: v for k, v in params().items() if k != "b_y"}, ids(), labels()), {}, ValueError, "params", "missing ['b_y']"),
    "lg params extra key": (bptt.loss_and_grads, (with_("extra", np.zeros(2)), ids(), labels()), {}, ValueError, "params", "unexpected ['extra']"),
    "lg params integer array": (bptt.loss_and_grads, (with_("W_hh", np.zeros((H, H), int)), ids(), labels()), {}, TypeError, "params['W_hh']", "int64"),
    "lg params list value": (bptt.loss_and_grads, (with_("b_h", [0.0, 0.0, 0.0]), ids(), labels()), {}, TypeError, "params['b_h']", "list"),
    "lg params NaN": (bptt.loss_and_grads, (with_("W_hh", np.full((H, H), np.nan)), ids(), labels()), {}, ValueError, "params['W_hh']", "9 non-finite"),
    "lg params inf": (bptt.loss_and_grads, (with_("b_y", np.array([0, 0, np.inf, 0, 0])), ids(), labels()), {}, ValueError, "params['b_y']", "index (2,)"),
    "lg params wrong shape": (bptt.loss_and_grads, (with_("W_hh", np.zeros((H, H + 1))), ids(), labels()), {}, ValueError, "params['W_hh']", "(3, 4)"),
    "lg params W_hy 1-D": (bptt.loss_and_grads, (with_("W_hy", np.zeros(H)), ids(), labels()), {}, ValueError, "params['W_hy']", "(3,)"),
    "lg params mixed dtypes": (bptt.loss_and_grads, (with_("b_y", np.zeros(V, np.float32)), ids(), labels()), {}, TypeError, "params", "float32"),
    # -- loss_and_grads: inputs
    "lg inputs 1-D ids": (bptt.loss_and_grads, (params(), np.arange(T), labels()), {}, ValueError, "inputs", "(6,)"),
    "lg inputs ids too large": (bptt.loss_and_grads, (params(), ids() + D, labels()), {}, ValueError, "inputs", "from 4"),
    "lg inputs negative ids": (bptt.loss_and_grads, (params(), -ids() - 1, labels()), {}, ValueError, "inputs", "-4"),
    "lg inputs wrong D": (bptt.loss_and_grads, (params(), floats(T, B, D + 1), labels()), {}, ValueError, "inputs", "(6, 2, 5)"),
    "lg inputs 4-D": (bptt.loss_and_grads, (params(), floats(T, B, D, 1), labels()), {}, ValueError, "inputs", "(6, 2, 4, 1)"),
    "lg inputs float32": (bptt.loss_and_grads, (params(), floats(T, B, D).astype(np.float32), labels()), {}, TypeError, "inputs", "float32"),
    "lg inputs NaN": (bptt.loss_and_grads, (params(), np.full((T, B, D), np.nan), labels()), {}, ValueError, "inputs", "48 non-finite"),
    "lg inputs empty": (bptt.loss_and_grads, (params(), np.zeros((0, B), int), np.zeros((0, B), int)), {}, ValueError, "inputs", "(0, 2)"),
    "lg inputs bool": (bptt.loss_and_grads, (params(), np.zeros((T, B, D), bool), labels()), {}, TypeError, "inputs", "bool"),
    "lg inputs string": (bptt.loss_and_grads, (params(), "hello", labels()), {}, TypeError, "inputs", "'hello'"),
    "lg inputs complex": (bptt.loss_and_grads, (params(), np.zeros((T, B, D), complex), labels()), {}, TypeError, "inputs", "complex"),
    "lg inputs ragged list": (bptt.loss_and_grads, (params(), [[0, 1], [1]], labels()), {}, ValueError, "inputs", "ragged list"),
    # -- loss_and_grads: targets and h0, including batch-first data
    "lg targets floats": (bptt.loss_and_grads, (params(), ids(), labels().astype(float)), {}, TypeError, "targets", "float64"),
    "lg targets too short": (bptt.loss_and_grads, (params(), ids(), labels()[:3]), {}, ValueError, "targets", "(3, 2)"),
    "lg targets batch-first": (bptt.loss_and_grads, (params(), ids(), labels().T), {}, ValueError, "targets", "time-major (T, B"),
    "lg inputs batch-first": (bptt.loss_and_grads, (params(), ids().T, labels()), {}, ValueError, "targets", "batch-first"),
    "lg targets out of range": (bptt.loss_and_grads, (params(), ids(), labels() + V), {}, ValueError, "targets", "[0, 5)"),
    "lg targets one-hot": (bptt.loss_and_grads, (params(), ids(), np.eye(V)[labels()]), {}, ValueError, "targets", "(6, 2, 5)"),
    "lg h0 transposed": (bptt.loss_and_grads, (params(), ids(), labels(), np.zeros((H, B))), {}, ValueError, "h0", "(3, 2)"),
    "lg h0 1-D": (bptt.loss_and_grads, (params(), ids(), labels(), np.zeros(H)), {}, ValueError, "h0", "(3,)"),
    "lg h0 float32": (bptt.loss_and_grads, (params(), ids(), labels(), np.zeros((B, H), np.float32)), {}, TypeError, "h0", "float32"),
    "lg h0 NaN": (bptt.loss_and_grads, (params(), ids(), labels(), np.full((B, H), np.nan)), {}, ValueError, "h0", "non-finite"),
    "lg h0 integers": (bptt.loss_and_grads, (params(), ids(), labels(), np.zeros((B, H), int)), {}, TypeError, "h0", "int64"),
    "lg h0 for batch-first inputs": (bptt.loss_and_grads, (params(), floats(B, T, D), labels().T, np.zeros((B, H))), {}, ValueError, "h0", "batch-first"),
    # -- rnn_forward / rnn_backward
    "rnn_forward params None": (bptt.rnn_forward, (None, ids()), {}, TypeError, "params", "None"),
    "rnn_backward cache None": (bptt.rnn_backward, (params(), None, floats(T, B, V)), {}, TypeError, "cache", "None"),
    "rnn_backward doutputs shape": (bptt.rnn_backward, (params(), cache(), floats(T, B, V - 1)), {}, ValueError, "doutputs", "(6, 2, 4)"),
    "rnn_backward doutputs NaN": (bptt.rnn_backward, (params(), cache(), np.full((T, B, V), np.nan)), {}, ValueError, "doutputs", "non-finite"),
    "rnn_backward dh_last shape": (bptt.rnn_backward, (params(), cache(), floats(T, B, V), np.zeros(H)), {}, ValueError, "dh_last", "(3,)"),
    # -- the stepwise path
    "stepwise params list": (bptt.loss_and_grads_stepwise, ([1], ids(), labels()), {}, TypeError, "params", "[1]"),
    "stepwise targets short": (bptt.loss_and_grads_stepwise, (params(), ids(), labels()[:3]), {}, ValueError, "targets", "(3, 2)"),
    "stepwise batch-first": (bptt.loss_and_grads_stepwise, (params(), ids().T, labels()), {}, ValueError, "targets", "batch-first"),
    "stepwise targets floats": (bptt.loss_and_grads_stepwise, (params(), ids(), labels().astype(float)), {}, TypeError, "targets", "(6, 2)"),
    "stepwise targets out of range": (bptt.loss_and_grads_stepwise, (params(), ids(), labels() + 9), {}, ValueError, "targets", "[0, 5)"),
    "stepwise cell name": (bptt.loss_and_grads_stepwise, (params(), ids(), labels()), {"cell": "gru"}, TypeError, "cell", "'gru'"),
    "stepwise cell mismatch": (bptt.loss_and_grads_stepwise, (params(), ids(), labels()), {"cell": GRU}, ValueError, "params", "missing ['W_xz'"),
    "stepwise loss name": (bptt.loss_and_grads_stepwise, (params(), ids(), labels()), {"loss": "mse"}, TypeError, "loss", "'mse'"),
    "stepwise squared error ids": (bptt.loss_and_grads_stepwise, (params(), ids(), labels()), {"loss": bptt.squared_error}, TypeError, "targets", "int64"),
    "stepwise squared error shape": (bptt.loss_and_grads_stepwise, (params(), ids(), floats(T, B, V + 1)), {"loss": bptt.squared_error}, ValueError, "targets", "(6, 2, 6)"),
    "stepwise h0 shape": (bptt.loss_and_grads_stepwise, (params(), ids(), labels(), np.zeros((H, H))), {}, ValueError, "h0", "(3, 3)"),
    "forward_stepwise inputs D": (bptt.forward_stepwise, (params(), floats(T, B, 2)), {}, ValueError, "inputs", "(6, 2, 2)"),
    "backward_stepwise doutputs": (bptt.backward_stepwise, (params(), forward()[1], forward()[2], floats(T, B, V - 1)), {}, ValueError, "doutputs", "(6, 2, 4)"),
    "backward_stepwise caches": (bptt.backward_stepwise, (params(), forward()[1], None, floats(T, B, V)), {}, TypeError, "caches", "None"),
    "backward_stepwise hs short": (bptt.backward_stepwise, (params(), forward()[1][:3], forward()[2], floats(T, B, V)), {}, ValueError, "hs", "(3, 2, 3)"),
    # -- init_params and check_params
    "init input_size 0": (bptt.init_params, (0, H, V), {"rng": 0}, ValueError, "input_size", "got 0"),
    "init hidden_size float": (bptt.init_params, (D, 2.5, V), {"rng": 0}, TypeError, "hidden_size", "2.5"),
    "init output_size string": (bptt.init_params, (D, H, "5"), {"rng": 0}, TypeError, "output_size", "'5'"),
    "init rng None": (bptt.init_params, (D, H, V), {"rng": None}, TypeError, "rng", "None"),
    "init rng float": (bptt.init_params, (D, H, V), {"rng": 0.5}, TypeError, "rng", "0.5"),
    "init weight_scale negative": (bptt.init_params, (D, H, V), {"rng": 0, "weight_scale": -1}, ValueError, "weight_scale", "-1.0"),
    "init weight_scale NaN": (bptt.init_params, (D, H, V), {"rng": 0, "weight_scale": np.nan}, ValueError, "weight_scale", "nan"),
    "init dtype int": (bptt.init_params, (D, H, V), {"rng": 0, "dtype": int}, TypeError, "dtype", "int64"),
    "init dtype unknown": (bptt.init_params, (D, H, V), {"rng": 0, "dtype": "bogus"}, TypeError, "dtype", "'bogus'"),
    "init cell name": (bptt.init_params, (D, H, V), {"rng": 0, "cell": "gru"}, TypeError, "cell", "'gru'"),
    "init too large": (bptt.init_params, (D, 10**7, V), {"rng": 0}, ValueError, "hidden_size", "TiB"),
    "check_params cell": (bptt.check_params, (params(),), {"cell": 3}, TypeError, "cell", "3 (int)"),
    "check_params GRU layout": (bptt.check_params, (with_("W_hz", np.zeros((H, H + 1)), cell=GRU),), {"cell": GRU}, ValueError, "params['W_hz']", "(3, 4)"),
    # -- losses
    "sce logits 1-D": (bptt.softmax_cross_entropy, (floats(V), np.zeros(1, int)), {}, ValueError, "logits", "(5,)"),
    "sce logits integers": (bptt.softmax_cross_entropy, (np.zeros((B, V), int), np.zeros(B, int)), {}, TypeError, "logits", "int64"),
    "sce logits NaN": (bptt.softmax_cross_entropy, (np.full((B, V), np.nan), np.zeros(B, int)), {}, ValueError, "logits", "non-finite"),
    "sce no classes": (bptt.softmax_cross_entropy, (np.zeros((B, 0)), np.zeros(B, int)), {}, ValueError, "logits", "(2, 0)"),
    "sce targets floats": (bptt.softmax_cross_entropy, (floats(B, V), np.zeros(B)), {}, TypeError, "targets", "float64"),
    "sce targets shape": (bptt.softmax_cross_entropy, (floats(B, V), np.zeros(B + 1, int)), {}, ValueError, "targets", "(3,)"),
    "sce targets range": (bptt.softmax_cross_entropy, (floats(B, V), np.array([0, V])), {}, ValueError, "targets", "to 5"),
    "squared_error shapes": (bptt.squared_error, (floats(B, V), floats(B, V + 1)), {}, ValueError, "targets", "(2, 6)"),
    "squared_error 1-D": (bptt.squared_error, (floats(V), floats(V)), {}, ValueError, "outputs", "(5,)"),
    "squared_error int targets": (bptt.squared_error, (floats(B, V), np.zeros((B, V), int)), {}, TypeError, "targets", "int64"),
    "softmax integers": (bptt.softmax, (np.arange(3),), {}, TypeError, "logits", "int64"),
    "softmax string": (bptt.softmax, ("abc",), {}, TypeError, "logits", "'abc'"),
    "log_softmax empty": (bptt.log_softmax, (np.zeros((2, 0)),), {}, ValueError, "logits", "(2, 0)"),
    # -- clipping
    "clip_by_value limit 0": (bptt.clip_by_value, (grads(), 0), {}, ValueError, "limit", "0.0"),
    "clip_by_value limit string": (bptt.clip_by_value, (grads(), "5"), {}, TypeError, "limit", "'5'"),
    "clip_by_value grads list": (bptt.clip_by_value, ([1.0], 5.0), {}, TypeError, "grads", "[1.0]"),
    "clip_by_value NaN": (bptt.clip_by_value, ({"w": np.array([np.nan, 1.0])}, 5.0), {}, FloatingPointError, "grads['w']", "NaN"),
    "clip_by_value integers": (bptt.clip_by_value, ({"w": np.array([1, 2])}, 5.0), {}, TypeError, "grads['w']", "int64"),
    "clip_by_global_norm max_norm": (bptt.clip_by_global_norm, (grads(), -1.0), {}, ValueError, "max_norm", "-1.0"),
    "clip_by_global_norm inf": (bptt.clip_by_global_norm, ({"w": np.array([np.inf])}, 1.0), {}, FloatingPointError, "grads['w']", "inf"),
    "clip_by_global_norm integer list": (bptt.clip_by_global_norm, ({"w": [1, 2]}, 1.0), {}, TypeError, "grads['w']", "[1, 2]"),
    "global_norm list": (bptt.global_norm, ([np.zeros(2)],), {}, TypeError, "grads", "list"),
    "global_norm strings": (bptt.global_norm, ({"w": "abc"},), {}, TypeError, "grads['w']", "'abc'"),
    # -- gradcheck and relative_error
    "gradcheck f not callable": (bptt.gradcheck, (3, params()), {}, TypeError, "f", "3 (int)"),
    "gradcheck params array": (bptt.gradcheck, (loss_of, np.zeros(3)), {}, TypeError, "params", "(3,)"),
    "gradcheck params empty": (bptt.gradcheck, (loss_of, {}), {}, TypeError, "params", "keys []"),
    "gradcheck params list value": (bptt.gradcheck, (lambda p: 0.0, {"w": [1.0]}), {"grads": {"w": np.zeros(1)}}, TypeError, "params['w']", "[1.0]"),
    "gradcheck params read-only": (bptt.gradcheck, (lambda p: 0.0, {"w": np.broadcast_to(np.zeros(1), (2,))}), {"grads": {"w": np.zeros(2)}}, ValueError, "params['w']", "read-only"),
    "gradcheck eps negative": (bptt.gradcheck, (loss_of, params()), {"eps": -0.1}, ValueError, "eps", "-0.1"),
    "gradcheck eps string": (bptt.gradcheck, (loss_of, params()), {"eps": "1e-5"}, TypeError, "eps", "'1e-5'"),
    "gradcheck tol 0": (bptt.gradcheck, (loss_of, params()), {"tol": 0.0}, ValueError, "tol", "0.0"),
    "gradcheck method": (bptt.gradcheck, (loss_of, params()), {"method": "forward"}, ValueError, "method", "'forward'"),
    "gradcheck noise negative": (bptt.gradcheck, (loss_of, params()), {"noise": -1.0}, ValueError, "noise", "-1.0"),
    "gradcheck directions": (bptt.gradcheck, (loss_of, params()), {"directions": -1}, ValueError, "directions", "-1"),
    "gradcheck max_entries": (bptt.gradcheck, (loss_of, params()), {"max_entries": 0}, ValueError, "max_entries", "got 0"),
    "gradcheck rng": (bptt.gradcheck, (loss_of, params()), {"rng": "seed"}, TypeError, "rng", "'seed'"),
    "gradcheck no grads": (bptt.gradcheck, (lambda p: loss_of(p)[0], params()), {}, ValueError, "grads", "float"),
    "gradcheck grads missing": (bptt.gradcheck, (loss_of, params()), {"grads": {"W_hh": np.zeros((H, H))}}, ValueError, "grads", "'W_xh'"),
    "gradcheck grads shape": (bptt.gradcheck, (loss_of, params()), {"grads": {**grads(), "W_hh": np.zeros((2, 2))}}, ValueError, "grads['W_hh']", "(2, 2)"),
    "gradcheck grads NaN": (bptt.gradcheck, (loss_of, params()), {"grads": {**grads(), "b_h": np.full(H, np.nan)}}, ValueError, "grads['b_h']", "non-finite"),
    "gradcheck f returns None": (bptt.gradcheck, (lambda p: None, {"w": np.zeros(2)}), {"grads": {"w": np.zeros(2)}}, TypeError, "f(params)", "NoneType"),
    "gradcheck loss NaN": (bptt.gradcheck, (lambda p: float("nan"), {"w": np.zeros(2)}), {"grads": {"w": np.zeros(2)}}, ValueError, "f(params)", "nan"),
    "relative_error shapes": (bptt.relative_error, (np.zeros(2), np.zeros(3)), {}, ValueError, "analytic and numerical", "(3,)"),
    "relative_error strings": (bptt.relative_error, ("a", "b"), {}, TypeError, "analytic", "'a'"),
    "relative_error NaN": (bptt.relative_error, (np.array([np.nan]), np.ones(1)), {}, ValueError, "analytic", "non-finite"),
    # -- optimisers
    "SGD learning_rate": (bptt.SGD, (-1,), {}, ValueError, "learning_rate", "-1.0"),
    "SGD momentum": (bptt.SGD, (0.1,), {"momentum": 1.0}, ValueError, "momentum", "1.0"),
    "Adam beta1 string": (bptt.Adam, (0.1,), {"beta1": "a"}, TypeError, "beta1", "'a'"),
    "Adam beta2 NaN": (bptt.Adam, (0.1,), {"beta2": np.nan}, ValueError, "beta2", "nan"),
    "Adagrad eps": (bptt.Adagrad, (0.1,), {"eps": 0.0}, ValueError, "eps", "0.0"),
    "make_optimizer name": (bptt.make_optimizer, ("rmsprop", 0.1), {}, ValueError, "optimizer", "'rmsprop'"),
    "make_optimizer option": (bptt.make_optimizer, ("adam", 0.1), {"momentum": 0.9}, TypeError, "'adam'", "['momentum']"),
    "SGD.step NaN grad": (bptt.SGD(0.1).step, (params(), {**grads(), "W_hh": np.full((H, H), np.nan)}), {}, FloatingPointError, "grads['W_hh']", "9 non-finite"),
    "Adam.step inf grad": (bptt.Adam(0.1).step, (params(), {**grads(), "b_y": np.full(V, np.inf)}), {}, FloatingPointError, "grads['b_y']", "adam"),
    "Adagrad.step missing grad": (bptt.Adagrad(0.1).step, (params(), {"W_hh": np.zeros((H, H))}), {}, ValueError, "grads", "'W_xh'"),
    "Adam.step grad shape": (bptt.Adam(0.1).step, (params(), {**grads(), "b_h": np.zeros(H + 1)}), {}, ValueError, "grads['b_h']", "(4,)"),
    "SGD.step params list": (bptt.SGD(0.1).step, ([1], grads()), {}, TypeError, "params", "[1]"),
    "SGD.step integer params": (bptt.SGD(0.1).step, ({"w": np.zeros(2, int)}, {"w": np.ones(2)}), {}, TypeError, "params['w']", "int64"),
    "Adam.load_state_dict": (bptt.Adam(0.1).load_state_dict, ({"name": "adam"},), {}, ValueError, "state", "['name']"),
    "Adam.load_state_dict other": (bptt.Adam(0.1).load_state_dict, ({"name": "sgd", "steps": 1, "arrays": {}},), {}, ValueError, "optimizer state", "'sgd'"),
    # -- cells and the readout (their methods are the inner loop: checked only when they fail)
    "TANH.step h_prev": (bptt.TANH.step, (params(), np.zeros((B, H + 1)), np.zeros((B, D))), {}, ValueError, "h_prev", "(2, 4)"),
    "TANH.step x": (bptt.TANH.step, (params(), np.zeros((B, H)), np.zeros((B, D + 1))), {}, ValueError, "x", "(2, 5)"),
    "TANH.step_backward dh": (bptt.TANH.step_backward, (params(), (np.zeros((B, D)), np.zeros((B, H)), np.zeros((B, H))), np.zeros((B, H + 1))), {}, ValueError, "dh", "(2, 4)"),
    "TANH.init_params size": (bptt.TANH.init_params, (D, 0, np.random.default_rng(0)), {}, ValueError, "hidden_size", "got 0"),
    "TANH.init_params rng": (bptt.TANH.init_params, (D, H, 0), {}, TypeError, "rng", "0 (int)"),
    "GRU.step h_prev": (GRU.step, (params(GRU), np.zeros((B, H + 2)), np.zeros((B, D))), {}, ValueError, "h_prev", "(2, 5)"),
    "GRU.init_params rng": (GRU.init_params, (D, H, None), {}, TypeError, "rng", "None"),
    "readout_forward h": (bptt.readout_forward, (params(), np.zeros((B, H + 1))), {}, ValueError, "h", "(2, 4)"),
    "readout_backward doutputs": (bptt.readout_backward, (params(), np.zeros((B, H)), np.zeros((B + 1, V))), {}, ValueError, "doutputs", "(3, 5)"),
}  # fmt: skip


def snapshot(value: Any) -> Any:
    """A deep copy of the arrays, mappings and sequences in ``value`` (others as they are)."""
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, dict):
        return {k: snapshot(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(snapshot(v) for v in value)
    return copy.copy(value)


def same(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray):
        return (
            isinstance(b, np.ndarray)
            and a.dtype == b.dtype
            and a.shape == b.shape
            and bool(np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))
        )
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, np.random.Generator):
        return a.bit_generator.state == b.bit_generator.state  # not advanced
    if isinstance(a, float) and np.isnan(a):
        return isinstance(b, float) and bool(np.isnan(b))
    return bool(a == b) if not callable(a) else a is b


def test_there_are_at_least_sixty_cases():
    assert len(CASES) >= 60


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_refused_clearly_and_changes_nothing(case):
    fn, args, kwargs, error, argument, given = CASES[case]
    owner = getattr(fn, "__self__", None)  # an optimiser's state must not change either
    before = snapshot((args, kwargs, getattr(owner, "state", None), getattr(owner, "steps", None)))
    with pytest.raises(error) as caught:
        fn(*args, **kwargs)
    assert isinstance(caught.value, ValueError | TypeError), type(caught.value)
    message = str(caught.value)
    assert "\n" not in message, message
    assert argument in message, f"{argument!r} not named in: {message}"
    assert given in message, f"{given!r} (what was given) not shown in: {message}"
    assert "; " in message, f"no advice on what to do in: {message}"
    after = (args, kwargs, getattr(owner, "state", None), getattr(owner, "steps", None))
    assert same(before, after), "an argument (or the optimiser's state) was modified"


@pytest.mark.parametrize("name", ["sgd", "adagrad", "adam"])
def test_optimisers_refuse_a_nan_gradient_after_real_steps_without_touching_anything(name):
    p = params()
    opt = bptt.make_optimizer(name, 0.05, **({"momentum": 0.9} if name == "sgd" else {}))
    for _ in range(2):
        opt.step(p, grads())
    before = snapshot((p, opt.state, opt.steps))
    bad = {**grads(), "W_xh": grads()["W_xh"].copy()}
    bad["W_xh"][1, 2] = np.nan
    with pytest.raises(FloatingPointError, match=rf"grads\['W_xh'\] has 1 non-finite.*{name}"):
        opt.step(p, bad)
    assert same(before, (p, opt.state, opt.steps))
