"""Per-step losses with their gradients: softmax cross-entropy and squared error.

Both follow one convention (Chapter 2): for outputs of shape ``(..., B, V)`` the loss is summed over
every leading position (time steps) and averaged over the batch axis ``B``. So the same function
gives the loss of one step ``(B, V)`` or of a whole sequence ``(T, B, V)``, and per-step losses add
up to the sequence loss exactly.
"""

from __future__ import annotations

import numpy as np

from bptt import _checks


def _logits(name: str, logits: object) -> np.ndarray:
    array = _checks.float_array(name, logits)
    if array.ndim < 1 or array.shape[-1] == 0:
        raise ValueError(
            f"{name} must have at least one class on its last axis, got shape {array.shape}; "
            "pass scores of shape (..., V) with V >= 1"
        )
    return array


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Numerically stable ``log softmax`` over the last axis (log-sum-exp with the max removed).

    Explained in Chapter 4: subtracting the row maximum before ``exp`` makes overflow impossible and
    leaves the result unchanged.
    """
    logits = _logits("logits", logits)
    shifted: np.ndarray = logits - logits.max(axis=-1, keepdims=True)
    result: np.ndarray = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    return result


def softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, computed stably (see :func:`log_softmax`).

    Explained in Chapter 4.
    """
    logits = _logits("logits", logits)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    e: np.ndarray = np.exp(shifted)
    result: np.ndarray = e / e.sum(axis=-1, keepdims=True)
    return result


def softmax_cross_entropy(
    logits: np.ndarray, targets: np.ndarray, *, overwrite_logits: bool = False
) -> tuple[float, np.ndarray]:
    """Cross-entropy of integer ``targets`` under ``softmax(logits)``, and its gradient.

    Parameters
    ----------
    logits : ndarray, shape (..., B, V)
        Unnormalised scores.
    targets : ndarray of int, shape (..., B)
        Class ids in ``[0, V)``.
    overwrite_logits : bool
        Compute the gradient in the ``logits`` array itself and return it, instead of in a new
        array of the same size. For callers that no longer need the logits:
        :func:`bptt.loss_and_grads` uses it to avoid a ``(T, B, V)`` temporary.

    Returns
    -------
    loss : float
        ``-sum log p[target] / B``: summed over leading axes (time), averaged over the batch.
    dlogits : ndarray, shape (..., B, V)
        ``(softmax(logits) - onehot(targets)) / B``.

    Explained in Chapter 2 (the gradient) and Chapter 4 (stability).
    """
    logits = _logits("logits", logits)
    if logits.ndim < 2:
        raise ValueError(
            f"logits must have shape (..., B, V), got shape {logits.shape}; for a single example "
            "pass logits[None] and targets[None]"
        )
    targets = _checks.id_array("targets", targets, upper=logits.shape[-1], ndim=logits.ndim - 1)
    if targets.shape != logits.shape[:-1]:
        raise ValueError(
            f"targets must have shape {logits.shape[:-1]} to match logits {logits.shape}, "
            f"got {targets.shape}; give one class id per row of logits"
        )
    batch = logits.shape[-2]
    where = targets[..., None]
    work = logits if overwrite_logits else logits.copy()
    work -= work.max(axis=-1, keepdims=True)  # log-sum-exp: exp of the shifted scores is <= 1
    picked = np.take_along_axis(work, where, axis=-1)  # shifted score of each target
    np.exp(work, out=work)
    sums = work.sum(axis=-1, keepdims=True)
    loss = -(float(picked.sum()) - float(np.log(sums).sum())) / batch
    work /= sums  # probabilities p
    np.put_along_axis(work, where, np.take_along_axis(work, where, axis=-1) - 1.0, axis=-1)
    work /= batch
    return loss, work


def squared_error(outputs: np.ndarray, targets: np.ndarray) -> tuple[float, np.ndarray]:
    """Half squared error ``sum (y - target)**2 / 2 / B`` and its gradient ``(y - target) / B``.

    Explained in Chapter 3, whose worked example uses it at every step.

    Parameters
    ----------
    outputs, targets : ndarray, shape (..., B, V)
        Predictions and real-valued targets of the same shape.
    """
    outputs = _checks.float_array("outputs", outputs)
    targets = _checks.float_array("targets", targets)
    if outputs.ndim < 2:
        raise ValueError(
            f"outputs must have shape (..., B, V), got shape {outputs.shape}; for a single "
            "example pass outputs[None] and targets[None]"
        )
    if targets.shape != outputs.shape:
        raise ValueError(
            f"targets must have the outputs' shape {outputs.shape}, got {targets.shape}; give "
            "one real-valued target per output"
        )
    batch = outputs.shape[-2]
    with np.errstate(over="ignore"):
        diff = outputs - targets
        loss = 0.5 * float(np.sum(diff * diff)) / batch
    _checks.finite_scalar("squared error", loss)  # finite inputs can still overflow the square
    return loss, diff / batch
