"""Recurrent cells: one time step and its exact local derivatives, on one protocol.

Every algorithm of :mod:`bptt.algorithms` is written once against :class:`Cell`
(:mod:`bptt.cells.base`), so it runs unchanged on the tanh cell (:mod:`bptt.cells.tanh`, the
book's main cell), the GRU (:mod:`bptt.cells.gru`) and the LSTM (:mod:`bptt.cells.lstm`, whose
state is the pair ``[h | c]``), the last two with ``torch.nn.GRU``'s and ``torch.nn.LSTM``'s
equations. :func:`bptt.cells.stack.stack` makes L layers of any of them one cell
(:class:`~bptt.cells.stack.StackedCell`, Chapter 9). (The function is not re-exported here,
so that ``bptt.cells.stack`` stays the module.) Cells import nothing of ``bptt`` but the argument
checks. Explained in Chapter 1 (the step) and Chapter 2 (its derivatives).
"""

from bptt.cells.base import Cell, Params, check_cell, hidden, hidden_backward, state_size
from bptt.cells.gru import GRU, GRUCell
from bptt.cells.lstm import LSTM, LSTMCell
from bptt.cells.stack import StackedCell, depth_time_gradient_norms
from bptt.cells.tanh import TANH, TanhCell

__all__ = [
    "GRU",
    "LSTM",
    "TANH",
    "Cell",
    "GRUCell",
    "LSTMCell",
    "Params",
    "StackedCell",
    "TanhCell",
    "check_cell",
    "depth_time_gradient_norms",
    "hidden",
    "hidden_backward",
    "state_size",
]
