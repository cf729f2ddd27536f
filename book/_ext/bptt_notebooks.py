"""Every chapter as a Jupyter notebook: a download on its page, and a run in the reader's browser.

The chapters are MyST Markdown notebooks; no ``.ipynb`` is committed. This module converts a
chapter with jupytext and puts one setup cell in front of it, so that the notebook runs outside
the book's build: in the browser (JupyterLite, where Python is Pyodide) the cell installs ``bptt``
from the book's own site, and wherever the book's builder is missing it stands in for
``myst_nb.glue`` (which puts values into the prose) by showing the value.

As a Sphinx extension (HTML builder only) it gives every chapter page two things:

* ``.ipynb`` in the page's download menu, beside the ``.md`` source: the converted notebook,
  written to ``_sources/<page>.ipynb`` (sphinx-book-theme renders the entry);
* a "Run this chapter in your browser" button that opens the chapter in the JupyterLite site
  built by ``lite/build.py`` into ``lite/`` beside the pages (``make book`` builds both). Pages
  listed in the config value ``bptt_browser_skip`` get no such button (they need what a browser
  cannot give, e.g. a subprocess).

``lite/build.py`` imports :func:`chapter_notebook` so that the site and the downloads hold the
same notebooks.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# The site's notebooks sit at the root of its contents, named by the chapter's file stem.
LITE_NOTEBOOK_PAGE = "lite/notebooks/index.html"

# Standard-library packages that Pyodide leaves out of its runtime and that bptt imports: the
# site ships each as a wheel made from the build's own Python (the one CI runs the chapters with).
STDLIB_WHEELS = ("pydoc_data",)

# The kernel of the JupyterLite site (jupyterlite-pyodide-kernel); a notebook that names another
# kernel would open a "select kernel" dialog instead of running.
PYODIDE_KERNELSPEC = {"name": "python", "display_name": "Python (Pyodide)", "language": "python"}

SETUP_CELL = """\
# Not part of the chapter: this cell lets the notebook run outside the book's build.
# In the browser (JupyterLite) it installs the book's package `bptt` with matplotlib for its
# figures from the book's own site, with no network, and the standard library's help texts
# (pydoc_data, bptt's bundled corpus), which Pyodide leaves out. Elsewhere, install `bptt` first
# (`pip install -e ".[plot]"` in the book's repository). Without the book's builder, `glue`
# (which puts a value or a figure into the book's text) shows figures where they are made, and
# other values when asked to.
import sys

if sys.platform == "emscripten":
    import piplite

    await piplite.install(["bptt[plot]", "pydoc-data"])
    import matplotlib.pyplot  # the first import builds matplotlib's font cache: here, once

try:
    import myst_nb
except ImportError:
    import types

    import IPython.display

    def _glue(name, variable, display=True):
        if display or hasattr(variable, "savefig"):
            IPython.display.display(variable)

    sys.modules["myst_nb"] = types.ModuleType("myst_nb")
    sys.modules["myst_nb"].glue = _glue
"""


def is_chapter(path: Path) -> bool:
    """True when ``path`` is a Markdown notebook chapter (its front matter declares a kernel)."""
    if path.suffix != ".md" or not path.is_file():
        return False
    head = path.read_text(encoding="utf-8")[:2000]
    if not head.startswith("---"):
        return False
    return "kernelspec:" in head.split("---", 2)[1]


def chapter_notebook(path: Path, *, browser: bool = False) -> dict[str, Any]:
    """The chapter at ``path`` as an nbformat-4 notebook (a dict), with the setup cell first.

    ``browser=True`` names the JupyterLite Pyodide kernel instead of the chapter's own. Cell ids
    are numbered, so that converting an unchanged chapter gives the same bytes.
    """
    import jupytext  # the book's build has it; imported here so that setup() stays light

    if not is_chapter(path):
        raise ValueError(f"path: expected a Markdown chapter with a kernelspec, got {path}")
    nb = jupytext.read(str(path))
    cells = [
        {
            "cell_type": "code",
            "execution_count": None,
            "metadata": {"tags": ["bptt-setup"]},
            "outputs": [],
            "source": SETUP_CELL,
        }
    ]
    for cell in nb.cells:
        out: dict[str, Any] = {
            "cell_type": cell.cell_type,
            "metadata": dict(cell.metadata),
            "source": cell.source,
        }
        if cell.cell_type == "code":
            out["execution_count"] = None
            out["outputs"] = []
        cells.append(out)
    for i, cell in enumerate(cells):
        cell["id"] = f"cell-{i}"
    metadata = {k: v for k, v in nb.metadata.items() if k != "jupytext"}
    if browser:
        metadata["kernelspec"] = dict(PYODIDE_KERNELSPEC)
    return {"cells": cells, "metadata": metadata, "nbformat": 4, "nbformat_minor": 5}


def write_notebook(notebook: dict[str, Any], target: Path) -> None:
    """Write ``notebook`` as ``.ipynb`` JSON (the layout Jupyter itself writes)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(notebook, indent=1, ensure_ascii=False, sort_keys=True) + "\n"
    target.write_text(text, encoding="utf-8")


def _chapter_source(app: Any, pagename: str) -> Path | None:
    if app.builder.name != "html" or pagename not in app.env.found_docs:
        return None
    source = Path(app.env.doc2path(pagename))
    return source if is_chapter(source) else None


def _add_notebook(app: Any, pagename: str, templatename: str, context: dict, doctree: Any) -> None:
    """Write the page's notebook to ``_sources/`` and let the theme offer it for download."""
    source = _chapter_source(app, pagename)
    if source is None:
        return
    write_notebook(chapter_notebook(source), Path(app.outdir, "_sources", f"{pagename}.ipynb"))
    context["ipynb_source"] = f"{pagename}.ipynb"


def _add_run_button(
    app: Any, pagename: str, templatename: str, context: dict, doctree: Any
) -> None:
    """Put "Run this chapter in your browser" first among the page's header buttons."""
    source = _chapter_source(app, pagename)
    if source is None or pagename in app.config.bptt_browser_skip:
        return
    buttons = context.get("header_buttons")
    if buttons is None:
        return
    url = f"{context['pathto'](LITE_NOTEBOOK_PAGE, 1)}?path={source.stem}.ipynb"
    buttons.insert(
        0,
        {
            "type": "link",
            "url": url,
            "text": "Run in your browser",
            "tooltip": "Run this chapter in your browser (JupyterLite: no install, no network)",
            "icon": "fas fa-play",
            "label": "run-in-browser-button",
        },
    )


def setup(app: Any) -> dict[str, Any]:
    app.add_config_value("bptt_browser_skip", [], "html", [list])
    # The theme builds its header buttons at priority 501: the notebook must be known before,
    # and the run button is added to the list the theme made.
    app.connect("html-page-context", _add_notebook, priority=500)
    app.connect("html-page-context", _add_run_button, priority=502)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
