"""Markdown tables of computed values, for notebooks and reports (used in Chapters 3, 5 and 8).

:func:`markdown_table` returns a string that Jupyter displays as a rendered table (it has a
``_repr_markdown_`` method), so a chapter shows numbers it has just computed without typing any of
them, and without the package depending on IPython.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any


class MarkdownTable(str):
    """A Markdown table; notebooks render it rather than print it. Explained in Chapter 3."""

    def _repr_markdown_(self) -> str:
        return str(self)


def markdown_table(
    header: Sequence[Any], rows: Iterable[Sequence[Any]], *, align: str = "right"
) -> MarkdownTable:
    """A Markdown table with the given ``header`` and ``rows`` (cells converted with ``str``).

    ``align`` is ``"right"`` (for columns of numbers) or ``"left"``. Explained in Chapter 3.
    """
    rules = {"right": "---:", "left": "---"}
    if align not in rules:
        raise ValueError(f"align must be 'right' or 'left', got {align!r}")
    header = [str(c) for c in header]
    lines = ["| " + " | ".join(header) + " |", "|" + f"{rules[align]}|" * len(header)]
    for row in rows:
        cells = [str(c) for c in row]
        if len(cells) != len(header):
            raise ValueError(f"every row must have {len(header)} cells, got {len(cells)}: {cells}")
        lines.append("| " + " | ".join(cells) + " |")
    return MarkdownTable("\n".join(lines))
