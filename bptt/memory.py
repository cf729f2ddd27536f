"""What full BPTT keeps in memory: an analytic model, and a measurement to hold it against.

The model counts the arrays that :func:`bptt.loss_and_grads` (``rnn_forward``, the softmax loss and
``rnn_backward``) really allocates, array by array, and predicts the peak of the memory traced by
:mod:`tracemalloc` while it runs. numpy reports its array buffers to ``tracemalloc``, so
:func:`measure_peak_bytes` sees every one of them. Chapter 8 puts the two side by side.
"""

from __future__ import annotations

import gc
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from bptt import _checks
from bptt.algorithms.vectorised import DERIV_BLOCK, ONE_HOT_BLOCK, ONE_HOT_MAX_SIZE

MODEL_REL_TOL = 0.05
"""The memory model is held to ``MODEL_REL_TOL * model + MODEL_ABS_TOL`` of the measured peak."""
MODEL_ABS_TOL = 64 * 1024
"""Bytes allowed on top of :data:`MODEL_REL_TOL`: Python objects and small temporaries."""


@dataclass(frozen=True)
class BPTTMemory:
    """Sizes, in elements, of what full BPTT allocates for one batch (Chapter 8).

    Attributes
    ----------
    T, B, D, H, V : int
        Steps, batch, input, hidden and output sizes.
    itemsize : int
        Bytes per element of the floating dtype (4 for float32, 8 for float64).
    elements : dict
        Elements of each array, by name. ``"hidden states"`` are ``h_0 .. h_T``; everything else
        is described in :func:`bptt_memory`.
    peak_bytes : int
        Predicted peak of the bytes allocated while :func:`bptt.loss_and_grads` runs (inputs and
        parameters exist before the call and are not included).
    """

    T: int
    B: int
    D: int
    H: int
    V: int
    itemsize: int
    elements: dict[str, int]
    peak_bytes: int

    def nbytes(self, name: str) -> int:
        """Bytes of one named array group (floating point; the inputs keep their own type)."""
        if name == "inputs (token ids)":
            return self.elements[name] * 8
        return self.elements[name] * self.itemsize

    @property
    def hidden_state_bytes(self) -> int:
        """Bytes of ``h_0 .. h_T``: what any exact BPTT without recomputation must keep."""
        return self.nbytes("hidden states")

    @property
    def cache_bytes(self) -> int:
        """Bytes of the forward cache of :class:`bptt.RNNCache` (hidden + pre-activations)."""
        return self.nbytes("hidden states") + self.nbytes("pre-activations")


