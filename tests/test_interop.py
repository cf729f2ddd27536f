"""PyTorch interoperability (bptt.interop), and the package's BPTT against PyTorch's autograd.

For the tanh RNN, the GRU and the LSTM, the modules that ``to_torch`` builds give, through
``loss.backward()`` in float64, the loss and every gradient the package computes by BPTT (and the
final state), with a nonzero initial state and several sequences. Appendix A2 cites the tanh
case. PyTorch is optional: without it every test that needs it is skipped, and the error the
functions then raise is checked.
"""

from __future__ import annotations

import json
import struct
import sys

import numpy as np
import pytest

import bptt
from bptt.cells import GRU, LSTM, TANH, LSTMCell
from bptt.experiments.counting import CountingCell
from bptt.interop import (
    GATE_ORDER,
    TORCH_REQUIREMENT,
    from_torch,
    load_safetensors,
    save_safetensors,
    to_torch,
    torch_layout,
)

CELLS = {"tanh": TANH, "gru": GRU, "lstm": LSTM}
SKIP_REASON = f"PyTorch is not installed (optional: pip install {TORCH_REQUIREMENT})"


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch", reason=SKIP_REASON)


def _model(cell, T, B, D, H, V, seed):
    """Weights of order 1, random biases, float inputs, class targets and a nonzero state."""
    rng = np.random.default_rng(seed)
    params = bptt.init_params(D, H, V, rng, weight_scale=0.6, cell=cell)
    for name in params:
        if name.startswith("b_"):
            params[name] = rng.standard_normal(params[name].shape) * 0.3
    inputs = rng.standard_normal((T, B, D))
    targets = rng.integers(V, size=(T, B))
    h0 = np.tanh(rng.standard_normal((B, bptt.cells.state_size(cell, H))))
    return params, inputs, targets, h0


def torch_loss_and_grads(torch, params, cell, inputs, targets, h0):
    """Loss, gradients and final state of to_torch's modules + cross-entropy, by autograd.

    The gradients are read off the modules' tensors gate by gate (independently of
    ``from_torch``); where the package keeps the sum of PyTorch's two biases, both have the
    gradient of that sum, which is checked.
    """
    kind = cell.name
    module, linear = to_torch(params, cell)
    T, B = targets.shape
    H = params["W_hy"].shape[1]
    state = torch.from_numpy(h0)
    start = (state[None, :, :H], state[None, :, H:]) if kind == "lstm" else state[None]
    hs, last = module(torch.from_numpy(inputs), start)
    logits = linear(hs).reshape(T * B, -1)
    y = torch.from_numpy(targets).reshape(-1)
    loss = torch.nn.functional.cross_entropy(logits, y, reduction="sum") / B  # bptt's convention
    loss.backward()
    numpy = {
        name: getattr(module, name).grad.numpy()
        for name in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")
    }
    grads = {"W_hy": linear.weight.grad.numpy(), "b_y": linear.bias.grad.numpy()}
    for k, gate in enumerate(GATE_ORDER[kind]):
        rows = slice(k * H, (k + 1) * H)
        grads[f"W_x{gate}"] = numpy["weight_ih_l0"][rows]
        grads[f"W_h{gate}"] = numpy["weight_hh_l0"][rows]
        if kind == "gru" and gate == "n":
            grads["b_xn"], grads["b_hn"] = numpy["bias_ih_l0"][rows], numpy["bias_hh_l0"][rows]
        else:
            grads[f"b_{gate}"] = numpy["bias_ih_l0"][rows]
            both = numpy["bias_hh_l0"][rows]
            assert bptt.relative_error(both, grads[f"b_{gate}"]) < 1e-14  # one sum, one gradient
    last = torch.cat([last[0][0], last[1][0]], dim=1) if kind == "lstm" else last[0]
    return float(loss.detach()), grads, last.detach().numpy()


