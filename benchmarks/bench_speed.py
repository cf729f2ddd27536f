"""Speed benchmark: vectorised BPTT against the per-step version and PyTorch (Appendix A2).

Run it with ``python -m benchmarks speed`` (``make bench`` runs every benchmark). For each size of a
grid it times one forward + loss + backward pass of a tanh RNN with a linear readout and softmax
cross-entropy, on the same random data, in the same process, three ways:

* ``vectorised``: :func:`bptt.loss_and_grads`, the package's fast path;
* ``per step``: :func:`bptt.loss_and_grads_stepwise`, the generic per-step algorithm;
* ``torch``: ``torch.nn.RNN`` + ``torch.nn.Linear`` + ``cross_entropy`` with autograd on the CPU
  (only when PyTorch is installed: ``pip install torch``, the ``bench`` extra).

It prints medians of interleaved runs, the ratio ``torch time / vectorised time`` (above 1: the
package is faster) and the achieved GFLOP/s of the vectorised path against the machine's measured
matrix-multiply peak; then an ablation of the optimisations of ``bptt/algorithms/vectorised.py``.

Threads: numpy's BLAS reads its thread count when it is loaded, so the measurement runs in a child
process started with ``OPENBLAS_NUM_THREADS``, ``OMP_NUM_THREADS`` and ``MKL_NUM_THREADS`` set to
``--threads`` (default 1), and that child calls ``torch.set_num_threads`` with the same number.
With one thread, times are the process's CPU time; with more, wall-clock time.

Memory: large arrays freed by one pass are, by default, returned by glibc to the operating system,
which must map and zero fresh pages for the next pass. The child therefore runs with
:data:`KEEP_FREED_MEMORY` (``--default-malloc`` turns it off), for numpy and PyTorch alike.

Options: ``python -m benchmarks.bench_speed [--quick] [--threads N] [--only grid|ablation]
[--no-stepwise] [--default-malloc] [--save DIR]``; ``--save benchmarks/results`` updates the
reference results that Appendix A2 shows.
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

D = V = 64
"""Input and output sizes of every configuration (a character model with 64 symbols)."""

FULL_GRID: dict[str, Any] = {
    "T": (25, 100, 1000),
    "B": (1, 32, 64),
    "H": (100, 128, 256, 512),
    "dtype": ("float32", "float64"),
}
QUICK_GRID: dict[str, Any] = {"T": (100,), "B": (1, 32), "H": (128, 512), "dtype": ("float32",)}
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


CLOCKS = {"cpu": time.process_time, "wall": time.perf_counter}
"""``cpu``: this process's CPU time (user + system, all its threads); ``wall``: elapsed time."""
clock = "wall"
"""The clock in use. The child process picks ``cpu`` when it runs one thread (see ``_child``)."""


def _seconds(fn: Callable[[], Any]) -> float:
    now = CLOCKS[clock]
    start = now()
    fn()
    return now() - start


def problem(T: int, B: int, H: int, dtype: str, seed: int = 0):
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


