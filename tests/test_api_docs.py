"""Every public object has a docstring that names the chapter explaining it (Appendix A3)."""

from __future__ import annotations

import importlib
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


def public_modules() -> list[str]:
    """Every public module of the package, in its folders too (``bptt.cells.gru``...)."""
    return sorted(
        m.name
        for m in pkgutil.walk_packages(bptt.__path__, prefix="bptt.")
        if not any(part.startswith("_") for part in m.name.split("."))
    )


def test_every_module_is_in_the_api_reference():
    page = (Path(__file__).parents[1] / "book" / "a3-api.md").read_text(encoding="utf-8")
    listed = set(re.findall(r"^\.\. automodule:: (bptt\.[\w.]+)", page, flags=re.MULTILINE))
    modules = set(public_modules())
    assert modules == listed, f"add to / remove from book/a3-api.md: {sorted(modules ^ listed)}"


def test_public_modules_sees_the_folders():
    assert {"bptt.cells.gru", "bptt.algorithms.truncation", "bptt.app.cli"} <= set(public_modules())


def _numbered_chapters() -> list[Path]:
    """The chapter files in the order the numbered parts of the table of contents give them."""
    import yaml

    root = Path(__file__).parents[1]
    toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8"))
    return [
        root / f"{entry['file']}.md"
        for part in toc["parts"]
        if part.get("numbered")
        for entry in part["chapters"]
    ]


EXPLAINED = re.compile(r"Explained in Chapters? (\d+(?:(?:, | and )\d+)*)")


def chapter_pointers_that_miss(chapters: list[Path]) -> list[str]:
    """Every "Explained in Chapter N" of a module whose chapter N never names that module.

    A chapter names a module when its text contains ``bptt.<module>`` or one of the public names
    the module defines; a renumbered table of contents therefore fails here, not in a reader's eyes.
    """
    texts = [path.read_text(encoding="utf-8") for path in chapters]
    misses = []
    for name in public_modules():
        module = importlib.import_module(name)
        own = {
            defined
            for defined, obj in vars(module).items()
            if not defined.startswith("_") and getattr(obj, "__module__", None) == module.__name__
        } | set(getattr(module, "__all__", ()))  # a folder's __init__ names what it gathers
        cited = {
            int(n)
            for group in EXPLAINED.findall(inspect.getsource(module))
            for n in re.findall(r"\d+", group)
        }
        for number in sorted(cited):
            if not 1 <= number <= len(texts):
                misses.append(f"{name}: Chapter {number} does not exist")
                continue
            text = texts[number - 1]
            if name not in text and not any(
                re.search(rf"\b{re.escape(defined)}\b", text) for defined in own
            ):
                misses.append(f"{name}: {chapters[number - 1].name} never names it")
    return misses


def test_every_chapter_pointer_leads_to_a_chapter_that_uses_the_module():
    misses = chapter_pointers_that_miss(_numbered_chapters())
    assert not misses, misses


def test_chapter_pointers_fail_when_the_chapters_are_renumbered():
    chapters = _numbered_chapters()
    assert chapter_pointers_that_miss(chapters[1:] + chapters[:1])  # every number shifted by one


def _documented_callables():
    for module_name in public_modules():
        module = importlib.import_module(module_name)
        for name, obj in vars(module).items():
            if name.startswith("_") or getattr(obj, "__module__", None) != module_name:
                continue
            if inspect.isfunction(obj) or inspect.isclass(obj):
                yield f"{module_name}.{name}", obj
            if inspect.isclass(obj):
                for attr, member in vars(obj).items():
                    if inspect.isfunction(member) and not attr.startswith("_"):
                        yield f"{module_name}.{name}.{attr}", member


FIELD = re.compile(r"^:(param|raises) ([^:]*):")
NAME = re.compile(r"^[\w.*\\]+(, [\w.*\\]+)*$")  # "x", "inputs, targets", "FloatingPointError"
ATTRIBUTE = re.compile(r"^\.\. attribute:: (.*)$")


def swallowed_prose(docstring: str) -> list[str]:
    """Lines of prose that Sphinx's numpy parser turns into a parameter or an exception.

    A paragraph written after a Parameters or Raises section, without a section of its own,
    becomes a field named by its first words: the API reference then shows a parameter called
    "Explained in Chapter 4".
    """
    from sphinx.ext.napoleon import Config
    from sphinx.ext.napoleon.docstring import NumpyDocstring

    parsed = str(NumpyDocstring(docstring, Config(napoleon_use_param=True)))
    fields = (FIELD.match(line) for line in parsed.splitlines())
    found = [m.group(0) for m in fields if m and not NAME.match(m.group(2).strip())]
    # after an Attributes section the paragraph becomes an attribute named by its words
    attributes = (ATTRIBUTE.match(line.strip()) for line in parsed.splitlines())
    return found + [m.group(0) for m in attributes if m and not NAME.match(m.group(1).strip())]


def test_no_prose_is_parsed_as_a_parameter():
    bad = {
        name: lines
        for name, obj in _documented_callables()
        if (lines := swallowed_prose(inspect.getdoc(obj) or ""))
    }
    assert not bad, f"move the paragraph above the first section: {bad}"


def test_swallowed_prose_is_found():
    trailing = "Sum.\n\nParameters\n----------\nx : int\n    A number.\n\nExplained in Chapter 4.\n"
    assert swallowed_prose(trailing)
    attributes = "Box.\n\nAttributes\n----------\nx : int\n    A number.\n\nExplained in 4.\n"
    assert swallowed_prose(attributes)
    assert not swallowed_prose(attributes.replace("\n\nExplained in 4.", ""))
    assert not swallowed_prose("Sum.\n\nExplained in Chapter 4.\n\n" + trailing.split("\n\n")[1])
