"""The figure helpers draw what they claim (Chapter 1)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest

from bptt.plotting import draw_unrolled_graph


@pytest.mark.parametrize("steps", [1, 4, 6])
def test_unrolled_graph_has_a_node_per_step(steps):
    fig = draw_unrolled_graph(steps)
    texts = [t.get_text() for t in fig.axes[0].texts]
    for t in range(1, steps + 1):
        for kind in ("x", "h", "o"):
            assert f"${kind}_{t}$" in texts
        assert rf"$\ell_{t}$" in texts
    assert "$h_0$" in texts
    # every step labels each of its three weight uses; the folded cell adds one of each
    for weight in ("$W_{xh}$", "$W_{hh}$", "$W_{hy}$"):
        assert texts.count(weight) == steps + 1
    plt.close(fig)


def test_unrolled_graph_without_folded_view_and_on_given_axes():
    fig, ax = plt.subplots()
    assert draw_unrolled_graph(2, ax, folded=False) is fig
    texts = [t.get_text() for t in ax.texts]
    assert "$x_t$" not in texts and "$x_2$" in texts
    plt.close(fig)


@pytest.mark.parametrize(("steps", "error"), [(0, ValueError), (2.0, TypeError)])
def test_bad_steps(steps, error):
    with pytest.raises(error, match="steps must be an integer >= 1"):
        draw_unrolled_graph(steps)