SHAPES = [(1, 1, 3, 2, 3), (9, 4, 5, 7, 6), (40, 2, 8, 16, 8)]  # (T, B, D, H, V)


@pytest.mark.parametrize("kind", list(CELLS))
@pytest.mark.parametrize(("T", "B", "D", "H", "V"), SHAPES)
def test_bptt_equals_pytorch_autograd_in_float64(torch, kind, T, B, D, H, V):
    cell = CELLS[kind]
    params, inputs, targets, h0 = _model(cell, T, B, D, H, V, seed=T)
    t_loss, t_grads, t_last = torch_loss_and_grads(torch, params, cell, inputs, targets, h0)
    assert set(t_grads) == set(params)
    results = [bptt.loss_and_grads_stepwise(params, inputs, targets, h0, cell=cell)]
    if cell is TANH:  # the vectorised path of Chapter 4 too
        results.append(bptt.loss_and_grads(params, inputs, targets, h0))
    for loss, grads, h_last in results:
        assert abs(loss - t_loss) <= 1e-12 * abs(t_loss)
        np.testing.assert_allclose(h_last, t_last, rtol=0, atol=1e-13)
        for name in params:
            assert bptt.relative_error(grads[name], t_grads[name]) < 1e-10, name
    # TBPTT with k1 = k2 = T is full BPTT.
    truncated = bptt.tbptt(params, inputs, targets, T, T, h0=h0, cell=cell)
    for name in params:
        assert bptt.relative_error(truncated.grads[name], t_grads[name]) < 1e-10, name


def test_token_ids_match_one_hot_inputs_in_pytorch(torch):
    T, B, D, H = 12, 3, 6, 5
    params, _, targets, h0 = _model(TANH, T, B, D, H, D, seed=1)
    ids = np.random.default_rng(1).integers(D, size=(T, B))
    _, grads, _ = bptt.loss_and_grads(params, ids, targets, h0)
    _, t_grads, _ = torch_loss_and_grads(torch, params, TANH, np.eye(D)[ids], targets, h0)
    for name in params:
        assert bptt.relative_error(grads[name], t_grads[name]) < 1e-12, name


@pytest.mark.parametrize("kind", list(CELLS))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_round_trip_is_exact_bit_for_bit(torch, kind, dtype):
    cell = CELLS[kind]
    params, _, _, _ = _model(cell, 2, 1, 3, 4, 5, seed=0)
    params = {k: v.astype(dtype) for k, v in params.items()}
    first_bias = next(name for name in params if name.startswith("b_"))
    params[first_bias][0] = -0.0  # a negative zero survives too
    module, linear = to_torch(params, cell)
    assert module.weight_ih_l0.dtype == getattr(torch, np.dtype(dtype).name)
    assert (module.num_layers, module.bidirectional, module.batch_first) == (1, False, False)
    back, back_cell = from_torch(module, linear)
    assert back_cell is cell and list(back) == list(params)
    for name, value in params.items():
        assert back[name].dtype == value.dtype
        assert back[name].tobytes() == value.tobytes(), name
        assert not np.shares_memory(back[name], value)


def test_to_torch_draws_no_random_numbers(torch):
    state = torch.random.get_rng_state()
    to_torch(bptt.init_params(3, 4, 2, 0, cell=GRU), GRU)
    assert torch.equal(state, torch.random.get_rng_state())


@pytest.mark.parametrize("kind", list(CELLS))
def test_from_torch_reads_a_pytorch_initialised_model(torch, kind):
    """A model PyTorch drew itself (two nonzero biases) computes the same outputs here."""
    torch.manual_seed(0)
    D, H, V, T, B = 3, 5, 4, 7, 2
    module = {
        "tanh": torch.nn.RNN(D, H, dtype=torch.float64),
        "gru": torch.nn.GRU(D, H, dtype=torch.float64),
        "lstm": torch.nn.LSTM(D, H, dtype=torch.float64),
    }[kind]
    linear = torch.nn.Linear(H, V, dtype=torch.float64)
    params, cell = from_torch(module, linear)
    assert cell is CELLS[kind]
    x = np.random.default_rng(0).standard_normal((T, B, D))
    outputs, _, _ = bptt.forward_stepwise(params, x, cell=cell)
    with torch.no_grad():
        expected = linear(module(torch.from_numpy(x))[0]).numpy()
    np.testing.assert_allclose(outputs, expected, rtol=0, atol=1e-14)


