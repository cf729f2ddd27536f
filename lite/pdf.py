"""The whole book as one PDF: the single-page HTML build, printed by Chromium.

    python lite/pdf.py [--build-root .] [--out _build/pdf/bptt-book.pdf]

``make pdf`` runs it after ``make book``. Steps:

1. ``jupyter-book build --builder singlehtml`` into ``<build-root>/_build/singlehtml``. It shares
   the HTML build's environment (``_build/.doctrees``), so right after ``make book`` no chapter is
   executed again: the PDF shows the numbers and figures of that build.
2. The page is served from 127.0.0.1 and opened in Debian's Chromium (``/usr/bin/chromium``,
   driven by Playwright) with every request elsewhere refused. Once MathJax has typeset all the
   math (served by the book itself) and every image has loaded, the exercises' solutions are
   opened (code cells hidden in the HTML stay hidden) and Chromium prints the page to PDF, with
   page numbers in the footer.

Only Debian's ``chromium`` is needed besides the book's own environment: no TeX, no browser
download.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    # every name resolves to nothing but 127.0.0.1: the print cannot fetch from elsewhere
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
]
PRINTED = "print.html"  # the page that is printed, at the top of the single-page build
FOOTER = (
    '<div style="width:100%; font-size:8px; text-align:center; color:#555;">'
    '<span class="pageNumber"></span> / <span class="totalPages"></span></div>'
)
# Open what a reader opens by hand (solutions: sphinx-togglebutton and sphinx-design dropdowns);
# code that the HTML hides behind a toggle (myst-nb's details.hide) stays hidden on paper too.
PREPARE = """() => {
    document.querySelectorAll('.toggle-hidden').forEach(e => e.classList.remove('toggle-hidden'));
    document.querySelectorAll('details:not(.hide)').forEach(d => { d.open = true; });
    document.querySelectorAll('img').forEach(i => { i.loading = 'eager'; });
}"""


class BuildError(RuntimeError):
    """The PDF cannot be made as promised."""


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def root_page() -> str:
    """The book's root document (``root:`` in _toc.yml): the single page is named after it."""
    toc = (ROOT / "_toc.yml").read_text(encoding="utf-8")
    return re.search(r"^root:\s*(\S+)\s*$", toc, flags=re.MULTILINE)[1]


def build_singlehtml(build_root: Path) -> Path:
    """Run the single-page build; return its folder."""
    jupyter_book = Path(sys.executable).parent / "jupyter-book"
    args = [str(jupyter_book), "build", str(ROOT), "--builder", "singlehtml"]
    args += ["--warningiserror", "--keep-going"]
    if build_root != ROOT:
        args += ["--path-output", str(build_root)]
    subprocess.run(args, check=True, cwd=ROOT)
    html = build_root / "_build" / "singlehtml"
    page = html / f"{root_page()}.html"
    if not page.is_file():
        raise BuildError(f"{page} was not built")
    # The single page is written as <root>.html (book/intro.html) but its links to _static/,
    # _images/ and mathjax/ are relative to the folder's top: a copy there resolves them.
    shutil.copyfile(page, html / PRINTED)
    return html


def print_pdf(html: Path, out: Path) -> dict:
    """Print the single page in ``html`` to ``out``; return what was seen on the page."""
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        raise BuildError(f"{CHROMIUM} is missing: apt-get install chromium")
    handler = functools.partial(_Quiet, directory=str(html))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    outside: list[str] = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = browser.new_page()

            def local_only(route) -> None:
                url = urlparse(route.request.url)
                if url.scheme in {"data", "blob"} or url.hostname == "127.0.0.1":
                    route.continue_()
                else:
                    outside.append(route.request.url)
                    route.abort()

            page.route("**/*", local_only)
            url = f"http://127.0.0.1:{httpd.server_address[1]}/{PRINTED}"
            page.goto(url, wait_until="load")
            page.wait_for_function(
                "() => window.MathJax && MathJax.startup && MathJax.startup.promise",
                timeout=60000,
            )
            page.evaluate("() => MathJax.startup.promise")
            page.evaluate(PREPARE)
            page.wait_for_function(
                "() => Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)",
                timeout=60000,
            )
            seen = page.evaluate(
                """() => ({
                math: document.querySelectorAll('.math').length,
                typeset: document.querySelectorAll('mjx-container').length,
                errors: document.querySelectorAll('mjx-merror, [data-mjx-error]').length,
                images: Array.from(document.querySelectorAll('article img, main img'))
                    .filter(i => i.naturalWidth > 0).length,
                })"""
            )
            if seen["typeset"] < seen["math"] or seen["errors"]:
                raise BuildError(f"MathJax did not typeset everything: {seen}")
            page.emulate_media(media="print")
            out.parent.mkdir(parents=True, exist_ok=True)
            page.pdf(
                path=str(out),
                format="A4",
                print_background=True,
                margin={"top": "16mm", "bottom": "18mm", "left": "14mm", "right": "14mm"},
                display_header_footer=True,
                header_template="<span></span>",
                footer_template=FOOTER,
            )
            browser.close()
    finally:
        httpd.shutdown()
        httpd.server_close()
    if outside:
        raise BuildError(f"the page asked for resources outside 127.0.0.1: {outside[:5]}")
    return seen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build-root", type=Path, default=ROOT, help="jupyter-book's output root")
    parser.add_argument("--out", type=Path, help="default: <build-root>/_build/pdf/bptt-book.pdf")
    args = parser.parse_args(argv)
    build_root = args.build_root.resolve()
    out = (args.out or build_root / "_build" / "pdf" / "bptt-book.pdf").resolve()
    started = time.perf_counter()
    try:
        html = build_singlehtml(build_root)
        seen = print_pdf(html, out)
    except (BuildError, subprocess.CalledProcessError) as exc:
        print(f"pdf: error: {exc}", file=sys.stderr)
        return 1
    print(
        f"pdf: {out} ({out.stat().st_size / 1e6:.1f} MB, {seen['typeset']} formulas, "
        f"{seen['images']} images) in {time.perf_counter() - started:.0f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
