"""Speed benchmark: vectorised BPTT against the per-step version, PyTorch and JAX (Appendix A2).

Run it with ``python -m benchmarks speed`` (``make bench`` runs every benchmark). For each size of a
grid it times one forward + loss + backward pass of a tanh RNN with a linear readout and softmax
cross-entropy, on the same random data, in the same process, four ways:

* ``vectorised``: :func:`bptt.loss_and_grads`, the package's fast path;
* ``per step``: :func:`bptt.loss_and_grads_stepwise`, the generic per-step algorithm;
* ``torch``: ``torch.nn.RNN`` + ``torch.nn.Linear`` + ``cross_entropy`` with autograd on the CPU
  (only when PyTorch is installed: ``pip install torch``, the ``bench`` extra);
* ``jax``: ``jax.jit`` of ``jax.value_and_grad`` over a ``jax.lax.scan`` of the same RNN, compiled
  by XLA (only when JAX is installed: ``pip install jax``, the ``bench`` extra).

Before timing, each peer's loss and gradients are checked against the package's (relative error
below 1e-10 in float64), so every implementation computes the same thing. It prints medians of
interleaved runs, the ratios ``vectorised time / peer time`` (below 1: the package is faster), the
achieved GFLOP/s of the vectorised path against the machine's measured matrix-multiply peak and,
where arithmetic dominates, against plain products of the pass's own shapes; then where the
microseconds of one pass go at batch size 1 (:func:`step_breakdown`), and an ablation of the
optimisations of ``bptt/algorithms/vectorised.py``.

Threads: numpy's BLAS reads its thread count when it is loaded, so the measurement runs in a child
process started with ``OPENBLAS_NUM_THREADS``, ``OMP_NUM_THREADS`` and ``MKL_NUM_THREADS`` set to
``--threads`` (default 1), and that child calls ``torch.set_num_threads`` with the same number;
with one thread, XLA is told not to split its work either (``XLA_FLAGS``). With one thread, times
are the process's CPU time (all its threads); with more, wall-clock time.

Memory: large arrays freed by one pass are, by default, returned by glibc to the operating system,
which must map and zero fresh pages for the next pass. The child therefore runs with
:data:`KEEP_FREED_MEMORY` (``--default-malloc`` turns it off), for numpy and PyTorch alike.

The GRU and the LSTM (``bptt.loss_and_grads(..., cell=bptt.GRU)``, ``cell=bptt.LSTM``) are
compared with ``torch.nn.GRU`` and ``torch.nn.LSTM`` (+ ``torch.nn.Linear`` + cross-entropy) on
:data:`GATED_CONFIGS`, the same way (:func:`run_gated`).

Options: ``python -m benchmarks.bench_speed [--quick] [--threads N]
[--only grid|breakdown|ablation|gated] [--no-stepwise] [--default-malloc] [--save DIR]``;
``--save benchmarks/results`` updates the reference results that Appendix A2 shows.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import numpy as np

import bptt
from bptt.algorithms import vectorised

D = V = 64
"""Input and output sizes of the grid's configurations (a character model with 64 symbols)."""

FULL_GRID: dict[str, Any] = {
    "T": (25, 100, 1000),
    "B": (1, 32, 64),
    "H": (100, 128, 256, 512),
    "dtype": ("float32", "float64"),
}
QUICK_GRID: dict[str, Any] = {"T": (100,), "B": (1, 32), "H": (128, 256), "dtype": ("float32",)}
EXTRA_CONFIGS: tuple[tuple[int, int, int, int, int], ...] = (
    (25, 1, 65, 100, 65),
    (200, 32, 256, 512, 256),
)
"""(T, B, D, H, V) measured besides the grid, in every dtype of the grid: a character model of 65
symbols trained on chunks of 25 (min-char-rnn's setting) and a larger model in batches of 32."""
ARITHMETIC_BOUND = 32 * 512
"""Where ``B * H`` is at least this, the pass is dominated by arithmetic rather than per-step
overhead; there the benchmark also times plain products of the pass's shapes
(:func:`matmul_floor`)."""
_THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
_CHILD_FLAG = "BPTT_BENCH_CHILD"


def flops(T: int, B: int, D: int, H: int, V: int) -> float:
    """Floating-point operations of the matrix products of one forward + backward pass.

    Forward: input projection ``2TBDH``, recurrence ``2TBH^2``, readout ``2TBHV``. Backward: the
    readout's ``dh`` and ``dW_hy`` (``2 x 2TBHV``), the recurrence's ``dh`` and ``dW_hh``
    (``2 x 2TBH^2``) and ``dW_xh`` (``2TBDH``). Element-wise work (tanh, softmax) is not counted.
    """
    return 2.0 * T * B * (3 * H * H + 3 * H * V + 2 * D * H)


def matmul_peak(dtype: str, n: int = 1024, repeats: int = 5) -> float:
    """Best GFLOP/s of an ``n x n`` matrix product in numpy: the peak a BLAS reaches here."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n)).astype(dtype)
    b = rng.standard_normal((n, n)).astype(dtype)
    out = np.empty_like(a)
    np.matmul(a, b, out=out)  # warm up
    best = min(_seconds(lambda: np.matmul(a, b, out=out)) for _ in range(repeats))
    return 2.0 * n**3 / best / 1e9


def pass_products(T: int, B: int, D: int, H: int, V: int) -> list[tuple[int, int, int, int]]:
    """The matrix products of one pass: ``(count, m, k, n)`` for ``count`` products (m, k)(k, n).

    Their flops add up to :func:`flops`: the recurrence's ``2T`` products of ``(B, H) (H, H)``
    (forward and backward) and the ``T B``-row products of the input projection, the readout,
    its backward and the three weight gradients.
    """
    N = T * B
    return [
        (2 * T, B, H, H),  # h_{t-1} W_hh^T forward, g_t W_hh backward
        (1, N, D, H),  # input projections
        (1, N, H, V),  # readout
        (1, N, V, H),  # direct terms dl/dh_t
        (1, V, N, H),  # dW_hy
        (1, H, N, H),  # dW_hh
        (1, H, N, D),  # dW_xh
    ]


def matmul_floor(T: int, B: int, D: int, H: int, V: int, dtype: str, repeats: int = 3) -> float:
    """Seconds that plain ``np.matmul(a, b, out=c)`` products of the pass's shapes take.

    The products of :func:`pass_products` on contiguous operands into preallocated outputs, with
    nothing else: the time a pass would take if it did only its arithmetic, at the speed this BLAS
    reaches on these shapes (a ``(B, H) (H, H)`` product is slower per flop than a
    ``1024 x 1024`` one). Best of ``repeats``.
    """
    rng = np.random.default_rng(0)
    jobs = []
    for count, m, k, n in pass_products(T, B, D, H, V):
        a = rng.standard_normal((m, k)).astype(dtype)
        b = rng.standard_normal((k, n)).astype(dtype)
        jobs.append((count, a, b, np.empty((m, n), dtype=dtype)))

    def run() -> None:
        for count, a, b, c in jobs:
            for _ in range(count):
                np.matmul(a, b, out=c)

    run()  # warm up
    return min(_seconds(run) for _ in range(repeats))


CLOCKS = {"cpu": time.process_time, "wall": time.perf_counter}
"""``cpu``: this process's CPU time (user + system, all its threads); ``wall``: elapsed time."""
clock = "wall"
"""The clock in use. The child process picks ``cpu`` when it runs one thread (see ``_child``)."""


def _seconds(fn: Callable[[], Any]) -> float:
    now = CLOCKS[clock]
    start = now()
    fn()
    return now() - start


def problem(T: int, B: int, H: int, dtype: str, seed: int = 0, *, D: int = D, V: int = V):
    """Parameters, dense inputs ``(T, B, D)`` and targets ``(T, B)`` for one configuration."""
    rng = np.random.default_rng(seed)
    # Weights of scale 1/sqrt(H): a spectral radius near 1, so nothing overflows at T = 1000.
    params = bptt.init_params(D, H, V, rng=rng, weight_scale=1 / np.sqrt(H), dtype=dtype)
    inputs = rng.standard_normal((T, B, D)).astype(dtype)
    targets = rng.integers(V, size=(T, B))
    return params, inputs, targets


def torch_available() -> bool:
    """True when PyTorch can be imported."""
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def jax_available() -> bool:
    """True when JAX can be imported."""
    try:
        import jax  # noqa: F401
    except ImportError:
        return False
    return True