def test_from_torch_without_biases(torch):
    module = torch.nn.GRU(3, 4, bias=False, dtype=torch.float64)
    linear = torch.nn.Linear(4, 2, bias=False, dtype=torch.float64)
    params, _ = from_torch(module, linear)
    assert all(not np.any(params[k]) for k in params if k.startswith("b_"))
    x = np.random.default_rng(0).standard_normal((5, 2, 3))
    with torch.no_grad():
        expected = linear(module(torch.from_numpy(x))[0]).numpy()
    np.testing.assert_allclose(bptt.forward_stepwise(params, x, cell=GRU)[0], expected, atol=1e-14)


def test_bad_modules_are_named(torch):
    nn, f64 = torch.nn, torch.float64
    linear = nn.Linear(4, 2, dtype=f64)
    cases = [
        (nn.GRU(3, 4, num_layers=2, dtype=f64), ValueError, r"module.num_layers .* 1 .* got 2"),
        (nn.LSTM(3, 4, bidirectional=True, dtype=f64), ValueError, r"bidirectional .* got True"),
        (nn.RNN(3, 4, batch_first=True, dtype=f64), ValueError, r"batch_first .* got True"),
        (nn.LSTM(3, 4, proj_size=2, dtype=f64), ValueError, r"proj_size .* got 2"),
        (nn.RNN(3, 4, nonlinearity="relu", dtype=f64), ValueError, r"nonlinearity .* got 'relu'"),
        (nn.Linear(3, 4, dtype=f64), TypeError, r"recurrent_module must be a torch.nn.RNN.*Linear"),
    ]  # fmt: skip
    for module, error, message in cases:
        with pytest.raises(error, match=message):
            from_torch(module, linear)
    gru = nn.GRU(3, 4, dtype=f64)
    with pytest.raises(ValueError, match=r"linear_readout.in_features .* hidden_size 4, got 5"):
        from_torch(gru, nn.Linear(5, 2, dtype=f64))
    with pytest.raises(ValueError, match=r"linear_readout's dtype .*float64, got torch.float32"):
        from_torch(gru, nn.Linear(4, 2))
    with pytest.raises(TypeError, match=r"linear_readout must be a torch.nn.Linear, got"):
        from_torch(gru, "readout")


def test_bad_params_and_cells_are_named(torch):
    params = bptt.init_params(3, 4, 2, 0, cell=GRU)
    with pytest.raises(TypeError, match=r"cell must be bptt.TANH, bptt.GRU or bptt.LSTM.*Counting"):
        to_torch(params, CountingCell(GRU))
    with pytest.raises(TypeError, match="cell must implement"):
        to_torch(params, "gru")
    with pytest.raises(ValueError, match=r"params.*missing"):
        to_torch(params, LSTM)
    lstm = LSTMCell(forget_bias=0.0)  # any LSTMCell maps to nn.LSTM
    module, _ = to_torch(bptt.init_params(3, 4, 2, 0, cell=lstm), lstm)
    assert isinstance(module, torch.nn.LSTM)


