"""The speed benchmark computes what it claims to time (Appendix A2). Nothing here is timed."""

from __future__ import annotations

import numpy as np
import pytest

import bptt
from benchmarks import bench_speed


@pytest.mark.parametrize("name", list(bench_speed.VARIANTS))
@pytest.mark.parametrize("B", [1, 3])
def test_every_ablation_variant_equals_loss_and_grads(name, B):
    params, x, y = bench_speed.problem(7, B, 5, "float64")
    loss, reference, _ = bptt.loss_and_grads(params, x, y)
    variant_loss, grads = bench_speed.variant_loss_and_grads(
        params, x, y, **bench_speed.VARIANTS[name]
    )
    assert variant_loss == pytest.approx(loss, rel=1e-12)
    for key in reference:
        np.testing.assert_allclose(grads[key], reference[key], rtol=1e-10, atol=1e-14)


def test_the_last_variant_is_the_package():
    last = list(bench_speed.VARIANTS.values())[-1]
    options = ("flat_readout", "in_place", "per_step_deriv", "reuse_buffers", "low_overhead")
    assert all(last.get(option) for option in options)


@pytest.mark.parametrize("B", [1, 3])
def test_the_timed_pass_is_the_package_bit_for_bit(B):
    params, x, y = bench_speed.problem(6, B, 4, "float64", D=3, V=5)
    loss, grads, _ = bptt.loss_and_grads(params, x, y)
    timed_loss, timed_grads, marks = bench_speed._timed_pass(params, x, y, lambda: 0)
    assert timed_loss == loss and len(marks) == len(bench_speed.PHASES) + 1
    for key in grads:
        np.testing.assert_array_equal(timed_grads[key], grads[key])


def test_pass_products_count_the_flops():
    for T, B, D, H, V in [(25, 1, 65, 100, 65), (3, 4, 5, 6, 7)]:
        total = sum(2 * c * m * k * n for c, m, k, n in bench_speed.pass_products(T, B, D, H, V))
        assert total == bench_speed.flops(T, B, D, H, V)


def test_check_peer_accepts_equal_results_and_refuses_others():
    params, x, y = bench_speed.problem(5, 2, 4, "float64")
    loss, grads, _ = bptt.loss_and_grads(params, x, y)
    assert bench_speed.check_peer("same", (loss, grads), (loss, grads), "float64") == 0
    off = {**grads, "W_hh": grads["W_hh"] * (1 + 1e-8)}
    with pytest.raises(AssertionError, match="does not compute"):
        bench_speed.check_peer("off", (loss, off), (loss, grads), "float64")
    with pytest.raises(AssertionError, match="does not compute"):
        bench_speed.check_peer("off", (loss * (1 + 1e-8), grads), (loss, grads), "float64")


def test_bench_one_and_its_tables_on_a_tiny_configuration():
    row = bench_speed.bench_one(
        4, 2, 3, "float64", stepwise=True, torch=False, D=3, V=4, floor=True
    )
    assert {"vectorised", "stepwise", "matmul_floor", "floor_fraction", "gflops"} <= set(row)
    row["peak_fraction"] = 0.5
    result = {"rows": [row], "peak_gflops": {"float64": 1.0}, "threads": 1, "numpy": "x"}
    result.update(torch=None, jax=None, clock="cpu")
    assert "| 4, 2, 3, 3, 4 f64 |" in bench_speed.format_table(result)
    assert "JAX not installed" in bench_speed.describe(result)
    assert bench_speed.summary(result) == {}


def test_step_breakdown_runs_on_a_tiny_configuration():
    result = bench_speed.step_breakdown(5, 1, 3, 4, 3, "float64", rounds=4, jax=False)
    assert list(result["phases_us"]) == list(bench_speed.PHASES)
    assert len(result["per_step_us"]) == 9 and result["pass_us"] > 0
    assert "| forward loop |" in bench_speed.format_breakdown(result)