def torch_model(params: dict[str, np.ndarray]):
    """``torch.nn.RNN`` + ``torch.nn.Linear`` holding the same weights as ``params``.

    ``nn.RNN`` has two biases; ``b_ih`` takes ``b_h`` and ``b_hh`` is zero (and stays zero in
    value: its gradient equals ``b_ih``'s).
    """
    import torch

    dtype = getattr(torch, params["W_hh"].dtype.name)
    H, D_ = params["W_xh"].shape
    rnn = torch.nn.RNN(D_, H, nonlinearity="tanh", dtype=dtype)
    linear = torch.nn.Linear(H, params["W_hy"].shape[0], dtype=dtype)
    with torch.no_grad():
        rnn.weight_ih_l0.copy_(torch.from_numpy(params["W_xh"]))
        rnn.weight_hh_l0.copy_(torch.from_numpy(params["W_hh"]))
        rnn.bias_ih_l0.copy_(torch.from_numpy(params["b_h"]))
        rnn.bias_hh_l0.zero_()
        linear.weight.copy_(torch.from_numpy(params["W_hy"]))
        linear.bias.copy_(torch.from_numpy(params["b_y"]))
    return rnn, linear


def torch_loss_and_grads(rnn, linear, inputs, targets) -> tuple[float, dict[str, np.ndarray]]:
    """Loss (summed over time, averaged over the batch, as in bptt) and gradients by autograd."""
    import torch

    for p in (*rnn.parameters(), *linear.parameters()):
        p.grad = None
    x = torch.as_tensor(inputs)
    y = torch.as_tensor(targets)
    T, B = y.shape
    hs, _ = rnn(x)
    logits = linear(hs)
    loss = torch.nn.functional.cross_entropy(
        logits.reshape(T * B, -1), y.reshape(-1), reduction="sum"
    )
    loss = loss / B
    loss.backward()
    grads = {
        "W_xh": rnn.weight_ih_l0.grad,
        "W_hh": rnn.weight_hh_l0.grad,
        "b_h": rnn.bias_ih_l0.grad,
        "W_hy": linear.weight.grad,
        "b_y": linear.bias.grad,
    }
    return float(loss.detach()), {k: g.numpy() for k, g in grads.items()}


_JAX_FUNCTION: list[Any] = []


def jax_function():
    """``jax.jit(jax.value_and_grad(loss, has_aux=True))`` of the tanh RNN's loss, in JAX.

    The loss is :func:`bptt.loss_and_grads`'s: the input projections of all steps in one product,
    the recurrence ``h_t = tanh(a_t + h_{t-1} W_hh^T)`` as a ``jax.lax.scan``, the readout of all
    steps, and softmax cross-entropy summed over time and averaged over the batch. The final
    state is returned as auxiliary output, as bptt returns it. ``jax_enable_x64`` is switched on
    so that float64 stays float64; XLA compiles one program per shape and dtype, on first call.
    """
    if _JAX_FUNCTION:
        return _JAX_FUNCTION[0]
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)

    def loss(params, x, y, h0):
        pre = x @ params["W_xh"].T + params["b_h"]
        W_hh_T = params["W_hh"].T

        def step(h, a):
            h = jnp.tanh(a + h @ W_hh_T)
            return h, h

        h_last, hs = jax.lax.scan(step, h0, pre)
        logits = hs @ params["W_hy"].T + params["b_y"]
        logp = jax.nn.log_softmax(logits, axis=-1)
        picked = jnp.take_along_axis(logp, y[..., None], axis=-1)
        return -picked.sum() / y.shape[1], h_last

    _JAX_FUNCTION.append(jax.jit(jax.value_and_grad(loss, has_aux=True)))
    return _JAX_FUNCTION[0]


def jax_arguments(params: dict[str, np.ndarray], inputs: np.ndarray, targets: np.ndarray):
    """The JAX arrays of one problem (moved to the device once, outside the timed calls)."""
    import jax

    h0 = np.zeros((inputs.shape[1], params["W_hh"].shape[0]), dtype=inputs.dtype)
    return jax.device_put((dict(params), inputs, targets, h0))


def jax_loss_and_grads(fn, args) -> tuple[float, dict[str, np.ndarray]]:
    """Loss and gradients by the compiled JAX function, waiting until they are computed."""
    (loss, _h_last), grads = fn(*args)
    grads = {k: g.block_until_ready() for k, g in grads.items()}
    return float(loss), {k: np.asarray(g) for k, g in grads.items()}


def _jax_call(fn, args) -> None:
    """The timed JAX call: the computation, not the copy of its results into numpy arrays."""
    import jax

    jax.block_until_ready(fn(*args))


PEER_TOLERANCE = {"float64": 1e-10, "float32": 1e-3}
"""Largest relative error (:func:`bptt.relative_error`, and for the loss ``|a - b| / |b|``)
allowed between a peer's loss and gradients and the package's, before it is timed."""


def check_peer(name: str, peer: tuple[float, dict], reference: tuple[float, dict], dtype: str):
    """Raise ``AssertionError`` unless a peer's loss and gradients equal the package's.

    Returns the largest relative error found, over the loss and every gradient.
    """
    loss, grads = peer
    ref_loss, ref_grads = reference
    errors = {"loss": abs(loss - ref_loss) / max(abs(ref_loss), 1e-300)}
    errors.update({k: bptt.relative_error(np.asarray(grads[k]), g) for k, g in ref_grads.items()})
    worst = max(errors.values())
    if not worst <= PEER_TOLERANCE[dtype]:
        raise AssertionError(
            f"{name} does not compute what bptt.loss_and_grads computes ({dtype}): relative "
            f"errors {errors}, allowed {PEER_TOLERANCE[dtype]}"
        )
    return worst


def interleaved_times(
    calls: dict[str, Callable[[], Any]],
    *,
    budget: float = 1.0,
    min_rounds: int = 5,
    max_rounds: int = 25,
) -> dict[str, list[float]]:
    """Seconds of each call in every round, timed round-robin (one call of each per round).

    Interleaving makes the comparison fair on a busy machine: a burst of load from other
    processes slows every implementation of a round alike, instead of one of them. A warm-up
    round is not counted; then at least ``min_rounds`` rounds, more while within ``budget`` seconds.
    """
    warm = sum(_seconds(call) for call in calls.values())
    rounds = int(min(max_rounds, max(min_rounds, budget / max(warm, 1e-6))))
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            times[name].append(_seconds(call))
    return times


def interleaved_medians(calls: dict[str, Callable[[], Any]], **options: Any) -> dict[str, float]:
    """Median seconds of each call over interleaved rounds (see :func:`interleaved_times`)."""
    times = interleaved_times(calls, **options)
    return {name: statistics.median(t) for name, t in times.items()}


def _quartiles(values: Sequence[float]) -> tuple[float, float]:
    q = statistics.quantiles(values, n=4, method="inclusive")
    return q[0], q[2]


def bench_one(
    T: int,
    B: int,
    H: int,
    dtype: str,
    *,
    stepwise: bool,
    torch: bool,
    jax: bool = False,
    D: int = D,
    V: int = V,
    floor: bool | None = None,
) -> dict:
    """Median seconds of each implementation for one configuration (and derived numbers).

    The peers are checked against the package first (:func:`check_peer`). Besides the medians, a
    row holds the median and the quartiles over the rounds of the ratio ``vectorised / peer`` (each
    round times every implementation once, so a round's ratio compares like with like).
    ``floor`` (default: when ``B * H >= ARITHMETIC_BOUND``) adds :func:`matmul_floor`.
    """
    params, inputs, targets = problem(T, B, H, dtype, D=D, V=V)
    reference = bptt.loss_and_grads(params, inputs, targets)[:2]
    calls: dict[str, Callable[[], Any]] = {
        "vectorised": partial(bptt.loss_and_grads, params, inputs, targets)
    }
    errors: dict[str, float] = {}
    if stepwise:
        calls["stepwise"] = partial(bptt.loss_and_grads_stepwise, params, inputs, targets)
    if torch:
        rnn, linear = torch_model(params)
        calls["torch"] = partial(torch_loss_and_grads, rnn, linear, inputs, targets)
        errors["torch"] = check_peer("PyTorch", calls["torch"](), reference, dtype)
    if jax:
        fn, args = jax_function(), jax_arguments(params, inputs, targets)
        errors["jax"] = check_peer("JAX", jax_loss_and_grads(fn, args), reference, dtype)
        calls["jax"] = partial(_jax_call, fn, args)
    times = interleaved_times(calls)
    row: dict[str, Any] = {"T": T, "B": B, "D": D, "H": H, "V": V, "dtype": dtype}
    row.update({name: statistics.median(t) for name, t in times.items()})
    row["rounds"] = len(times["vectorised"])
    for peer in ("torch", "jax"):
        if peer in times:
            ratios = [v / p for v, p in zip(times["vectorised"], times[peer], strict=True)]
            row[f"bptt/{peer}"] = statistics.median(ratios)  # the same samples as its quartiles
            row[f"bptt/{peer} quartiles"] = _quartiles(ratios)
            row[f"{peer} error"] = errors[peer]
    row["gflops"] = flops(T, B, D, H, V) / row["vectorised"] / 1e9
    if floor if floor is not None else B * H >= ARITHMETIC_BOUND:
        row["matmul_floor"] = matmul_floor(T, B, D, H, V, dtype)
        row["floor_fraction"] = row["matmul_floor"] / row["vectorised"]
    return row


