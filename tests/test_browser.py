"""Open every page of the built book in headless Chromium and check what a reader would see.

For each page listed in ``_toc.yml``: MathJax typeset the math (no raw TeX delimiters left in the
visible text, no MathJax error), every image loaded, the console has no error, and no request left
127.0.0.1. Then, at a 1280 x 900 window with every solution opened, the checks of
``browser_checks.py``: no display equation wider than its box, no raw TeX in the text (hidden text
included), no figure shrunk below the 9-px text rule, no sentence about how the book was made, no
code line cut off. A scratch book with one broken page per check shows that each can fail.

The book is read from ``BPTT_HTML_DIR`` (default ``_build/html``). Skipped (with the reason) only
when that HTML has not been built and ``BPTT_REQUIRE_HTML`` is unset; ``make check`` sets it,
after building.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest
from browser_checks import CHECKS, VIEWPORT, assert_reads_well, findings, open_page

ROOT = Path(__file__).resolve().parent.parent
HTML = Path(os.environ.get("BPTT_HTML_DIR", ROOT / "_build" / "html")).resolve()
SCRATCH = Path(__file__).resolve().parent / "fixtures" / "scratch_book"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
LOCAL_HOSTS = {"127.0.0.1"}
LOCAL_SCHEMES = {"data", "blob", "about"}

pytestmark = pytest.mark.browser


def toc_pages() -> list[str]:
    """Every page named in _toc.yml (the root and each chapter's ``file:``), in order."""
    text = (ROOT / "_toc.yml").read_text(encoding="utf-8")
    pages = re.findall(r"^\s*(?:root|-?\s*file):\s*(\S+)\s*$", text, flags=re.MULTILINE)
    assert pages, "no pages found in _toc.yml"
    return pages


def _require_html() -> None:
    if not (HTML / "index.html").is_file():
        message = f"the book has not been built ({HTML / 'index.html'} missing); run `make book`"
        if os.environ.get("BPTT_REQUIRE_HTML"):
            pytest.fail(message)
        pytest.skip(message)
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (the CI script does)")


def _serve(directory: Path) -> Iterator[str]:
    handler = functools.partial(QuietHandler, directory=str(directory))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    _require_html()
    yield from _serve(HTML)


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (the CI script does)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


def test_toc_pages_were_built() -> None:
    _require_html()
    missing = [page for page in toc_pages() if not (HTML / f"{page}.html").is_file()]
    assert not missing, f"pages in _toc.yml without HTML: {missing}"


@pytest.mark.parametrize("page", toc_pages())
def test_page_renders(page: str, server: str, browser) -> None:
    context = browser.new_context()
    tab = context.new_page()
    console_errors: list[str] = []
    outside: list[str] = []
    failed: list[str] = []
    tab.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    tab.on("pageerror", lambda e: console_errors.append(f"uncaught: {e}"))
    tab.on("requestfailed", lambda r: failed.append(f"{r.url} ({r.failure})"))

    def check_request(request) -> None:
        url = urlparse(request.url)
        if url.scheme not in LOCAL_SCHEMES and url.hostname not in LOCAL_HOSTS:
            outside.append(request.url)

    tab.on("request", check_request)
    try:
        response = tab.goto(f"{server}/{page}.html", wait_until="load")
        assert response is not None and response.ok, f"{page}: HTTP {response and response.status}"
        has_math = tab.evaluate("document.querySelectorAll('.math').length") > 0
        if has_math:
            tab.wait_for_function(
                "() => window.MathJax && MathJax.startup && MathJax.startup.promise", timeout=20000
            )
            tab.evaluate("() => MathJax.startup.promise")
            typeset = tab.evaluate("document.querySelectorAll('mjx-container').length")
            math = tab.evaluate("document.querySelectorAll('.math').length")
            assert typeset >= math, f"{page}: {math} math elements but {typeset} typeset"
            errors = tab.evaluate(
                "document.querySelectorAll('mjx-merror, [data-mjx-error]').length"
            )
            assert errors == 0, f"{page}: {errors} MathJax error(s)"
        text = tab.evaluate("document.querySelector('main, article, body').innerText")
        for raw in ("$$", "\\[", "\\(", "\\begin{"):
            assert raw not in text, f"{page}: raw TeX {raw!r} visible: ...{_around(text, raw)}..."
        # A figure that reached the page as its text repr instead of an image (e.g. a kernel
        # without the inline backend) is broken even though no <img> failed.
        for raw in ("<Figure size", "<matplotlib."):
            assert raw not in text, f"{page}: figure shown as text: ...{_around(text, raw)}..."
        # A Markdown table that a cell printed instead of rendering shows its rule line.
        for raw in ("|---", "---:|"):
            assert raw not in text, f"{page}: table shown as text: ...{_around(text, raw)}..."
        # Scroll through the page so that lazily loaded images load, then check every one.
        tab.evaluate("window.scrollTo(0, document.body.scrollHeight)")
        tab.wait_for_load_state("networkidle")
        broken = tab.evaluate(
            "Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0))"
            ".map(i => i.src)"
        )
        assert not broken, f"{page}: images that did not load: {broken}"
    finally:
        context.close()
    assert not outside, f"{page}: requests left 127.0.0.1: {outside}"
    assert not failed, f"{page}: failed requests: {failed}"
    assert not console_errors, f"{page}: console errors: {console_errors}"


def test_chapters_have_typeset_math(server: str, browser) -> None:
    """Guard against a silently empty check: the chapters do contain math, and it is typeset."""
    tab = browser.new_page()
    tab.goto(f"{server}/book/02-deriving.html", wait_until="load")
    tab.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise")
    tab.evaluate("() => MathJax.startup.promise")
    assert tab.evaluate("document.querySelectorAll('mjx-container').length") >= 10
    tab.close()


@pytest.mark.parametrize("page", toc_pages())
def test_page_reads_well(page: str, server: str, browser) -> None:
    """What a reader sees at 1280 x 900 with every solution open (see browser_checks.py)."""
    context = browser.new_context(viewport=VIEWPORT)
    try:
        tab = context.new_page()
        open_page(tab, f"{server}/{page}.html")
        assert_reads_well(tab, page)
    finally:
        context.close()


# The same checks on a scratch book (tests/fixtures/scratch_book): one good page, which must pass,
# and one page per check with exactly that defect, which must fail naming the page. Without this a
# check that can never fail (a wrong selector, a defect in a closed dropdown) would look green.
BROKEN_PAGES = {
    "wide_equation": "wide equation",
    "raw_tex": "raw TeX",
    "shrunk_figure": "shrunk figure",
    "making_of": "making of the book",
    "cut_code": "cut-off code",
    "cut_table": "cut-off table",
}


@pytest.fixture(scope="module")
def scratch_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Build the scratch book once (no execution, ~15 s) with the book's CSS and offline MathJax."""
    mathjax = next(
        (
            d
            for d in (ROOT / "_vendor" / "mathjax", ROOT / "node_modules" / "mathjax" / "es5")
            if (d / "tex-chtml.js").is_file()
        ),
        None,
    )
    if mathjax is None:
        pytest.fail("no MathJax: run `make book` (it copies node_modules/mathjax to _vendor/)")
    book = tmp_path_factory.mktemp("scratch") / "book"
    shutil.copytree(SCRATCH, book)
    shutil.copytree(ROOT / "_static", book / "_static")
    shutil.copytree(mathjax, book / "_vendor" / "mathjax")
    _draw_figures(book)
    jupyter_book = Path(sys.executable).parent / "jupyter-book"
    build = subprocess.run(
        [str(jupyter_book), "build", str(book), "--all", "--warningiserror", "--keep-going"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert build.returncode == 0, f"scratch book did not build:\n{build.stdout}\n{build.stderr}"
    yield from _serve(book / "_build" / "html")


def _draw_figures(book: Path) -> None:
    """A figure in the book style (column wide) and the same drawn 16 inches wide."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bptt.experiments.plotting import book_figure

    for name, width in (("column.png", None), ("wide.png", 16.0)):
        fig, ax = book_figure()
        if width is not None:
            fig.set_size_inches(width, 3.8)
        ax.plot([0, 1, 2], [0, 1, 4], label="a curve")
        ax.legend()
        fig.savefig(book / name)
        plt.close(fig)


@pytest.fixture()
def scratch_tab(scratch_server: str, browser):
    """Open a page of the scratch book, as open_page prepares it for the checks."""
    context = browser.new_context(viewport=VIEWPORT)

    def open_scratch(page: str):
        tab = context.new_page()
        open_page(tab, f"{scratch_server}/{page}.html")
        return tab

    try:
        yield open_scratch
    finally:
        context.close()


def test_checks_pass_on_a_good_page(scratch_tab) -> None:
    tab = scratch_tab("good")
    assert tab.evaluate("document.querySelectorAll('mjx-container').length") >= 4
    assert tab.evaluate("document.querySelectorAll('article img').length") == 1
    assert tab.evaluate("document.querySelectorAll('article table').length") == 1
    # Jupyter Book links every CSS file of _static/; _static/bptt.css wraps the page's long code
    # line, which the cut-off code check would report otherwise.
    assert tab.evaluate("document.querySelectorAll('link[href*=\"bptt.css\"]').length") == 1
    assert_reads_well(tab, "good")


@pytest.mark.parametrize(("page", "kind"), BROKEN_PAGES.items())
def test_each_check_fails_on_its_broken_page(page: str, kind: str, scratch_tab) -> None:
    tab = scratch_tab(page)
    assert list(findings(tab)) == [kind], f"{page}: expected only {kind!r}, got {findings(tab)}"
    with pytest.raises(AssertionError, match=rf"^{re.escape(page)}: .*\n  {re.escape(kind)}: "):
        assert_reads_well(tab, page)


def test_every_check_has_a_broken_page() -> None:
    assert sorted(BROKEN_PAGES.values()) == sorted(CHECKS)


def _around(text: str, needle: str, width: int = 60) -> str:
    i = text.find(needle)
    return text[max(0, i - width) : i + width].replace("\n", " ")
