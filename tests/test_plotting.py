"""The figure helpers draw what they claim (Chapter 1)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest

from bptt.experiments import plotting
from bptt.experiments.plotting import draw_unrolled_graph


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


def test_book_figure_is_as_wide_as_the_column_and_legible():
    fig, ax = plotting.book_figure(1, 2, height=3.0, sharey=True)
    ax[0].plot([0, 1], [1, 0], label="a curve")
    ax[0].set_xlabel("step")
    ax[0].legend()
    assert fig.get_size_inches()[0] == pytest.approx(plotting.COLUMN_WIDTH_IN)
    smallest_px, _ = plotting.text_heights_px(fig)[0]
    assert smallest_px >= plotting.MIN_TEXT_PX
    plotting.assert_legible(fig)
    plt.close(fig)


def test_assert_legible_fails_on_a_wide_figure_shrunk_to_the_column():
    plotting.use_book_style()
    fig, axes = plt.subplots(1, 4, figsize=(16, 3))  # shrunk to 672 px: 9.5 pt becomes ~5 px
    axes[0].set_xlabel("step")
    with pytest.raises(AssertionError, match=r"below 9\.0 px"):
        plotting.assert_legible(fig)
    plt.close(fig)


def test_assert_legible_fails_on_a_tiny_font_and_ignores_hidden_axes():
    fig, ax = plotting.book_figure()
    ax.text(0.5, 0.5, "footnote", fontsize=5)
    with pytest.raises(AssertionError, match=r"'footnote' at 6\.9 px"):
        plotting.assert_legible(fig)
    plt.close(fig)
    fig, ax = plotting.book_figure()
    ax.tick_params(labelsize=4)
    ax.axis("off")  # tick labels of an axes turned off are never drawn
    plotting.assert_legible(fig)
    plt.close(fig)


def test_book_figure_refuses_a_width_beyond_the_column():
    with pytest.raises(ValueError, match="width must be in"):
        plotting.book_figure(width=12)
