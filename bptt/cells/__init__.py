"""Recurrent cells: one time step and its exact local derivatives, on one protocol.

Every algorithm of :mod:`bptt.algorithms` is written once against :class:`Cell`
(:mod:`bptt.cells.base`), so it runs unchanged on the tanh cell (:mod:`bptt.cells.tanh`, the
book's main cell) and the GRU (:mod:`bptt.cells.gru`). Cells import nothing of ``bptt`` but the
argument checks. Explained in Chapter 1 (the step) and Chapter 2 (its derivatives).
"""

from bptt.cells.base import Cell, Params, check_cell
from bptt.cells.gru import GRU, GRUCell
from bptt.cells.tanh import TANH, TanhCell

__all__ = ["GRU", "TANH", "Cell", "GRUCell", "Params", "TanhCell", "check_cell"]
