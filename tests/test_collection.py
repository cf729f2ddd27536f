"""The pytest hook that executes the Markdown chapters (conftest.py)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import _is_chapter

ROOT = Path(__file__).resolve().parent.parent
FRONT_MATTER = textwrap.dedent(
    """\
    ---
    jupytext:
      text_representation:
        extension: .md
        format_name: myst
    kernelspec:
      display_name: Python 3
      language: python
      name: python3
    ---
    """
)


def test_only_markdown_with_a_kernelspec_is_a_chapter(tmp_path):
    chapter = tmp_path / "c.md"
    chapter.write_text(FRONT_MATTER + "# A\n")
    plain = tmp_path / "p.md"
    plain.write_text("# Just prose\n\nkernelspec: in the body does not count\n")
    other = tmp_path / "x.txt"
    other.write_text(FRONT_MATTER)
    assert _is_chapter(chapter)
    assert not _is_chapter(plain)
    assert not _is_chapter(other)


def test_every_toc_chapter_is_collected():
    toc = (ROOT / "_toc.yml").read_text()
    for line in toc.splitlines():
        if "file: book/" in line:
            name = line.split("file:")[1].strip()
            path = ROOT / f"{name}.md"
            if name != "book/references":
                assert _is_chapter(path), f"{path} is not collected as a notebook chapter"


@pytest.mark.skipif(
    not (ROOT / ".venv").exists() and "nbval" not in sys.modules, reason="nbval not installed"
)
def test_a_failing_chapter_cell_fails_with_the_chapter_name(tmp_path):
    """The promise of `make test`: a false claim in a chapter fails the run and names the file."""
    chapter = tmp_path / "broken-chapter.md"
    chapter.write_text(
        FRONT_MATTER
        + "# Broken\n\n```{code-cell} ipython3\nx = 1\n```\n\n"
        + "```{code-cell} ipython3\nassert x == 2, 'the claim is false'\n```\n"
    )
    (tmp_path / "conftest.py").write_text((ROOT / "conftest.py").read_text())
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--nbval-lax",
            "--nbval-current-env",
            str(chapter),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "broken-chapter.md::Cell 1" in result.stdout
    assert "the claim is false" in result.stdout
    assert "1 failed, 1 passed" in result.stdout
