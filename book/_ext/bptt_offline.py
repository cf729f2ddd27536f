"""A small Sphinx extension that keeps the built book self-contained and free of console errors.

* Jupyter Book 1 loads sphinx-thebe, which the book does not use (chapters are executed at build
  time, not in the browser); its inline configuration script ends up twice on every page, and the
  second copy throws "Identifier 'THEBE_JS_URL' has already been declared". Drop thebe's scripts.
* The theme reads the colour mode from ``localStorage`` or an empty default, and logs an error for
  the empty string; default to ``auto`` (follow the reader's system setting).
"""

from __future__ import annotations

from typing import Any


def _drop_thebe(app: Any, pagename: str, templatename: str, context: dict, doctree: Any) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return

    def is_thebe(script: Any) -> bool:
        filename = str(getattr(script, "filename", script) or "")
        body = str(getattr(script, "attributes", {}).get("body", ""))
        return "thebe" in filename or "THEBE_JS_URL" in body

    scripts[:] = [s for s in scripts if not is_thebe(s)]


def _default_mode(app: Any, pagename: str, templatename: str, context: dict, doctree: Any) -> None:
    context["default_mode"] = context.get("default_mode") or "auto"
    theme_options = context.get("theme_default_mode")
    if not theme_options:
        context["theme_default_mode"] = "auto"


def setup(app: Any) -> dict[str, Any]:
    app.connect("html-page-context", _drop_thebe, priority=900)
    app.connect("html-page-context", _default_mode, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
