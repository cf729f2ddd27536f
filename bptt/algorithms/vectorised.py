"""The vectorised tanh RNN: forward, backward and ``loss_and_grads`` (Chapters 1 and 4).

Everything that does not depend on the previous hidden state is done for all time steps at once:
the input projection ``W_xh x_t + b_h``, the readout, the loss, and every weight gradient are single
matrix products over ``T * B`` rows. Only the recurrence itself, which must go step by step, is a
Python loop, of three numpy calls per step forward and three backward.
:func:`bptt.loss_and_grads_stepwise` is the plain per-step version that the derivation of Chapter 2
maps to line by line; the tests hold the two equal to 1e-12. Appendix A2 measures where the time of
a pass goes.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from bptt import _checks
from bptt.algorithms.result import BPTTResult
from bptt.cells import TANH, Cell, Params
from bptt.losses import softmax_cross_entropy
from bptt.model import Model, model_parts
from bptt.params import check_inputs, check_params, prepare_h0
from bptt.readout import readout_forward

LossFn = Callable[[np.ndarray, np.ndarray], tuple[float, np.ndarray]]
"""A per-step loss: ``(outputs (B, V), targets) -> (loss, doutputs)``; see :mod:`bptt.losses`."""

_NAMES = ("W_xh", "W_hh", "b_h", "W_hy", "b_y")

DERIV_BLOCK = 2**12
"""Most numbers in one block of ``tanh'`` values in :func:`rnn_backward` (32 KiB in float64):
small enough to stay in the processor's cache and within the memory model's tolerance (Ch. 7)."""


ONE_HOT_MAX_SIZE = 128 if sys.platform != "emscripten" else 0
"""Largest vocabulary for which :func:`scatter_rows` multiplies by one-hot blocks. The product's
advantage is the BLAS library; numpy in the browser (Pyodide) has none, so there it is 0 and
``np.add.at`` does every scatter-add."""

ONE_HOT_BLOCK = 2**15
"""Most numbers in one one-hot block of :func:`scatter_rows` (256 KiB in float64)."""


def scatter_rows(ids: np.ndarray, rows: np.ndarray, size: int) -> np.ndarray:
    """``out[i] = sum of rows[r] over the r with ids[r] == i``: the gradient of a gather.

    ``ids`` ``(N,)`` in ``[0, size)``, ``rows`` ``(N, H)``; returns ``(size, H)``. For a small
    vocabulary it multiplies blocks of one-hot columns with the rows: the matrix product spends
    ``size`` multiply-adds per number but does them faster than ``np.add.at``'s loop does one
    (Exercise 4 of Chapter 4 times both). Above :data:`ONE_HOT_MAX_SIZE` the product's cost
    outgrows it and ``np.add.at`` is used. The blocks keep the extra memory to
    :data:`ONE_HOT_BLOCK` numbers (Chapter 8's model counts them). Explained in Chapter 4.
    """
    out = np.zeros((size, rows.shape[1]), dtype=rows.dtype)
    if size > ONE_HOT_MAX_SIZE:
        np.add.at(out, ids, rows)
        return out
    per_block = max(1, min(len(ids), ONE_HOT_BLOCK // size))
    one_hot = np.zeros((size, per_block), dtype=rows.dtype)
    part = np.empty_like(out)
    columns = np.arange(per_block)
    for start in range(0, len(ids), per_block):
        chunk = ids[start : start + per_block]
        block, cols = one_hot[:, : len(chunk)], columns[: len(chunk)]
        block[chunk, cols] = 1.0
        np.matmul(block, rows[start : start + len(chunk)], out=part)
        out += part
        block[chunk, cols] = 0.0  # back to zeros for the next block
    return out


def _finite(arrays: list[np.ndarray]) -> bool:
    """True if every element is finite: a NaN makes ``max`` NaN, an infinity ``max`` or ``min``.

    Two reductions per array, with no temporary array and no overflow (a sum could overflow).
    """
    return all(math.isfinite(a.max()) and math.isfinite(a.min()) for a in arrays)


def _sizes(params: Any) -> tuple[int, int, int]:
    """``check_params(params)`` for the tanh cell, with a fast path for well-formed parameters.

    At batch size 1 a whole pass takes a few hundred microseconds, and the general check (the
    cell protocol, an element-wise finiteness test per array) took a sixth of it (Appendix A2).
    Parameters that pass the tests below are valid; anything else goes through
    :func:`bptt.params.check_params`, which accepts it or raises the error that names the problem.
    """
    if type(params) is dict and len(params) == len(_NAMES) and all(k in params for k in _NAMES):
        arrays = [params[k] for k in _NAMES]
        if all(type(a) is np.ndarray for a in arrays):
            W_xh, W_hy = arrays[0], arrays[3]
            dtype = W_xh.dtype
            if dtype.kind == "f" and W_xh.ndim == 2 and W_hy.ndim == 2:
                (H, D), V = W_xh.shape, W_hy.shape[0]
                shapes = ((H, D), (H, H), (H,), (V, H), (V,))
                if (
                    all(a.dtype == dtype for a in arrays)
                    and all(a.shape == s for a, s in zip(arrays, shapes, strict=True))
                    and H * D * V > 0
                    and _finite(arrays)
                ):
                    return D, H, V
    D, H, V = check_params(params)
    return D, H, V


def _inputs(inputs: Any, D: int, dtype: np.dtype[Any]) -> np.ndarray:
    """``check_inputs(inputs, D, dtype)`` with a fast path for arrays that are plainly valid."""
    if type(inputs) is np.ndarray and inputs.size > 0:
        if inputs.ndim == 3:
            valid = inputs.dtype == dtype and inputs.shape[2] == D and _finite([inputs])
        else:
            ids = inputs.ndim == 2 and inputs.dtype.kind in "iu"
            valid = ids and inputs.min() >= 0 and inputs.max() < D
        if valid:
            return inputs
    return check_inputs(inputs, D, dtype)


@dataclass
class RNNCache:
    """What the forward pass keeps for the backward pass (Chapter 1; its size in Chapter 8).

    Attributes
    ----------
    inputs : ndarray
        The inputs as given: floats ``(T, B, D)`` or integer token ids ``(T, B)``.
    hs : ndarray, shape (T + 1, B, H)
        Hidden states, ``hs[0]`` being ``h_0``; ``hs[t]`` is ``h_t``.
    pre : ndarray, shape (T, B, H)
        Pre-activations ``W_xh x_t + W_hh h_{t-1} + b_h``. The backward pass reads the tanh
        derivative off ``hs`` (``1 - h_t**2``) instead; ``pre`` is kept because the forward pass
        computes it in place of the input projections anyway, Chapter 9 inspects it for
        saturation, and ``rnn_backward(..., overwrite_cache=True)`` reuses its buffer.
    """

    inputs: np.ndarray
    hs: np.ndarray
    pre: np.ndarray

    @property
    def nbytes(self) -> int:
        """Bytes held by the cache's arrays (Chapter 1 shows it grows linearly in T)."""
        return int(self.inputs.nbytes + self.hs.nbytes + self.pre.nbytes)


def rnn_forward(
    params: Params, inputs: Any, h0: np.ndarray | None = None
) -> tuple[np.ndarray, RNNCache]:
    """Run the tanh RNN over a whole batch of sequences.

    Parameters
    ----------
    params : dict
        ``W_xh (H, D)``, ``W_hh (H, H)``, ``b_h (H,)``, ``W_hy (V, H)``, ``b_y (V,)``.
    inputs : ndarray
        Time-major floats ``(T, B, D)``, or integer token ids ``(T, B)`` standing for one-hot
        vectors of size D.
    h0 : ndarray, shape (B, H), optional
        Initial state; zeros by default.

    Returns
    -------
    outputs : ndarray, shape (T, B, V)
        ``o_t = W_hy h_t + b_y`` for every step.
    cache : RNNCache
        Inputs, hidden states ``h_0 .. h_T`` and pre-activations, for :func:`rnn_backward`.

    Explained in Chapter 1; vectorisation in Chapter 4.
    """
    D, H, V = _sizes(params)
    dtype = params["W_hh"].dtype
    x = _inputs(inputs, D, dtype)
    T, B = x.shape[:2]
    hs = np.empty((T + 1, B, H), dtype=dtype)
    hs[0] = 0.0 if h0 is None else prepare_h0(h0, B, H, dtype, steps=T)

    # All input projections at once: a gather of W_xh's columns for token ids (the product with a
    # one-hot vector), one (T*B, D) x (D, H) product for dense inputs.
    if x.ndim == 2:
        pre = params["W_xh"].T[x]
    else:
        pre = (x.reshape(T * B, D) @ params["W_xh"].T).reshape(T, B, H)
    pre += params["b_h"]

    # The only sequential part: h_t needs h_{t-1}. Three numpy calls per step, each writing into
    # an existing array (positional out), on rows taken by iteration rather than by indexing. At
    # B = 1 a step is a few microseconds, so call overhead counts (Appendix A2): the array method
    # .dot calls BLAS with less of it than np.dot, and np.matmul has the most.
    W_hh, add, tanh = params["W_hh"], np.add, np.tanh
    if B == 1:  # one sequence: matrix-vector products W_hh h_{t-1} on 1-D rows
        recurrent = np.empty(H, dtype=dtype)
        product = W_hh.dot
        for h_prev, a, h in zip(hs[:-1, 0], pre[:, 0], hs[1:, 0], strict=True):
            product(h_prev, recurrent)
            add(a, recurrent, a)
            tanh(a, h)
    else:  # rows: h_{t-1} W_hh^T, on the transposed view (a row-major copy of W_hh^T is faster
        # at large B, but BLAS then sums in another order, and in a chaotic network those
        # rounding differences grow over the steps: the plain versions use the view, Chapter 4)
        W_hh_T = W_hh.T
        recurrent = np.empty((B, H), dtype=dtype)
        for h_prev, a, h in zip(hs[:-1], pre, hs[1:], strict=True):
            h_prev.dot(W_hh_T, recurrent)
            add(a, recurrent, a)
            tanh(a, h)
    # The readout of all steps as one (T*B, H) x (H, V) product. numpy multiplies a stack
    # (T, B, H) @ (H, V) one (B, H) slice at a time; the flat 2-D product is a single BLAS call.
    outputs = readout_forward(params, hs[1:].reshape(T * B, H)).reshape(T, B, V)
    return outputs, RNNCache(inputs=x, hs=hs, pre=pre)


def rnn_backward(
    params: Params,
    cache: RNNCache,
    doutputs: np.ndarray,
    dh_last: np.ndarray | None = None,
    *,
    overwrite_cache: bool = False,
) -> tuple[Params, np.ndarray]:
    """Backpropagate through time given the derivative of the loss w.r.t. every output.

    Parameters
    ----------
    params : dict
        The parameters used by :func:`rnn_forward`.
    cache : RNNCache
        The forward pass's cache.
    doutputs : ndarray, shape (T, B, V)
        ``dL/do_t`` for every step (for softmax cross-entropy, ``(p_t - y_t) / B``).
    dh_last : ndarray, shape (B, H), optional
        Derivative of a loss *beyond* the sequence with respect to ``h_T`` (used when a longer
        sequence is processed in pieces); zero by default.
    overwrite_cache : bool
        Compute ``dL/da_t`` in the buffer of ``cache.pre``, which then holds those derivatives
        instead of the pre-activations. Saves a ``(T, B, H)`` array for callers that discard the
        cache, as :func:`loss_and_grads` does (Chapter 8 counts the saving).

    Returns
    -------
    grads : dict
        Gradients with the names and shapes of ``params``.
    dh0 : ndarray, shape (B, H)
        ``dL/dh_0``, the derivative with respect to the initial state.

    Explained in Chapter 2 (the equations) and Chapter 4 (the vectorisation).
    """
    if not isinstance(cache, RNNCache):
        raise TypeError(
            f"cache must be the RNNCache returned by rnn_forward, got {_checks.describe(cache)}; "
            "pass the second result of bptt.rnn_forward"
        )
    hs, x = cache.hs, cache.inputs
    T, B, H = hs.shape[0] - 1, hs.shape[1], hs.shape[2]
    V, D = params["W_hy"].shape[0], params["W_xh"].shape[1]
    if not (
        type(doutputs) is np.ndarray
        and doutputs.shape == (T, B, V)
        and doutputs.dtype.kind == "f"
        and _finite([doutputs])
    ):
        doutputs = _checks.float_array("doutputs", doutputs, shape=(T, B, V), layout="(T, B, V)")
    dtype = params["W_hh"].dtype

    rows_h = hs[1:].reshape(T * B, H)
    rows_do = doutputs.reshape(T * B, V)
    grads: Params = {"W_hy": rows_do.T @ rows_h, "b_y": rows_do.sum(axis=0)}

    # dpre starts as the direct contribution dl_t/dh_t of every step (one flat product for all t)
    # and is turned, step by step from the end, into dL/dpre_t = (delta_t) * tanh'(pre_t).
    # Large fresh arrays are costly (the allocator maps and zeroes new pages), so the buffer of the
    # pre-activations is reused when the caller allows it: the backward pass never reads them.
    out = cache.pre.reshape(T * B, H) if overwrite_cache else None
    dpre = np.matmul(rows_do, params["W_hy"], out=out).reshape(T, B, H)
    dh_next = np.zeros((B, H), dtype=dtype)
    if dh_last is not None:
        dh_next[...] = _checks.float_array("dh_last", dh_last, shape=(B, H), layout="(B, H)")
    # tanh' = 1 - h_t**2 is computed for a block of steps at a time, two calls per block, into one
    # buffer of at most DERIV_BLOCK numbers that stays in the processor's cache; as one (T, B, H)
    # array it would be fresh memory to map and zero, then streamed through memory twice
    # (Appendix A2 measures the difference). The loop then makes three calls per step, in place,
    # on rows taken by iteration, as the forward loop does; at B = 1 the rows are 1-D vectors.
    steps = max(1, min(T, DERIV_BLOCK // (B * H)))
    tanh_derivs = np.empty((steps, B, H), dtype=dtype)
    W_hh, add, multiply = params["W_hh"], np.add, np.multiply
    one = B == 1
    dh = dh_next[0] if one else dh_next
    for stop in range(T, 0, -steps):
        start = max(0, stop - steps)
        block = tanh_derivs[: stop - start]
        np.square(hs[start + 1 : stop + 1], out=block)
        np.subtract(1.0, block, out=block)
        deltas = dpre[start:stop, 0] if one else dpre[start:stop]
        derivs = block[:, 0] if one else block
        for delta, tanh_deriv in zip(deltas[::-1], derivs[::-1], strict=True):
            add(delta, dh, delta)  # delta_t: direct term plus what flows back from step t+1
            multiply(delta, tanh_deriv, delta)  # g_t = dL/dpre_t
            delta.dot(W_hh, dh)  # W_hh^T g_t (in row form), carried to step t - 1

    rows_dpre = dpre.reshape(T * B, H)
    grads["W_hh"] = rows_dpre.T @ hs[:-1].reshape(T * B, H)
    grads["b_h"] = rows_dpre.sum(axis=0)
    if x.ndim == 2:  # one-hot inputs: scatter-add rows of dpre into the columns of W_xh
        grads["W_xh"] = scatter_rows(x.reshape(-1), rows_dpre, D).T.copy()
    else:
        grads["W_xh"] = rows_dpre.T @ x.reshape(T * B, D)
    ordered = {k: grads[k] for k in params}
    return ordered, dh_next


def _cross_entropy_in_place(logits: np.ndarray, targets: np.ndarray) -> tuple[float, np.ndarray]:
    """:func:`bptt.softmax_cross_entropy` with ``overwrite_logits=True``, for checked arguments.

    The same operations in the same order, so the same numbers to the last bit (tested), with
    flat indices instead of ``take_along_axis``/``put_along_axis`` and no argument checks: those
    cost tens of microseconds, a tenth of a whole pass at batch size 1 (Appendix A2).
    ``logits`` ``(T, B, V)`` comes from :func:`rnn_forward`; ``targets`` are valid ids ``(T, B)``.
    """
    T, B, V = logits.shape
    work = logits.reshape(T * B, V)
    rows, cols = np.arange(T * B), targets.reshape(-1)
    work -= work.max(axis=-1, keepdims=True)  # log-sum-exp: exp of the shifted scores is <= 1
    picked = work[rows, cols]  # shifted score of each target
    np.exp(work, out=work)
    sums = work.sum(axis=-1, keepdims=True)
    loss = -(float(picked.sum()) - float(np.log(sums).sum())) / B
    work /= sums  # probabilities p
    work[rows, cols] -= 1.0
    work /= B
    return loss, logits


def loss_and_grads(
    params: Params | Model,
    inputs: Any,
    targets: Any,
    h0: np.ndarray | None = None,
    *,
    cell: Cell | None = None,
    loss: LossFn = softmax_cross_entropy,
    mask: Any = None,
) -> BPTTResult:
    """The loss of a recurrent network and its exact gradient by full BPTT, vectorised.

    Explained in Chapter 4, derived in Chapter 2, checked in Chapter 5; the gated cells' fast
    path (:mod:`bptt.algorithms.vectorised_gated`) in Chapter 10.

    Parameters
    ----------
    params : bptt.Model or dict
        A :class:`bptt.Model` (its cell is used), or the parameters alone: the cell's (for the
        tanh cell ``W_xh (H, D)``, ``W_hh (H, H)``, ``b_h (H,)``) and the readout's
        ``W_hy (V, H)``, ``b_y (V,)``.
    inputs : ndarray
        ``(T, B, D)`` floats, or ``(T, B)`` integer token ids (one-hot implied).
    targets : ndarray
        Class ids ``(T, B)`` in ``[0, V)`` for softmax cross-entropy; real values
        ``(T, B, V)`` for :func:`bptt.squared_error`.
    h0 : ndarray, shape (B, S), optional
        Initial state (zeros by default), e.g. the ``h_last`` of the previous chunk:
        ``(B, H)``, or ``[h_0 | c_0]`` ``(B, 2H)`` for the LSTM.
    cell : bptt.TANH, bptt.GRU or bptt.LSTM, optional
        The cell of a dict of parameters (default: the tanh cell; leave it out for a Model).
        Any other cell raises a ``TypeError`` pointing to :func:`bptt.loss_and_grads_stepwise`.
    loss : bptt.softmax_cross_entropy or bptt.squared_error
        The per-step loss; for any other use :func:`bptt.loss_and_grads_stepwise`.
    mask : array of 0/1, shape (T, B), optional
        0 marks a padded step: its loss is not counted and the state does not advance through
        it, so sequences of different lengths can share a batch.

    Returns
    -------
    BPTTResult
        ``loss`` (summed over time and averaged over the batch), ``grads`` (the names and shapes
        of the parameters) and ``h_last`` ``(B, S)``, the final state to carry into the next
        chunk of a long sequence. It unpacks as ``loss, grads, h_last = ...``, as every
        algorithm's result does.

    Raises
    ------
    FloatingPointError
        If the loss is not finite (the model has diverged).
    """
    params, cell = model_parts(params, cell)
    if cell is not TANH or loss is not softmax_cross_entropy or mask is not None:
        from bptt.algorithms.vectorised_gated import loss_and_grads_general

        return loss_and_grads_general(params, inputs, targets, h0, cell=cell, loss=loss, mask=mask)
    outputs, cache = rnn_forward(params, inputs, h0)
    T, B, V = outputs.shape
    targets = np.asarray(targets)
    if targets.shape != (T, B):
        raise ValueError(
            f"targets must have shape (T, B) = {(T, B)} like the inputs, got {targets.shape}"
            + (_checks.batch_first_hint(targets.shape, T, B) or "; give one class id per step")
        )
    # The outputs and the cache are private to this call, so the loss's gradient is computed in
    # the outputs' array and dL/da in the pre-activations': no new (T, B, V) or (T, B, H) array.
    if targets.dtype.kind in "iu" and targets.min() >= 0 and targets.max() < V:
        value, doutputs = _cross_entropy_in_place(outputs, targets)
    else:  # the general function, which raises the error that names the problem
        value, doutputs = softmax_cross_entropy(outputs, targets, overwrite_logits=True)
    _checks.finite_scalar("loss", value)
    grads, _ = rnn_backward(params, cache, doutputs, overwrite_cache=True)
    return BPTTResult(value, grads, cache.hs[-1].copy())