def interleaved_medians(
    calls: dict[str, Callable[[], Any]],
    *,
    budget: float = 1.0,
    min_rounds: int = 5,
    max_rounds: int = 25,
) -> dict[str, float]:
    """Median seconds of each call, timed round-robin (one call of each per round).

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
    return {name: statistics.median(t) for name, t in times.items()}


def bench_one(T: int, B: int, H: int, dtype: str, *, stepwise: bool, torch: bool) -> dict:
    """Median seconds of each implementation for one configuration (and derived numbers)."""
    params, inputs, targets = problem(T, B, H, dtype)
    calls: dict[str, Callable[[], Any]] = {
        "vectorised": partial(bptt.loss_and_grads, params, inputs, targets)
    }
    if stepwise:
        calls["stepwise"] = partial(bptt.loss_and_grads_stepwise, params, inputs, targets)
    if torch:
        rnn, linear = torch_model(params)
        calls["torch"] = partial(torch_loss_and_grads, rnn, linear, inputs, targets)
    row: dict[str, Any] = {"T": T, "B": B, "H": H, "dtype": dtype, **interleaved_medians(calls)}
    row["gflops"] = flops(T, B, D, H, V) / row["vectorised"] / 1e9
    return row


def run_grid(
    grid: dict[str, Sequence[Any]],
    *,
    stepwise: bool = True,
    torch: bool | None = None,
    progress: Callable[[dict], None] | None = None,
) -> dict[str, Any]:
    """Benchmark every configuration of ``grid``; returns peaks, rows and the setting."""
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
        "peak_gflops": {dt: matmul_peak(dt) for dt in grid["dtype"]},
        "rows": [],
    }
    for dtype in grid["dtype"]:
        for T in grid["T"]:
            for B in grid["B"]:
                for H in grid["H"]:
                    row = bench_one(T, B, H, dtype, stepwise=stepwise, torch=torch)
                    row["peak_fraction"] = row["gflops"] / result["peak_gflops"][dtype]
                    result["rows"].append(row)
                    if progress is not None:
                        progress(row)
    return result


def variant_loss_and_grads(
    params: dict[str, np.ndarray],
    x: np.ndarray,
    y: np.ndarray,
    *,
    flat_readout: bool,
    in_place: bool,
    per_step_deriv: bool = False,
    reuse_buffers: bool = False,
) -> tuple[float, dict[str, np.ndarray]]:
    """``bptt.algorithms.vectorised`` with each optimisation switchable (dense inputs only).

    ``flat_readout=False, in_place=False`` is the package's code before optimisation: the readout
    products on the stacked ``(T, B, H)`` array, ``1 - h**2`` as two temporaries and a new ``dh``
    array every step. With all three options True it computes what :func:`bptt.loss_and_grads`
    computes, the way it does.
    ``per_step_deriv`` computes ``1 - h_t**2`` per step in a ``(B, H)`` buffer instead of a
    ``(T, B, H)`` array. ``reuse_buffers`` adds the readout's bias in place, computes the loss's
    gradient in the outputs' array and ``dL/da`` in the pre-activations' array, as the package
    now does.
    """
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
}
ABLATION_SIZES = ((1000, 1, 128, "float64"), (100, 32, 256, "float32"), (1000, 64, 512, "float32"))


def ablation(sizes=ABLATION_SIZES, budget: float = 20.0) -> list[dict[str, Any]]:
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
    """The ablation as a Markdown table: milliseconds and speed-up over the first variant."""
    names = [*VARIANTS, "bptt.loss_and_grads"]
    head = ["variant", *(f"T={r['T']} B={r['B']} H={r['H']} {r['dtype']}" for r in rows)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    first = names[0]
    for name in names:
        cells = [f"{_ms(r[name])} ms (x{r[first] / r[name]:.2f})" for r in rows]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3g}" if seconds < 1 else f"{seconds * 1e3:.0f}"


def format_table(result: dict[str, Any]) -> str:
    """The rows as a Markdown table (times in milliseconds, medians)."""
    has_torch = any("torch" in r for r in result["rows"])
    has_step = any("stepwise" in r for r in result["rows"])
    head = ["dtype", "T", "B", "H", "vectorised ms"]
    head += ["per step ms"] if has_step else []
    head += ["torch ms", "torch / vectorised"] if has_torch else []
    head += ["GFLOP/s", "% of peak"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in result["rows"]:
        cells = [r["dtype"], str(r["T"]), str(r["B"]), str(r["H"]), _ms(r["vectorised"])]
        if has_step:
            cells.append(_ms(r["stepwise"]))
        if has_torch:
            cells += [_ms(r["torch"]), f"{r['torch'] / r['vectorised']:.2f}"]
        cells += [f"{r['gflops']:.1f}", f"{100 * r['peak_fraction']:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def describe(result: dict[str, Any]) -> str:
    """One paragraph: the setting of a run (threads, versions, peaks)."""
    peaks = ", ".join(f"{dt} {g:.1f} GFLOP/s" for dt, g in result["peak_gflops"].items())
    torch = f"PyTorch {result['torch']}" if result["torch"] else "PyTorch not installed"
    timed = "process CPU time" if result.get("clock") == "cpu" else "wall-clock time"
    malloc = "freed memory kept for reuse" if result.get("keep_freed_memory") else "default malloc"
    return (
        f"{result['threads']} BLAS thread(s) for numpy and PyTorch; numpy {result['numpy']}, "
        f"{torch}; D = V = {D}; measured matmul peak (1024 x 1024): {peaks}. Medians of "
        f"{timed} of interleaved runs of forward + loss + backward; glibc: {malloc}."
    )


def save_results(result: dict[str, Any] | None, rows: list | None, folder: str) -> None:
    """Write ``speed.json``/``speed.md`` (the grid) and ``ablation.json``/``ablation.md``."""
    os.makedirs(folder, exist_ok=True)
    outputs = []
    if result is not None:
        text = f"{describe(result)}\n\n{format_table(result)}\n"
        outputs += [("speed.json", json.dumps(result, indent=1)), ("speed.md", text)]
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
    parser.add_argument("--quick", action="store_true", help="a small grid, no ablation")
    parser.add_argument("--no-stepwise", action="store_true", help="skip the per-step version")
    parser.add_argument("--only", choices=["grid", "ablation"], help="run only one part")
    parser.add_argument("--save", metavar="DIR", help="write the results as JSON and Markdown")
    args = parser.parse_args(argv)
    result = rows = None
    if args.only != "ablation":
        result = _run_and_print_grid(QUICK_GRID if args.quick else FULL_GRID, not args.no_stepwise)
    if args.only != "grid" and not args.quick:
        print(
            "\nWhat each optimisation of bptt.algorithms.vectorised is worth "
            "(medians, interleaved runs):"
        )
        rows = ablation()
        print(format_ablation(rows), flush=True)
    if args.save:
        save_results(result, rows, args.save)
    return 0


def _run_and_print_grid(grid: dict[str, Any], stepwise: bool) -> dict[str, Any]:
    has_torch = torch_available()
    if not has_torch:
        print("PyTorch is not installed (pip install torch): comparing without it.", flush=True)

    def show(row: dict) -> None:
        parts = [f"{row['dtype']} T={row['T']:<4} B={row['B']:<2} H={row['H']:<3}"]
        parts.append(f"vectorised {_ms(row['vectorised']):>7} ms")
        if "stepwise" in row:
            parts.append(f"per step {_ms(row['stepwise']):>7} ms")
        if "torch" in row:
            ratio = row["torch"] / row["vectorised"]
            parts.append(f"torch {_ms(row['torch']):>7} ms (x{ratio:.2f})")
        parts.append(f"{row['gflops']:6.1f} GFLOP/s ({100 * row['peak_fraction']:.0f} % of peak)")
        print("  ".join(parts), flush=True)

    result = run_grid(grid, stepwise=stepwise, torch=has_torch, progress=show)
    print()
    print(describe(result))
    print()
    print(format_table(result))
    if has_torch:
        worst = min(r["torch"] / r["vectorised"] for r in result["rows"])
        print(f"\nslowest relative to PyTorch: torch / vectorised = {worst:.2f}", flush=True)
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
    if keep_freed_memory:
        env.update(KEEP_FREED_MEMORY)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return [sys.executable, "-m", "benchmarks.bench_speed", *argv], env, root


def main(argv: Sequence[str] | None = None, *, threads: int = 1) -> int:
    """Run the benchmark in a child process with ``threads`` BLAS/OpenMP threads.

    ``argv``: ``--quick`` (a small grid), ``--no-stepwise``, ``--only grid|ablation``,
    ``--save DIR``, ``--threads N`` (default 1), ``--default-malloc`` (do not set
    :data:`KEEP_FREED_MEMORY`).
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
