"""Creating and validating parameters (Chapter 1)."""

from __future__ import annotations

import numpy as np
import pytest

import bptt


def test_init_params_shapes_dtype_and_scale():
    params = bptt.init_params(input_size=3, hidden_size=200, output_size=5, rng=0)
    assert {k: v.shape for k, v in params.items()} == {
        "W_xh": (200, 3),
        "W_hh": (200, 200),
        "b_h": (200,),
        "W_hy": (5, 200),
        "b_y": (5,),
    }
    assert all(v.dtype == np.float64 for v in params.values())
    assert np.all(params["b_h"] == 0) and np.all(params["b_y"] == 0)
    # 40000 draws with standard deviation 0.01: the sample std is within 2 % of it
    assert abs(params["W_hh"].std() - 0.01) < 2e-4
    assert bptt.check_params(params) == bptt.ModelSizes(3, 200, 5)


def test_weight_scale_and_float32():
    params = bptt.init_params(2, 50, 2, rng=1, weight_scale=0.5, dtype=np.float32)
    assert params["W_hh"].dtype == np.float32
    assert abs(params["W_hh"].std() - 0.5) < 0.03


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"input_size": 0}, ValueError, "input_size must be an integer >= 1, got 0"),
        ({"hidden_size": -2}, ValueError, "hidden_size must be an integer >= 1, got -2"),
        ({"output_size": 2.5}, TypeError, r"output_size must be an integer >= 1, got 2.5"),
        ({"hidden_size": True}, TypeError, "hidden_size must be an integer"),
        ({"rng": None}, TypeError, "rng must be a numpy Generator"),
        ({"rng": np.random.RandomState(0)}, TypeError, "rng must be a numpy Generator"),
        ({"weight_scale": 0.0}, ValueError, "weight_scale must be a finite number > 0"),
        ({"weight_scale": float("nan")}, ValueError, "weight_scale must be a finite number"),
        ({"dtype": np.int32}, TypeError, "dtype must be a floating dtype"),
    ],
)
def test_init_params_rejects_bad_arguments(kwargs, error, message):
    arguments = {"input_size": 2, "hidden_size": 3, "output_size": 4, "rng": 0, **kwargs}
    with pytest.raises(error, match=message):
        bptt.init_params(**arguments)


def test_check_params_names_the_problem():
    good = bptt.init_params(2, 3, 4, rng=0)
    with pytest.raises(TypeError, match="params must be a mapping"):
        bptt.check_params([1, 2])
    missing = {k: v for k, v in good.items() if k != "b_h"}
    with pytest.raises(ValueError, match=r"missing \['b_h'\]"):
        bptt.check_params(missing)
    with pytest.raises(ValueError, match=r"unexpected \['extra'\]"):
        bptt.check_params({**good, "extra": np.zeros(1)})
    with pytest.raises(ValueError, match=r"params\['W_hh'\] must have shape \(3, 3\)"):
        bptt.check_params({**good, "W_hh": np.zeros((3, 4))})
    with pytest.raises(ValueError, match=r"params\['b_y'\] must have shape \(4,\)"):
        bptt.check_params({**good, "b_y": np.zeros(3)})
    with pytest.raises(ValueError, match=r"params\['W_xh'\] contains 1 non-finite"):
        bptt.check_params({**good, "W_xh": np.array([[np.nan, 0], [0, 0], [0, 0]])})
    with pytest.raises(TypeError, match="one floating dtype"):
        bptt.check_params({**good, "b_h": good["b_h"].astype(np.float32)})
    with pytest.raises(TypeError, match=r"params\['W_hy'\] must be a floating-point array"):
        bptt.check_params({**good, "W_hy": np.zeros((4, 3), dtype=int)})


def test_prepare_h0_has_the_cells_state_width():
    from bptt.cells import LSTM
    from bptt.params import prepare_h0

    assert prepare_h0(None, 2, 3, np.dtype(np.float64), cell=LSTM).shape == (2, 6)
    assert prepare_h0(None, 2, 3, np.dtype(np.float64), cell=bptt.GRU).shape == (2, 3)
    with pytest.raises(ValueError, match=r"h0 must have shape \(2, 6\).*S = 6 the lstm cell"):
        prepare_h0(np.zeros((2, 3)), 2, 3, np.dtype(np.float64), cell=LSTM)
