"""The experiments of Chapter 12, "Beyond BPTT": every gradient algorithm measured side by side.

* :class:`FastInfluenceCell`: the influence-balancing cell with its state JVP ``J v = A v``.
* :func:`influence_runs`: online SGD on influence balancing with RTRL, TBPTT and UORO.
* :func:`forward_mode_cost`: time per step and carried memory of RTRL and UORO against H.
* :func:`method_table`: memory, time per step, bias, variance, online or not and sequential
  depth of every algorithm on one small problem.
* :func:`cost_against_length`: time and peak memory of each algorithm against T.

Small defaults are the chapter's; every function takes the sizes as arguments. Explained in
Chapter 12.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bptt import _checks
from bptt.algorithms.artbp import artbp
from bptt.algorithms.checkpointing import loss_and_grads_checkpointed
from bptt.algorithms.online import RTRL, TBPTT, UORO, Method, OnlineRun, online_sgd
from bptt.algorithms.rtrl import rtrl
from bptt.algorithms.scan import (
    linear_recurrence,
    linear_recurrence_backward,
    scan_linear,
    scan_linear_backward,
)
from bptt.algorithms.stepwise import loss_and_grads_stepwise
from bptt.algorithms.truncation import tbptt
from bptt.algorithms.uoro import uoro
from bptt.cells import TANH, Cell, Params
from bptt.cells.base import param_size
from bptt.experiments.counting import CountingCell
from bptt.experiments.influence import InfluenceCell, influence_problem
from bptt.experiments.truncation import flatten, power_law_with_mean
from bptt.losses import softmax_cross_entropy, squared_error
from bptt.memory import measure_peak_bytes
from bptt.params import as_generator, init_params


@dataclass(frozen=True)
class FastInfluenceCell(InfluenceCell):
    """:class:`~bptt.experiments.influence.InfluenceCell` with ``state_jvp``: ``J_t v = A v``.

    The same cell; UORO's product ``J_t h~`` costs one ``(n, n)`` product instead of the
    ``n`` backward steps of the default :func:`bptt.cells.base.state_jvp`. Chapter 12.
    """

    def state_jvp(self, params: Params, cache: Any, v: np.ndarray) -> np.ndarray:
        """``J_t v = A v`` for a batch of tangents ``(B, n)``."""
        result: np.ndarray = v @ self.A.T
        return result


def influence_runs(
    steps: int = 20_000,
    *,
    methods: Sequence[Method] = (RTRL(), TBPTT(16, 16), UORO()),
    learning_rate: float = 1e-5,
    seed: int = 0,
    divergence: float = 1e3,
) -> dict[str, OnlineRun]:
    """Online SGD on influence balancing (``n = 23``, ``p = 10``, ``theta_0 = 0.5``,
    ``h_0 = (1, ..., 1)``) with a constant step size: ``{label: run}``, ``tracked`` is theta.

    ``seed`` seeds UORO's signs. The chapter's run; ``steps`` may be raised. Explained in
    Chapter 12.
    """
    steps = _checks.positive_int("steps", steps)
    problem = influence_problem(steps)
    cell = FastInfluenceCell()
    runs = {}
    for method in methods:
        runs[method.label] = online_sgd(
            problem.params,
            problem.inputs,
            problem.targets,
            method,
            learning_rate=learning_rate,
            trainable=["theta"],
            h0=problem.h0,
            cell=cell,
            loss=squared_error,
            rng=seed,
            track=lambda params: float(params["theta"][0, 0]),
            divergence=divergence,
        )
    return runs


def tanh_problem(
    steps: int, hidden_size: int, *, input_size: int = 4, batch: int = 1, rng: Any = 0
) -> tuple[Params, np.ndarray, np.ndarray]:
    """A random tanh RNN (weights of scale ``1 / sqrt(H)``) and a random stream of ids.

    Explained in Chapter 12.
    """
    gen = as_generator(rng)
    scale = 1.0 / np.sqrt(hidden_size)
    params = init_params(input_size, hidden_size, input_size, rng=gen, weight_scale=scale)
    inputs = gen.integers(0, input_size, size=(steps, batch))
    targets = gen.integers(0, input_size, size=(steps, batch))
    return params, inputs, targets


def _seconds(fn: Callable[..., Any], repeat: int, *args: Any) -> float:
    """Best wall-clock time of ``repeat`` calls of ``fn(*args)``."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn(*args)
        best = min(best, time.perf_counter() - start)
    return best


@dataclass(frozen=True)
class ForwardCostRow:
    """RTRL's and UORO's cost per step for hidden size ``H`` (dense tanh RNN, batch 1).

    ``*_floats`` count the numbers each carries from step to step: ``S P`` for RTRL's ``S_t``,
    ``S + P`` for UORO's two vectors. ``*_seconds`` are wall-clock seconds per step.
    Explained in Chapter 12.
    """

    H: int
    P: int
    rtrl_seconds: float
    uoro_seconds: float
    bptt_seconds: float
    rtrl_floats: int
    uoro_floats: int


