"""The fast path for every cell, loss and mask: GRU, LSTM, squared error, padding (Chapters 4, 10).

:func:`bptt.loss_and_grads` runs the tanh RNN with softmax cross-entropy and no mask through
:mod:`bptt.algorithms.vectorised`; every other combination of ``cell`` (``bptt.TANH``,
``bptt.GRU``, ``bptt.LSTM``), ``loss`` (:func:`bptt.softmax_cross_entropy`,
:func:`bptt.squared_error`) and ``mask`` comes here, vectorised the same way:

* the input projections of all ``T`` steps are one ``(T*B, D) x (D, gates*H)`` product (a gather
  of weight columns for integer ids), the readout and the loss are single operations over all
  ``T * B`` rows, and so are the weight gradients, after the loop;
* only the recurrence loops: per step one ``(B, H) x (H, gates*H)`` product forward and one
  backward, plus element-wise calls, all writing into existing arrays;
* the logistic gates are computed as ``sigma(a) = (1 + tanh(a / 2)) / 2``, with the rows of the
  stacked weights that feed them halved once per call (exact: a power of two), so that one
  ``tanh`` call covers every gate of a step;
* the parts of the backward step that do not depend on the incoming derivative (the gates'
  derivatives ``s (1 - s)``, ``1 - g**2``, ...) are computed for a block of steps at a time
  (:data:`GATE_BLOCK` numbers per factor), leaving a few multiplications per step in the loop.

A ``mask`` ``(T, B)`` of 0/1 marks padding (0): the loss of a padded step is not counted, the
state does not advance through it and no gradient flows through its cell, so a padded batch of
sequences of different lengths gives the mean of running each alone. In the backward loop the
mask costs nothing extra: it is folded into the block factors (a padded row's gate derivatives
are zero and its carried derivative passes unchanged).

The per-step reference is :func:`bptt.loss_and_grads_stepwise`; the tests hold the two equal to
1e-12 in float64.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bptt import _checks
from bptt.algorithms.result import BPTTResult
from bptt.algorithms.stepwise import check_loss, check_mask, check_targets
from bptt.algorithms.vectorised import _cross_entropy_in_place, _inputs, scatter_rows
from bptt.cells import Params
from bptt.cells.gru import GRUCell
from bptt.cells.lstm import LSTMCell
from bptt.cells.tanh import TanhCell
from bptt.losses import softmax_cross_entropy, squared_error
from bptt.params import check_params, prepare_h0
from bptt.readout import readout_forward

GATE_BLOCK = 2**14
"""Most numbers in one block of a backward factor (128 KiB in float64): the factors of a block of
steps are computed together, then used step by step while they are still in the cache."""

FAST_CELLS = (TanhCell, GRUCell, LSTMCell)
"""The cell classes with a vectorised path (their instances ``bptt.TANH``, ``bptt.GRU``, ...)."""


def _keep(mask: Any, T: int, B: int) -> np.ndarray | None:
    """The checked mask (:func:`bptt.algorithms.stepwise.check_mask`) as booleans ``(T, B)``.

    A mask of all ones means the same as no mask, so it becomes None and then costs nothing.
    """
    keep = check_mask(mask, T, B)
    return None if keep is None or keep.all() else keep


def _fast_cell(cell: Any) -> Any:
    if type(cell) not in FAST_CELLS:
        raise TypeError(
            f"cell must be bptt.TANH, bptt.GRU or bptt.LSTM for the fast path "
            f"bptt.loss_and_grads, got {_checks.describe(cell)}; for any other cell use "
            "bptt.loss_and_grads_stepwise(params, inputs, targets, h0, cell=cell)"
        )
    return cell


def _fast_loss(loss: Any) -> Any:
    if loss is not softmax_cross_entropy and loss is not squared_error:
        raise TypeError(
            f"loss must be bptt.softmax_cross_entropy or bptt.squared_error for the fast path "
            f"bptt.loss_and_grads, got {_checks.describe(loss)}; for a custom per-step loss use "
            "bptt.loss_and_grads_stepwise(params, inputs, targets, h0, cell=cell, loss=loss)"
        )
    return loss


def _project(x: np.ndarray, W: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``x W^T + b`` for every step at once, ``(T, B, rows of W)``: one product, or a gather."""
    T, B = x.shape[:2]
    out: np.ndarray
    if x.ndim == 2:  # token ids: the product with a one-hot vector picks a column of W
        out = np.ascontiguousarray(W.T)[x]
    else:
        out = (x.reshape(T * B, -1) @ W.T).reshape(T, B, W.shape[0])
    out += b
    return out


