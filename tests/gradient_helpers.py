"""Problems and a finite-difference gradient shared by the gradient tests of rnn.py and stepwise.py.

The numerical gradient is written here, not taken from the package, so that the package's
gradients are checked against code that shares nothing with them.
"""

from __future__ import annotations

import numpy as np

import bptt

# (T, B, D, H, V): the edge cases T = 1, B = 1, H = 1 (and D = 1) are included.
SHAPES = [
    (1, 1, 3, 1, 3),
    (1, 3, 4, 2, 4),
    (5, 1, 2, 1, 2),
    (4, 2, 3, 5, 6),
    (7, 3, 4, 3, 4),
    (6, 3, 4, 3, 2),
]


def make_problem(T, B, D, H, V, *, seed=0, ids=True, squared=False, scale=0.5, with_h0=True):
    """Parameters at a generic point (weights of order 1), inputs, targets and an initial state.

    Targets are class ids, or real vectors ``(T, B, V)`` for the squared error with ``squared``.
    """
    rng = np.random.default_rng(seed)
    params = bptt.init_params(D, H, V, rng=rng, weight_scale=scale)
    params["b_h"] = rng.standard_normal(H) * 0.1
    params["b_y"] = rng.standard_normal(V) * 0.1
    inputs = rng.integers(0, D, size=(T, B)) if ids else rng.standard_normal((T, B, D))
    targets = rng.standard_normal((T, B, V)) if squared else rng.integers(0, V, size=(T, B))
    h0 = np.tanh(rng.standard_normal((B, H))) if with_h0 else None
    return params, inputs, targets, h0


def numerical_gradient(f, x, eps=1e-6):
    """Centred differences of the scalar ``f(x)`` for every entry of the array ``x`` (in place)."""
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + eps
        plus = f(x)
        x[i] = old - eps
        minus = f(x)
        x[i] = old
        g[i] = (plus - minus) / (2 * eps)
    return g


def numerical_grads(loss, params, eps=1e-6):
    """Centred differences of ``loss(params)`` for every entry of every parameter."""
    return {name: numerical_gradient(lambda _: loss(params), p, eps) for name, p in params.items()}


def rel(a, b):
    """The book's relative error ``max|a - b| / max(1e-8, max(|a| + |b|))``."""
    return np.max(np.abs(a - b)) / max(1e-8, np.max(np.abs(a) + np.abs(b)))


def one_by_one(run, inputs, targets, h0, lengths):
    """The mean over b of ``run`` on sequence b alone (B = 1, its own ``lengths[b]`` steps):
    what a padded, masked batch must equal."""
    results = [
        run(inputs[:n, b : b + 1], targets[:n, b : b + 1], h0[b : b + 1])
        for b, n in enumerate(lengths)
    ]
    loss = np.mean([r[0] for r in results])
    grads = {name: np.mean([r[1][name] for r in results], axis=0) for name in results[0][1]}
    return loss, grads, np.concatenate([r[2] for r in results])


def z_scores(draws, exact):
    """z of the mean of the draws against the exact value, for every entry that varies."""
    mean = draws.mean(axis=0)
    stderr = draws.std(axis=0, ddof=1) / np.sqrt(draws.shape[0])
    varies = stderr > 1e-12
    np.testing.assert_allclose(mean[~varies], exact[~varies], atol=1e-10)  # e.g. zero entries
    return (mean[varies] - exact[varies]) / stderr[varies]
