"""Checks of what a reader sees on a page of the built book, run in a real browser.

Each check takes a Playwright page that :func:`open_page` has prepared (math typeset, every hidden
solution and dropdown opened, every image loaded) and returns the problems it finds as short
strings. :func:`assert_reads_well` runs them all and fails naming the page. tests/test_browser.py
runs them on every page of the book, and on a scratch book with one broken page per check, which
shows that each check can fail.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from bptt.experiments.plotting import BOOK_STYLE, FIGURE_DPI, MIN_TEXT_PX

VIEWPORT = {"width": 1280, "height": 900}
"""The window of the issue's reader: text boxes about 690 px wide, figures at most 672 px."""

ARTICLE = "document.querySelector('article.bd-article') || document.querySelector('main')"

TOLERANCE_PX = 1.0
"""Sub-pixel rounding of layout widths."""

# Smallest font of the book's figure style, in pixels of the saved image (points / 72 * dpi).
# A figure shown shrunk by s has that text at s times this size on screen.
MIN_FONT_PX_NATURAL = (
    min(v for k, v in BOOK_STYLE.items() if k.endswith("size") and isinstance(v, int | float))
    / 72
    * FIGURE_DPI
)
MIN_SHRINK = MIN_TEXT_PX / MIN_FONT_PX_NATURAL
"""Smallest rendered / natural width of a figure that keeps its smallest text >= MIN_TEXT_PX."""

# TeX that reached the page as text: a dollar sign, a control word, an escaped delimiter, or a
# braced sub- or superscript. Searched outside math, code and cell outputs only.
TEX_MARKERS = re.compile(r"\$|\\[A-Za-z]{2,}|\\[()\[\]]|[_^]\{")
_SNIPPET = 50  # characters of context reported around a finding

MAKING_OF = (
    "seed text",  # "the seed texts of this book say ..."
    "seed book",
    "the seeds of this book",
    "this book started from",  # "... one of the texts this book started from ..."
    "the book started from",
    "how this book was made",
    "how the book was made",
)
"""Phrases about how the book was made; a reader needs published sources, not its history."""


def open_page(tab: Any, url: str) -> None:
    """Load ``url`` and bring it to the state a reader sees after opening everything.

    Waits for MathJax, opens every collapsed solution (sphinx-togglebutton) and ``<details>``
    dropdown, so that what is hidden is measured too, and waits until every image has loaded.
    """
    response = tab.goto(url, wait_until="load")
    assert response is not None and response.ok, f"{url}: HTTP {response and response.status}"
    if tab.evaluate("document.querySelectorAll('.math').length") > 0:
        tab.wait_for_function(
            "() => window.MathJax && MathJax.startup && MathJax.startup.promise", timeout=20000
        )
        tab.evaluate("() => MathJax.startup.promise")
    tab.evaluate(
        """() => {
        document.querySelectorAll('.toggle-hidden')
            .forEach(e => e.classList.remove('toggle-hidden'));
        document.querySelectorAll('details').forEach(d => { d.open = true; });
        document.querySelectorAll('img').forEach(i => { i.loading = 'eager'; });
        window.scrollTo(0, document.body.scrollHeight);
        }"""
    )
    tab.wait_for_function("() => Array.from(document.images).every(i => i.complete)", timeout=20000)


def wide_equations(tab: Any) -> list[str]:
    """Display equations whose typeset width exceeds their box: the reader must scroll or loses
    the end of the line. Reports the TeX source of each."""
    found = tab.evaluate(
        f"""(tol) => {{
        if (!(window.MathJax && MathJax.startup && MathJax.startup.document)) return [];
        const article = {ARTICLE};
        return MathJax.startup.document.getMathItemsWithin(article)
            .filter(item => item.display && item.typesetRoot)
            .map(item => {{
                const box = item.typesetRoot;
                const math = box.querySelector('mjx-math') || box;
                const width = Math.max(math.getBoundingClientRect().width, box.scrollWidth);
                return [item.math, width, box.clientWidth];
            }})
            .filter(([tex, width, room]) => width > room + tol);
        }}""",
        TOLERANCE_PX,
    )
    return [
        f"{width:.0f} px wide in {room} px: {' '.join(tex.split())}" for tex, width, room in found
    ]


