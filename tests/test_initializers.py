"""Initialisers of W_hh: shapes, spectra, seeds and errors."""

from __future__ import annotations

import numpy as np
import pytest

import bptt
from bptt import initializers as init
from bptt.dynamics import largest_singular_value, spectral_radius


def test_gaussian_spectral_radius_follows_circular_law():
    W = init.gaussian(400, 0, std=0.05)
    assert W.shape == (400, 400)
    assert spectral_radius(W) == pytest.approx(0.05 * np.sqrt(400), rel=0.1)


def test_orthogonal_has_unit_singular_values_and_is_seeded():
    W = init.orthogonal(16, 3, gain=0.9)
    np.testing.assert_allclose(W @ W.T, 0.81 * np.eye(16), atol=1e-12)
    np.testing.assert_allclose(np.linalg.svd(W, compute_uv=False), 0.9, rtol=1e-12)
    np.testing.assert_array_equal(W, init.orthogonal(16, np.random.default_rng(3), gain=0.9))
    assert not np.allclose(W, init.orthogonal(16, 4, gain=0.9))


def test_orthogonal_is_not_biased_towards_positive_diagonal():
    diag = np.array([init.orthogonal(2, seed)[0, 0] for seed in range(200)])
    assert 0.3 < np.mean(diag > 0) < 0.7


def test_identity():
    np.testing.assert_array_equal(init.identity(5, 0, gain=2.0), 2 * np.eye(5))
    np.testing.assert_array_equal(init.identity(3), np.eye(3))


@pytest.mark.parametrize("kind", init.RECURRENT_INITS)
@pytest.mark.parametrize("radius", [0.5, 1.0, 1.7])
def test_recurrent_matrix_scaled_to_radius(kind, radius):
    W = init.recurrent_matrix(kind, 12, 0, spectral_radius=radius)
    assert spectral_radius(W) == pytest.approx(radius, rel=1e-10)


def test_scale_to_spectral_radius_keeps_direction():
    W = init.gaussian(8, 1, std=1.0)
    scaled = init.scale_to_spectral_radius(W, 0.5)
    ratio = scaled / W
    np.testing.assert_allclose(ratio, ratio.flat[0])
    assert largest_singular_value(scaled) >= spectral_radius(scaled) - 1e-12


def test_init_rnn_params():
    params = init.init_rnn_params(3, 8, 2, 0, recurrent="orthogonal", spectral_radius=1.1)
    assert bptt.check_params(params) == (3, 8, 2)
    assert spectral_radius(params["W_hh"]) == pytest.approx(1.1)
    again = init.init_rnn_params(3, 8, 2, 0, recurrent="orthogonal", spectral_radius=1.1)
    for name in params:
        np.testing.assert_array_equal(params[name], again[name])
    p32 = init.init_rnn_params(3, 8, 2, 0, dtype=np.float32, input_scale=0.5)
    assert {a.dtype for a in p32.values()} == {np.dtype(np.float32)}


def test_errors():
    with pytest.raises(ValueError, match="kind must be one of"):
        init.recurrent_matrix("xavier", 4, 0)
    with pytest.raises(TypeError, match="rng"):
        init.orthogonal(4, "seed")
    with pytest.raises(ValueError, match="hidden_size"):
        init.gaussian(0, 0)
    with pytest.raises(ValueError, match="radius"):
        init.scale_to_spectral_radius(np.eye(3), -1.0)
    with pytest.raises(ValueError, match="spectral radius 0"):
        init.scale_to_spectral_radius(np.zeros((3, 3)), 1.0)
    with pytest.raises(ValueError, match="square"):
        spectral_radius(np.ones((2, 3)))
