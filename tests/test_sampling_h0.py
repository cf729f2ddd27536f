"""sample() checks its starting state like every other entry point (Chapter 4)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import bptt


def test_sample_rejects_h0_of_another_dtype_or_shape():
    vocab = bptt.Vocabulary.from_text("abcab")
    params = bptt.init_params(3, 4, 3, rng=0)
    with pytest.raises(TypeError, match="h0 must have the parameters' dtype float64, got float32"):
        bptt.sample(params, vocab, length=3, rng=0, h0=np.zeros((1, 4), dtype=np.float32))
    with pytest.raises(ValueError, match=r"h0 must have shape \(1, 4\)"):
        bptt.sample(params, vocab, length=3, rng=0, h0=np.zeros((2, 4)))
    text = bptt.sample(params, vocab, length=5, rng=0, h0=np.full((1, 4), 0.1))
    assert len(text) == 5 and set(text) <= set("abc")


def test_a_tiny_temperature_is_greedy_and_warns_of_nothing():
    """Temperatures down to the smallest floats are computed without overflow: greedy sampling."""
    vocab = bptt.Vocabulary.from_text("abcdab")
    params = bptt.init_params(4, 5, 4, rng=1, weight_scale=1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning (overflow, invalid value) either
        tiny = bptt.sample(params, vocab, length=20, rng=0, prime="a", temperature=1e-310)
        other = bptt.sample(params, vocab, length=20, rng=5, prime="a", temperature=1e-310)
        hot = bptt.sample(params, vocab, length=20, rng=0, prime="a", temperature=1e300)
    assert tiny == other  # nothing random is left
    h = np.zeros((1, 5))
    current, greedy = vocab.encode("a")[0], []
    for _ in range(20):
        h, _ = bptt.TANH.step(params, h, np.eye(4)[current : current + 1])
        current = int(np.argmax(bptt.readout_forward(params, h)[0]))
        greedy.append(current)
    assert tiny == vocab.decode(greedy)
    assert len(hot) == 20 and set(hot) <= set("abcd")  # a huge temperature: uniform, still fine