def test_without_torch_the_error_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` fail
    params = bptt.init_params(3, 4, 2, 0)
    with pytest.raises(ImportError, match=r"pip install torch==2\.13\.0"):
        to_torch(params, TANH)
    with pytest.raises(ImportError, match=r"bptt.to_torch and bptt.from_torch need PyTorch"):
        from_torch(object(), object())


def _rewrite_header(path, change):
    """Rewrite a safetensors file's JSON header with ``change(header)`` (data kept)."""
    data = path.read_bytes()
    (size,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + size])
    change(header)
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + data[8 + size :])


@pytest.mark.parametrize("kind", list(CELLS))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_safetensors_save_and_load_are_exact(tmp_path, kind, dtype):
    cell = CELLS[kind]
    params, _, _, _ = _model(cell, 2, 1, 3, 4, 5, seed=2)
    params = {k: v.astype(dtype) for k, v in params.items()}
    path = save_safetensors(tmp_path / "model.safetensors", params, cell)
    assert [p.name for p in tmp_path.iterdir()] == ["model.safetensors"]  # no temporary left
    back, back_cell = load_safetensors(path)
    assert back_cell is cell and list(back) == list(params)
    for name in params:
        assert back[name].dtype == params[name].dtype
        assert back[name].tobytes() == params[name].tobytes(), name
    # Without the metadata the cell is inferred from the number of gates.
    _rewrite_header(path, lambda header: header.pop("__metadata__"))
    assert load_safetensors(path)[1] is cell


def test_safetensors_hold_pytorchs_state_dicts(tmp_path, torch):
    """The file's tensors are the modules' state dicts, under rnn. and readout."""
    params, _, _, _ = _model(LSTM, 2, 1, 3, 4, 5, seed=3)
    path = save_safetensors(tmp_path / "lstm.safetensors", params, LSTM)
    module, linear = to_torch(params, LSTM)
    state = {f"rnn.{k}": v for k, v in module.state_dict().items()}
    state |= {f"readout.{k}": v for k, v in linear.state_dict().items()}
    data = path.read_bytes()
    (size,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + size])
    assert size % 8 == 0 and header["__metadata__"]["bptt_cell"] == "lstm"
    assert set(header) - {"__metadata__"} == set(state)
    for name, tensor in state.items():
        begin, end = header[name]["data_offsets"]
        values = np.frombuffer(data[8 + size + begin : 8 + size + end], dtype="<f8")
        assert header[name]["shape"] == list(tensor.shape) and header[name]["dtype"] == "F64"
        np.testing.assert_array_equal(values.reshape(tensor.shape), tensor.numpy())
    assert set(torch_layout(params, LSTM)) == set(state)


def test_bad_safetensors_files_are_named(tmp_path):
    params = bptt.init_params(3, 4, 2, 0, cell=GRU)
    path = save_safetensors(tmp_path / "m.safetensors", params, GRU)
    good = path.read_bytes()
    cases = [
        (good[:5], "fewer than the 8"),
        (struct.pack("<Q", 10**6) + good[8:], "header claims 1000000 bytes"),
        (struct.pack("<Q", 4) + b"{]}x", "not JSON"),
        (good[:-8], "data_offsets .* do not hold"),
    ]
    for data, message in cases:
        path.write_bytes(data)
        with pytest.raises(ValueError, match=rf"path '.*m.safetensors' is not a model .*{message}"):
            load_safetensors(path)
    path.write_bytes(good)
    _rewrite_header(path, lambda h: h["__metadata__"].update(bptt_cell="elman"))
    with pytest.raises(ValueError, match=r"cell 'elman' is not one of \['tanh', 'gru', 'lstm'\]"):
        load_safetensors(path)
    path.write_bytes(good)
    _rewrite_header(path, lambda h: h.pop("readout.bias"))
    with pytest.raises(ValueError, match=r"no tensor 'readout\.bias'"):
        load_safetensors(path)
    path.write_bytes(good)
    _rewrite_header(path, lambda h: h["__metadata__"].update(bptt_cell="lstm"))
    with pytest.raises(ValueError, match=r"rnn.weight_hh_l0 must have shape \(4 H, H\)"):
        load_safetensors(path)
    with pytest.raises(TypeError, match="float64, float32 or float16"):
        save_safetensors(
            tmp_path / "x", {k: v.astype(np.longdouble) for k, v in params.items()}, GRU
        )
