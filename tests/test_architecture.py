"""The package's architecture is a checked claim: its layers, the import rule, and numpy alone.

Every module belongs to one layer, bottom up: the cells, the model pieces, the algorithms, the
tools, the application, then the book's experiments. A module may import its own layer and the
layers below, never above: so the library (everything but the experiments) never imports the
experiments, and the library runs with numpy alone (matplotlib is needed only for figures).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "bptt"

# Layer of each module or folder of the package, bottom up. The README and Appendix A3 list them.
LAYERS = {
    "bptt._checks": 0,
    "bptt._version": 0,
    "bptt.cells": 1,
    "bptt.params": 2,
    "bptt.model": 2,
    "bptt.readout": 2,
    "bptt.losses": 2,
    "bptt.algorithms": 3,
    "bptt.gradcheck": 4,
    "bptt.clip": 4,
    "bptt.optim": 4,
    "bptt.dynamics": 4,
    "bptt.memory": 4,
    "bptt.initializers": 4,
    "bptt.interop": 4,
    "bptt.app": 5,
    "bptt.experiments": 6,
    "bptt": 7,  # the package's __init__ (the public API) and __main__ sit on top of everything
    "bptt.__main__": 7,
}
EXPERIMENTS = LAYERS["bptt.experiments"]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(name: str) -> bool:
    relative = Path(*name.split("."))
    return (PACKAGE.parent / relative).with_suffix(".py").is_file() or (
        PACKAGE.parent / relative / "__init__.py"
    ).is_file()


def layer(name: str) -> int:
    """The layer of a module of ``bptt``: that of its longest listed prefix."""
    parts = name.split(".")
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in LAYERS:
            return LAYERS[".".join(parts[:n])]
    raise KeyError(f"{name} belongs to no layer: add its folder or module to LAYERS")


def imported_modules(path: Path, name: str | None = None) -> set[str]:
    """Every ``bptt`` module and every other top-level package that ``path`` imports.

    Walks the whole syntax tree, so imports inside functions count too. ``from bptt import x``
    counts as importing ``bptt.x`` when that is a module, and the package itself otherwise.
    """
    here = (name or module_name(path)).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            for alias in node.names:
                candidate = f"{module}.{alias.name}"
                found.add(candidate if is_module(candidate) else module)
    return found


MODULES = sorted(PACKAGE.rglob("*.py"))
LIBRARY = [path for path in MODULES if layer(module_name(path)) < EXPERIMENTS]


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_modules_import_only_their_own_layer_and_those_below(path):
    name = module_name(path)
    above = sorted(
        f"{m} (layer {layer(m)})"
        for m in imported_modules(path)
        if m.split(".")[0] == "bptt" and layer(m) > layer(name)
    )
    assert not above, f"{name} (layer {layer(name)}) imports a layer above it: {above}"


@pytest.mark.parametrize("path", LIBRARY, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_the_library_imports_no_plotting_library(path):
    assert not {m for m in imported_modules(path) if m.split(".")[0] == "matplotlib"}


@pytest.mark.parametrize(
    "source",
    [
        "from ..experiments import plotting\n",
        "from bptt.experiments.plotting import book_figure\n",
        "import bptt.experiments.tasks\n",
        "def f():\n    from bptt.app.train import CharModelTrainer\n",
        "from bptt import TANH\n",
    ],
)
def test_the_rule_sees_an_import_from_above(tmp_path, source):
    """A cell module that imports from above must fail the rule, or the rule checks nothing."""
    probe = tmp_path / "probe.py"
    probe.write_text(source)
    imports = imported_modules(probe, name="bptt.cells.probe")
    assert any(m.split(".")[0] == "bptt" and layer(m) > layer("bptt.cells") for m in imports)


def test_every_module_has_a_layer():
    for path in MODULES:
        layer(module_name(path))  # raises for a module outside every layer


def test_the_library_and_command_line_work_with_numpy_alone(tmp_path):
    """Import the library and run the command line with matplotlib made unimportable."""
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'matplotlib':\n"
        "            raise ImportError('matplotlib is blocked by the test')\n"
        "sys.meta_path.insert(0, Block())\n"
        "import bptt, bptt.app.cli\n"
        "assert 'matplotlib' not in sys.modules\n"
        "sys.exit(bptt.app.cli.main(['gradcheck', '--hidden-size', '3', '--seq-length', '3']))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert "PASSED" in done.stdout


def test_the_figures_ask_for_matplotlib_by_name(tmp_path):
    """Without matplotlib, the experiments' figures say what to install."""
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'matplotlib':\n"
        "            raise ImportError('matplotlib is blocked by the test')\n"
        "sys.meta_path.insert(0, Block())\n"
        "import bptt.experiments.plotting\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert done.returncode != 0
    assert 'pip install "bptt[plot]"' in done.stderr
