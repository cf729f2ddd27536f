"""The one result type of the gradient algorithms (Chapter 4).

Full BPTT (vectorised, per step or as plain loops), truncated, randomized and checkpointed BPTT,
RTRL and UORO all return a :class:`BPTTResult` (or a subclass adding the algorithm's extras), so
code written against one algorithm runs against another.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from bptt.cells import Params


@dataclass
class BPTTResult:
    """What every gradient algorithm returns: the loss, the gradients and the final state.

    :func:`bptt.loss_and_grads` and :func:`bptt.loss_and_grads_stepwise` return this class;
    the truncated (:class:`bptt.TBPTTResult`), randomized (:class:`bptt.ARTBPResult`) and
    checkpointed (:class:`bptt.CheckpointedResult`) variants, RTRL and UORO return subclasses
    that add their own extras as attributes (``updates``, ``step_losses``, ``lengths``,
    ``forward_steps``, ``peak_stored`` ...). Every result unpacks as a triple:
    ``loss, grads, h_last = bptt.loss_and_grads(...)`` or ``= bptt.tbptt(...)``.

    Explained in Chapter 4.

    Attributes
    ----------
    loss : float
        The loss, summed over steps and averaged over the batch.
    grads : dict
        The gradient of each parameter, a dict like ``params``.
    h_last : ndarray, shape (B, S)
        The final state, to carry into the next call (``S = H``, or ``2H`` for the LSTM).
    """

    loss: float
    grads: Params
    h_last: np.ndarray

    def __iter__(self) -> Iterator[Any]:
        """``loss, grads, h_last``: a result unpacks as this triple."""
        return iter((self.loss, self.grads, self.h_last))

    def __len__(self) -> int:
        return 3

    def __getitem__(self, index: int | slice) -> Any:
        """``result[0]`` is the loss, ``result[1]`` the gradients, ``result[2]`` the state."""
        return (self.loss, self.grads, self.h_last)[index]
