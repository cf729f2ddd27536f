"""sample() checks its starting state like every other entry point (Chapter 4)."""

from __future__ import annotations

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
