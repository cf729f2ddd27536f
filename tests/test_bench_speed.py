"""The speed benchmark's ablation variants compute the package's gradient (Appendix A2)."""

from __future__ import annotations

import numpy as np
import pytest

import bptt
from benchmarks import bench_speed


@pytest.mark.parametrize("name", list(bench_speed.VARIANTS))
def test_every_ablation_variant_equals_loss_and_grads(name):
    params, x, y = bench_speed.problem(7, 3, 5, "float64")
    loss, reference, _ = bptt.loss_and_grads(params, x, y)
    variant_loss, grads = bench_speed.variant_loss_and_grads(
        params, x, y, **bench_speed.VARIANTS[name]
    )
    assert variant_loss == pytest.approx(loss, rel=1e-12)
    for key in reference:
        np.testing.assert_allclose(grads[key], reference[key], rtol=1e-10, atol=1e-14)


def test_the_last_variant_is_the_package():
    last = list(bench_speed.VARIANTS.values())[-1]
    assert all(last.get(option) for option in ("flat_readout", "in_place", "per_step_deriv"))
    assert last.get("reuse_buffers")
