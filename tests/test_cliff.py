"""The one-unit cliff model: exact gradient and the cliff itself."""

from __future__ import annotations

import numpy as np
import pytest

from bptt.cells.gru import sigmoid
from bptt.experiments.cliff import cliff_forward, cliff_loss_and_grad


def test_forward_recurrence():
    xs = cliff_forward(3.0, -1.0, steps=4, h0=0.2)
    x = 0.2
    for t in range(1, 5):
        x = 3.0 * sigmoid(np.array(x)) - 1.0
        assert xs[t] == pytest.approx(float(x))


def test_gradient_matches_finite_differences():
    w = np.array([1.0, 3.0, 4.5, 5.5, 8.0])
    b = np.array([-0.5, -1.5, -2.5, -2.5, -4.0])
    loss, dw, db = cliff_loss_and_grad(w, b)
    eps = 1e-6
    num_w = (cliff_loss_and_grad(w + eps, b)[0] - cliff_loss_and_grad(w - eps, b)[0]) / (2 * eps)
    num_b = (cliff_loss_and_grad(w, b + eps)[0] - cliff_loss_and_grad(w, b - eps)[0]) / (2 * eps)
    np.testing.assert_allclose(dw, num_w, rtol=1e-6)
    np.testing.assert_allclose(db, num_b, rtol=1e-6)
    assert loss.shape == w.shape


def test_there_is_a_cliff():
    w = np.linspace(4.0, 5.5, 3001)
    loss, dw, _ = cliff_loss_and_grad(w, -2.5)
    jump = np.max(np.abs(np.diff(loss)))
    assert jump > 5.0  # the loss falls by more than 5 between two neighbouring w
    assert np.max(np.abs(dw)) > 100 * np.median(np.abs(dw))


def test_broadcasting():
    loss, dw, db = cliff_loss_and_grad(np.linspace(1, 2, 3)[:, None], np.array([-1.0, 0.0]))
    assert loss.shape == dw.shape == db.shape == (3, 2)


def test_errors():
    with pytest.raises(ValueError, match="steps"):
        cliff_forward(1.0, 0.0, steps=0)
    with pytest.raises(ValueError, match="w"):
        cliff_forward(np.nan, 0.0)


def test_bad_scalars():
    with pytest.raises(TypeError, match="h0"):
        cliff_forward(1.0, 0.0, h0="a")
    with pytest.raises(ValueError, match="target"):
        cliff_loss_and_grad(1.0, 0.0, target=np.inf)