def forward_mode_cost(
    hidden_sizes: Sequence[int] = (16, 32, 64), *, steps: int = 4, repeat: int = 2
) -> list[ForwardCostRow]:
    """Time per step of RTRL, UORO and full BPTT on a dense tanh RNN, for each H.

    Explained in Chapter 12.
    """
    rows = []
    for H in hidden_sizes:
        problem = tanh_problem(steps, H)
        P = param_size(TANH, problem[0])
        rows.append(
            ForwardCostRow(
                H,
                P,
                _seconds(_run_rtrl, repeat, *problem) / steps,
                _seconds(_run_uoro, repeat, *problem) / steps,
                _seconds(loss_and_grads_stepwise, repeat, *problem) / steps,
                H * P,
                H + P,
            )
        )
    return rows


def _run_rtrl(params: Params, x: np.ndarray, y: np.ndarray) -> Any:
    return rtrl(params, x, y, cell=TANH, loss=softmax_cross_entropy)


def _run_uoro(params: Params, x: np.ndarray, y: np.ndarray) -> Any:
    return uoro(params, x, y, cell=TANH, loss=softmax_cross_entropy)


def _sqrt_slots(T: int) -> int:
    """Checkpointing's number of slots for T steps: about ``sqrt(T)``, at least 2."""
    return max(2, round(float(np.sqrt(T))))


def growth_exponent(sizes: Sequence[float], costs: Sequence[float]) -> float:
    """The slope of ``log cost`` against ``log size`` between the last two sizes.

    Explained in Chapter 12.
    """
    return float(np.log(costs[-1] / costs[-2]) / np.log(sizes[-1] / sizes[-2]))


@dataclass(frozen=True)
class MethodRow:
    """One algorithm on :func:`method_table`'s problem.

    ``cosine`` is that of the mean gradient to the full one; ``bias`` the relative distance
    ``||mean - full|| / ||full||``; ``variance`` the mean squared distance of one draw from the
    mean, over ``||full||^2`` (0 for deterministic algorithms); ``peak_bytes`` the peak traced
    memory of one call; ``depth`` its sequential steps (forward and backward steps that wait for
    one another). Explained in Chapter 12.
    """

    name: str
    peak_bytes: int
    seconds_per_step: float
    cosine: float
    bias: float
    variance: float
    online: bool
    depth: int


def _stats(draws: list[Params], full: Params) -> tuple[float, float, float]:
    flat = np.array([flatten({k: d[k] for k in full}) for d in draws])
    e = flatten(full)
    mean = flat.mean(axis=0)
    norm2 = float(e @ e)
    cosine = float(mean @ e / (np.linalg.norm(mean) * np.sqrt(norm2)))
    bias = float(np.linalg.norm(mean - e) / np.sqrt(norm2))
    variance = float(np.mean(np.sum((flat - mean) ** 2, axis=1)) / norm2) if len(draws) > 1 else 0.0
    return cosine, bias, variance


def method_table(
    steps: int = 64,
    hidden_size: int = 8,
    *,
    k: int = 8,
    draws: int = 50,
    rng: int = 0,
) -> list[MethodRow]:
    """Every algorithm on one small tanh RNN problem, and the scan on a linear recurrence.

    Random algorithms (ARTBP with mean subsequence length ``k``, UORO) are drawn ``draws``
    times; truncation is TBPTT(k, k); checkpointing keeps ``sqrt(T)`` slots. The scan row is a
    diagonal linear recurrence of the same T and H (the only kind it applies to). Explained in
    Chapter 12.
    """
    steps = _checks.positive_int("steps", steps)
    draws = _checks.positive_int("draws", draws, minimum=2)
    params, x, y = tanh_problem(steps, hidden_size, rng=rng)
    _, full, _ = loss_and_grads_stepwise(params, x, y)
    slots = _sqrt_slots(steps)
    schedule = power_law_with_mean(float(k))
    gen = as_generator(rng)

    def counted_depth(run: Callable[[Cell], Any]) -> int:
        counter = CountingCell(TANH)
        run(counter)
        return counter.forward_steps + counter.backward_steps

    # (name, one gradient, online?, number of draws)
    runs: list[tuple[str, Callable[[], Params], bool, int]] = [
        ("full BPTT", lambda: loss_and_grads_stepwise(params, x, y)[1], False, 1),
        (f"TBPTT({k}, {k})", lambda: tbptt(params, x, y, k, k).grads, True, 1),
        (
            f"ARTBP (mean length {k})",
            lambda: artbp(params, x, y, schedule, rng=gen).grads,
            True,
            draws,
        ),
        (
            f"checkpointed BPTT ({slots} slots)",
            lambda: loss_and_grads_checkpointed(params, x, y, slots=slots).grads,
            False,
            1,
        ),
        ("RTRL", lambda: _run_rtrl(params, x, y).grads, True, 1),
        (
            "UORO",
            lambda: uoro(params, x, y, cell=TANH, loss=softmax_cross_entropy, rng=gen).grads,
            True,
            draws,
        ),
    ]
    depth_of = {
        "full BPTT": lambda c: loss_and_grads_stepwise(params, x, y, cell=c),
        f"TBPTT({k}, {k})": lambda c: tbptt(params, x, y, k, k, cell=c),
        f"ARTBP (mean length {k})": lambda c: artbp(params, x, y, schedule, rng=0, cell=c),
        f"checkpointed BPTT ({slots} slots)": lambda c: loss_and_grads_checkpointed(
            params, x, y, slots=slots, cell=c
        ),
    }
    rows = []
    for name, fn, online, n in runs:
        peak, _ = measure_peak_bytes(fn)
        seconds = _seconds(fn, 5) / steps
        cosine, bias, variance = _stats([fn() for _ in range(n)], full)
        depth = counted_depth(depth_of[name]) if name in depth_of else steps
        rows.append(MethodRow(name, peak, seconds, cosine, bias, variance, online, depth))
    rows.append(_scan_row(steps, hidden_size, rng))
    return rows


