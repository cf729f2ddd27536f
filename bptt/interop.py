"""PyTorch interoperability: the same model as ``torch.nn`` modules, and back (optional).

A model of this package is a cell plus a linear readout, with PyTorch's equations: the tanh cell
is ``torch.nn.RNN(nonlinearity="tanh")``, :data:`bptt.GRU` is ``torch.nn.GRU`` and
:data:`bptt.LSTM` is ``torch.nn.LSTM``, and the readout is ``torch.nn.Linear``.
:func:`to_torch` builds those modules holding the same weights, so a model trained here runs,
or goes on training, in PyTorch; :func:`from_torch` reads a trained PyTorch model back.

Layouts. PyTorch stacks the gates' weights in one ``weight_ih_l0`` ``(G H, D)`` and one
``weight_hh_l0`` ``(G H, H)``, in the order r, z, n for the GRU and i, f, g, o for the LSTM; this
package keeps one array per gate (``W_xr``, ``W_hr``, ...). PyTorch has two biases,
``bias_ih_l0`` and ``bias_hh_l0``; wherever only their sum acts (every gate but the GRU's
candidate) this package keeps the sum, so :func:`from_torch` adds them and :func:`to_torch`
puts the whole bias in ``bias_ih_l0`` and ``-0.0`` in ``bias_hh_l0`` (adding ``-0.0`` changes no
float, not even the sign of a zero, so a round trip is exact bit for bit). The GRU's candidate
has ``b_xn`` (``bias_ih``) and ``b_hn`` (``bias_hh``, inside the product with the reset gate).
The LSTM's state ``[h | c]`` ``(B, 2H)`` is PyTorch's pair ``(h_0, c_0)``, each ``(1, B, H)``.

Saved models for PyTorch, without pickles: :func:`save_safetensors` writes the arrays of
:func:`torch_layout` in the `safetensors <https://huggingface.co/docs/safetensors>`_ format (a
JSON header and raw little-endian bytes; no code is ever loaded from it), which the
``safetensors`` package reads straight into PyTorch tensors, and :func:`load_safetensors` reads
such a file back with numpy alone.

PyTorch is imported only inside :func:`to_torch` and :func:`from_torch`, so the package needs
numpy alone; without PyTorch they raise an ``ImportError`` that says what to install.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import Any

import numpy as np

from bptt._checks import describe
from bptt.cells import GRU, LSTM, TANH, Cell, GRUCell, LSTMCell, Params, TanhCell, check_cell
from bptt.cells.lstm import GATES
from bptt.params import check_params

TORCH_REQUIREMENT = "torch==2.13.0"
"""The PyTorch release the interoperability is tested with (``pip install torch==2.13.0``)."""

GATE_ORDER: dict[str, tuple[str, ...]] = {"tanh": ("h",), "gru": ("r", "z", "n"), "lstm": GATES}
"""The blocks of ``weight_ih_l0``/``weight_hh_l0``, top to bottom, for each cell (PyTorch's)."""


def _torch() -> Any:
    """Import PyTorch, or raise an ``ImportError`` that says how to install it."""
    try:
        import torch
    except ImportError as error:
        raise ImportError(
            "bptt.to_torch and bptt.from_torch need PyTorch, which is not installed; install it "
            f"with `pip install {TORCH_REQUIREMENT}` (the CPU build is enough)"
        ) from error
    return torch


def _kind(cell: Any) -> str:
    """``"tanh"``, ``"gru"`` or ``"lstm"`` for a cell this module knows, else a ``TypeError``."""
    check_cell(cell)
    for kind, cls in (("tanh", TanhCell), ("gru", GRUCell), ("lstm", LSTMCell)):
        if isinstance(cell, cls):
            return kind
    raise TypeError(
        "cell must be bptt.TANH, bptt.GRU or bptt.LSTM (the cells with a PyTorch module), got "
        f"{describe(cell)}"
    )


def _blocks(params: Params, prefix: str, gates: tuple[str, ...]) -> np.ndarray:
    return np.concatenate([params[f"{prefix}{gate}"] for gate in gates], axis=0)


def torch_layout(params: Params, cell: Cell = TANH) -> dict[str, np.ndarray]:
    """The model's arrays named and stacked as PyTorch's state dicts: ``rnn.*`` and ``readout.*``.

    ``rnn.weight_ih_l0`` ``(G H, D)``, ``rnn.weight_hh_l0`` ``(G H, H)``, ``rnn.bias_ih_l0`` and
    ``rnn.bias_hh_l0`` ``(G H,)`` (G = 1, 3 or 4 gates, in PyTorch's order), ``readout.weight``
    ``(V, H)`` and ``readout.bias`` ``(V,)``: new arrays, C-ordered. The whole of a summed bias
    goes to ``bias_ih`` and ``-0.0`` to ``bias_hh``. Explained in Appendix A3 (the API).
    """
    kind = _kind(cell)
    check_params(params, cell)
    gates = GATE_ORDER[kind]
    if kind == "gru":
        bias_ih = np.concatenate([params["b_r"], params["b_z"], params["b_xn"]])
    else:
        bias_ih = _blocks(params, "b_", gates)
    bias_hh = np.full_like(bias_ih, -0.0)  # x + (-0.0) == x for every float x, zeros included
    if kind == "gru":
        bias_hh[2 * len(params["b_hn"]) :] = params["b_hn"]
    return {
        "rnn.weight_ih_l0": _blocks(params, "W_x", gates),
        "rnn.weight_hh_l0": _blocks(params, "W_h", gates),
        "rnn.bias_ih_l0": bias_ih,
        "rnn.bias_hh_l0": bias_hh,
        "readout.weight": np.array(params["W_hy"], order="C", copy=True),
        "readout.bias": np.array(params["b_y"], order="C", copy=True),
    }


def params_from_layout(arrays: dict[str, np.ndarray], cell: Cell) -> Params:
    """The inverse of :func:`torch_layout`: this package's ``params`` from PyTorch's arrays.

    ``arrays`` holds the six names of :func:`torch_layout` (copies are taken). Where only the
    sum of PyTorch's two biases acts it is taken; the GRU's candidate keeps both. Raises a
    ``ValueError`` naming an array whose shape does not fit. Explained in Appendix A3.
    """
    kind = _kind(cell)
    missing = [name for name in LAYOUT_NAMES if name not in arrays]
    if missing:
        raise ValueError(f"arrays must hold {list(LAYOUT_NAMES)}, missing {missing}")
    w_ih, w_hh = arrays["rnn.weight_ih_l0"], arrays["rnn.weight_hh_l0"]
    b_ih, b_hh = arrays["rnn.bias_ih_l0"], arrays["rnn.bias_hh_l0"]
    gates = GATE_ORDER[kind]
    if np.ndim(w_hh) != 2 or w_hh.shape[0] != len(gates) * w_hh.shape[1]:
        raise ValueError(
            f"rnn.weight_hh_l0 must have shape ({len(gates)} H, H) for the {kind} cell, got "
            f"{np.shape(w_hh)}"
        )
    H = w_hh.shape[1]
    for name in ("rnn.weight_ih_l0", "rnn.bias_ih_l0", "rnn.bias_hh_l0"):
        if np.shape(arrays[name])[:1] != (len(gates) * H,):
            raise ValueError(
                f"{name} must have {len(gates) * H} rows ({len(gates)} gates of H = {H}) for "
                f"the {kind} cell, got shape {np.shape(arrays[name])}"
            )
    params: Params = {}
    for k, gate in enumerate(gates):
        rows = slice(k * H, (k + 1) * H)
        params[f"W_x{gate}"], params[f"W_h{gate}"] = w_ih[rows].copy(), w_hh[rows].copy()
        if kind == "gru" and gate == "n":
            params["b_xn"], params["b_hn"] = b_ih[rows].copy(), b_hh[rows].copy()
        else:
            params[f"b_{gate}"] = b_ih[rows] + b_hh[rows]
    params["W_hy"] = arrays["readout.weight"].copy()
    params["b_y"] = arrays["readout.bias"].copy()
    params = {name: params[name] for name in (*cell.param_names, "W_hy", "b_y")}
    check_params(params, cell)
    return params


LAYOUT_NAMES = (
    "rnn.weight_ih_l0",
    "rnn.weight_hh_l0",
    "rnn.bias_ih_l0",
    "rnn.bias_hh_l0",
    "readout.weight",
    "readout.bias",
)
"""The arrays of :func:`torch_layout`: the recurrent module's state dict under ``rnn.``, the
readout's under ``readout.``."""


def to_torch(params: Params, cell: Cell = TANH) -> tuple[Any, Any]:
    """The model ``params`` of ``cell`` as PyTorch modules: ``(recurrent_module, linear_readout)``.

    Parameters
    ----------
    params : dict
        The parameters of a model of ``cell`` (as :func:`bptt.init_params` makes them).
    cell : Cell
        :data:`bptt.TANH` (gives ``torch.nn.RNN(nonlinearity="tanh")``), :data:`bptt.GRU`
        (``torch.nn.GRU``) or :data:`bptt.LSTM` (``torch.nn.LSTM``).

    Returns
    -------
    recurrent_module, linear_readout
        One layer, unidirectional, ``batch_first=False`` (time-major, as in this package), on the
        CPU, in the dtype of ``params``; and ``torch.nn.Linear(H, V)`` holding ``W_hy``, ``b_y``.
        ``linear_readout(recurrent_module(x, h0)[0])`` are the package's outputs, with ``h0`` of
        shape ``(1, B, H)`` (the LSTM: the pair ``(h0, c0)``). :func:`from_torch` gives back
        ``params`` bit for bit.

    Explained in Appendix A3 (the API).
    """
    kind = _kind(cell)
    torch = _torch()
    D, H, V = check_params(params, cell)
    dtype = getattr(torch, params["W_hy"].dtype.name, None)
    if not isinstance(dtype, torch.dtype):
        raise TypeError(
            f"params must have a dtype PyTorch has, got {params['W_hy'].dtype}; convert them "
            "with {k: v.astype(np.float64) for k, v in params.items()}"
        )

    def empty(module_class: Any, *args: Any, **kwargs: Any) -> Any:
        """The module without its random initialisation: every weight is overwritten below."""
        return module_class(*args, **kwargs, device="meta", dtype=dtype).to_empty(device="cpu")

    if kind == "tanh":
        module = empty(torch.nn.RNN, D, H, nonlinearity="tanh")
    else:
        module = empty(torch.nn.GRU if kind == "gru" else torch.nn.LSTM, D, H)
    linear = empty(torch.nn.Linear, H, V)
    layout = torch_layout(params, cell)
    with torch.no_grad():
        for name, value in layout.items():
            owner, attribute = name.split(".")
            tensor = getattr(module if owner == "rnn" else linear, attribute)
            tensor.copy_(torch.from_numpy(value))
    return module, linear


def _mismatch(name: str, expected: str, given: Any) -> ValueError:
    return ValueError(f"{name} must be {expected}, got {given}")


def from_torch(recurrent_module: Any, linear_readout: Any) -> tuple[Params, Cell]:
    """A PyTorch RNN/GRU/LSTM plus ``torch.nn.Linear`` as this package's ``(params, cell)``.

    Parameters
    ----------
    recurrent_module : torch.nn.RNN, torch.nn.GRU or torch.nn.LSTM
        One layer, unidirectional, ``batch_first=False``; an ``nn.RNN`` with
        ``nonlinearity="tanh"``; an ``nn.LSTM`` without ``proj_size``. Modules built with
        ``bias=False`` give zero biases.
    linear_readout : torch.nn.Linear
        The readout ``(V, H)``, in the recurrent module's dtype.

    Returns
    -------
    params, cell
        The parameters (numpy copies, in the modules' dtype; summed biases where only the sum acts)
        and :data:`bptt.TANH`, :data:`bptt.GRU` or :data:`bptt.LSTM`. The model computes what the
        modules compute.

    Explained in Appendix A3 (the API).
    """
    torch = _torch()
    nn = torch.nn
    kinds = ((nn.LSTM, "lstm", LSTM), (nn.GRU, "gru", GRU), (nn.RNN, "tanh", TANH))
    found = [(kind, cell) for cls, kind, cell in kinds if isinstance(recurrent_module, cls)]
    if not found:
        raise TypeError(
            "recurrent_module must be a torch.nn.RNN, torch.nn.GRU or torch.nn.LSTM, got "
            f"{describe(recurrent_module)}"
        )
    kind, cell = found[0]
    module = recurrent_module
    checks = (
        ("num_layers", 1, module.num_layers, "1 (one layer; export each layer on its own)"),
        ("bidirectional", False, module.bidirectional, "False (a unidirectional module)"),
        ("batch_first", False, module.batch_first, "False (time-major, as in bptt)"),
        ("proj_size", 0, getattr(module, "proj_size", 0), "0 (an LSTM without projection)"),
    )
    for attribute, wanted, given, expected in checks:
        if given != wanted:
            raise _mismatch(f"recurrent_module.{attribute}", expected, given)
    if kind == "tanh" and module.nonlinearity != "tanh":
        raise _mismatch(
            "recurrent_module.nonlinearity", "'tanh' (bptt's RNN cell)", repr(module.nonlinearity)
        )
    if not isinstance(linear_readout, nn.Linear):
        raise TypeError(f"linear_readout must be a torch.nn.Linear, got {describe(linear_readout)}")
    H = module.hidden_size
    if linear_readout.in_features != H:
        raise _mismatch(
            "linear_readout.in_features",
            f"the recurrent module's hidden_size {H}",
            linear_readout.in_features,
        )
    if linear_readout.weight.dtype != module.weight_ih_l0.dtype:
        raise _mismatch(
            "linear_readout's dtype",
            f"the recurrent module's {module.weight_ih_l0.dtype}",
            linear_readout.weight.dtype,
        )

    def array(tensor: Any) -> np.ndarray:
        result: np.ndarray = tensor.detach().cpu().numpy().copy()
        return result

    w_ih = array(module.weight_ih_l0)
    zeros = np.zeros(w_ih.shape[0], dtype=w_ih.dtype)
    bias = linear_readout.bias
    arrays = {
        "rnn.weight_ih_l0": w_ih,
        "rnn.weight_hh_l0": array(module.weight_hh_l0),
        "rnn.bias_ih_l0": array(module.bias_ih_l0) if module.bias else zeros,
        "rnn.bias_hh_l0": array(module.bias_hh_l0) if module.bias else zeros,
        "readout.weight": array(linear_readout.weight),
        "readout.bias": (
            array(bias)
            if bias is not None
            else np.zeros(linear_readout.out_features, dtype=w_ih.dtype)
        ),
    }
    params = params_from_layout(arrays, cell)
    return params, cell


SAFETENSORS_DTYPES = {"float64": "F64", "float32": "F32", "float16": "F16"}
"""numpy dtype name -> safetensors dtype code, for the dtypes a model may have."""

_CELLS: dict[str, Cell] = {"tanh": TANH, "gru": GRU, "lstm": LSTM}


def save_safetensors(path: str | os.PathLike[str], params: Params, cell: Cell = TANH) -> Path:
    """Save a model for PyTorch as a ``.safetensors`` file (no pickle), atomically.

    The tensors are those of :func:`torch_layout`, so in PyTorch (with the ``safetensors``
    package)::

        state = safetensors.torch.load_file(path)
        rnn.load_state_dict({k[4:]: v for k, v in state.items() if k.startswith("rnn.")})
        linear.load_state_dict({k[8:]: v for k, v in state.items() if k.startswith("readout.")})

    loads it into ``torch.nn.RNN``/``GRU``/``LSTM`` and ``torch.nn.Linear`` modules of the right
    sizes. The header's metadata names the cell (``"bptt_cell"``). The file is written next to
    its destination and renamed into place, so a crash never leaves half a file. Returns the
    path. Explained in Appendix A3 (the API).
    """
    kind = _kind(cell)
    layout = torch_layout(params, cell)
    dtype = layout["readout.weight"].dtype
    code = SAFETENSORS_DTYPES.get(dtype.name)
    if code is None:
        raise TypeError(
            f"params must be float64, float32 or float16 to save as safetensors, got {dtype}"
        )
    header: dict[str, Any] = {}
    offset = 0
    for name, array in layout.items():
        header[name] = {
            "dtype": code,
            "shape": list(array.shape),
            "data_offsets": [offset, offset + array.nbytes],
        }
        offset += array.nbytes
    header["__metadata__"] = {"format": "pt", "producer": "bptt", "bptt_cell": kind}
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)  # the tensors start 8-byte aligned
    target = Path(path)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "wb") as file:
            file.write(struct.pack("<Q", len(text)) + text)
            for array in layout.values():
                file.write(array.astype(dtype.newbyteorder("<"), copy=False).tobytes())
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, target)
    finally:
        if temporary.exists():
            temporary.unlink()
    return target


