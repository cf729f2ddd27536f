"""Initialisations of the recurrent matrix ``W_hh`` (Chapter 9).

The size of the Jacobian products ``dh_t/dh_k`` that carry gradients back in time is set, at the
start of training, by ``W_hh``. These functions draw it in the classic ways: small Gaussian, random
orthogonal (Saxe et al. 2014), identity (the IRNN of Le et al. 2015), each optionally rescaled to a
chosen spectral radius. Every function takes ``rng`` (a Generator or a seed), even the identity,
so that they are interchangeable in :func:`init_rnn_params`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bptt import _checks, dynamics
from bptt.cells import Params
from bptt.params import as_generator, init_params

RECURRENT_INITS = ("gaussian", "orthogonal", "identity")
"""Names accepted by :func:`recurrent_matrix` and :func:`init_rnn_params`."""


def _size(hidden_size: Any) -> int:
    return _checks.positive_int("hidden_size", hidden_size)


def gaussian(hidden_size: int, rng: np.random.Generator | int, *, std: float = 0.01) -> np.ndarray:
    """``(H, H)`` matrix of independent ``N(0, std**2)`` entries (the classic small init).

    Its spectral radius is close to ``std * sqrt(H)`` (the circular law), so the default
    ``std = 0.01`` makes every Jacobian small. Explained in Chapter 9.
    """
    H = _size(hidden_size)
    std = _checks.positive_float("std", std)
    return as_generator(rng).standard_normal((H, H)) * std


def orthogonal(
    hidden_size: int, rng: np.random.Generator | int, *, gain: float = 1.0
) -> np.ndarray:
    """``gain`` times a random orthogonal ``(H, H)`` matrix, uniform over the orthogonal group.

    All singular values (and all eigenvalue moduli) equal ``gain``: repeated products neither
    shrink nor grow a vector in any direction. QR of a Gaussian matrix, with the signs of R's
    diagonal fixed so the distribution is uniform. Explained in Chapter 9.
    """
    H = _size(hidden_size)
    gain = _checks.positive_float("gain", gain)
    q, r = np.linalg.qr(as_generator(rng).standard_normal((H, H)))
    return gain * q * np.sign(np.diag(r))


def identity(
    hidden_size: int, rng: np.random.Generator | int | None = None, *, gain: float = 1.0
) -> np.ndarray:
    """``gain`` times the identity (IRNN of Le et al. 2015, meant for ReLU units).

    ``rng`` is accepted and unused so that every initialiser has one signature. Explained in
    Chapter 9.
    """
    H = _size(hidden_size)
    gain = _checks.positive_float("gain", gain)
    if rng is not None:
        as_generator(rng)  # validate it like the others do
    return gain * np.eye(H)


def scale_to_spectral_radius(W: Any, radius: float) -> np.ndarray:
    """Return ``W`` rescaled so that its spectral radius is ``radius`` (a new array)."""
    radius = _checks.positive_float("radius", radius)
    current = dynamics.spectral_radius(W)
    if current == 0:
        raise ValueError("W has spectral radius 0 and cannot be rescaled")
    return np.asarray(W) * (radius / current)


def recurrent_matrix(
    kind: str,
    hidden_size: int,
    rng: np.random.Generator | int,
    *,
    spectral_radius: float | None = None,
    std: float = 0.01,
) -> np.ndarray:
    """Draw ``W_hh`` of the named ``kind`` (see :data:`RECURRENT_INITS`).

    With ``spectral_radius`` given, the matrix is rescaled to it; otherwise ``"gaussian"`` uses
    ``std`` and the others have radius 1. Explained in Chapter 9.
    """
    if kind not in RECURRENT_INITS:
        raise ValueError(f"kind must be one of {RECURRENT_INITS}, got {kind!r}")
    if kind == "gaussian":
        W = gaussian(hidden_size, rng, std=std)
    elif kind == "orthogonal":
        W = orthogonal(hidden_size, rng)
    else:
        W = identity(hidden_size, rng)
    if spectral_radius is not None:
        W = scale_to_spectral_radius(W, spectral_radius)
    return W


def init_rnn_params(
    input_size: int,
    hidden_size: int,
    output_size: int,
    rng: np.random.Generator | int,
    *,
    recurrent: str = "gaussian",
    spectral_radius: float | None = None,
    weight_scale: float = 0.01,
    input_scale: float | None = None,
    dtype: Any = np.float64,
) -> Params:
    """Tanh-RNN parameters as :func:`bptt.init_params` draws them, with ``W_hh`` replaced.

    ``W_hh`` comes from :func:`recurrent_matrix` (``std = weight_scale`` for ``"gaussian"``);
    ``W_xh`` has standard deviation ``input_scale`` (default ``weight_scale``). Explained in
    Chapter 9.
    """
    gen = as_generator(rng)
    params = init_params(
        input_size, hidden_size, output_size, gen, weight_scale=weight_scale, dtype=dtype
    )
    if input_scale is not None:
        input_scale = _checks.positive_float("input_scale", input_scale)
        params["W_xh"] = (gen.standard_normal(params["W_xh"].shape) * input_scale).astype(dtype)
    W = recurrent_matrix(
        recurrent, hidden_size, gen, spectral_radius=spectral_radius, std=weight_scale
    )
    params["W_hh"] = W.astype(dtype)
    return params
