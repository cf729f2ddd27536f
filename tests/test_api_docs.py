"""Every public object has a docstring that names the chapter explaining it (Appendix A3)."""

from __future__ import annotations

import inspect
import pkgutil
import re
from pathlib import Path

import bptt

POINTER = re.compile(r"\b(Chapters? \d|Appendix A\d)")


def _public_objects():
    for name in bptt.__all__:
        obj = getattr(bptt, name)
        # Type aliases (Params) and constants (TANH, __version__) carry no docstring of their own.
        if inspect.isclass(obj) or inspect.isfunction(obj):
            yield name, obj


def test_every_public_object_has_a_docstring():
    missing = [name for name, obj in _public_objects() if not inspect.getdoc(obj)]
    assert not missing


def test_docstrings_point_to_a_chapter():
    lacking = sorted(
        name for name, obj in _public_objects() if not POINTER.search(inspect.getdoc(obj))
    )
    assert not lacking, f"docstrings without 'Explained in Chapter N.': {lacking}"


def test_every_module_is_in_the_api_reference():
    page = (Path(__file__).parents[1] / "book" / "a3-api.md").read_text(encoding="utf-8")
    listed = set(re.findall(r"^\.\. automodule:: bptt\.(\w+)", page, flags=re.MULTILINE))
    modules = {m.name for m in pkgutil.iter_modules(bptt.__path__) if not m.name.startswith("_")}
    assert modules == listed, f"add to / remove from book/a3-api.md: {sorted(modules ^ listed)}"