def _bad_file(path: Path, problem: str) -> ValueError:
    return ValueError(
        f"path {str(path)!r} is not a model saved by bptt.save_safetensors: {problem}"
    )


def load_safetensors(path: str | os.PathLike[str]) -> tuple[Params, Cell]:
    """Read a model saved by :func:`save_safetensors` (or by PyTorch in its layout) with numpy.

    Returns ``(params, cell)``; a save and a load give the parameters back bit for bit. The cell
    is the header's ``"bptt_cell"``, or, in a file without it, the one whose number of gates
    matches ``rnn.weight_hh_l0``. Nothing in the file is executed. Raises a ``ValueError`` that
    names the path and what is wrong with the file. Explained in Appendix A3 (the API).
    """
    target = Path(path)
    data = target.read_bytes()
    if len(data) < 8:
        raise _bad_file(target, f"it has {len(data)} bytes, fewer than the 8 of a header length")
    (size,) = struct.unpack("<Q", data[:8])
    if size > len(data) - 8:
        raise _bad_file(target, f"its header claims {size} bytes, the file has {len(data) - 8}")
    try:
        header = json.loads(data[8 : 8 + size])
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise _bad_file(target, f"its header is not JSON ({error})") from None
    if not isinstance(header, dict):
        raise _bad_file(target, "its header is not a JSON object")
    buffer = data[8 + size :]
    codes = {code: name for name, code in SAFETENSORS_DTYPES.items()}
    arrays: dict[str, np.ndarray] = {}
    for name in LAYOUT_NAMES:
        entry = header.get(name)
        if not isinstance(entry, dict):
            raise _bad_file(target, f"it has no tensor {name!r}")
        code, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
        if code not in codes:
            raise _bad_file(target, f"{name} has dtype {code!r}, expected one of {list(codes)}")
        dtype = np.dtype(codes[code]).newbyteorder("<")
        if not (
            isinstance(shape, list)
            and all(isinstance(n, int) and n >= 0 for n in shape)
            and isinstance(offsets, list)
            and len(offsets) == 2
            and all(isinstance(n, int) for n in offsets)
        ):
            raise _bad_file(target, f"{name} has shape {shape!r} and data_offsets {offsets!r}")
        begin, end = offsets
        count = int(np.prod(shape))
        if not 0 <= begin <= end <= len(buffer) or end - begin != count * dtype.itemsize:
            raise _bad_file(
                target,
                f"{name}'s data_offsets {offsets} do not hold {count} {code} values inside the "
                f"{len(buffer)} bytes of data",
            )
        values = np.frombuffer(buffer, dtype=dtype, count=count, offset=begin)
        arrays[name] = values.reshape(shape).astype(dtype.newbyteorder("="))
    metadata = header.get("__metadata__") or {}
    kind = metadata.get("bptt_cell") if isinstance(metadata, dict) else None
    gates = {len(g): k for k, g in GATE_ORDER.items()}
    w_hh = arrays["rnn.weight_hh_l0"]
    inferred = gates.get(w_hh.shape[0] // max(w_hh.shape[-1], 1)) if w_hh.ndim == 2 else None
    kind = inferred if kind is None else kind
    if kind not in _CELLS:
        raise _bad_file(
            target, f"its cell {kind!r} is not one of {list(_CELLS)} (header 'bptt_cell')"
        )
    cell = _CELLS[kind]
    try:
        return params_from_layout(arrays, cell), cell
    except ValueError as error:
        raise _bad_file(target, str(error)) from None