GATED_CONFIGS: tuple[tuple[int, int, int, int, int], ...] = (
    (25, 1, 65, 100, 65),
    (100, 1, 64, 256, 64),
    (100, 32, 64, 256, 64),
    (100, 64, 64, 512, 64),
    (200, 32, 256, 512, 256),
)
"""(T, B, D, H, V) of the GRU and LSTM comparison with ``torch.nn.GRU``/``torch.nn.LSTM``, in
float64 and float32: min-char-rnn's setting, a single long sequence, and batches from the size
where per-step overhead dominates to where arithmetic does."""
GATED_QUICK: tuple[tuple[int, int, int, int, int], ...] = (
    (25, 1, 65, 100, 65),
    (50, 32, 64, 128, 64),
)
GATED_CELLS = ("gru", "lstm")


def gated_problem(
    cell_name: str, T: int, B: int, D: int, H: int, V: int, dtype: str, seed: int = 0
):
    """Parameters of a GRU or LSTM model, dense inputs ``(T, B, D)`` and targets ``(T, B)``."""
    cell = {"gru": bptt.GRU, "lstm": bptt.LSTM}[cell_name]
    rng = np.random.default_rng(seed)
    params = bptt.init_params(D, H, V, rng=rng, weight_scale=1 / np.sqrt(H), dtype=dtype, cell=cell)
    inputs = rng.standard_normal((T, B, D)).astype(dtype)
    targets = rng.integers(V, size=(T, B))
    return cell, params, inputs, targets


def torch_gated_loss_and_grads(
    module, linear, cell, inputs, targets
) -> tuple[float, dict[str, np.ndarray]]:
    """Loss and gradients of ``torch.nn.GRU``/``torch.nn.LSTM`` + ``Linear`` by autograd.

    The gradients are returned with the package's names (:func:`bptt.interop.params_from_layout`
    of PyTorch's gradients; where the package keeps the sum of PyTorch's two biases, the gradient
    of that sum is the gradient of either, so ``bias_hh``'s is left out there).
    """
    import torch

    from bptt.interop import params_from_layout

    for p in (*module.parameters(), *linear.parameters()):
        p.grad = None
    x = torch.as_tensor(inputs)
    y = torch.as_tensor(targets)
    T, B = y.shape
    hs, _ = module(x)
    logits = linear(hs)
    loss = torch.nn.functional.cross_entropy(
        logits.reshape(T * B, -1), y.reshape(-1), reduction="sum"
    )
    loss = loss / B
    loss.backward()
    bias_hh = module.bias_hh_l0.grad.numpy().copy()
    H = module.hidden_size
    bias_hh[: 2 * H if cell.name == "gru" else None] = 0.0
    layout = {
        "rnn.weight_ih_l0": module.weight_ih_l0.grad.numpy(),
        "rnn.weight_hh_l0": module.weight_hh_l0.grad.numpy(),
        "rnn.bias_ih_l0": module.bias_ih_l0.grad.numpy(),
        "rnn.bias_hh_l0": bias_hh,
        "readout.weight": linear.weight.grad.numpy(),
        "readout.bias": linear.bias.grad.numpy(),
    }
    return float(loss.detach()), params_from_layout(layout, cell)


def _without_onednn(call: Callable[[], Any]) -> Any:
    """``call()`` with PyTorch's oneDNN (MKL-DNN) kernels switched off.

    On the CPU, PyTorch runs a float32 ``torch.nn.LSTM`` through oneDNN's fused LSTM when it can;
    without it, the LSTM is a loop of ATen operations, as its GRU and float64 LSTM are.
    """
    import torch

    before = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = False
    try:
        return call()
    finally:
        torch.backends.mkldnn.enabled = before


def bench_gated_one(
    cell_name: str, T: int, B: int, D: int, H: int, V: int, dtype: str, *, torch: bool
) -> dict[str, Any]:
    """Median seconds of the package's GRU/LSTM fast path and of PyTorch's, for one configuration.

    PyTorch is checked against the package first (:func:`check_peer`); rounds are interleaved.
    """
    cell, params, inputs, targets = gated_problem(cell_name, T, B, D, H, V, dtype)
    calls: dict[str, Callable[[], Any]] = {
        "vectorised": partial(bptt.loss_and_grads, params, inputs, targets, cell=cell)
    }
    errors: dict[str, float] = {}
    if torch:
        module, linear = bptt.to_torch(params, cell)
        calls["torch"] = partial(torch_gated_loss_and_grads, module, linear, cell, inputs, targets)
        reference = bptt.loss_and_grads(params, inputs, targets, cell=cell)[:2]
        errors["torch"] = check_peer("PyTorch", calls["torch"](), reference, dtype)
        if cell_name == "lstm" and dtype == "float32":  # where PyTorch calls oneDNN's LSTM
            calls["torch_no_onednn"] = partial(_without_onednn, calls["torch"])
            errors["torch_no_onednn"] = check_peer(
                "PyTorch without oneDNN", calls["torch_no_onednn"](), reference, dtype
            )
    times = interleaved_times(calls)
    row: dict[str, Any] = {"cell": cell_name, "T": T, "B": B, "D": D, "H": H, "V": V}
    row.update({"dtype": dtype, "rounds": len(times["vectorised"])})
    row.update({name: statistics.median(t) for name, t in times.items()})
    if "torch" in times:
        ratios = [v / p for v, p in zip(times["vectorised"], times["torch"], strict=True)]
        row["bptt/torch"] = statistics.median(ratios)  # the same samples as its quartiles
        row["bptt/torch quartiles"] = _quartiles(ratios)
        row["torch error"] = errors["torch"]
    if "torch_no_onednn" in times:
        pairs = zip(times["vectorised"], times["torch_no_onednn"], strict=True)
        row["bptt/torch_no_onednn"] = statistics.median([v / p for v, p in pairs])
        row["torch_no_onednn error"] = errors["torch_no_onednn"]
    gates = 3 if cell_name == "gru" else 4
    products = recurrence_products(T, B, H, gates, dtype, torch=torch)
    row.update({f"{name} products": t for name, t in products.items()})
    return row


def recurrence_products(
    T: int, B: int, H: int, gates: int, dtype: str, *, torch: bool
) -> dict[str, float]:
    """Median seconds of the ``2T`` matrix products of a gated recurrence alone, numpy vs PyTorch.

    Per step ``(B, H) x (H, gates*H)`` forward and ``(B, gates*H) x (gates*H, H)`` backward, into
    preallocated outputs (``ndarray.dot`` with ``out``, ``torch.mm`` with ``out``), interleaved:
    how fast each library's matrix products are on the shapes the recurrence needs.
    """
    rng = np.random.default_rng(0)
    h = rng.standard_normal((B, H)).astype(dtype)
    g = rng.standard_normal((B, gates * H)).astype(dtype)
    W = rng.standard_normal((gates * H, H)).astype(dtype)
    W_T = np.ascontiguousarray(W.T)
    out_f, out_b = np.empty((B, gates * H), dtype=dtype), np.empty((B, H), dtype=dtype)

    def numpy_products() -> None:
        for _ in range(T):
            h.dot(W_T, out_f)
            g.dot(W, out_b)

    calls: dict[str, Callable[[], Any]] = {"numpy": numpy_products}
    if torch:
        import torch as _torch

        th, tg, tW, tW_T = (_torch.from_numpy(a) for a in (h, g, W, W_T))
        tf, tb = _torch.from_numpy(out_f.copy()), _torch.from_numpy(out_b.copy())

        def torch_products() -> None:
            for _ in range(T):
                _torch.mm(th, tW_T, out=tf)
                _torch.mm(tg, tW, out=tb)

        calls["torch"] = torch_products
    return interleaved_medians(calls, budget=0.3)


