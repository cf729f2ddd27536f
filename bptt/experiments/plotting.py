"""Figures drawn from code, so that the book has no hand-made images (Chapter 1 onwards)."""

from __future__ import annotations

from typing import Any

try:
    import matplotlib.pyplot as plt
    from matplotlib.axes import Axes
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
except ImportError as missing:  # the library runs on numpy alone; only the figures need matplotlib
    raise ImportError(
        "bptt.experiments.plotting draws the book's figures and needs matplotlib, which is not "
        'installed; install it with: pip install "bptt[plot]"'
    ) from missing

from bptt import _checks

# The book's one figure style. The theme's text column is 672 px wide at a 1280-px window; a figure
# drawn 6.72 inches wide at 100 dpi is shown at its natural size, so a 9-point label is 12.5 px on
# screen. A wider figure is shrunk to the column and its text with it: hence one width for all.
COLUMN_WIDTH_PX = 672
FIGURE_DPI = 100
COLUMN_WIDTH_IN = COLUMN_WIDTH_PX / FIGURE_DPI
MIN_TEXT_PX = 9.0
"""Smallest text height, in screen pixels at the rendered width, that a book figure may contain."""

BOOK_STYLE: dict[str, Any] = {
    "figure.dpi": FIGURE_DPI,
    "savefig.dpi": FIGURE_DPI,
    "figure.figsize": (COLUMN_WIDTH_IN, 3.8),
    "figure.facecolor": "white",  # opaque, so figures stay readable in the dark theme too
    "savefig.facecolor": "white",
    "font.size": 10.5,
    "axes.titlesize": 11,
    "axes.labelsize": 10.5,
    "xtick.labelsize": 9.5,
    "ytick.labelsize": 9.5,
    "legend.fontsize": 9.5,
    "legend.title_fontsize": 9.5,
    "figure.titlesize": 11,
    "axes.grid": False,
    "lines.linewidth": 1.6,
}
"""Matplotlib settings of every figure in the book (see :func:`use_book_style`)."""


def use_book_style() -> None:
    """Apply :data:`BOOK_STYLE` to matplotlib's settings for the rest of the session.

    Global on purpose: labels, legends and annotations that a chapter adds after creating a figure
    take their sizes from the settings in force when they are created. Explained in Chapter 1.
    """
    plt.style.use(BOOK_STYLE)


def book_figure(
    nrows: int = 1,
    ncols: int = 1,
    *,
    height: float = 3.8,
    width: float = COLUMN_WIDTH_IN,
    **subplots_kw: Any,
) -> tuple[Any, Any]:
    """Create a figure in the book's style, as wide as the text column.

    Parameters
    ----------
    nrows, ncols : int
        The grid of axes, as for :func:`matplotlib.pyplot.subplots`.
    height : float
        Height in inches (at 100 dpi, 100 px per inch).
    width : float
        Width in inches; at most :data:`COLUMN_WIDTH_IN`, so that the page never shrinks the figure.
    **subplots_kw
        Passed on to :func:`matplotlib.pyplot.subplots` (``sharey=True``, ``gridspec_kw``, ...).

    Returns
    -------
    (Figure, Axes or array of Axes)
        What :func:`matplotlib.pyplot.subplots` returns. Check the result with
        :func:`assert_legible` once it is drawn. Explained in Chapter 1.
    """
    nrows = _checks.positive_int("nrows", nrows)
    ncols = _checks.positive_int("ncols", ncols)
    if not 0 < height <= 12:
        raise ValueError(f"height must be in (0, 12] inches, got {height!r}")
    if not 0 < width <= COLUMN_WIDTH_IN:
        raise ValueError(
            f"width must be in (0, {COLUMN_WIDTH_IN}] inches (the text column), got {width!r}"
        )
    use_book_style()
    subplots_kw.setdefault("layout", "constrained")
    return plt.subplots(nrows, ncols, figsize=(width, height), **subplots_kw)


def text_heights_px(fig: Any, column_px: int = COLUMN_WIDTH_PX) -> list[tuple[float, str]]:
    """Height on screen, in pixels, of every visible text of ``fig`` as the book shows it.

    The notebook saves a figure cropped to its drawn content (``bbox_inches="tight"``) at
    ``fig.dpi``; the page shows that image at its natural size, or shrunk to ``column_px`` when
    it is wider. A ``s``-point font is then ``s / 72 * dpi * shrink`` pixels high. Explained in
    Chapter 1.

    Returns
    -------
    list of (float, str)
        ``(pixels, text)`` pairs, smallest first.
    """
    from matplotlib.text import Text

    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    natural_px = fig.get_tightbbox(renderer).width * fig.dpi
    shrink = min(1.0, column_px / natural_px)
    hidden: set[int] = set()  # the ids of the tick labels of an axes turned off are never drawn
    for ax in fig.axes:
        if not ax.axison:
            hidden.update(map(id, ax.get_xticklabels() + ax.get_yticklabels()))
            hidden.update((id(ax.xaxis.label), id(ax.yaxis.label)))
    sizes = [
        (text.get_fontsize() / 72 * fig.dpi * shrink, text.get_text())
        for text in fig.findobj(Text)
        if text.get_visible() and text.get_text().strip() and id(text) not in hidden
    ]
    return sorted(sizes)


def assert_legible(fig: Any, min_px: float = MIN_TEXT_PX, column_px: int = COLUMN_WIDTH_PX) -> None:
    """Fail when any text of ``fig`` would be smaller than ``min_px`` pixels in the book.

    Every figure cell of the book calls this after drawing, so a figure that is too wide or has too
    small a font fails the build rather than reaching a reader unreadable. Explained in Chapter 1.

    Raises
    ------
    AssertionError
        Naming the smallest texts and their size in pixels.
    """
    too_small = [(px, text) for px, text in text_heights_px(fig, column_px) if px < min_px]
    if too_small:
        shown = ", ".join(f"{text!r} at {px:.1f} px" for px, text in too_small[:5])
        raise AssertionError(
            f"{len(too_small)} text(s) of the figure would be below {min_px} px in the "
            f"{column_px}-px column: {shown}; draw it with book_figure() or enlarge the font"
        )


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

    Without ``ax`` the figure is drawn with :func:`book_figure`, at most :data:`COLUMN_WIDTH_IN`
    wide, so that its labels keep their size on the page (check with :func:`assert_legible`).

    Returns the matplotlib ``Figure``. Used in Chapter 1.
    """
    steps = _checks.positive_int("steps", steps)
    shift = 3.0 if folded else 0.0
    x0 = shift + 0.4
    x_last = x0 + 1.6 * steps
    if ax is None:
        width_units, height_units = x_last + 0.6, 5.55  # the axes limits set below
        # inches per unit of the drawing; a margin for the padding of the saved image
        scale = min(0.65, (COLUMN_WIDTH_IN - 0.2) / width_units)
        fig, ax = book_figure(width=scale * width_units, height=scale * height_units)
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
