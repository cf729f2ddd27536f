"""Long-range synthetic tasks: the adding problem (Chapter 9).

The adding problem (Hochreiter & Schmidhuber 1997; the form of Le et al. 2015) is built so that the
answer depends on two inputs far back in the sequence, and on nothing else: a model can only beat
the trivial baseline if gradients carry information across the whole gap.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bptt import _checks
from bptt.params import as_generator

ADDING_BASELINE_MSE = 1.0 / 6.0
"""Mean squared error of always answering 1, the mean of the target: its variance ``2 * 1/12``."""


def adding_problem(
    seq_length: int,
    batch_size: int,
    rng: np.random.Generator | int,
    *,
    dtype: Any = np.float64,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw a batch of the adding problem.

    Each sequence has ``T = seq_length`` steps with two input channels: channel 0 holds numbers
    drawn uniformly from [0, 1]; channel 1 is a marker, 1 at exactly two steps (one drawn uniformly
    from the first half of the sequence, one from the second half) and 0 elsewhere. The target is
    the sum of the two marked numbers, to be output after the last step.

    Parameters
    ----------
    seq_length : int
        T >= 2.
    batch_size : int
        B.
    rng : numpy.random.Generator or int
    dtype : numpy floating dtype

    Returns
    -------
    inputs : ndarray, shape (T, B, 2)
    targets : ndarray, shape (B, 1)
        In [0, 2]; mean 1 and variance 1/6, so predicting 1 has MSE
        :data:`ADDING_BASELINE_MSE`.

    Explained in Chapter 9.
    """
    T = _checks.positive_int("seq_length", seq_length, minimum=2)
    B = _checks.positive_int("batch_size", batch_size)
    gen = as_generator(rng)
    values = gen.uniform(0.0, 1.0, size=(T, B))
    half = T // 2
    first = gen.integers(0, half, size=B)
    second = gen.integers(half, T, size=B)
    markers = np.zeros((T, B))
    columns = np.arange(B)
    markers[first, columns] = 1.0
    markers[second, columns] = 1.0
    targets = (values[first, columns] + values[second, columns])[:, None]
    inputs = np.stack([values, markers], axis=-1)
    return inputs.astype(dtype), targets.astype(dtype)


def adding_baseline_loss() -> float:
    """Expected loss ``(o_T - y_T)**2 / 2`` (the package's convention) of the answer ``o_T = 1``.

    The target is a sum of two independent U(0, 1) numbers: mean 1, variance ``2/12``; half of it
    is 1/12. Explained in Chapter 9.
    """
    return ADDING_BASELINE_MSE / 2.0