def run_gated(
    configs: Sequence[tuple[int, int, int, int, int]] = GATED_CONFIGS,
    dtypes: Sequence[str] = ("float64", "float32"),
    *,
    torch: bool | None = None,
    progress: Callable[[dict], None] | None = None,
) -> dict[str, Any]:
    """Benchmark the GRU and LSTM fast paths against PyTorch on every configuration and dtype."""
    torch = torch_available() if torch is None else torch
    if torch:
        import torch as _torch

        _torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    result: dict[str, Any] = {
        "threads": int(os.environ.get("OMP_NUM_THREADS", "0")) or None,
        "clock": clock,
        "keep_freed_memory": all(os.environ.get(k) == v for k, v in KEEP_FREED_MEMORY.items()),
        "numpy": np.__version__,
        "torch": _torch.__version__ if torch else None,
        "machine": platform.processor() or platform.machine(),
        "rows": [],
    }
    for dtype in dtypes:
        for cfg in configs:
            for cell_name in GATED_CELLS:
                row = bench_gated_one(cell_name, *cfg, dtype, torch=torch)
                result["rows"].append(row)
                if progress is not None:
                    progress(row)
    return result


def gated_summary(result: dict[str, Any]) -> dict[str, Any]:
    """Worst and median ``vectorised / torch`` ratio per cell and dtype, and the noise."""
    out: dict[str, Any] = {}
    for cell_name in GATED_CELLS:
        for dtype in sorted({r["dtype"] for r in result["rows"]}):
            rows = [
                r
                for r in result["rows"]
                if r["cell"] == cell_name and r["dtype"] == dtype and "bptt/torch" in r
            ]
            if not rows:
                continue
            ratios = [r["bptt/torch"] for r in rows]
            worst = max(rows, key=lambda r: r["bptt/torch"])
            spreads = [
                (r["bptt/torch quartiles"][1] - r["bptt/torch quartiles"][0]) / r["bptt/torch"]
                for r in rows
            ]
            out[f"{cell_name} {dtype}"] = {
                "worst": max(ratios),
                "median": statistics.median(ratios),
                "best": min(ratios),
                "worst_config": {k: worst[k] for k in ("T", "B", "D", "H", "V")},
                "slower": sum(x > 1 for x in ratios),
                "count": len(ratios),
                "spread": max(spreads),
                "median_spread": statistics.median(spreads),
                "max_error": max(r["torch error"] for r in rows),
            }
    return out


def format_gated(result: dict[str, Any]) -> str:
    """The GRU/LSTM rows as a Markdown table (milliseconds; ratios below 1: bptt faster).

    Six columns, so that the table fits the book's text column.
    """
    lines = [
        "| cell | (T, B, D, H, V) | bptt ms | torch ms | bptt/torch (quartiles) "
        "| products numpy/torch |",
        "|---|---|---:|---:|---:|---:|",
    ]
    short = {"float64": "f64", "float32": "f32"}
    for r in result["rows"]:
        torch_ms = _ms(r["torch"]) if "torch" in r else "-"
        ratio = _ratio(r, "torch") if "bptt/torch" in r else "-"
        both = "numpy products" in r and "torch products" in r
        products = f"{r['numpy products'] / r['torch products']:.2f}" if both else "-"
        shape = f"{r['T']}, {r['B']}, {r['D']}, {r['H']}, {r['V']}"
        lines.append(
            f"| {r['cell']} {short.get(r['dtype'], r['dtype'])} | {shape} | "
            f"{_ms(r['vectorised'])} | {torch_ms} | {ratio} | {products} |"
        )
    return "\n".join(lines)


def describe_gated(result: dict[str, Any]) -> str:
    """One paragraph: the setting of a GRU/LSTM run."""
    torch = f"PyTorch {result['torch']}" if result["torch"] else "PyTorch not installed"
    timed = "process CPU time" if result.get("clock") == "cpu" else "wall-clock time"
    return (
        f"{result['threads']} BLAS thread(s) for numpy and PyTorch; numpy {result['numpy']}, "
        f"{torch}. bptt.loss_and_grads(..., cell=bptt.GRU / bptt.LSTM) against torch.nn.GRU / "
        f"torch.nn.LSTM + torch.nn.Linear + cross_entropy with autograd, the same weights "
        f"(bptt.to_torch). Medians of {timed} of interleaved runs of forward + loss + backward. "
        "Last column: the recurrence's 2T matrix products alone, numpy's time over PyTorch's."
    )


def configurations(grid: dict[str, Sequence[Any]], extra: Sequence[tuple] = ()) -> list[tuple]:
    """``(T, B, D, H, V, dtype)`` of every point of ``grid`` (D = V = 64), then of ``extra``."""
    points = [
        (T, B, D, H, V, dtype)
        for dtype in grid["dtype"]
        for T in grid["T"]
        for B in grid["B"]
        for H in grid["H"]
    ]
    points += [(*cfg, dtype) for dtype in grid["dtype"] for cfg in extra]
    return points


def run_grid(
    grid: dict[str, Sequence[Any]],
    *,
    stepwise: bool = True,
    torch: bool | None = None,
    jax: bool | None = None,
    extra: Sequence[tuple] = (),
    progress: Callable[[dict], None] | None = None,
) -> dict[str, Any]:
    """Benchmark every configuration of ``grid`` and ``extra``; returns peaks, rows, the setting."""
    torch = torch_available() if torch is None else torch
    jax = jax_available() if jax is None else jax
    if torch:
        import torch as _torch

        _torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    if jax:
        import jax as _jax
    result: dict[str, Any] = {
        "threads": int(os.environ.get("OMP_NUM_THREADS", "0")) or None,
        "clock": clock,
        "keep_freed_memory": all(os.environ.get(k) == v for k, v in KEEP_FREED_MEMORY.items()),
        "numpy": np.__version__,
        "torch": _torch.__version__ if torch else None,
        "jax": _jax.__version__ if jax else None,
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "machine": platform.processor() or platform.machine(),
        "peak_gflops": {dt: matmul_peak(dt) for dt in grid["dtype"]},
        "rows": [],
    }
    for T, B, D_, H, V_, dtype in configurations(grid, extra):
        row = bench_one(T, B, H, dtype, stepwise=stepwise, torch=torch, jax=jax, D=D_, V=V_)
        row["peak_fraction"] = row["gflops"] / result["peak_gflops"][dtype]
        result["rows"].append(row)
        if progress is not None:
            progress(row)
    return result


BREAKDOWN_CONFIG = (25, 1, 65, 100, 65)
"""(T, B, D, H, V) of :func:`step_breakdown`: batch size 1, where per-step overhead dominates."""

PHASES = (
    "argument checks",
    "input projections",
    "forward loop",
    "readout",
    "loss",
    "readout backward",
    "backward loop",
    "weight gradients",
)