def _input_grads(G: np.ndarray, x: np.ndarray, D: int) -> np.ndarray:
    """``sum_t G_t^T x_t`` ``(columns of G, D)`` over all ``T * B`` rows (a scatter-add for ids)."""
    rows = G.reshape(-1, G.shape[-1])
    if x.ndim == 2:
        transposed: np.ndarray = scatter_rows(x.reshape(-1), rows, D).T
        return transposed
    result: np.ndarray = rows.T @ x.reshape(rows.shape[0], D)
    return result


def _loss_in_place(
    outputs: np.ndarray, targets: np.ndarray, loss: Any, mask: np.ndarray | None
) -> tuple[float, np.ndarray]:
    """The loss of all steps and ``dL/do`` (computed in ``outputs``'s array), with the mask.

    Summed over time, averaged over the batch B (the count of sequences, not of real steps);
    a padded step adds nothing to the loss and has ``dL/do = 0``.
    """
    T, B, V = outputs.shape
    if loss is squared_error:
        np.subtract(outputs, targets, out=outputs, casting="same_kind")
        if mask is not None:
            outputs *= mask[..., None]
        flat = outputs.reshape(-1)
        with np.errstate(over="ignore", invalid="ignore"):
            value = 0.5 * float(np.dot(flat, flat)) / B
        outputs /= B
    elif mask is None:
        value, outputs = _cross_entropy_in_place(outputs, targets)
    else:  # the operations of _cross_entropy_in_place, each row's loss weighted by the mask
        work = outputs.reshape(T * B, V)
        rows, cols = np.arange(T * B), targets.reshape(-1)
        weights = mask.reshape(-1).astype(outputs.dtype)
        work -= work.max(axis=-1, keepdims=True)
        picked = work[rows, cols]
        np.exp(work, out=work)
        sums = work.sum(axis=-1, keepdims=True)
        value = -float(np.dot(picked - np.log(sums[:, 0]), weights)) / B
        work /= sums
        work[rows, cols] -= 1.0
        work *= (weights / B)[:, None]
    _checks.finite_scalar("loss", value)
    return value, outputs


def _forward_weights(W: np.ndarray, B: int) -> np.ndarray:
    """``W^T`` for the forward products ``h_{t-1} W^T``: a view for one sequence, else a copy.

    For ``(B, H)`` rows OpenBLAS multiplies a row-major ``W^T`` faster than the transposed view
    (up to a third for B = 32, H = 256 in float32); for one sequence the view, a matrix-vector
    product, is as fast. The sums then run in another order than the per-step cell's, which
    changes results by rounding only.
    """
    return W.T if B == 1 else np.ascontiguousarray(W.T)


