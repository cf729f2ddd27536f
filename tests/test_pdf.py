"""The whole book as one PDF (``make pdf``, lite/pdf.py): complete, typeset, with its figures.

Read with poppler-utils (``pdfinfo``, ``pdftotext``, ``pdffonts``, ``pdfimages``; .ci/run installs
them). The PDF is ``BPTT_PDF`` (default ``_build/pdf/bptt-book.pdf``), compared with the
single-page HTML it was printed from (``_build/singlehtml``). Skipped when it has not been built
and ``BPTT_REQUIRE_HTML`` is unset (``make check`` sets it, after ``make pdf``).
"""

from __future__ import annotations

import html as html_lib
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
BUILD = Path(os.environ.get("BPTT_HTML_DIR", ROOT / "_build" / "html")).resolve().parent
PDF = Path(os.environ.get("BPTT_PDF", BUILD / "pdf" / "bptt-book.pdf")).resolve()
ROOT_PAGE = re.search(
    r"^root:\s*(\S+)\s*$", (ROOT / "_toc.yml").read_text(encoding="utf-8"), flags=re.MULTILINE
)[1]
SINGLE = BUILD / "singlehtml" / f"{ROOT_PAGE}.html"  # the single page is named after the root
RAW_TEX = ("$$", "\\[", "\\(", "\\begin{", "\\frac", "\\mathrm{")


def _require_pdf() -> None:
    if not PDF.is_file() or not SINGLE.is_file():
        message = f"the PDF has not been built ({PDF} or {SINGLE} missing); run `make pdf`"
        if os.environ.get("BPTT_REQUIRE_HTML"):
            pytest.fail(message)
        pytest.skip(message)
    for tool in ("pdfinfo", "pdftotext", "pdffonts", "pdfimages"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is missing: apt-get install poppler-utils (the CI script does)")


def _run(*args: str) -> str:
    return subprocess.run(args, capture_output=True, text=True, check=True).stdout


def _squash(text: str) -> str:
    """Letters and digits only, lower case: immune to line breaks, hyphens and ligatures."""
    text = text.replace("\ufb01", "fi").replace("\ufb02", "fl")
    return re.sub(r"[^0-9a-z]+", "", text.lower())


@pytest.fixture(scope="module")
def text() -> str:
    _require_pdf()
    return _run("pdftotext", "-layout", str(PDF), "-")


def toc_titles() -> list[str]:
    """The title (first ``# `` heading) of every page in _toc.yml."""
    toc = (ROOT / "_toc.yml").read_text(encoding="utf-8")
    pages = re.findall(r"^\s*(?:root|-?\s*file):\s*(\S+)\s*$", toc, flags=re.MULTILINE)
    titles = []
    for page in pages:
        source = (ROOT / f"{page}.md").read_text(encoding="utf-8")
        titles.append(re.search(r"^# (.+)$", source, flags=re.MULTILINE)[1].strip())
    return titles


def test_page_count_is_plausible() -> None:
    _require_pdf()
    pages = int(re.search(r"^Pages:\s+(\d+)", _run("pdfinfo", str(PDF)), re.MULTILINE)[1])
    chapters = len(toc_titles())
    assert 3 * chapters <= pages <= 60 * chapters, f"{pages} pages for {chapters} TOC pages"


def test_every_page_of_the_book_is_in_it(text: str) -> None:
    squashed = _squash(text)
    missing = [t for t in toc_titles() if _squash(re.sub(r"[`*_$\\{}]", " ", t)) not in squashed]
    assert not missing, f"titles not found in the PDF: {missing}"


def test_no_raw_tex_and_the_math_is_typeset(text: str) -> None:
    for raw in RAW_TEX:
        i = text.find(raw)
        assert i < 0, f"raw TeX {raw!r} in the PDF: ...{text[max(0, i - 80) : i + 80]}..."
    # Chromium embeds the page's web fonts (MathJax's, for typeset math) as Type 3 fonts and the
    # system's text fonts (DejaVu) as TrueType: without Type 3 fonts no formula was typeset.
    fonts = _run("pdffonts", str(PDF))
    assert "Type 3" in fonts, f"no web font embedded: the math was not typeset\n{fonts}"


def test_figures_are_embedded() -> None:
    _require_pdf()
    page = SINGLE.read_text(encoding="utf-8")
    figures = set(re.findall(r'<img[^>]+src="([^"]+\.png)"', page))
    assert len(figures) >= 10, f"only {len(figures)} PNG figures in {SINGLE}"
    listed = _run("pdfimages", "-list", str(PDF)).splitlines()[2:]
    images = [row for row in listed if row.split()[2] == "image"]
    assert len(images) >= len(figures), (
        f"{len(images)} images in the PDF, {len(figures)} figures in the book"
    )


def test_references_are_in_it(text: str) -> None:
    page = SINGLE.read_text(encoding="utf-8")
    # sphinxcontrib-bibtex: one entry per cited work, e.g. <div class="citation" ...>...</div>
    entries = re.findall(r'<div class="citation"[^>]*>(.*?)</div>', page, flags=re.DOTALL)
    assert entries, "no bibliography entries in the single-page book"
    squashed = _squash(text)
    missing = []
    for entry in entries:
        words = _squash(html_lib.unescape(re.sub(r"<[^>]+>", " ", entry)))
        if words[:40] not in squashed:
            missing.append(words[:60])
    assert not missing, f"{len(missing)} of {len(entries)} references not in the PDF: {missing[:3]}"