def linear_problem(
    steps: int, width: int, rng: Any = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Coefficients ``a`` in (0.5, 1), ``b``, ``h0`` and ``dl/dh`` of a diagonal linear recurrence.

    Explained in Chapter 12.
    """
    gen = as_generator(rng)
    a = gen.uniform(0.5, 1.0, size=(steps, width))
    b = gen.normal(size=(steps, width))
    return a, b, gen.normal(size=width), gen.normal(size=(steps, width))


def _scan_gradient(
    a: np.ndarray, b: np.ndarray, h0: np.ndarray, direct: np.ndarray
) -> tuple[Any, Any]:
    """Forward and backward of the linear recurrence, both by parallel scan."""
    forward = scan_linear(a, b, h0)
    return forward, scan_linear_backward(a, forward.states, direct, h0)


def _scan_row(steps: int, width: int, rng: Any) -> MethodRow:
    a, b, h0, direct = linear_problem(steps, width, rng)

    def by_scan() -> Any:
        return _scan_gradient(a, b, h0, direct)

    loop_states = linear_recurrence(a, b, h0).states
    exact = linear_recurrence_backward(a, loop_states, direct, h0)
    peak, (forward, grads) = measure_peak_bytes(by_scan)
    full = {"a": exact.a, "b": exact.b}
    cosine, bias, _ = _stats([{"a": grads.a, "b": grads.b}], full)
    seconds = _seconds(by_scan, 5) / steps
    return MethodRow(
        "parallel scan (linear recurrence)",
        peak,
        seconds,
        cosine,
        bias,
        0.0,
        False,
        forward.depth + grads.depth,
    )


@dataclass(frozen=True)
class LengthCost:
    """Seconds and peak traced bytes of one algorithm for each length in ``lengths``.

    Explained in Chapter 12.
    """

    name: str
    lengths: np.ndarray
    seconds: np.ndarray
    peak_bytes: np.ndarray


def cost_against_length(
    lengths: Sequence[int] = (32, 64, 128, 256), *, hidden_size: int = 8, k: int = 8
) -> list[LengthCost]:
    """Time and memory of each algorithm against T on a tanh RNN (the scan: on a linear
    recurrence of width H). Explained in Chapter 12."""
    algorithms: dict[str, Callable[[Params, np.ndarray, np.ndarray], Any]] = {
        "full BPTT": lambda p, x, y: loss_and_grads_stepwise(p, x, y),
        f"TBPTT({k}, {k})": lambda p, x, y: tbptt(p, x, y, k, k),
        "checkpointed BPTT": lambda p, x, y: loss_and_grads_checkpointed(
            p, x, y, slots=_sqrt_slots(len(x))
        ),
        "RTRL": _run_rtrl,
        "UORO": _run_uoro,
    }
    out = []
    for name, algorithm in algorithms.items():
        seconds, peaks = [], []
        for T in lengths:
            params, x, y = tanh_problem(T, hidden_size)
            peak, _ = measure_peak_bytes(algorithm, params, x, y)
            seconds.append(_seconds(algorithm, 3, params, x, y))
            peaks.append(peak)
        out.append(LengthCost(name, np.asarray(lengths), np.asarray(seconds), np.asarray(peaks)))
    seconds, peaks = [], []
    for T in lengths:
        linear = linear_problem(T, hidden_size)
        peak, _ = measure_peak_bytes(_scan_gradient, *linear)
        seconds.append(_seconds(_scan_gradient, 3, *linear))
        peaks.append(peak)
    scan_cost = LengthCost(
        "parallel scan", np.asarray(lengths), np.asarray(seconds), np.asarray(peaks)
    )
    out.append(scan_cost)
    return out