def _timed_pass(params, x, y, now: Callable[[], int]) -> tuple[float, dict, list[int]]:
    """:func:`bptt.loss_and_grads` on dense inputs, with a clock reading between its phases.

    The same code as ``bptt/algorithms/vectorised.py`` (``h0 = 0``), split at the boundaries of
    :data:`PHASES`; :func:`step_breakdown` checks that it returns the very same numbers.
    """
    marks = [now()]
    D_, H, V_ = vectorised._sizes(params)
    dtype = params["W_hh"].dtype
    x = vectorised._inputs(x, D_, dtype)
    T, B = x.shape[:2]
    y = np.asarray(y)
    assert y.dtype.kind in "iu" and y.min() >= 0 and y.max() < V_ and y.shape == (T, B)
    hs = np.empty((T + 1, B, H), dtype=dtype)
    hs[0] = 0.0
    marks.append(now())
    pre = (x.reshape(T * B, D_) @ params["W_xh"].T).reshape(T, B, H)
    pre += params["b_h"]
    marks.append(now())
    W_hh, add, multiply, tanh = params["W_hh"], np.add, np.multiply, np.tanh
    one = B == 1
    if one:
        recurrent = np.empty(H, dtype=dtype)
        product = W_hh.dot
        for h_prev, a, h in zip(hs[:-1, 0], pre[:, 0], hs[1:, 0], strict=True):
            product(h_prev, recurrent)
            add(a, recurrent, a)
            tanh(a, h)
    else:
        W_hh_T = W_hh.T
        recurrent = np.empty((B, H), dtype=dtype)
        for h_prev, a, h in zip(hs[:-1], pre, hs[1:], strict=True):
            h_prev.dot(W_hh_T, recurrent)
            add(a, recurrent, a)
            tanh(a, h)
    marks.append(now())
    outputs = bptt.readout_forward(params, hs[1:].reshape(T * B, H)).reshape(T, B, V_)
    marks.append(now())
    loss, doutputs = vectorised._cross_entropy_in_place(outputs, y)
    vectorised._checks.finite_scalar("loss", loss)
    marks.append(now())
    assert vectorised._finite([doutputs])
    rows_h = hs[1:].reshape(T * B, H)
    rows_do = doutputs.reshape(T * B, V_)
    grads = {"W_hy": rows_do.T @ rows_h, "b_y": rows_do.sum(axis=0)}
    dpre = np.matmul(rows_do, params["W_hy"], out=pre.reshape(T * B, H)).reshape(T, B, H)
    dh_next = np.zeros((B, H), dtype=dtype)
    marks.append(now())
    steps = max(1, min(T, vectorised.DERIV_BLOCK // (B * H)))
    tanh_derivs = np.empty((steps, B, H), dtype=dtype)
    dh = dh_next[0] if one else dh_next
    for stop in range(T, 0, -steps):
        start = max(0, stop - steps)
        block = tanh_derivs[: stop - start]
        np.square(hs[start + 1 : stop + 1], out=block)
        np.subtract(1.0, block, out=block)
        deltas = dpre[start:stop, 0] if one else dpre[start:stop]
        derivs = block[:, 0] if one else block
        for delta, tanh_deriv in zip(deltas[::-1], derivs[::-1], strict=True):
            add(delta, dh, delta)
            multiply(delta, tanh_deriv, delta)
            delta.dot(W_hh, dh)
    marks.append(now())
    rows_dpre = dpre.reshape(T * B, H)
    grads["W_hh"] = rows_dpre.T @ hs[:-1].reshape(T * B, H)
    grads["b_h"] = rows_dpre.sum(axis=0)
    grads["W_xh"] = rows_dpre.T @ x.reshape(T * B, D_)
    ordered = {k: grads[k] for k in params}
    hs[-1].copy()
    marks.append(now())
    return loss, ordered, marks


def _op_loops(T: int, B: int, H: int, dtype: str) -> dict[str, Callable[[], None]]:
    """Loops of ``T`` steps that each make one kind of the loops' calls, on arrays of their shapes.

    At ``B = 1`` the rows are 1-D, as in the package. Timing them apart tells what each call of
    a step costs; ``iteration`` is the loop with no call, the cost of taking the rows.
    """
    rng = np.random.default_rng(0)
    W = (rng.standard_normal((H, H)) / np.sqrt(H)).astype(dtype)
    hs = (rng.standard_normal((T + 1, B, H)) * 0.5).astype(dtype)
    pre = (rng.standard_normal((T, B, H)) * 0.1).astype(dtype)
    out = np.zeros((B, H), dtype=dtype)
    one = B == 1
    rows = (hs[:-1, 0], pre[:, 0], hs[1:, 0]) if one else (hs[:-1], pre, hs[1:])
    o = out[0] if one else out
    W_T = W if one else W.T
    add, multiply, tanh = np.add, np.multiply, np.tanh

    def forward_product() -> None:
        if one:
            for h_prev, _a, _h in zip(*rows, strict=True):
                W.dot(h_prev, o)
        else:
            for h_prev, _a, _h in zip(*rows, strict=True):
                h_prev.dot(W_T, o)

    def iteration() -> None:
        for _h_prev, _a, _h in zip(*rows, strict=True):
            pass

    def forward_add() -> None:
        for _h_prev, a, _h in zip(*rows, strict=True):
            add(a, o, a)

    def forward_tanh() -> None:
        for _h_prev, a, h in zip(*rows, strict=True):
            tanh(a, h)

    back = (rows[1][::-1], rows[2][::-1])

    def backward_iteration() -> None:
        for _delta, _deriv in zip(*back, strict=True):
            pass

    def backward_add() -> None:
        for delta, _deriv in zip(*back, strict=True):
            add(delta, o, delta)

    def backward_multiply() -> None:
        for delta, deriv in zip(*back, strict=True):
            multiply(delta, deriv, delta)

    def backward_product() -> None:
        for delta, _deriv in zip(*back, strict=True):
            delta.dot(W, o)

    def tanh_derivative_blocks() -> None:
        steps = max(1, min(T, vectorised.DERIV_BLOCK // (B * H)))
        block = np.empty((steps, B, H), dtype=dtype)
        for stop in range(T, 0, -steps):
            start = max(0, stop - steps)
            part = block[: stop - start]
            np.square(hs[start + 1 : stop + 1], out=part)
            np.subtract(1.0, part, out=part)

    return {
        "forward: take the rows (iteration)": iteration,
        "forward: W_hh h_{t-1} (.dot)": forward_product,
        "forward: a_t += (np.add)": forward_add,
        "forward: tanh (np.tanh)": forward_tanh,
        "backward: take the rows (iteration)": backward_iteration,
        "backward: delta_t += (np.add)": backward_add,
        "backward: *= tanh' (np.multiply)": backward_multiply,
        "backward: W_hh^T g_t (.dot)": backward_product,
        "backward: tanh' = 1 - h^2, per block": tanh_derivative_blocks,
    }


def step_breakdown(
    T: int = BREAKDOWN_CONFIG[0],
    B: int = BREAKDOWN_CONFIG[1],
    D: int = BREAKDOWN_CONFIG[2],
    H: int = BREAKDOWN_CONFIG[3],
    V: int = BREAKDOWN_CONFIG[4],
    dtype: str = "float64",
    *,
    rounds: int = 200,
    jax: bool | None = None,
) -> dict[str, Any]:
    """Where the microseconds of one pass of :func:`bptt.loss_and_grads` go.

    Returns the median microseconds of every phase of :data:`PHASES` (timed inside one pass by
    :func:`_timed_pass`, which is checked to return the package's loss and gradients bit for
    bit), of the whole pass timed from outside, and of every call of the two loops, per step
    (timed alone by :func:`_op_loops`); and, with ``jax``, the time per step and per pass of
    both the package and JAX, from passes of ``T`` and ``4 T`` steps interleaved: their
    difference over ``3 T`` is the cost of one more step, and what remains is per pass.
    """
    params, x, y = problem(T, B, H, dtype, D=D, V=V)
    loss, grads, _ = bptt.loss_and_grads(params, x, y)
    now = time.process_time_ns if clock == "cpu" else time.perf_counter_ns
    timed_loss, timed_grads, _ = _timed_pass(params, x, y, now)
    assert timed_loss == loss and all(np.array_equal(timed_grads[k], grads[k]) for k in grads)
    phases: dict[str, list[float]] = {name: [] for name in PHASES}
    whole: list[float] = []
    for _ in range(rounds):
        marks = _timed_pass(params, x, y, now)[2]
        for name, start, stop in zip(PHASES, marks[:-1], marks[1:], strict=True):
            phases[name].append((stop - start) / 1e3)
        whole.append(_seconds(partial(bptt.loss_and_grads, params, x, y)) * 1e6)
    result: dict[str, Any] = {
        "config": {"T": T, "B": B, "D": D, "H": H, "V": V, "dtype": dtype},
        "phases_us": {k: statistics.median(v) for k, v in phases.items()},
        "pass_us": statistics.median(whole),
        "pass_quartiles_us": _quartiles(whole),
    }
    loops = _op_loops(T, B, H, dtype)
    op_times = interleaved_times(loops, min_rounds=rounds // 4, max_rounds=rounds // 4)
    result["per_step_us"] = {k: min(v) * 1e6 / T for k, v in op_times.items()}
    jax = jax_available() if jax is None else jax
    if jax:
        long_problem = problem(4 * T, B, H, dtype, D=D, V=V)
        fn = jax_function()
        short_args, long_args = jax_arguments(params, x, y), jax_arguments(*long_problem)
        check_peer("JAX", jax_loss_and_grads(fn, short_args), (loss, grads), dtype)
        calls = {
            "bptt T": partial(bptt.loss_and_grads, params, x, y),
            "bptt 4T": partial(bptt.loss_and_grads, *long_problem),
            "jax T": partial(_jax_call, fn, short_args),
            "jax 4T": partial(_jax_call, fn, long_args),
        }
        med = interleaved_medians(calls, min_rounds=rounds // 2, max_rounds=rounds // 2)
        for name in ("bptt", "jax"):
            step = (med[f"{name} 4T"] - med[f"{name} T"]) / (3 * T)
            result[f"{name}_per_step_us"] = step * 1e6
            result[f"{name}_per_pass_us"] = (med[f"{name} T"] - T * step) * 1e6
            result[f"{name}_pass_us"] = med[f"{name} T"] * 1e6
    return result


def format_breakdown(result: dict[str, Any]) -> str:
    """The breakdown as two Markdown tables: phases of a pass, and calls of one step."""
    c = result["config"]
    T = c["T"]
    lines = [
        f"T={T} B={c['B']} D={c['D']} H={c['H']} V={c['V']} {c['dtype']}: one pass "
        f"{result['pass_us']:.0f} us (median; quartiles {result['pass_quartiles_us'][0]:.0f} to "
        f"{result['pass_quartiles_us'][1]:.0f} us)",
        "",
        "| phase of one pass | us | us per step |",
        "|---|---|---|",
    ]
    for name, us in result["phases_us"].items():
        per = f"{us / T:.2f}" if "loop" in name else ""
        lines.append(f"| {name} | {us:.1f} | {per} |")
    lines += ["", "| call in the loops (timed alone) | us per step |", "|---|---|"]
    lines += [f"| {name} | {us:.2f} |" for name, us in result["per_step_us"].items()]
    if "jax_per_step_us" in result:
        lines += ["", "| | us per step | us per pass besides the steps |", "|---|---|---|"]
        for name in ("bptt", "jax"):
            lines.append(
                f"| {name} | {result[f'{name}_per_step_us']:.2f} | "
                f"{result[f'{name}_per_pass_us']:.0f} |"
            )
    return "\n".join(lines)


def variant_loss_and_grads(
    params: dict[str, np.ndarray],
    x: np.ndarray,
    y: np.ndarray,
    *,
    flat_readout: bool,
    in_place: bool,
    per_step_deriv: bool = False,
    reuse_buffers: bool = False,
    low_overhead: bool = False,
) -> tuple[float, dict[str, np.ndarray]]:
    """``bptt.algorithms.vectorised`` with each optimisation switchable (dense inputs only).

    ``flat_readout=False, in_place=False`` is the package's code before optimisation: the readout
    products on the stacked ``(T, B, H)`` array, ``1 - h**2`` as two temporaries and a new ``dh``
    array every step. With all three options True it computes what :func:`bptt.loss_and_grads`
    computes, the way it does.
    ``per_step_deriv`` computes ``1 - h_t**2`` per step in a ``(B, H)`` buffer instead of a
    ``(T, B, H)`` array. ``reuse_buffers`` adds the readout's bias in place, computes the loss's
    gradient in the outputs' array and ``dL/da`` in the pre-activations' array.
    ``low_overhead`` makes fewer and cheaper calls per step, as the package now does: three per
    step each way (``tanh'`` for a block of steps at once), the array method ``.dot`` with
    positional outputs instead of ``np.matmul``, 1-D rows at ``B = 1``, and the loss without
    ``take_along_axis``/``put_along_axis``.
    """
    if low_overhead:
        return _low_overhead_loss_and_grads(params, x, y)
    T, B, D_ = x.shape
    H, V_ = params["W_hh"].shape[0], params["W_hy"].shape[0]
    hs = np.empty((T + 1, B, H), dtype=x.dtype)
    hs[0] = 0
    pre = (x.reshape(T * B, D_) @ params["W_xh"].T).reshape(T, B, H)
    pre += params["b_h"]
    recurrent = np.empty((B, H), dtype=x.dtype)
    for t in range(T):
        np.matmul(hs[t], params["W_hh"].T, out=recurrent)
        pre[t] += recurrent
        np.tanh(pre[t], out=hs[t + 1])
    rows_h = hs[1:].reshape(T * B, H)
    if reuse_buffers:
        outputs = rows_h @ params["W_hy"].T
        outputs += params["b_y"]
        outputs = outputs.reshape(T, B, V_)
    elif flat_readout:
        outputs = (rows_h @ params["W_hy"].T + params["b_y"]).reshape(T, B, V_)
    else:
        outputs = hs[1:] @ params["W_hy"].T + params["b_y"]
    if reuse_buffers:
        loss, dout = bptt.softmax_cross_entropy(outputs, y, overwrite_logits=True)
    else:
        loss, dout = _softmax_cross_entropy_with_temporaries(outputs, y)
    rows_do = dout.reshape(T * B, V_)
    grads = {"W_hy": rows_do.T @ rows_h, "b_y": rows_do.sum(axis=0)}
    if reuse_buffers:
        dpre = np.matmul(rows_do, params["W_hy"], out=pre.reshape(T * B, H)).reshape(T, B, H)
    elif flat_readout:
        dpre = (rows_do @ params["W_hy"]).reshape(T, B, H)
    else:
        dpre = dout @ params["W_hy"]
    dh_next = np.zeros((B, H), dtype=x.dtype)
    if per_step_deriv:
        deriv = np.empty((B, H), dtype=x.dtype)
    elif in_place:
        deriv = np.square(hs[1:])
        np.subtract(1.0, deriv, out=deriv)
    else:
        deriv = 1.0 - hs[1:] * hs[1:]
    for t in range(T - 1, -1, -1):
        delta = dpre[t]
        delta += dh_next
        if per_step_deriv:
            np.square(hs[t + 1], out=deriv)
            np.subtract(1.0, deriv, out=deriv)
            delta *= deriv
        else:
            delta *= deriv[t]
        if in_place:
            np.matmul(delta, params["W_hh"], out=dh_next)
        else:
            dh_next = delta @ params["W_hh"]
    rows_dpre = dpre.reshape(T * B, H)
    grads["W_hh"] = rows_dpre.T @ hs[:-1].reshape(T * B, H)
    grads["b_h"] = rows_dpre.sum(axis=0)
    grads["W_xh"] = rows_dpre.T @ x.reshape(T * B, D_)
    return loss, grads


def _low_overhead_loss_and_grads(
    params: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray
) -> tuple[float, dict[str, np.ndarray]]:
    """The package's pass without its argument checks (the last ablation variant)."""
    T, B, D_ = x.shape
    H, V_ = params["W_hh"].shape[0], params["W_hy"].shape[0]
    hs = np.empty((T + 1, B, H), dtype=x.dtype)
    hs[0] = 0
    pre = (x.reshape(T * B, D_) @ params["W_xh"].T).reshape(T, B, H)
    pre += params["b_h"]
    W_hh, add, multiply, tanh = params["W_hh"], np.add, np.multiply, np.tanh
    if B == 1:
        recurrent = np.empty(H, dtype=x.dtype)
        product = W_hh.dot
        for h_prev, a, h in zip(hs[:-1, 0], pre[:, 0], hs[1:, 0], strict=True):
            product(h_prev, recurrent)
            add(a, recurrent, a)
            tanh(a, h)
    else:
        W_hh_T = W_hh.T
        recurrent = np.empty((B, H), dtype=x.dtype)
        for h_prev, a, h in zip(hs[:-1], pre, hs[1:], strict=True):
            h_prev.dot(W_hh_T, recurrent)
            add(a, recurrent, a)
            tanh(a, h)
    rows_h = hs[1:].reshape(T * B, H)
    outputs = rows_h @ params["W_hy"].T
    outputs += params["b_y"]
    loss, dout = vectorised._cross_entropy_in_place(outputs.reshape(T, B, V_), y)
    rows_do = dout.reshape(T * B, V_)
    grads = {"W_hy": rows_do.T @ rows_h, "b_y": rows_do.sum(axis=0)}
    dpre = np.matmul(rows_do, params["W_hy"], out=pre.reshape(T * B, H)).reshape(T, B, H)
    dh_next = np.zeros((B, H), dtype=x.dtype)
    steps = max(1, min(T, vectorised.DERIV_BLOCK // (B * H)))
    derivs_buffer = np.empty((steps, B, H), dtype=x.dtype)
    dh = dh_next[0] if B == 1 else dh_next
    for stop in range(T, 0, -steps):
        start = max(0, stop - steps)
        block = derivs_buffer[: stop - start]
        np.square(hs[start + 1 : stop + 1], out=block)
        np.subtract(1.0, block, out=block)
        deltas = dpre[start:stop, 0] if B == 1 else dpre[start:stop]
        derivs = block[:, 0] if B == 1 else block
        for delta, deriv in zip(deltas[::-1], derivs[::-1], strict=True):
            add(delta, dh, delta)
            multiply(delta, deriv, delta)
            delta.dot(W_hh, dh)
    rows_dpre = dpre.reshape(T * B, H)
    grads["W_hh"] = rows_dpre.T @ hs[:-1].reshape(T * B, H)
    grads["b_h"] = rows_dpre.sum(axis=0)
    grads["W_xh"] = rows_dpre.T @ x.reshape(T * B, D_)
    return loss, grads


def _softmax_cross_entropy_with_temporaries(logits: np.ndarray, targets: np.ndarray):
    """The earlier softmax cross-entropy: log-probabilities, then their exp, as new arrays."""
    logp = bptt.log_softmax(logits)
    where = targets[..., None]
    loss = -float(np.take_along_axis(logp, where, axis=-1).sum()) / logits.shape[-2]
    grad = np.exp(logp)
    np.put_along_axis(grad, where, np.take_along_axis(grad, where, axis=-1) - 1.0, axis=-1)
    grad /= logits.shape[-2]
    return loss, grad


VARIANTS = {
    "before: stacked readout, temporaries": {"flat_readout": False, "in_place": False},
    "+ flat 2-D readout products": {"flat_readout": True, "in_place": False},
    "+ in place: one (T, B, H) tanh', out= buffers": {"flat_readout": True, "in_place": True},
    "+ per-step tanh' in a (B, H) buffer": {
        "flat_readout": True,
        "in_place": True,
        "per_step_deriv": True,
    },
    "+ reuse the outputs' and pre-activations' arrays": {
        "flat_readout": True,
        "in_place": True,
        "per_step_deriv": True,
        "reuse_buffers": True,
    },
    "+ fewer, cheaper calls per step": {
        "flat_readout": True,
        "in_place": True,
        "per_step_deriv": True,
        "reuse_buffers": True,
        "low_overhead": True,
    },
}
ABLATION_SIZES = (
    (25, 1, 100, "float32"),
    (1000, 1, 128, "float64"),
    (100, 32, 256, "float32"),
    (1000, 64, 512, "float32"),
)


def ablation(sizes=ABLATION_SIZES, budget: float = 12.0) -> list[dict[str, Any]]:
    """Median seconds of every variant, interleaved round by round (see interleaved_medians)."""
    rows = []
    for T, B, H, dtype in sizes:
        params, x, y = problem(T, B, H, dtype)
        reference = bptt.loss_and_grads(params, x, y)[1]
        calls = {
            name: partial(variant_loss_and_grads, params, x, y, **options)
            for name, options in VARIANTS.items()
        }
        calls["bptt.loss_and_grads"] = partial(bptt.loss_and_grads, params, x, y)
        for name, call in calls.items():  # check every variant's gradient
            grads = call()[1]
            assert max(bptt.relative_error(grads[k], reference[k]) for k in grads) < 1e-5, name
        medians = interleaved_medians(calls, budget=budget)
        rows.append({"T": T, "B": B, "H": H, "dtype": dtype, **medians})
    return rows


def format_ablation(rows: list[dict[str, Any]]) -> str:
    """The ablation as a Markdown table: milliseconds and speed-up over the first variant.

    A variant that a stored run did not measure (it predates the variant) is left out.
    """
    names = [n for n in [*VARIANTS, "bptt.loss_and_grads"] if all(n in r for r in rows)]
    head = ["variant", *(f"T={r['T']} B={r['B']} H={r['H']} {r['dtype']}" for r in rows)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    first = names[0]
    for name in names:
        cells = [f"{_ms(r[name])} ms (x{r[first] / r[name]:.2f})" for r in rows]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3g}" if seconds < 1 else f"{seconds * 1e3:.0f}"


def format_table(result: dict[str, Any], part: str = "all") -> str:
    """The rows as a Markdown table (times in milliseconds, medians; ratios below 1: bptt faster).

    A ratio's quartiles over the interleaved rounds follow it in brackets, when there were
    enough rounds for them to say something. ``part`` selects the columns: ``"peers"`` (the
    package against PyTorch and JAX), ``"hardware"`` (against its own per-step path and the
    machine's matmul peak) or ``"all"``. The book shows the two parts as two tables, each narrow
    enough for its text column.
    """
    if part not in ("all", "peers", "hardware"):
        raise ValueError(f"part must be 'all', 'peers' or 'hardware', got {part!r}")
    rows = result["rows"]
    has_step = part != "peers" and any("stepwise" in r for r in rows)
    peers = [p for p in ("torch", "jax") if any(p in r for r in rows)] if part != "hardware" else []
    has_floor = part != "peers" and any("floor_fraction" in r for r in rows)
    head = ["(T, B, D, H, V)", "bptt ms"]
    head += ["per-step ms"] if has_step else []
    head += [f"{p} ms" for p in peers] + [f"bptt/{p}" for p in peers]
    if part != "peers":
        head += ["GFLOP/s", "% of peak"] + (["% of products"] if has_floor else [])
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    short = {"float64": "f64", "float32": "f32"}
    for r in rows:
        shape = ", ".join(str(r.get(k, V if k in "DV" else "")) for k in "TBDHV")
        cells = [f"{shape} {short.get(r['dtype'], r['dtype'])}", _ms(r["vectorised"])]
        if has_step:
            cells.append(_ms(r["stepwise"]))
        cells += [_ms(r[p]) if p in r else "" for p in peers]
        cells += [_ratio(r, p) for p in peers]
        if part != "peers":
            cells += [f"{r['gflops']:.1f}", f"{100 * r['peak_fraction']:.0f}"]
        if has_floor:
            cells.append(f"{100 * r['floor_fraction']:.0f}" if "floor_fraction" in r else "")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _ratio(row: dict[str, Any], peer: str) -> str:
    if f"bptt/{peer}" not in row:
        return ""
    text = f"{row[f'bptt/{peer}']:.2f}"
    low, high = row[f"bptt/{peer} quartiles"]
    return f"{text} ({low:.2f}-{high:.2f})"


def summary(result: dict[str, Any]) -> dict[str, Any]:
    """Worst and median ``vectorised / peer`` ratio per peer and dtype, and the noise.

    ``spread`` is the largest relative interquartile range of a ratio over the rounds of one
    configuration: how much the same comparison varied from round to round in this run.
    """
    out: dict[str, Any] = {}
    for peer in ("torch", "jax"):
        for dtype in sorted({r["dtype"] for r in result["rows"]}):
            rows = [r for r in result["rows"] if r["dtype"] == dtype and f"bptt/{peer}" in r]
            if not rows:
                continue
            ratios = [r[f"bptt/{peer}"] for r in rows]
            worst = max(rows, key=lambda r: r[f"bptt/{peer}"])
            spreads = [
                (r[f"bptt/{peer} quartiles"][1] - r[f"bptt/{peer} quartiles"][0])
                / r[f"bptt/{peer}"]
                for r in rows
            ]
            out[f"{peer} {dtype}"] = {
                "worst": max(ratios),
                "median": statistics.median(ratios),
                "worst_config": {k: worst.get(k, V) for k in ("T", "B", "D", "H", "V")},
                "slower": sum(x > 1 for x in ratios),
                "count": len(ratios),
                "spread": max(spreads),
                "median_spread": statistics.median(spreads),
            }
    return out


def describe(result: dict[str, Any]) -> str:
    """One paragraph: the setting of a run (threads, versions, peaks)."""
    peaks = ", ".join(f"{dt} {g:.1f} GFLOP/s" for dt, g in result["peak_gflops"].items())
    torch = f"PyTorch {result['torch']}" if result["torch"] else "PyTorch not installed"
    jax = f"JAX {result['jax']}" if result.get("jax") else "JAX not installed"
    timed = "process CPU time" if result.get("clock") == "cpu" else "wall-clock time"
    malloc = "freed memory kept for reuse" if result.get("keep_freed_memory") else "default malloc"
    return (
        f"{result['threads']} BLAS thread(s) for numpy, PyTorch and XLA; numpy "
        f"{result['numpy']}, {torch}, {jax}; measured matmul peak (1024 x 1024): {peaks}. "
        f"Medians of {timed} of interleaved runs of forward + loss + backward; glibc: {malloc}."
    )


def save_results(
    result: dict[str, Any] | None,
    rows: list | None,
    folder: str,
    breakdown: list[dict[str, Any]] | None = None,
    gated: dict[str, Any] | None = None,
) -> None:
    """Write ``speed.json``/``speed.md`` (the grid), ``breakdown.json``/``breakdown.md`` (where the
    time of a pass goes), ``ablation.json``/``ablation.md`` and ``speed_gated.json``/
    ``speed_gated.md`` (GRU and LSTM against PyTorch), for those given."""
    os.makedirs(folder, exist_ok=True)
    outputs = []
    if gated is not None:
        gated = {**gated, "summary": gated_summary(gated)}
        text = f"{describe_gated(gated)}\n\n{format_gated(gated)}\n"
        outputs += [("speed_gated.json", json.dumps(gated, indent=1)), ("speed_gated.md", text)]
    if result is not None:
        result = {**result, "summary": summary(result)}
        text = f"{describe(result)}\n\n{format_table(result)}\n"
        outputs += [("speed.json", json.dumps(result, indent=1)), ("speed.md", text)]
    if breakdown is not None:
        text = "\n\n".join(format_breakdown(b) for b in breakdown) + "\n"
        outputs += [("breakdown.json", json.dumps(breakdown, indent=1)), ("breakdown.md", text)]
    if rows is not None:
        outputs += [("ablation.json", json.dumps(rows, indent=1))]
        outputs += [("ablation.md", format_ablation(rows) + "\n")]
    for name, content in outputs:
        with open(os.path.join(folder, name), "w", encoding="utf-8") as f:
            f.write(content)


def _child(argv: Sequence[str]) -> int:
    global clock
    # With one thread, the process's CPU time measures the work itself: on a shared machine it
    # does not count the time other processes hold the core, which wall-clock time does.
    clock = "cpu" if os.environ.get("OMP_NUM_THREADS") == "1" else "wall"
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_speed")
    parser.add_argument("--quick", action="store_true", help="a small grid, nothing else")
    parser.add_argument("--no-stepwise", action="store_true", help="skip the per-step version")
    parser.add_argument(
        "--only", choices=["grid", "breakdown", "ablation", "gated"], help="one part only"
    )
    parser.add_argument("--save", metavar="DIR", help="write the results as JSON and Markdown")
    args = parser.parse_args(argv)
    result = rows = breakdown = gated = None
    if args.only == "gated" or (args.only is None and not args.quick):
        gated = _run_and_print_gated(GATED_QUICK if args.quick else GATED_CONFIGS)
    if args.only in (None, "grid"):
        grid, extra = (QUICK_GRID, ()) if args.quick else (FULL_GRID, EXTRA_CONFIGS)
        result = _run_and_print_grid(grid, not args.no_stepwise, extra)
    if args.only in (None, "breakdown") and not args.quick:
        print("\nWhere the microseconds of one pass go (medians, CPU time):", flush=True)
        breakdown = [step_breakdown(dtype=dtype) for dtype in ("float64", "float32")]
        for b in breakdown:
            print("\n" + format_breakdown(b), flush=True)
    if args.only in (None, "ablation") and not args.quick:
        print(
            "\nWhat each optimisation of bptt.algorithms.vectorised is worth "
            "(medians, interleaved runs):"
        )
        rows = ablation()
        print(format_ablation(rows), flush=True)
    if args.save:
        save_results(result, rows, args.save, breakdown, gated)
    return 0


def _run_and_print_gated(configs: Sequence[tuple[int, int, int, int, int]]) -> dict[str, Any]:
    has_torch = torch_available()
    print("GRU and LSTM: bptt.loss_and_grads(..., cell=...) against torch.nn.GRU/LSTM", flush=True)
    if not has_torch:
        print("PyTorch is not installed (pip install torch): timing bptt alone.", flush=True)

    def show(row: dict) -> None:
        text = f"{row['cell']:4} {row['dtype']} T={row['T']:<4} B={row['B']:<2} H={row['H']:<3}"
        text += f"  bptt {_ms(row['vectorised']):>8} ms"
        if "torch" in row:
            text += f"  torch {_ms(row['torch']):>8} ms  bptt/torch {_ratio(row, 'torch')}"
        print(text, flush=True)

    result = run_gated(configs, torch=has_torch, progress=show)
    print()
    print(describe_gated(result))
    print()
    print(format_gated(result))
    for name, s in gated_summary(result).items():
        print(
            f"bptt / torch {name}: worst {s['worst']:.2f} at {s['worst_config']}, median "
            f"{s['median']:.2f}, slower on {s['slower']} of {s['count']}; largest quartile "
            f"spread of a ratio {100 * s['spread']:.0f} %",
            flush=True,
        )
    return result


def _run_and_print_grid(
    grid: dict[str, Any], stepwise: bool, extra: Sequence[tuple] = ()
) -> dict[str, Any]:
    has_torch, has_jax = torch_available(), jax_available()
    if not has_torch:
        print("PyTorch is not installed (pip install torch): comparing without it.", flush=True)
    if not has_jax:
        print("JAX is not installed (pip install jax): comparing without it.", flush=True)

    def show(row: dict) -> None:
        parts = [f"{row['dtype']} T={row['T']:<4} B={row['B']:<2} D={row['D']:<3} H={row['H']:<3}"]
        parts.append(f"vectorised {_ms(row['vectorised']):>7} ms")
        if "stepwise" in row:
            parts.append(f"per step {_ms(row['stepwise']):>7} ms")
        for peer in ("torch", "jax"):
            if peer in row:
                parts.append(f"{peer} {_ms(row[peer]):>7} ms (bptt/{peer} {_ratio(row, peer)})")
        parts.append(f"{row['gflops']:6.1f} GFLOP/s ({100 * row['peak_fraction']:.0f} % of peak")
        if "floor_fraction" in row:
            parts[-1] += f", {100 * row['floor_fraction']:.0f} % of same-shape products"
        parts[-1] += ")"
        print("  ".join(parts), flush=True)

    result = run_grid(
        grid, stepwise=stepwise, torch=has_torch, jax=has_jax, extra=extra, progress=show
    )
    print()
    print(describe(result))
    print()
    print(format_table(result))
    for name, s in summary(result).items():
        print(
            f"bptt / {name}: worst {s['worst']:.2f} at {s['worst_config']}, median "
            f"{s['median']:.2f}, slower on {s['slower']} of {s['count']}; largest quartile "
            f"spread of a ratio {100 * s['spread']:.0f} %",
            flush=True,
        )
    return result


KEEP_FREED_MEMORY = {"MALLOC_MMAP_THRESHOLD_": str(2**32), "MALLOC_TRIM_THRESHOLD_": str(2**33)}
"""glibc settings that keep freed memory in the process for reuse instead of returning it to the
operating system (which then has to map and zero fresh pages for the next large array)."""


def child_command(
    argv: Sequence[str], threads: int = 1, *, keep_freed_memory: bool = True
) -> tuple[list[str], dict[str, str], str]:
    """The command, environment and folder that run the benchmark with ``threads`` threads.

    ``keep_freed_memory`` sets :data:`KEEP_FREED_MEMORY` for the child: the same allocator
    behaviour for numpy and PyTorch, and less noise from the kernel's page handling.
    """
    env = {**os.environ, **dict.fromkeys(_THREAD_VARS, str(threads)), _CHILD_FLAG: "1"}
    if threads == 1:  # XLA's CPU backend splits large operations between threads by default
        flags = env.get("XLA_FLAGS", "")
        env["XLA_FLAGS"] = f"{flags} --xla_cpu_multi_thread_eigen=false".strip()
    if keep_freed_memory:
        env.update(KEEP_FREED_MEMORY)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return [sys.executable, "-m", "benchmarks.bench_speed", *argv], env, root


def main(argv: Sequence[str] | None = None, *, threads: int = 1) -> int:
    """Run the benchmark in a child process with ``threads`` BLAS/OpenMP threads.

    ``argv``: ``--quick`` (a small grid), ``--no-stepwise``,
    ``--only grid|breakdown|ablation|gated``, ``--save DIR``, ``--threads N`` (default 1),
    ``--default-malloc`` (do not set :data:`KEEP_FREED_MEMORY`).
    """
    argv = list(argv or [])
    if "--threads" in argv:
        i = argv.index("--threads")
        threads = int(argv[i + 1])
        del argv[i : i + 2]
    keep = "--default-malloc" not in argv
    argv = [a for a in argv if a != "--default-malloc"]
    cmd, env, root = child_command(argv, threads, keep_freed_memory=keep)
    return subprocess.run(cmd, env=env, cwd=root, check=False).returncode


if __name__ == "__main__":
    if os.environ.get(_CHILD_FLAG):
        sys.exit(_child(sys.argv[1:]))
    sys.exit(main(sys.argv[1:]))
