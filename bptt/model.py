"""A model: one cell and its parameters, kept together so that ``cell=`` is said once.

Every gradient algorithm takes either a :class:`Model` or a plain dict of parameters as its
first argument. A dict is the book's working form (Chapters 1 to 9 pass the tanh cell's dict
around); a :class:`Model` is what a practitioner holds: ``bptt.loss_and_grads(model, x, y)``
runs the model's own cell, a GRU or an LSTM as well as the tanh cell, with nothing repeated.
Introduced in Chapter 4.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from bptt import _checks
from bptt.cells import TANH, Cell, Params, check_cell, state_size
from bptt.params import ModelSizes, check_params, init_params


@dataclass(frozen=True)
class Model:
    """A recurrent cell followed by the linear readout, with its parameters.

    The parameters stay a plain dict (``model.params``) that optimisers update in place; the
    model only records which cell they belong to, and checks once, when it is made, that they
    fit it. Pass a model wherever an algorithm takes ``params``: ``bptt.loss_and_grads(model,
    inputs, targets)``, ``bptt.tbptt(model, ...)``, ``bptt.loss_and_grads_checkpointed(model,
    ...)``; its cell is used and ``cell=`` is not needed.

    Explained in Chapter 4.

    Attributes
    ----------
    cell : Cell
        ``bptt.TANH``, ``bptt.GRU``, ``bptt.LSTM``, a stack (:func:`bptt.stack`) or any cell of
        the protocol :class:`bptt.Cell`.
    params : dict of str to ndarray
        The cell's parameters and the readout's ``W_hy (V, H)``, ``b_y (V,)``.
    """

    cell: Cell
    params: Params

    def __post_init__(self) -> None:
        check_cell(self.cell)
        check_params(self.params, self.cell)

    @classmethod
    def init(
        cls,
        input_size: int,
        hidden_size: int,
        output_size: int,
        rng: np.random.Generator | int,
        *,
        cell: Cell = TANH,
        weight_scale: float = 0.01,
        dtype: Any = np.float64,
    ) -> Model:
        """A new model with parameters drawn as :func:`bptt.init_params` draws them.

        Same arguments as :func:`bptt.init_params`; ``dtype`` may be a numpy type or its name
        (``np.float32`` or ``"float32"``). Explained in Chapter 4.
        """
        params = init_params(
            input_size,
            hidden_size,
            output_size,
            rng,
            weight_scale=weight_scale,
            dtype=dtype,
            cell=cell,
        )
        return cls(cell, params)

    @property
    def sizes(self) -> ModelSizes:
        """Input size D, hidden size H and output size V."""
        V, H = self.params["W_hy"].shape
        D = self.params[self.cell.param_names[0]].shape[1]
        return ModelSizes(D, H, V)

    @property
    def dtype(self) -> np.dtype[Any]:
        """The parameters' floating dtype."""
        return self.params["W_hy"].dtype

    def initial_state(self, batch_size: int = 1) -> np.ndarray:
        """The zero state ``(B, S)`` every algorithm starts from by default.

        ``S = H``, or ``2H`` for the LSTM (``[h | c]``): :func:`bptt.cells.state_size`.
        """
        B = _checks.positive_int("batch_size", batch_size)
        return np.zeros((B, state_size(self.cell, self.sizes.hidden_size)), dtype=self.dtype)

    def copy(self) -> Model:
        """A model with the same cell and copies of the parameters (training one leaves the
        other unchanged)."""
        return Model(self.cell, {name: value.copy() for name, value in self.params.items()})


def model_parts(params: Params | Model, cell: Cell | None) -> tuple[Params, Cell]:
    """The parameters and the cell an algorithm runs: a model's own, or ``params`` and ``cell``.

    ``cell=None`` (every algorithm's default) means the model's cell, or the tanh cell for a plain
    dict of parameters. A ``cell`` given beside a :class:`Model` must be the model's own: two
    cells for one call is a mistake to report, not to resolve silently. Explained in Chapter 4.
    """
    if isinstance(params, Model):
        if cell is not None and cell != params.cell:
            raise ValueError(
                f"cell must be left out (or be the model's own) when params is a Model, got "
                f"cell={_checks.describe(cell)} for a model of the {params.cell.name} cell; "
                "pass bptt.Model(cell, model.params) to run other parameters"
            )
        return params.params, params.cell
    return params, TANH if cell is None else cell
