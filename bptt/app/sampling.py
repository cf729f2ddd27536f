"""Sampling text from a character model (Chapter 4)."""

from __future__ import annotations

import numpy as np

from bptt import _checks
from bptt.app.data import Vocabulary
from bptt.cells import TANH, Cell, Params, hidden, state_size
from bptt.params import as_generator, check_params
from bptt.readout import readout_forward


def sample(
    params: Params,
    vocab: Vocabulary,
    *,
    length: int,
    rng: np.random.Generator | int,
    prime: str = "",
    temperature: float = 1.0,
    h0: np.ndarray | None = None,
    cell: Cell = TANH,
) -> str:
    """Generate ``length`` characters, one at a time, each drawn from the model's softmax.

    Explained in Chapter 4.

    Parameters
    ----------
    params : dict
        A trained character model (D = V = ``vocab.size``).
    vocab : Vocabulary
        Its vocabulary.
    length : int
        Number of characters to generate (the prime is not counted or returned).
    rng : numpy.random.Generator or int
        Source of the draws.
    prime : str
        Text fed through the model first, to set the state (and, if no ``h0`` is given, the
        first prediction); empty means start from a zero state and a uniformly drawn character.
    temperature : float
        Divides the logits: below 1 sharper and more repetitive, above 1 more random. Any finite
        value > 0 works: as it goes to 0 the draw becomes the most likely character (greedy),
        computed without overflow even for ``1e-310``.
    h0 : ndarray, shape (1, S), optional
        Starting state: ``(1, H)``, or ``[h | c]`` ``(1, 2H)`` for the LSTM.
    cell : Cell
        The model's cell.
    """
    D, H, V = check_params(params, cell)
    if vocab.size != D or vocab.size != V:
        raise ValueError(
            f"params have input size {D} and output size {V}, but the vocabulary has {vocab.size}"
        )
    length = _checks.positive_int("length", length, minimum=0)
    temperature = _checks.positive_float("temperature", temperature)
    gen = as_generator(rng)
    dtype = params["W_hy"].dtype
    S = state_size(cell, H)
    if h0 is None:
        h = np.zeros((1, S), dtype=dtype)
    else:
        h = _checks.float_array("h0", h0, shape=(1, S))
        _checks.same_dtype("h0", h, dtype)
    eye = np.eye(V, dtype=dtype)
    primed = vocab.encode(prime)
    for i in primed[:-1]:
        h, _ = cell.step(params, h, eye[i : i + 1])
    current = int(primed[-1]) if primed.size else int(gen.integers(V))
    out = []
    for _ in range(length):
        h, _ = cell.step(params, h, eye[current : current + 1])
        p = _probabilities(readout_forward(params, hidden(cell, h))[0], temperature)
        current = int(gen.choice(V, p=p))
        out.append(current)
    return vocab.decode(out)


def _probabilities(logits: np.ndarray, temperature: float) -> np.ndarray:
    """``softmax(logits / temperature)``, stable for any temperature > 0 (Chapter 4).

    Shifting by the largest logit *before* dividing keeps every exponent <= 0, with exactly 0 for
    the most likely character; a tiny temperature only sends the others to ``-inf`` (probability 0).
    """
    shifted = logits.astype(np.float64) - logits.max()
    with np.errstate(over="ignore"):  # -1 / 1e-310 overflowing to -inf is the intended limit
        exponents = shifted / temperature
    p = np.exp(exponents)
    probabilities: np.ndarray = p / p.sum()
    return probabilities
