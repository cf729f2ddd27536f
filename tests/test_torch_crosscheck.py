"""The package's BPTT gradients against PyTorch's autograd, in float64 (Appendix A2).

PyTorch is optional (the ``bench`` extra); without it this module is skipped.
"""

from __future__ import annotations

import numpy as np
import pytest

import bptt

torch = pytest.importorskip(
    "torch", reason="PyTorch is not installed (optional: pip install torch)"
)


def torch_loss_and_grads(params, inputs, targets, h0):
    """Loss and gradients of nn.RNN(tanh) + nn.Linear + cross-entropy with the same weights."""
    H, D = params["W_xh"].shape
    V = params["W_hy"].shape[0]
    rnn = torch.nn.RNN(D, H, nonlinearity="tanh", dtype=torch.float64)
    linear = torch.nn.Linear(H, V, dtype=torch.float64)
    with torch.no_grad():
        rnn.weight_ih_l0.copy_(torch.from_numpy(params["W_xh"]))
        rnn.weight_hh_l0.copy_(torch.from_numpy(params["W_hh"]))
        rnn.bias_ih_l0.copy_(torch.from_numpy(params["b_h"]))
        rnn.bias_hh_l0.zero_()  # nn.RNN has two biases; their sum plays the role of b_h
        linear.weight.copy_(torch.from_numpy(params["W_hy"]))
        linear.bias.copy_(torch.from_numpy(params["b_y"]))
    T, B = targets.shape
    hs, h_last = rnn(torch.from_numpy(inputs), torch.from_numpy(h0)[None])
    logits = linear(hs).reshape(T * B, V)
    y = torch.from_numpy(targets).reshape(-1)
    loss = torch.nn.functional.cross_entropy(logits, y, reduction="sum") / B
    loss.backward()
    grads = {
        "W_xh": rnn.weight_ih_l0.grad,
        "W_hh": rnn.weight_hh_l0.grad,
        "b_h": rnn.bias_ih_l0.grad,
        "W_hy": linear.weight.grad,
        "b_y": linear.bias.grad,
    }
    # Same gradient for both biases (summed in a different order: equal to rounding).
    assert bptt.relative_error(rnn.bias_hh_l0.grad.numpy(), rnn.bias_ih_l0.grad.numpy()) < 1e-14
    numpy_grads = {k: g.detach().numpy() for k, g in grads.items()}
    return float(loss.detach()), numpy_grads, h_last[0].detach().numpy()


@pytest.mark.parametrize(
    ("T", "B", "D", "H", "V"), [(1, 1, 3, 2, 3), (9, 4, 5, 7, 6), (40, 2, 8, 16, 8)]
)
def test_gradients_match_pytorch_in_float64(T, B, D, H, V):
    rng = np.random.default_rng(T)
    params = bptt.init_params(D, H, V, rng=rng, weight_scale=0.6)
    params["b_h"] = rng.standard_normal(H) * 0.1
    params["b_y"] = rng.standard_normal(V) * 0.1
    inputs = rng.standard_normal((T, B, D))
    targets = rng.integers(V, size=(T, B))
    h0 = np.tanh(rng.standard_normal((B, H)))

    loss, grads, h_last = bptt.loss_and_grads(params, inputs, targets, h0)
    t_loss, t_grads, t_h_last = torch_loss_and_grads(params, inputs, targets, h0)
    assert abs(loss - t_loss) <= 1e-12 * abs(t_loss)
    np.testing.assert_allclose(h_last, t_h_last, rtol=0, atol=1e-13)
    for name in params:
        assert bptt.relative_error(grads[name], t_grads[name]) < 1e-12, name

    # The per-step algorithm and TBPTT with k1 = k2 = T give the same gradient.
    _, step_grads, _ = bptt.loss_and_grads_stepwise(params, inputs, targets, h0)
    truncated = bptt.tbptt(params, inputs, targets, T, T, h0=h0)
    for name in params:
        assert bptt.relative_error(step_grads[name], t_grads[name]) < 1e-12, name
        assert bptt.relative_error(truncated.grads[name], t_grads[name]) < 1e-12, name


def test_token_ids_match_one_hot_inputs_in_pytorch():
    T, B, D, H = 12, 3, 6, 5
    rng = np.random.default_rng(1)
    params = bptt.init_params(D, H, D, rng=rng, weight_scale=0.5)
    ids = rng.integers(D, size=(T, B))
    targets = rng.integers(D, size=(T, B))
    h0 = np.zeros((B, H))
    _, grads, _ = bptt.loss_and_grads(params, ids, targets)
    _, t_grads, _ = torch_loss_and_grads(params, np.eye(D)[ids], targets, h0)
    for name in params:
        assert bptt.relative_error(grads[name], t_grads[name]) < 1e-12, name
