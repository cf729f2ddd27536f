"""Long-range synthetic tasks: the adding problem (Chapter 9) and temporal order (Chapter 10).

The adding problem (Hochreiter & Schmidhuber 1997; the form of Le et al. 2015) is built so that the
answer depends on two inputs far back in the sequence, and on nothing else: a model can only beat
the trivial baseline if gradients carry information across the whole gap. The temporal-order task
(Hochreiter & Schmidhuber 1997, Experiment 6a) asks for the order of two symbols far apart among
distractors.
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


TEMPORAL_ORDER_SYMBOLS = ("a", "b", "c", "d", "X", "Y", "B", "E")
"""The alphabet of the temporal-order task: four distractors, the two relevant symbols X and Y,
the trigger B that ends a sequence and E that starts it (the order of the one-hot channels)."""

TEMPORAL_ORDER_CLASSES = ("XX", "XY", "YX", "YY")
"""The four classes of the temporal-order task: the relevant symbols in the order they came."""


def temporal_order(
    seq_length: int,
    batch_size: int,
    rng: np.random.Generator | int,
    *,
    dtype: Any = np.float64,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw a batch of the temporal-order task of Hochreiter & Schmidhuber (1997, Experiment 6a).

    Every sequence starts with ``E``, ends with the trigger ``B`` and is otherwise made of
    distractors drawn uniformly from ``a, b, c, d``, except at two steps ``t1`` and ``t2`` that
    hold ``X`` or ``Y`` (each drawn with probability 1/2). The class, to be output after the
    trigger, is the order of the two relevant symbols: ``XX, XY, YX, YY`` (classes 0 to 3). With
    0-based steps, ``t1`` is drawn uniformly from ``[T // 10, T // 5]`` and ``t2`` from
    ``[T // 2, 6 T // 10]``: for ``T = 100`` the paper's 10 to 20 and 50 to 60. The paper draws
    each sequence's length from 100 to 110; here all sequences of a batch have length ``T``.

    Parameters
    ----------
    seq_length : int
        T >= 10, so that ``E``, ``t1``, ``t2`` and ``B`` are four different steps.
    batch_size : int
        B.
    rng : numpy.random.Generator or int
    dtype : numpy floating dtype

    Returns
    -------
    inputs : ndarray, shape (T, B, 8)
        One-hot symbols, channels in the order of :data:`TEMPORAL_ORDER_SYMBOLS`.
    targets : ndarray of int, shape (B,)
        Class ids in ``[0, 4)``, :data:`TEMPORAL_ORDER_CLASSES`: ``2 * [s1 is Y] + [s2 is Y]``.
        The classes are equally likely, so a model that ignores the inputs has cross-entropy at
        best ``ln 4`` (:func:`temporal_order_baseline_loss`) and accuracy 1/4.

    Explained in Chapter 10.
    """
    T = _checks.positive_int("seq_length", seq_length, minimum=10)
    B = _checks.positive_int("batch_size", batch_size)
    gen = as_generator(rng)
    symbols = gen.integers(0, 4, size=(T, B))  # distractors a, b, c, d
    symbols[0] = TEMPORAL_ORDER_SYMBOLS.index("E")
    symbols[-1] = TEMPORAL_ORDER_SYMBOLS.index("B")
    t1 = gen.integers(T // 10, T // 5 + 1, size=B)
    t2 = gen.integers(T // 2, 6 * T // 10 + 1, size=B)
    is_y = gen.integers(0, 2, size=(2, B))  # 0: X, 1: Y
    columns = np.arange(B)
    x_id = TEMPORAL_ORDER_SYMBOLS.index("X")
    symbols[t1, columns] = x_id + is_y[0]
    symbols[t2, columns] = x_id + is_y[1]
    inputs = np.zeros((T, B, len(TEMPORAL_ORDER_SYMBOLS)), dtype=dtype)
    np.put_along_axis(inputs, symbols[..., None], 1.0, axis=-1)
    targets = 2 * is_y[0] + is_y[1]
    return inputs, targets.astype(np.int64)


def temporal_order_baseline_loss() -> float:
    """``ln 4``: the cross-entropy of the uniform answer, the best a model blind to X/Y can do.

    Explained in Chapter 10.
    """
    return float(np.log(len(TEMPORAL_ORDER_CLASSES)))
