"""Figures drawn from code, so that the book has no hand-made images (Chapter 1 onwards)."""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from . import _checks

# One colour per shared weight matrix: the same colour at every step is the point of the figure.
WEIGHT_COLOURS = {"W_xh": "#1f77b4", "W_hh": "#d62728", "W_hy": "#2ca02c"}
NODE_STYLE = {
    "x": ("#e8f1fb", "#1f77b4"),
    "h": ("#fdecea", "#d62728"),
    "o": ("#eaf6ea", "#2ca02c"),
    "l": ("#fff4de", "#b8860b"),
    "L": ("#fff4de", "#b8860b"),
}


def _node(ax: Axes, x: float, y: float, text: str, kind: str, width: float = 0.62) -> None:
    face, edge = NODE_STYLE[kind]
    box = FancyBboxPatch(
        (x - width / 2, y - 0.22),
        width,
        0.44,
        boxstyle="round,pad=0.04,rounding_size=0.12",
        facecolor=face,
        edgecolor=edge,
        linewidth=1.6,
        zorder=3,
    )
    ax.add_patch(box)
    ax.text(x, y, text, ha="center", va="center", fontsize=12, zorder=4, color="black")


def _arrow(
    ax: Axes,
    start: tuple[float, float],
    end: tuple[float, float],
    colour: str,
    label: str | None = None,
    label_offset: tuple[float, float] = (0.0, 0.0),
    style: str = "-|>",
    rad: float = 0.0,
    linestyle: str = "-",
    linewidth: float = 1.6,
) -> None:
    arrow = FancyArrowPatch(
        start,
        end,
        arrowstyle=style,
        mutation_scale=13,
        color=colour,
        linewidth=linewidth,
        linestyle=linestyle,
        shrinkA=16,
        shrinkB=16,
        connectionstyle=f"arc3,rad={rad}",
        zorder=2,
    )
    ax.add_patch(arrow)
    if label:
        mx = (start[0] + end[0]) / 2 + label_offset[0]
        my = (start[1] + end[1]) / 2 + label_offset[1]
        ax.text(
            mx,
            my,
            label,
            color=colour,
            fontsize=10,
            ha="center",
            va="center",
            zorder=4,
            bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.5, "alpha": 0.9},
        )


def draw_unrolled_graph(steps: int = 4, ax: Axes | None = None, *, folded: bool = True) -> Any:
    """Draw an RNN unrolled over ``steps`` time steps as a computation graph.

    Inputs ``x_t`` feed hidden states ``h_t`` through ``W_xh``; each ``h_t`` feeds the next through
    ``W_hh`` and an output ``o_t`` through ``W_hy``; each output has a loss ``l_t``, and the losses
    add up to ``L``. Every use of a weight matrix has that matrix's colour: the same three matrices
    are used at every step. With ``folded``, the compact recurrent form is drawn on the left.

    Returns the matplotlib ``Figure``. Used in Chapter 1.
    """
    steps = _checks.positive_int("steps", steps)
    shift = 3.0 if folded else 0.0
    x0 = shift + 0.4
    x_last = x0 + 1.6 * steps
    if ax is None:
        fig, ax = plt.subplots(figsize=(min(1.2 * (x_last + 1.0), 14), 5.2))
    else:
        fig = ax.figure
    y_x, y_h, y_o, y_l, y_L = 0.0, 1.3, 2.6, 3.6, 4.75
    if folded:
        fx = 0.5
        _node(ax, fx, y_x, "$x_t$", "x")
        _node(ax, fx, y_h, "$h_t$", "h")
        _node(ax, fx, y_o, "$o_t$", "o")
        _node(ax, fx, y_l, r"$\ell_t$", "l")
        _arrow(ax, (fx, y_x), (fx, y_h), WEIGHT_COLOURS["W_xh"], "$W_{xh}$", (0.36, 0))
        _arrow(ax, (fx, y_h), (fx, y_o), WEIGHT_COLOURS["W_hy"], "$W_{hy}$", (0.36, 0))
        _arrow(ax, (fx, y_o), (fx, y_l), "#b8860b")
        loop = FancyArrowPatch(
            (fx + 0.31, y_h + 0.1),
            (fx + 0.31, y_h - 0.1),
            connectionstyle="arc3,rad=-2.6",
            arrowstyle="-|>",
            mutation_scale=13,
            color=WEIGHT_COLOURS["W_hh"],
            linewidth=1.6,
        )
        ax.add_patch(loop)
        ax.text(fx + 0.62, y_h - 0.55, "$W_{hh}$", color=WEIGHT_COLOURS["W_hh"], fontsize=10)
        ax.text(
            2.05,
            y_h + 0.05,
            "unroll\n" + r"$\Longrightarrow$",
            ha="center",
            va="center",
            fontsize=11,
        )
    _node(ax, x0, y_h, "$h_0$", "h")
    x_L = (x0 + 1.6 + x_last) / 2
    _node(ax, x_L, y_L, r"$L=\sum_t \ell_t$", "L", width=1.3)
    for t in range(1, steps + 1):
        xt = x0 + 1.6 * t
        _node(ax, xt, y_x, f"$x_{t}$", "x")
        _node(ax, xt, y_h, f"$h_{t}$", "h")
        _node(ax, xt, y_o, f"$o_{t}$", "o")
        _node(ax, xt, y_l, rf"$\ell_{t}$", "l")
        _arrow(ax, (xt, y_x), (xt, y_h), WEIGHT_COLOURS["W_xh"], "$W_{xh}$", (0.36, 0))
        _arrow(ax, (xt - 1.6, y_h), (xt, y_h), WEIGHT_COLOURS["W_hh"], "$W_{hh}$", (0, 0.22))
        _arrow(ax, (xt, y_h), (xt, y_o), WEIGHT_COLOURS["W_hy"], "$W_{hy}$", (0.36, 0))
        _arrow(ax, (xt, y_o), (xt, y_l), "#b8860b")
        _arrow(ax, (xt, y_l), (x_L, y_L), "#b8860b")
    ax.set_xlim(-0.1, x_last + 0.5)
    ax.set_ylim(-0.4, 5.15)
    ax.set_aspect("equal")
    ax.axis("off")
    return fig
