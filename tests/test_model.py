"""One API for every algorithm: the Model object, the one result type, dtypes, memory budgets.

A :class:`bptt.Model` (a cell with its parameters) is accepted wherever parameters are, and runs
its own cell; every gradient algorithm returns a :class:`bptt.BPTTResult`; every function that
takes a dtype takes it the same way; checkpointed BPTT picks its schedule from a memory budget.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

import bptt
from bptt.algorithms.checkpointing import optimal_schedule
from bptt.initializers import init_rnn_params
from bptt.memory import bptt_memory

D, H, V, T, B = 5, 6, 4, 9, 3
CELLS = {
    "tanh": bptt.TANH,
    "gru": bptt.GRU,
    "lstm": bptt.LSTM,
    "stack": bptt.stack([bptt.TANH, bptt.GRU]),
}


def _data(seed=1):
    gen = np.random.default_rng(seed)
    return gen.integers(0, D, size=(T, B)), gen.integers(0, V, size=(T, B))


def _algorithms():
    """Each gradient algorithm as ``run(params, inputs, targets, **kw)``, exact as set here."""
    return {
        "loss_and_grads": lambda p, x, y, **kw: bptt.loss_and_grads(p, x, y, **kw),
        "stepwise": lambda p, x, y, **kw: bptt.loss_and_grads_stepwise(p, x, y, **kw),
        "tbptt(T, T)": lambda p, x, y, **kw: bptt.tbptt(p, x, y, T, T, **kw),
        "artbp, never cut": lambda p, x, y, **kw: bptt.artbp(
            p, x, y, bptt.ConstantTruncation(0.0), rng=0, **kw
        ),
        "checkpointed": lambda p, x, y, **kw: bptt.loss_and_grads_checkpointed(
            p, x, y, slots=3, **kw
        ),
        "rtrl": lambda p, x, y, **kw: bptt.rtrl(p, x, y, loss=bptt.softmax_cross_entropy, **kw),
    }


@pytest.mark.parametrize("cell_name", list(CELLS))
@pytest.mark.parametrize("algorithm", list(_algorithms()))
def test_a_model_runs_its_own_cell_in_every_algorithm(cell_name, algorithm):
    cell = CELLS[cell_name]
    if algorithm == "loss_and_grads" and cell_name == "stack":
        pytest.skip("the fast path has no stacks: tested below, it points to the per-step path")
    model = bptt.Model.init(D, H, V, rng=0, cell=cell, weight_scale=0.5)
    x, y = _data()
    run = _algorithms()[algorithm]
    with_model = run(model, x, y)
    with_dict = run(model.params, x, y, cell=cell)
    reference = bptt.loss_and_grads_stepwise(model.params, x, y, cell=cell)
    assert isinstance(with_model, bptt.BPTTResult)
    assert with_model.loss == with_dict.loss
    for k in model.params:
        assert np.array_equal(with_model.grads[k], with_dict.grads[k])
        assert bptt.relative_error(with_model.grads[k], reference.grads[k]) < 1e-12
    assert np.array_equal(with_model.h_last, with_dict.h_last)
    assert with_model.h_last.shape == model.initial_state(B).shape


def test_every_result_unpacks_indexes_and_has_attributes():
    model = bptt.Model.init(D, H, V, rng=0, cell=bptt.GRU)
    x, y = _data()
    for name, run in _algorithms().items():
        result = run(model, x, y)
        loss, grads, h_last = result
        assert len(result) == 3, name
        assert (result[0], result[1], result[2]) == (loss, grads, h_last) == tuple(result), name
        assert (result.loss, result.grads, result.h_last) == (loss, grads, h_last), name
        assert result[:2] == (loss, grads), name
    tanh_params = bptt.init_params(D, H, V, rng=0)
    assert isinstance(bptt.loss_and_grads_loop(tanh_params, x, y), bptt.BPTTResult)
    assert isinstance(bptt.tbptt(model, x, y, 3, 3), bptt.TBPTTResult)


def test_the_fast_path_sends_a_stack_to_the_per_step_algorithm():
    model = bptt.Model.init(D, H, V, rng=0, cell=CELLS["stack"])
    x, y = _data()
    with pytest.raises(
        TypeError,
        match=r"cell must be bptt.TANH, bptt.GRU or bptt.LSTM .* "
        r"bptt.loss_and_grads_stepwise",
    ):
        bptt.loss_and_grads(model, x, y)


def test_a_plain_dict_still_means_the_tanh_cell():
    params = bptt.init_params(D, H, V, rng=0, weight_scale=0.5)
    x, y = _data()
    default = bptt.loss_and_grads_stepwise(params, x, y)
    explicit = bptt.loss_and_grads_stepwise(params, x, y, cell=bptt.TANH)
    assert default.loss == explicit.loss
    gru_params = bptt.init_params(D, H, V, rng=0, cell=bptt.GRU)
    with pytest.raises(ValueError, match="params"):  # GRU names are not the tanh cell's
        bptt.loss_and_grads_stepwise(gru_params, x, y)


def test_a_cell_beside_a_model_must_be_its_own():
    model = bptt.Model.init(D, H, V, rng=0, cell=bptt.GRU)
    x, y = _data()
    same = bptt.loss_and_grads(model, x, y, cell=bptt.GRU)  # saying it again is allowed
    assert same.loss == bptt.loss_and_grads(model, x, y).loss
    for run in _algorithms().values():
        with pytest.raises(ValueError, match=r"cell must be left out .* got cell=.*gru cell"):
            run(model, x, y, cell=bptt.LSTM)
    with pytest.raises(ValueError, match="cell must be left out"):
        bptt.forward_stepwise(model, x, cell=bptt.TANH)


def test_the_model_checks_its_parameters_once_when_made():
    params = bptt.init_params(D, H, V, rng=0, cell=bptt.GRU)
    with pytest.raises(ValueError, match="params"):
        bptt.Model(bptt.TANH, params)  # GRU parameters with the tanh cell
    with pytest.raises(TypeError, match="cell"):
        bptt.Model("gru", params)  # type: ignore[arg-type]
    broken = dict(params, W_hy=params["W_hy"][:, :2])
    with pytest.raises(ValueError, match=r"params\['W_xz'\] must have shape \(2, 5\)"):
        bptt.Model(bptt.GRU, broken)
    model = bptt.Model(bptt.GRU, params)
    with pytest.raises(dataclasses.FrozenInstanceError):
        model.cell = bptt.LSTM  # type: ignore[misc]


def test_model_init_draws_what_init_params_draws_and_knows_its_sizes():
    for cell in CELLS.values():
        model = bptt.Model.init(D, H, V, rng=3, cell=cell, weight_scale=0.2, dtype="float32")
        params = bptt.init_params(D, H, V, rng=3, cell=cell, weight_scale=0.2, dtype=np.float32)
        assert list(model.params) == list(params)
        assert all(np.array_equal(model.params[k], params[k]) for k in params)
        assert model.sizes == bptt.ModelSizes(D, H, V) == bptt.check_params(params, cell)
        assert model.dtype == np.float32
        assert model.initial_state(4).shape == (4, bptt.cells.state_size(cell, H))
        assert not model.initial_state(4).any()
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1, got 0"):
        model.initial_state(0)


def test_a_copied_model_trains_apart():
    model = bptt.Model.init(D, H, V, rng=0, cell=bptt.LSTM)
    twin = model.copy()
    x, y = _data()
    bptt.SGD(0.1).step(twin.params, bptt.loss_and_grads(twin, x, y).grads)
    assert twin.cell is model.cell
    assert not np.array_equal(twin.params["W_hf"], model.params["W_hf"])
    fresh = bptt.Model.init(D, H, V, rng=0, cell=bptt.LSTM)
    assert all(np.array_equal(model.params[k], fresh.params[k]) for k in fresh.params)


def test_gradcheck_takes_a_model_and_a_result():
    model = bptt.Model.init(D, H, V, rng=0, cell=bptt.GRU, weight_scale=0.5)
    x, y = _data()
    before = {k: v.copy() for k, v in model.params.items()}
    report = bptt.gradcheck(lambda m: bptt.loss_and_grads(m, x, y), model, max_entries=6)
    assert report.passed, report
    assert all(np.array_equal(before[k], model.params[k]) for k in before)  # restored exactly
    wrong = bptt.loss_and_grads(model, x, y)
    wrong.grads["W_hz"] = wrong.grads["W_hz"] * 1.01
    failed = bptt.gradcheck(lambda m: bptt.loss_and_grads(m, x, y), model, grads=wrong.grads)
    assert not failed.passed


# -- dtypes: one rule everywhere ------------------------------------------------------------

SAME_DTYPE = ["float32", np.float32, np.dtype("float32"), "f4"]
NOT_A_FLOAT_DTYPE = ["int32", np.int64, "bogus", None, 3, bool]


def _dtype_takers():
    gen = lambda: np.random.default_rng(0)  # noqa: E731
    return {
        "init_params": lambda dt: bptt.init_params(D, H, V, rng=0, dtype=dt)["W_hh"],
        "Model.init": lambda dt: bptt.Model.init(D, H, V, rng=0, cell=bptt.GRU, dtype=dt).params[
            "W_hz"
        ],
        "cell.init_params": lambda dt: bptt.LSTM.init_params(D, H, gen(), 0.1, dt)["W_hf"],
        "init_rnn_params": lambda dt: init_rnn_params(D, H, V, 0, recurrent="orthogonal", dtype=dt)[
            "W_hh"
        ],
        "bptt_memory": lambda dt: np.array(
            bptt_memory(T, B, D, H, V, dt).peak_bytes,
            dtype=np.dtype(dt) if isinstance(dt, str) else dt,
        ),
    }


@pytest.mark.parametrize("taker", list(_dtype_takers()))
def test_every_dtype_argument_takes_types_dtypes_and_names_alike(taker):
    make = _dtype_takers()[taker]
    results = [make(dt) for dt in SAME_DTYPE]
    for result in results:
        assert result.dtype == np.float32
        assert np.array_equal(result, results[0])


@pytest.mark.parametrize("taker", list(_dtype_takers()))
@pytest.mark.parametrize("bad", NOT_A_FLOAT_DTYPE, ids=repr)
def test_every_dtype_argument_refuses_what_is_not_a_float_dtype(taker, bad):
    with pytest.raises(
        TypeError, match=r"dtype must be a floating dtype such as np\.float64 or 'float32', got"
    ):
        _dtype_takers()[taker](bad)


# -- checkpointed BPTT within a memory budget -----------------------------------------------


@pytest.mark.parametrize("memorize", ["hidden", "internal"])
@pytest.mark.parametrize("cell_name", ["tanh", "lstm"])
def test_a_memory_budget_picks_the_most_slots_that_fit(memorize, cell_name):
    cell = CELLS[cell_name]
    model = bptt.Model.init(D, H, V, rng=0, cell=cell, weight_scale=0.5)
    x, y = _data()
    full = bptt.loss_and_grads_stepwise(model, x, y)
    state = model.initial_state(B).nbytes
    first = bptt.loss_and_grads_checkpointed(model, x, y, slots=3, memorize=memorize)
    slot = first.slot_bytes
    assert slot == state if memorize == "hidden" else slot > state  # a record holds more
    for budget in (3 * slot, 3 * slot + slot - 1, 5 * slot, 100 * slot):
        result = bptt.loss_and_grads_checkpointed(
            model, x, y, memory_budget=budget, memorize=memorize
        )
        slots = budget // slot
        assert result.schedule == optimal_schedule(T, slots, memorize=memorize)
        assert result.peak_stored * result.slot_bytes <= budget
        assert all(bptt.relative_error(result.grads[k], full.grads[k]) < 1e-12 for k in full.grads)
    # a larger budget never recomputes more, and a budget for everything recomputes least
    steps = [
        bptt.loss_and_grads_checkpointed(
            model, x, y, memory_budget=n * slot, memorize=memorize
        ).forward_steps
        for n in (2, 3, 5, 100)
    ]
    assert steps == sorted(steps, reverse=True) and steps[0] > steps[-1]


def test_a_budget_too_small_says_how_many_bytes_it_needs():
    model = bptt.Model.init(D, H, V, rng=0, cell=bptt.LSTM)
    x, y = _data()
    state = model.initial_state(B).nbytes  # B * 2H * 8 = 288
    with pytest.raises(
        ValueError,
        match=rf"at least 1 slot\(s\) \(h_0\) of {state} bytes, that is {state} bytes, "
        rf"got {state - 1}",
    ):
        bptt.loss_and_grads_checkpointed(model, x, y, memory_budget=state - 1)
    with pytest.raises(ValueError, match=r"at least 2 slot\(s\) \(h_0 and one record\)"):
        bptt.loss_and_grads_checkpointed(model, x, y, memory_budget=state, memorize="internal")
    for bad, error in ((0, ValueError), (-5, ValueError), (2.5, TypeError), ("1 MB", TypeError)):
        with pytest.raises(error, match="memory_budget must be an integer"):
            bptt.loss_and_grads_checkpointed(model, x, y, memory_budget=bad)


@pytest.mark.parametrize("steps", [1, 2, 4, 5, 9, 10, 26])
def test_with_no_slots_nor_budget_about_sqrt_t_slots(steps):
    gen = np.random.default_rng(0)
    params = bptt.init_params(D, H, V, rng=0, weight_scale=0.5)
    x, y = gen.integers(0, D, size=(steps, B)), gen.integers(0, V, size=(steps, B))
    result = bptt.loss_and_grads_checkpointed(params, x, y)
    assert result.schedule == optimal_schedule(steps, 1 + math.ceil(math.sqrt(steps)))
    full = bptt.loss_and_grads_stepwise(params, x, y)
    assert all(bptt.relative_error(result.grads[k], full.grads[k]) < 1e-12 for k in full.grads)


def test_the_trainer_takes_a_dtype_the_same_way():
    from bptt.app.train import TrainConfig

    for dtype in SAME_DTYPE:
        assert TrainConfig(dtype=dtype).dtype == "float32"
    for bad in ("int32", np.int64, None):
        with pytest.raises(ValueError, match="dtype must be 'float32' or 'float64'"):
            TrainConfig(dtype=bad).validate()