def bptt_memory(
    T: int, B: int, D: int, H: int, V: int, dtype: Any = np.float64, *, token_ids: bool = True
) -> BPTTMemory:
    """Analytic memory model of :func:`bptt.loss_and_grads` for a batch of sequences.

    Parameters
    ----------
    T, B, D, H, V : int
        Sequence length, batch size, input size, hidden size, output size.
    dtype : numpy floating dtype
        Dtype of the parameters (float64 by default, float32 halves every float array).
    token_ids : bool
        Inputs given as integer ids ``(T, B)`` (True) or as dense floats ``(T, B, D)``.

    Returns
    -------
    BPTTMemory
        The element count of every array and the predicted peak. The arrays are:

        * kept by the forward pass (:class:`bptt.RNNCache`): ``hidden states`` ``(T + 1) B H``,
          ``pre-activations`` ``T B H``;
        * made for the loss: ``outputs`` ``T B V``; the loss's gradient is computed in the same
          array (``overwrite_logits``), so ``output gradients`` are 0, and the softmax needs only
          ``softmax temporaries`` of ``2 T B`` (each row's maximum and sum);
        * made by the backward pass: ``backward: dL/da`` is 0 (the error signals are computed in
          the buffer of the pre-activations, ``overwrite_cache``) and ``backward: tanh
          derivative`` ``k B H`` (``1 - h_t**2``, computed for a block of ``k`` steps at a time,
          ``k = min(T, max(1, DERIV_BLOCK // (B H)))``, so at most about ``DERIV_BLOCK``
          numbers: :data:`bptt.algorithms.vectorised.DERIV_BLOCK`);
        * ``gradients``: as many elements as the parameters, and for token ids a ``(D, H)``
          buffer into which the rows of ``dL/da`` are scattered to form ``W_xh``'s gradient
          (for ``D <= ONE_HOT_MAX_SIZE``, also a ``(D, H)`` partial sum and a one-hot block of
          at most :data:`bptt.algorithms.vectorised.ONE_HOT_BLOCK` numbers:
          :func:`bptt.algorithms.vectorised.scatter_rows`).

        The peak is the largest of the sums alive at the softmax and in the backward pass.

    Explained in Chapter 8.
    """
    T = _checks.positive_int("T", T)
    B = _checks.positive_int("B", B)
    D = _checks.positive_int("D", D)
    H = _checks.positive_int("H", H)
    V = _checks.positive_int("V", V)
    dtype = _checks.float_dtype("dtype", dtype)
    n_params = H * D + H * H + H + V * H + V
    elements = {
        "inputs (token ids)" if token_ids else "inputs": T * B if token_ids else T * B * D,
        "hidden states": (T + 1) * B * H,
        "pre-activations": T * B * H,
        "outputs": T * B * V,
        "output gradients": 0,  # computed in the outputs' array
        "softmax temporaries": 2 * T * B,  # the maximum and the sum of each row
        "backward: dL/da": 0,  # computed in the pre-activations' array
        "backward: tanh derivative": min(T, max(1, DERIV_BLOCK // (B * H))) * B * H,
        "gradients": n_params,
        "backward: W_xh scatter buffer": _scatter_elements(T * B, D, H) if token_ids else 0,
    }
    e, size = elements, dtype.itemsize
    cache = e["hidden states"] + e["pre-activations"]
    # In the softmax: the outputs (worked on in place) and each row's maximum and sum.
    softmax_phase = cache + e["outputs"] + e["softmax temporaries"]
    # At the end of rnn_backward: the outputs' array (now the loss's gradient), the tanh
    # derivative, every gradient and, for token ids, the (D, H) buffer W_xh's gradient is
    # scattered into. (The terms that are 0 are kept so that the model lists what it does not
    # allocate, and why.)
    backward_phase = (
        cache
        + e["outputs"]
        + e["output gradients"]
        + e["backward: dL/da"]
        + e["backward: tanh derivative"]
        + e["gradients"]
        + e["backward: W_xh scatter buffer"]
    )
    peak = max(softmax_phase, backward_phase) * size
    return BPTTMemory(T, B, D, H, V, size, elements, peak)


def _scatter_elements(rows: int, D: int, H: int) -> int:
    """Numbers :func:`bptt.algorithms.vectorised.scatter_rows` allocates for ``rows`` ids."""
    if D > ONE_HOT_MAX_SIZE:
        return D * H
    return 2 * D * H + D * max(1, min(rows, ONE_HOT_BLOCK // D))


def measure_peak_bytes(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[int, Any]:
    """Run ``fn(*args, **kwargs)`` under :mod:`tracemalloc`; return ``(peak bytes, result)``.

    The peak is measured above what was allocated before the call, so arrays that already exist
    (parameters, inputs) do not count; what the call allocates and returns does. numpy reports
    its array buffers to tracemalloc. Explained in Chapter 8.
    """
    gc.collect()
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        result = fn(*args, **kwargs)
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        if not was_tracing:
            tracemalloc.stop()
    return peak, result


def time_call(fn: Callable[..., Any], *args: Any, repeat: int = 1, **kwargs: Any) -> float:
    """Best wall-clock seconds of ``repeat`` calls of ``fn`` (no tracing; used by the benchmark)."""
    repeat = _checks.positive_int("repeat", repeat)
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn(*args, **kwargs)
        best = min(best, time.perf_counter() - start)
    return best


def random_problem(
    T: int, B: int, D: int, H: int, V: int, dtype: Any = np.float64, rng: Any = 0
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Parameters, token-id inputs ``(T, B)`` and targets ``(T, B)`` for memory experiments."""
    from bptt.params import as_generator, init_params

    gen = as_generator(rng)
    params = init_params(D, H, V, gen, weight_scale=0.1, dtype=dtype)
    inputs = gen.integers(0, D, size=(T, B))
    targets = gen.integers(0, V, size=(T, B))
    return params, inputs, targets
