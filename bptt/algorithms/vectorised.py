"""The vectorised tanh RNN: forward, backward and ``loss_and_grads`` (Chapters 1 and 4).

Everything that does not depend on the previous hidden state is done for all time steps at once:
the input projection ``W_xh x_t + b_h``, the readout, the loss, and every weight gradient are single
matrix products over ``T * B`` rows. Only the recurrence itself, which must go step by step, is a
Python loop. :func:`bptt.loss_and_grads_stepwise` is the plain per-step version that the derivation
of Chapter 2 maps to line by line; the tests hold the two equal to 1e-12.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from bptt import _checks
from bptt.cells import Params
from bptt.losses import softmax_cross_entropy
from bptt.params import check_inputs, check_params, prepare_h0
from bptt.readout import readout_forward


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
    D, H, _ = check_params(params)
    dtype = params["W_hh"].dtype
    x = check_inputs(inputs, D, dtype)
    T, B = x.shape[:2]
    hs = np.empty((T + 1, B, H), dtype=dtype)
    hs[0] = prepare_h0(h0, B, H, dtype, steps=T)

    # All input projections at once: a gather of W_xh's columns for token ids (the product with a
    # one-hot vector), one (T*B, D) x (D, H) product for dense inputs.
    if x.ndim == 2:
        pre = params["W_xh"].T[x]
    else:
        pre = (x.reshape(T * B, D) @ params["W_xh"].T).reshape(T, B, H)
    pre += params["b_h"]

    # The loop writes into preallocated arrays (out=, +=): no new array per step.
    W_hh_T = params["W_hh"].T
    recurrent = np.empty((B, H), dtype=dtype)
    for t in range(T):  # the only sequential part: h_t needs h_{t-1}
        np.matmul(hs[t], W_hh_T, out=recurrent)
        pre[t] += recurrent
        np.tanh(pre[t], out=hs[t + 1])
    # The readout of all steps as one (T*B, H) x (H, V) product. numpy multiplies a stack
    # (T, B, H) @ (H, V) one (B, H) slice at a time; the flat 2-D product is a single BLAS call.
    V = params["W_hy"].shape[0]
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
    # The loop works in place (+=, *=, out=) on small preallocated buffers: no array is created
    # per step. tanh' = 1 - h_t**2 is also computed per step, into one (B, H) buffer that stays in
    # the processor's cache; as one (T, B, H) array it would be fresh memory to map and zero, then
    # streamed through memory twice (Appendix A2 measures the difference).
    tanh_deriv = np.empty((B, H), dtype=dtype)
    W_hh = params["W_hh"]
    for t in range(T - 1, -1, -1):
        delta = dpre[t]
        delta += dh_next  # delta_t: direct term plus what flows back from step t+1
        np.square(hs[t + 1], out=tanh_deriv)
        np.subtract(1.0, tanh_deriv, out=tanh_deriv)
        delta *= tanh_deriv
        np.matmul(delta, W_hh, out=dh_next)

    rows_dpre = dpre.reshape(T * B, H)
    grads["W_hh"] = rows_dpre.T @ hs[:-1].reshape(T * B, H)
    grads["b_h"] = rows_dpre.sum(axis=0)
    if x.ndim == 2:  # one-hot inputs: scatter-add rows of dpre into the columns of W_xh
        dW_xh_T = np.zeros((D, H), dtype=dtype)
        np.add.at(dW_xh_T, x.reshape(-1), rows_dpre)
        grads["W_xh"] = dW_xh_T.T.copy()
    else:
        grads["W_xh"] = rows_dpre.T @ x.reshape(T * B, D)
    ordered = {k: grads[k] for k in params}
    return ordered, dh_next


def loss_and_grads(
    params: Params, inputs: Any, targets: Any, h0: np.ndarray | None = None
) -> tuple[float, Params, np.ndarray]:
    """Softmax cross-entropy of a tanh RNN and its exact gradient by full BPTT.

    Parameters
    ----------
    params : dict
        ``W_xh (H, D)``, ``W_hh (H, H)``, ``b_h (H,)``, ``W_hy (V, H)``, ``b_y (V,)``.
    inputs : ndarray
        ``(T, B, D)`` floats, or ``(T, B)`` integer token ids (one-hot implied).
    targets : ndarray of int, shape (T, B)
        Class ids in ``[0, V)``.
    h0 : ndarray, shape (B, H), optional
        Initial state (zeros by default), e.g. the ``h_last`` of the previous chunk.

    Returns
    -------
    loss : float
        Cross-entropy summed over time and averaged over the batch.
    grads : dict
        Gradients with the names and shapes of ``params``.
    h_last : ndarray, shape (B, H)
        The final state, to carry into the next chunk of a long sequence.

    Raises
    ------
    FloatingPointError
        If the loss is not finite (the model has diverged).

    Explained in Chapter 4, derived in Chapter 2, checked in Chapter 5.
    """
    outputs, cache = rnn_forward(params, inputs, h0)
    T, B = cache.hs.shape[0] - 1, cache.hs.shape[1]
    targets = np.asarray(targets)
    if targets.shape != (T, B):
        raise ValueError(
            f"targets must have shape (T, B) = {(T, B)} like the inputs, got {targets.shape}"
            + (_checks.batch_first_hint(targets.shape, T, B) or "; give one class id per step")
        )
    # The outputs and the cache are private to this call, so the loss's gradient is computed in
    # the outputs' array and dL/da in the pre-activations': no new (T, B, V) or (T, B, H) array.
    loss, doutputs = softmax_cross_entropy(outputs, targets, overwrite_logits=True)
    _checks.finite_scalar("loss", loss)
    grads, _ = rnn_backward(params, cache, doutputs, overwrite_cache=True)
    return loss, grads, cache.hs[-1].copy()
