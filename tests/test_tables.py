"""Markdown tables for the chapters (bptt/experiments/tables.py)."""

from __future__ import annotations

import pytest

from bptt.experiments.tables import MarkdownTable, markdown_table


def test_markdown_table_text_and_display():
    table = markdown_table(["t", "h_t"], [(1, "0.5370"), (2, 0.25)])
    assert table == "| t | h_t |\n|---:|---:|\n| 1 | 0.5370 |\n| 2 | 0.25 |"
    assert isinstance(table, MarkdownTable) and table._repr_markdown_() == str(table)
    left = markdown_table(["a"], [["x"]], align="left")
    assert left.splitlines()[1] == "|---|"


def test_markdown_table_rejects_bad_input():
    with pytest.raises(ValueError, match="every row must have 2 cells, got 1"):
        markdown_table(["a", "b"], [["x"]])
    with pytest.raises(ValueError, match="align must be 'right' or 'left', got 'centre'"):
        markdown_table(["a"], [], align="centre")