def test_configurations_cover_the_grid_and_the_extra_points():
    points = bench_speed.configurations(bench_speed.FULL_GRID, bench_speed.EXTRA_CONFIGS)
    assert len(points) == 3 * 3 * 4 * 2 + 2 * 2
    assert (25, 1, 65, 100, 65, "float64") in points
    assert (200, 32, 256, 512, 256, "float32") in points


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("B", [1, 3])
def test_jax_computes_what_bptt_computes(dtype, B):
    pytest.importorskip("jax")
    params, x, y = bench_speed.problem(6, B, 5, dtype, D=4, V=6)
    loss, grads, _ = bptt.loss_and_grads(params, x, y)
    fn = bench_speed.jax_function()
    peer = bench_speed.jax_loss_and_grads(fn, bench_speed.jax_arguments(params, x, y))
    assert all(g.dtype == np.dtype(dtype) for g in peer[1].values())
    worst = bench_speed.check_peer("JAX", peer, (loss, grads), dtype)
    assert worst <= (1e-10 if dtype == "float64" else 1e-3)
    row = bench_speed.bench_one(6, B, 5, dtype, stepwise=False, torch=False, jax=True, D=4, V=6)
    assert row["jax error"] == worst and row["bptt/jax"] > 0


def test_torch_computes_what_bptt_computes():
    pytest.importorskip("torch")
    params, x, y = bench_speed.problem(6, 2, 5, "float64", D=4, V=6)
    loss, grads, _ = bptt.loss_and_grads(params, x, y)
    rnn, linear = bench_speed.torch_model(params)
    peer = bench_speed.torch_loss_and_grads(rnn, linear, x, y)
    assert bench_speed.check_peer("PyTorch", peer, (loss, grads), "float64") <= 1e-10


@pytest.mark.parametrize("cell", bench_speed.GATED_CELLS)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_torch_gated_cells_compute_what_bptt_computes(cell, dtype):
    pytest.importorskip("torch")
    c, params, x, y = bench_speed.gated_problem(cell, 6, 3, 4, 5, 6, dtype)
    loss, grads, _ = bptt.loss_and_grads(params, x, y, cell=c)
    module, linear = bptt.to_torch(params, c)
    peer = bench_speed.torch_gated_loss_and_grads(module, linear, c, x, y)
    assert list(peer[1]) == list(grads)
    worst = bench_speed.check_peer("PyTorch", peer, (loss, grads), dtype)
    assert worst <= (1e-10 if dtype == "float64" else 1e-3)
    off = bench_speed._without_onednn(
        lambda: bench_speed.torch_gated_loss_and_grads(module, linear, c, x, y)
    )
    assert bench_speed.check_peer("PyTorch", off, (loss, grads), dtype) <= worst + 1e-3


def test_bench_gated_one_and_its_tables_on_a_tiny_configuration():
    row = bench_speed.bench_gated_one("lstm", 4, 2, 3, 3, 4, "float64", torch=False)
    assert {"vectorised", "numpy products", "rounds"} <= set(row) and "torch" not in row
    result = {"rows": [row], "threads": 1, "numpy": "x", "torch": None, "clock": "cpu"}
    assert "| lstm f64 | 4, 2, 3, 3, 4 |" in bench_speed.format_gated(result)
    assert "PyTorch not installed" in bench_speed.describe_gated(result)
    assert bench_speed.gated_summary(result) == {}


def test_gated_summary_reads_the_ratios():
    rows = [
        {"cell": "gru", "dtype": "float64", "T": 1, "B": b, "D": 1, "H": 1, "V": 1}
        | {"bptt/torch": r, "bptt/torch quartiles": (r - 0.1, r + 0.1), "torch error": 1e-16}
        for b, r in ((1, 0.5), (2, 1.5), (3, 0.75))
    ]
    s = bench_speed.gated_summary({"rows": rows})["gru float64"]
    assert (s["worst"], s["best"], s["median"], s["slower"], s["count"]) == (1.5, 0.5, 0.75, 1, 3)
    assert s["worst_config"]["B"] == 2


def test_the_gated_configurations_hold_their_documented_points():
    assert (25, 1, 65, 100, 65) in bench_speed.GATED_CONFIGS
    assert any(B == 1 for _, B, *_ in bench_speed.GATED_CONFIGS)
    assert all(B * H >= 32 * 256 for _, B, _, H, _ in bench_speed.GATED_CONFIGS if B > 1)