def _blocks(T: int, B: int, H: int) -> int:
    return max(1, min(T, GATE_BLOCK // (B * H)))


# ---------------------------------------------------------------------------------------- tanh


def _tanh_pass(
    p: Params, x: np.ndarray, h0: np.ndarray, keep: np.ndarray | None
) -> tuple[np.ndarray, Any]:
    """The tanh RNN forward with a mask (``keep`` ``(T, B, 1)``, True: a real step)."""
    T, B = x.shape[:2]
    H = p["W_hh"].shape[0]
    hs = np.empty((T + 1, B, H), dtype=h0.dtype)
    hs[0] = h0
    pre = _project(x, p["W_xh"], p["b_h"])
    W_hh_T, add, tanh, copyto = p["W_hh"].T, np.add, np.tanh, np.copyto
    recurrent = np.empty((B, H), dtype=h0.dtype)
    if keep is None:
        for h_prev, a, h in zip(hs[:-1], pre, hs[1:], strict=True):
            h_prev.dot(W_hh_T, recurrent)
            add(a, recurrent, a)
            tanh(a, h)
    else:
        skip = ~keep
        for h_prev, a, h, s in zip(hs[:-1], pre, hs[1:], skip, strict=True):
            h_prev.dot(W_hh_T, recurrent)
            add(a, recurrent, a)
            tanh(a, h)
            copyto(h, h_prev, where=s)  # padding: the state does not advance
    return hs, pre


def _tanh_backward(
    p: Params, x: np.ndarray, hs: np.ndarray, pre: np.ndarray, dH: np.ndarray, keep: Any
) -> Params:
    """BPTT of :func:`_tanh_pass` from the readout's direct terms ``dH`` ``(T, B, H)``."""
    T, B, H = dH.shape
    steps = _blocks(T, B, H)
    derivs = np.empty((steps, B, H), dtype=dH.dtype)
    carry = np.zeros((B, H), dtype=dH.dtype)
    passed = np.empty((B, H), dtype=dH.dtype)
    W_hh, add, multiply = p["W_hh"], np.add, np.multiply
    for stop in range(T, 0, -steps):
        start = max(0, stop - steps)
        block = derivs[: stop - start]
        np.square(hs[start + 1 : stop + 1], out=block)
        np.subtract(1.0, block, out=block)
        if keep is None:
            for delta, d in zip(dH[start:stop][::-1], block[::-1], strict=True):
                add(delta, carry, delta)
                multiply(delta, d, delta)
                delta.dot(W_hh, carry)
        else:
            block *= keep[start:stop]
            skip = ~keep[start:stop]
            for delta, d, s in zip(dH[start:stop][::-1], block[::-1], skip[::-1], strict=True):
                add(delta, carry, delta)
                multiply(delta, s, passed)  # a padded step passes dL/dh_t on to h_{t-1}
                multiply(delta, d, delta)
                delta.dot(W_hh, carry)
                add(carry, passed, carry)
    G = dH  # now dL/da_t of every step
    rows = G.reshape(T * B, H)
    return {
        "W_xh": _input_grads(G, x, p["W_xh"].shape[1]),
        "W_hh": rows.T @ hs[:-1].reshape(T * B, H),
        "b_h": rows.sum(axis=0),
    }


# ----------------------------------------------------------------------------------------- GRU


def _gru_pass(
    p: Params, x: np.ndarray, h0: np.ndarray, keep: np.ndarray | None
) -> tuple[np.ndarray, Any]:
    """The GRU forward over all steps; the cache is ``(gates [r | z | n], hn)``."""
    T, B = x.shape[:2]
    H = p["W_hr"].shape[0]
    dtype = h0.dtype
    gates = _project(
        x,
        np.concatenate((p["W_xr"], p["W_xz"], p["W_xn"])),
        np.concatenate((p["b_r"], p["b_z"], p["b_xn"])),
    )
    gates[..., : 2 * H] *= 0.5  # sigma(a) = (1 + tanh(a / 2)) / 2
    W_T = _forward_weights(np.concatenate((0.5 * p["W_hr"], 0.5 * p["W_hz"], p["W_hn"])), B)
    hs = np.empty((T + 1, B, H), dtype=dtype)
    hs[0] = h0
    hn = np.empty((T, B, H), dtype=dtype)  # W_hn h_{t-1} + b_hn, for dL/dr_t
    squeeze = B == 1 and keep is None  # one sequence: 1-D rows, matrix-vector products
    hs_, gates_, hn_ = (hs[:, 0], gates[:, 0], hn[:, 0]) if squeeze else (hs, gates, hn)
    product = np.empty(gates_.shape[1:], dtype=dtype)
    tmp = np.empty(hs_.shape[1:], dtype=dtype)
    prod_rz, prod_n = product[..., : 2 * H], product[..., 2 * H :]
    rz, r, z, n = (gates_[..., a:b] for a, b in ((0, 2 * H), (0, H), (H, 2 * H), (2 * H, 3 * H)))
    b_hn = p["b_hn"]
    skips = ~keep if keep is not None else [None] * T
    add, multiply, subtract, tanh = np.add, np.multiply, np.subtract, np.tanh
    rows = zip(hs_[:-1], rz, r, z, n, hn_, hs_[1:], skips, strict=True)
    for h_prev, rz_t, r_t, z_t, n_t, hn_t, h, skip in rows:
        h_prev.dot(W_T, product)
        add(rz_t, prod_rz, rz_t)
        tanh(rz_t, rz_t)
        multiply(rz_t, 0.5, rz_t)
        add(rz_t, 0.5, rz_t)  # r_t and z_t
        add(prod_n, b_hn, hn_t)
        multiply(r_t, hn_t, tmp)
        add(n_t, tmp, n_t)
        tanh(n_t, n_t)  # n_t
        subtract(h_prev, n_t, tmp)
        multiply(z_t, tmp, tmp)
        add(n_t, tmp, h)  # h_t = (1 - z_t) n_t + z_t h_{t-1}
        if skip is not None:  # padding: the state does not advance
            np.copyto(h, h_prev, where=skip)
    return hs, (gates, hn)


def _gru_backward(
    p: Params, x: np.ndarray, hs: np.ndarray, cache: Any, dH: np.ndarray, keep: Any
) -> Params:
    """BPTT of the GRU from the readout's direct terms ``dH`` ``(T, B, H)``.

    With ``delta_t`` the total derivative w.r.t. ``h_t``: ``dL/da_n = delta (1 - z)(1 - n^2)``,
    ``dL/d(hn) = dL/da_n * r``, ``dL/da_r = dL/da_n * hn * r (1 - r)``,
    ``dL/da_z = delta (h_{t-1} - n) z (1 - z)`` and
    ``dL/dh_{t-1} = delta z + [dL/da_r, dL/da_z, dL/d(hn)] [W_hr; W_hz; W_hn]``.
    The loop writes ``[dL/da_r | dL/da_z | dL/d(hn)]`` over the gates and ``dL/da_n`` over hn.
    """
    gates, hn = cache
    T, B, H = dH.shape
    dtype = dH.dtype
    W = np.concatenate((p["W_hr"], p["W_hz"], p["W_hn"]))
    steps = _blocks(T, B, H)
    A, Zg, Q, Zc = np.empty((4, steps, B, H), dtype=dtype)
    squeeze = B == 1 and keep is None
    carry = np.zeros(H if squeeze else (B, H), dtype=dtype)
    tmp = np.empty_like(carry)
    add, multiply = np.add, np.multiply
    for stop in range(T, 0, -steps):
        start = max(0, stop - steps)
        k = stop - start
        r, z, n = (gates[start:stop, :, j * H : (j + 1) * H] for j in range(3))
        a, zg, q, zc = A[:k], Zg[:k], Q[:k], Zc[:k]
        np.subtract(1.0, z, out=zc)  # 1 - z, for a moment
        np.multiply(n, n, out=a)
        np.subtract(1.0, a, out=a)
        a *= zc  # (1 - z)(1 - n^2)
        np.subtract(hs[start:stop], n, out=zg)
        zg *= z
        zg *= zc  # (h_{t-1} - n) z (1 - z)
        np.subtract(1.0, r, out=q)
        q *= r
        q *= hn[start:stop]  # hn r (1 - r)
        np.copyto(zc, z)
        if keep is not None:  # padding: no gradient through the cell, delta passes unchanged
            m = keep[start:stop]
            a *= m
            zg *= m
            np.copyto(zc, 1.0, where=~m)
        g = gates[start:stop]
        dn = hn[start:stop]
        parts: tuple[np.ndarray, ...] = (dH[start:stop], a, zg, q, zc, g, dn)
        if squeeze:
            parts = tuple(part[:, 0] for part in parts)
        d_, a_, zg_, q_, zc_, g_, dn_ = parts
        g_r, g_z, g_hn = (g_[..., j * H : (j + 1) * H] for j in range(3))
        rows = zip(d_, a_, zg_, q_, zc_, g_, g_r, g_z, g_hn, dn_, strict=True)
        for delta, a_t, zg_t, q_t, zc_t, g_t, gr_t, gz_t, ghn_t, dn_t in list(rows)[::-1]:
            add(delta, carry, delta)  # delta_t = dl_t/dh_t + what flows back from step t+1
            multiply(delta, a_t, dn_t)  # dL/da_n (over hn_t)
            multiply(dn_t, gr_t, ghn_t)  # dL/d(hn) = dL/da_n * r (r read before it is replaced)
            multiply(dn_t, q_t, gr_t)  # dL/da_r
            multiply(delta, zg_t, gz_t)  # dL/da_z
            multiply(delta, zc_t, carry)  # the additive path, delta z
            g_t.dot(W, tmp)
            add(carry, tmp, carry)
    G = gates.reshape(T * B, 3 * H)
    dW_h = G.T @ hs[:-1].reshape(T * B, H)
    dW_rz = _input_grads(gates[..., : 2 * H], x, p["W_xr"].shape[1])
    sums = G.sum(axis=0)
    return {
        "W_xr": dW_rz[:H],
        "W_xz": dW_rz[H:],
        "W_xn": _input_grads(hn, x, p["W_xn"].shape[1]),
        "W_hr": dW_h[:H],
        "W_hz": dW_h[H : 2 * H],
        "W_hn": dW_h[2 * H :],
        "b_r": sums[:H],
        "b_z": sums[H : 2 * H],
        "b_xn": hn.reshape(T * B, H).sum(axis=0),
        "b_hn": sums[2 * H :],
    }


# ---------------------------------------------------------------------------------------- LSTM

_LSTM_ORDER = ("i", "f", "o", "g")
"""The fast path's order of the LSTM's gates: the three sigmoid gates first, so that one scaled
block covers them; the cell itself (and PyTorch) stacks i, f, g, o."""


def _lstm_pass(
    p: Params, x: np.ndarray, h0: np.ndarray, keep: np.ndarray | None
) -> tuple[np.ndarray, Any]:
    """The LSTM forward over all steps; returns ``hs`` and ``(gates [i|f|o|g], cs, tanh(cs))``."""
    T, B = x.shape[:2]
    H = p["W_hi"].shape[0]
    dtype = h0.dtype
    gates = _project(
        x,
        np.concatenate([p[f"W_x{k}"] for k in _LSTM_ORDER]),
        np.concatenate([p[f"b_{k}"] for k in _LSTM_ORDER]),
    )
    gates[..., : 3 * H] *= 0.5  # sigma(a) = (1 + tanh(a / 2)) / 2 for i, f, o
    W_T = _forward_weights(
        np.concatenate([(0.5 if k != "g" else 1.0) * p[f"W_h{k}"] for k in _LSTM_ORDER]), B
    )
    hs = np.empty((T + 1, B, H), dtype=dtype)
    cs = np.empty((T + 1, B, H), dtype=dtype)
    hs[0], cs[0] = h0[:, :H], h0[:, H:]
    tcs = np.empty((T, B, H), dtype=dtype)
    squeeze = B == 1 and keep is None
    if squeeze:
        hs_, cs_, tcs_, gates_ = hs[:, 0], cs[:, 0], tcs[:, 0], gates[:, 0]
    else:
        hs_, cs_, tcs_, gates_ = hs, cs, tcs, gates
    product = np.empty(gates_.shape[1:], dtype=dtype)
    tmp = np.empty(hs_.shape[1:], dtype=dtype)
    s, i, f, o, g = (
        gates_[..., a:b] for a, b in ((0, 3 * H), (0, H), (H, 2 * H), (2 * H, 3 * H), (3 * H, None))
    )
    skips = ~keep if keep is not None else [None] * T
    add, multiply, tanh, copyto = np.add, np.multiply, np.tanh, np.copyto
    rows = zip(
        hs_[:-1], cs_[:-1], gates_, s, i, f, o, g, cs_[1:], tcs_, hs_[1:], skips, strict=True
    )
    for h_prev, c_prev, a_t, s_t, i_t, f_t, o_t, g_t, c, tc, h, skip in rows:
        h_prev.dot(W_T, product)
        add(a_t, product, a_t)
        tanh(a_t, a_t)
        multiply(s_t, 0.5, s_t)
        add(s_t, 0.5, s_t)  # i_t, f_t, o_t; g_t is the tanh itself
        multiply(f_t, c_prev, c)
        multiply(i_t, g_t, tmp)
        add(c, tmp, c)  # c_t = f_t c_{t-1} + i_t g_t
        tanh(c, tc)
        multiply(o_t, tc, h)  # h_t = o_t tanh(c_t)
        if skip is not None:  # padding: the state (h, c) does not advance
            copyto(h, h_prev, where=skip)
            copyto(c, c_prev, where=skip)
    return hs, (gates, cs, tcs)


def _lstm_backward(
    p: Params, x: np.ndarray, hs: np.ndarray, cache: Any, dH: np.ndarray, keep: Any
) -> Params:
    """BPTT of the LSTM from the readout's direct terms ``dH`` ``(T, B, H)``.

    With ``dh`` and ``dc`` the total derivatives w.r.t. ``h_t`` and ``c_t``:
    ``dc += dh o (1 - tanh(c)^2)``; ``dL/da_i = dc g i (1 - i)``,
    ``dL/da_f = dc c_{t-1} f (1 - f)``, ``dL/da_o = dh tanh(c) o (1 - o)``,
    ``dL/da_g = dc i (1 - g^2)``; then
    ``dL/dc_{t-1} = dc f`` (the constant error carousel) and ``dL/dh_{t-1} = dL/da W_h``.
    The loop writes ``dL/da`` over the gates.
    """
    gates, cs, tcs = cache
    T, B, H = dH.shape
    dtype = dH.dtype
    W = np.concatenate([p[f"W_h{k}"] for k in _LSTM_ORDER])
    steps = _blocks(T, B, H)
    Oc, Ot, Ig, Fc, Gi, F = np.empty((6, steps, B, H), dtype=dtype)
    squeeze = B == 1 and keep is None
    carry_h = np.zeros(H if squeeze else (B, H), dtype=dtype)
    carry_c = np.zeros_like(carry_h)
    tmp = np.empty_like(carry_h)
    add, multiply = np.add, np.multiply
    for stop in range(T, 0, -steps):
        start = max(0, stop - steps)
        k = stop - start
        i, f, o, g = (gates[start:stop, :, j * H : (j + 1) * H] for j in range(4))
        tc, c_prev = tcs[start:stop], cs[start:stop]
        oc, ot, ig, fc, gi, ff = Oc[:k], Ot[:k], Ig[:k], Fc[:k], Gi[:k], F[:k]
        np.multiply(tc, tc, out=oc)
        np.subtract(1.0, oc, out=oc)
        oc *= o  # o (1 - tanh(c)^2)
        np.subtract(1.0, o, out=ot)
        ot *= o
        ot *= tc  # tanh(c) o (1 - o)
        np.subtract(1.0, i, out=ig)
        ig *= i
        ig *= g  # g i (1 - i)
        np.subtract(1.0, f, out=fc)
        fc *= f
        fc *= c_prev  # c_{t-1} f (1 - f)
        np.multiply(g, g, out=gi)
        np.subtract(1.0, gi, out=gi)
        gi *= i  # i (1 - g^2)
        np.copyto(ff, f)
        skip: Any = [None] * k
        if keep is not None:  # padding: no gradient through the cell, (dh, dc) pass unchanged
            m = keep[start:stop]
            for factor in (oc, ot, ig, fc, gi):
                factor *= m
            np.copyto(ff, 1.0, where=~m)
            skip = ~m
        G = gates[start:stop]
        parts: tuple[np.ndarray, ...] = (dH[start:stop], oc, ot, ig, fc, gi, ff, G)
        if squeeze:
            parts = tuple(part[:, 0] for part in parts)
        d_, oc_, ot_, ig_, fc_, gi_, ff_, G_ = parts
        g_i, g_f, g_o, g_g = (G_[..., j * H : (j + 1) * H] for j in range(4))
        rows = zip(d_, oc_, ot_, ig_, fc_, gi_, ff_, G_, g_i, g_f, g_o, g_g, skip, strict=True)
        for dh, oc_t, ot_t, ig_t, fc_t, gi_t, f_t, G_t, gi_o, gf_o, go_o, gg_o, s in list(rows)[
            ::-1
        ]:
            add(dh, carry_h, dh)  # dL/dh_t
            multiply(dh, oc_t, tmp)
            add(carry_c, tmp, carry_c)  # dL/dc_t
            multiply(carry_c, ig_t, gi_o)
            multiply(carry_c, fc_t, gf_o)
            multiply(dh, ot_t, go_o)
            multiply(carry_c, gi_t, gg_o)
            multiply(carry_c, f_t, carry_c)  # dL/dc_{t-1}: the constant error carousel
            G_t.dot(W, carry_h)  # dL/dh_{t-1}
            if s is not None:
                np.copyto(carry_h, dh, where=s)  # padding: dL/dh_t passes to h_{t-1}
    Gr = gates.reshape(T * B, 4 * H)
    dW_h = Gr.T @ hs[:-1].reshape(T * B, H)
    dW_x = _input_grads(gates, x, p["W_xi"].shape[1])
    sums = Gr.sum(axis=0)
    grads: Params = {}
    for j, gate in enumerate(_LSTM_ORDER):
        block = slice(j * H, (j + 1) * H)
        grads[f"W_x{gate}"], grads[f"W_h{gate}"] = dW_x[block], dW_h[block]
        grads[f"b_{gate}"] = sums[block]
    return grads


_PASSES: dict[type, Any] = {
    TanhCell: (_tanh_pass, _tanh_backward),
    GRUCell: (_gru_pass, _gru_backward),
    LSTMCell: (_lstm_pass, _lstm_backward),
}


def loss_and_grads_general(
    params: Params,
    inputs: Any,
    targets: Any,
    h0: np.ndarray | None = None,
    *,
    cell: Any,
    loss: Any = softmax_cross_entropy,
    mask: Any = None,
) -> BPTTResult:
    """:func:`bptt.loss_and_grads` for any fast cell, loss and mask (same contract).

    Parameters
    ----------
    params : dict
        The cell's parameters and the readout's ``W_hy (V, H)``, ``b_y (V,)``.
    inputs : ndarray
        ``(T, B, D)`` floats, or ``(T, B)`` integer token ids (one-hot implied).
    targets : ndarray
        Class ids ``(T, B)`` for :func:`bptt.softmax_cross_entropy`, floats ``(T, B, V)`` for
        :func:`bptt.squared_error`.
    h0 : ndarray, shape (B, S), optional
        The initial state (zeros by default): ``(B, H)``, or ``[h_0 | c_0]`` ``(B, 2H)`` for
        the LSTM.
    cell : bptt.TANH, bptt.GRU or bptt.LSTM
    loss : bptt.softmax_cross_entropy or bptt.squared_error
    mask : array of 0/1, shape (T, B), optional
        0 marks padding (checked by :func:`bptt.algorithms.stepwise.check_mask`).

    Returns
    -------
    BPTTResult
        ``loss``; ``grads`` with the names and shapes (and order) of ``params``; ``h_last``
        ``(B, S)``, the state after each sequence's last real step.

    Explained in Chapter 4 (vectorisation, masks) and Chapter 10 (the gated cells).
    """
    cell = _fast_cell(cell)
    loss = _fast_loss(loss)
    D, H, V = check_params(params, cell)
    dtype = params["W_hy"].dtype
    x = _inputs(inputs, D, dtype)
    T, B = x.shape[:2]
    state0 = prepare_h0(h0, B, H, dtype, steps=T, cell=cell)
    targets = check_loss(loss, check_targets(targets, T, B), V)
    keep = _keep(mask, T, B)
    if type(cell) is TanhCell and loss is softmax_cross_entropy and keep is None:
        from bptt.algorithms.vectorised import loss_and_grads  # the tanh path, bit for bit

        return loss_and_grads(params, x, targets, state0)
    weights = None if keep is None else keep
    keep3 = None if keep is None else keep[..., None]
    forward, backward = _PASSES[type(cell)]
    hs, cache = forward(params, x, state0, keep3)
    outputs = readout_forward(params, hs[1:].reshape(T * B, H)).reshape(T, B, V)
    value, doutputs = _loss_in_place(outputs, targets, loss, weights)
    rows_do = doutputs.reshape(T * B, V)
    grads: Params = {"W_hy": rows_do.T @ hs[1:].reshape(T * B, H), "b_y": rows_do.sum(axis=0)}
    dH = (rows_do @ params["W_hy"]).reshape(T, B, H)
    grads.update(backward(params, x, hs, cache, dH, keep3))
    if type(cell) is LSTMCell:
        h_last = np.concatenate((hs[-1], cache[1][-1]), axis=1)
    else:
        h_last = hs[-1].copy()
    return BPTTResult(value, {k: np.ascontiguousarray(grads[k]) for k in params}, h_last)
