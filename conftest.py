"""Let pytest + nbval execute the book's MyST Markdown chapters cell by cell.

nbval collects only ``.ipynb`` files, and no notebook is committed: chapters are ``.md`` files with
jupytext front matter. This hook reads such a file with jupytext and hands its code cells to nbval,
so ``pytest --nbval-lax`` reports each chapter cell as a test item, ``book/<chapter>.md::Cell N``.
"""

from __future__ import annotations

import os
import warnings
from collections import defaultdict
from pathlib import Path

import pytest

try:
    import jupytext
    from nbval.plugin import IPyNbCell, IPyNbFile, find_comment_markers, find_metadata_tags
except ImportError:  # the test extra is not installed: unit tests still run
    IPyNbFile = None


def _is_chapter(path: Path) -> bool:
    """A Markdown file is a notebook chapter when its front matter declares a kernel."""
    if path.suffix != ".md":
        return False
    head = path.read_text(encoding="utf-8")[:2000]
    if not head.startswith("---"):
        return False
    front_matter = head.split("---", 2)[1]
    return "kernelspec:" in front_matter


def pytest_configure(config: pytest.Config) -> None:
    # Kernel tracebacks in plain text: an IPython profile whose kernel config turns colours off.
    profile = Path(config.rootpath, ".pytest_cache", "ipython", "profile_default")
    profile.mkdir(parents=True, exist_ok=True)
    (profile / "ipython_kernel_config.py").write_text("c.InteractiveShell.colors = 'nocolor'\n")
    os.environ["IPYTHONDIR"] = str(profile.parent)
    os.environ.setdefault("MPLBACKEND", "Agg")
    config.addinivalue_line("markers", "browser: opens the built HTML book in headless Chromium")


if IPyNbFile is not None:

    class MySTChapter(IPyNbFile):
        """An nbval collector for one MyST Markdown chapter."""

        def collect(self):
            self.nb = jupytext.read(str(self.fspath))
            cell_num = 0
            for cell in self.nb.cells:
                if cell.cell_type != "code":
                    continue
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    options = defaultdict(bool, find_metadata_tags(cell.metadata))
                    options.update(dict(find_comment_markers(cell.source)))
                options.setdefault("check", self.compare_outputs)
                yield IPyNbCell.from_parent(
                    self, name=f"Cell {cell_num}", cell_num=cell_num, cell=cell, options=options
                )
                cell_num += 1

    def pytest_collect_file(file_path: Path, parent: pytest.Collector):
        option = parent.config.option
        if (option.nbval or option.nbval_lax) and _is_chapter(file_path):
            return MySTChapter.from_parent(parent, path=file_path)
        return None
