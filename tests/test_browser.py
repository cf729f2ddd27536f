"""Open every page of the built book in headless Chromium and check what a reader would see.

For each page listed in ``_toc.yml``: MathJax typeset the math (no raw TeX delimiters left in the
visible text, no MathJax error), every image loaded, the console has no error, and no request left
127.0.0.1. Skipped (with the reason) only when the HTML has not been built and
``BPTT_REQUIRE_HTML`` is unset; ``make check`` sets it, after building.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest

ROOT = Path(__file__).resolve().parent.parent
HTML = ROOT / "_build" / "html"
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


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    _require_html()
    handler = functools.partial(QuietHandler, directory=str(HTML))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def browser(server: str):
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


def _around(text: str, needle: str, width: int = 60) -> str:
    i = text.find(needle)
    return text[max(0, i - width) : i + width].replace("\n", " ")