def raw_tex(tab: Any) -> list[str]:
    """TeX shown as text, e.g. inline math broken by a line that Markdown read as a list item.

    Reads ``textContent`` (hidden text included, unlike ``innerText``) of the article without the
    typeset math, code and cell outputs, where backslashes and dollars are legitimate.
    """
    text = tab.evaluate(
        f"""() => {{
        const copy = ({ARTICLE}).cloneNode(true);
        copy.querySelectorAll('mjx-container, script, style, pre, code, .cell_output')
            .forEach(e => e.remove());
        return copy.textContent;
        }}"""
    )
    snippets, last = [], -_SNIPPET
    for match in TEX_MARKERS.finditer(text):
        if match.start() >= last + _SNIPPET:  # one snippet per stretch of raw TeX
            snippets.append(f"...{_around(text, match.start())}...")
            last = match.start()
    return snippets


def shrunk_figures(tab: Any) -> list[str]:
    """Figures shown so much smaller than drawn that the book style's smallest font falls below
    the MIN_TEXT_PX rule (e.g. a figure drawn 12 inches wide squeezed into the 672-px column)."""
    # The section title says where the figure is; its file name is a hash.
    images = tab.evaluate(
        f"""() => Array.from(({ARTICLE}).querySelectorAll('img'))
            .filter(i => i.naturalWidth > 0)
            .map((i, n) => [
                `image ${{n + 1}} (in "${{i.closest('section')?.querySelector('h1, h2, h3')
                    ?.textContent.replace('#', '').trim()}}", ${{i.getAttribute('src')}})`,
                i.naturalWidth, i.getBoundingClientRect().width])"""
    )
    return [
        f"{where}: drawn {natural} px wide, shown at {shown:.0f} px (x{shown / natural:.2f} < "
        f"x{MIN_SHRINK:.2f}): {MIN_FONT_PX_NATURAL * shown / natural:.1f}-px text"
        for where, natural, shown in images
        if shown / natural < MIN_SHRINK
    ]


def making_of(tab: Any) -> list[str]:
    """Sentences about how the book was made, anywhere in the article (hidden text included)."""
    text = tab.evaluate(f"() => ({ARTICLE}).textContent")
    lower = text.lower()
    return [
        f"{phrase!r}: ...{_around(text, lower.find(phrase))}..."
        for phrase in MAKING_OF
        if phrase in lower
    ]


def cut_code(tab: Any) -> list[str]:
    """Code or output blocks wider than their box: the end of a line is hidden behind a
    scrollbar. Reports the longest line of each."""
    lines = tab.evaluate(
        f"""(tol) => Array.from(({ARTICLE}).querySelectorAll('pre'))
            .filter(p => p.scrollWidth > p.clientWidth + tol)
            .map(p => p.textContent.split('\\n').reduce((a, b) => b.length > a.length ? b : a))""",
        TOLERANCE_PX,
    )
    return [f"{line.strip()[:100]}" for line in lines]


def wide_tables(tab: Any) -> list[str]:
    """Tables that run past the right edge of the article: the last columns are cut off or hidden
    behind a scrollbar. Reports each table's header row."""
    headers = tab.evaluate(
        f"""(tol) => {{
            const article = {ARTICLE};
            const right = article.getBoundingClientRect().right;
            return Array.from(article.querySelectorAll('table'))
                .filter(t => t.getBoundingClientRect().width > 0)
                .filter(t => t.getBoundingClientRect().right > right + tol
                          || (t.parentElement.scrollWidth > t.parentElement.clientWidth + tol))
                .map(t => (t.rows[0] ? t.rows[0].textContent : t.textContent));
        }}""",
        TOLERANCE_PX,
    )
    return [" ".join(header.split())[:100] for header in headers]


CHECKS: dict[str, Callable[[Any], list[str]]] = {
    "wide equation": wide_equations,
    "raw TeX": raw_tex,
    "shrunk figure": shrunk_figures,
    "making of the book": making_of,
    "cut-off code": cut_code,
    "cut-off table": wide_tables,
}


def findings(tab: Any) -> dict[str, list[str]]:
    """Every check's problems on the opened page, by kind (kinds without problems left out)."""
    return {kind: found for kind, check in CHECKS.items() if (found := check(tab))}


def assert_reads_well(tab: Any, page: str) -> None:
    """Fail, naming ``page``, the kind and a snippet of each problem, when any check finds one."""
    found = findings(tab)
    if found:
        lines = [f"  {kind}: {item}" for kind, items in found.items() for item in items]
        raise AssertionError(f"{page}: a reader sees {len(lines)} problem(s):\n" + "\n".join(lines))


def _around(text: str, i: int, width: int = _SNIPPET) -> str:
    return " ".join(text[max(0, i - width // 2) : i + width].split())
