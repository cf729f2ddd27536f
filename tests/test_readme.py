"""The README cannot lie: its code blocks are executed, its commands run, its paths exist.

- every ```python block runs (in a temporary folder), and the first one prints a gradient check
  that passes;
- every ``bptt ...`` command of the ```bash blocks runs, in order, in a temporary folder, with the
  sizes shrunk so that it takes a moment (more hidden units or steps would change nothing that the
  README claims); each must exit 0;
- every ``make`` target it names exists, every ``--option`` it names in prose is an option of the
  command line, and every path of its layout block exists.
"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from bptt.app.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
BLOCKS = [(lang, body) for lang, body in FENCE.findall(README)]
PYTHON = [body for lang, body in BLOCKS if lang == "python"]
BASH = [body for lang, body in BLOCKS if lang == "bash"]
COMMANDS = [
    shlex.split(line, comments=True)
    for body in BASH
    for line in body.splitlines()
    if line.strip().startswith(("bptt ", "make "))
]

# What makes the README's commands slow, shrunk to a size that runs in a moment.
SHRINK = {
    "--hidden-size": "8",
    "--steps": "4",
    "--sample-every": "2",
    "--length": "20",
    "--warmup": "1",
    "--val-every": "1",
    "--lr-milestones": "2",
}
TEXT = "The quick brown fox jumps over the lazy dog. " * 20


def test_the_readme_has_code_to_check():
    assert PYTHON and BASH and any(c[0] == "bptt" for c in COMMANDS)


@pytest.mark.parametrize("index", range(len(PYTHON)))
def test_python_blocks_run(index, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(PYTHON[index], f"README.md python block {index + 1}", "exec"), {})
    if index == 0:  # "Reuse bptt in five lines": the gradient check must pass
        lines = out.getvalue().strip().splitlines()
        assert lines[-1].startswith("PASSED: max relative error"), out.getvalue()
        assert "FAILED" not in out.getvalue() and "INCONCLUSIVE" not in out.getvalue()
        assert all(line.endswith("yes") for line in lines[2:-1]), out.getvalue()
    # A line that says "== ...: True" in the README must print True when run.
    for line in out.getvalue().splitlines():
        if " == " in line:
            assert line.endswith(": True"), out.getvalue()


def shrunk(argv: list[str]) -> list[str]:
    """``argv`` with the slow sizes replaced; a resumed run goes 2 steps beyond the first one."""
    result = list(argv)
    for i, arg in enumerate(result[:-1]):
        if arg in SHRINK:
            result[i + 1] = SHRINK[arg]
            if arg == "--steps" and "--resume" in result:
                result[i + 1] = str(int(SHRINK["--steps"]) + 2)
    if result[:1] == ["train"] and "--steps" not in result:
        result += ["--steps", "2", "--hidden-size", "8"]
    return result


def test_bptt_commands_run_in_order_and_succeed(tmp_path):
    (tmp_path / "my.txt").write_text(TEXT, encoding="utf-8")
    for command in (c for c in COMMANDS if c[0] == "bptt"):
        argv = shrunk(command[1:])
        build_parser().parse_args(argv)  # the README's options exist (SystemExit otherwise)
        result = subprocess.run(
            [sys.executable, "-m", "bptt", *argv],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, f"{shlex.join(command)}: {result.stderr}"
        if command[1] == "gradcheck":
            assert "PASSED" in result.stdout, result.stdout


def test_make_targets_exist():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    targets = set(re.findall(r"^([A-Za-z][\w-]*):", makefile, flags=re.MULTILINE))
    named = {c[1] for c in COMMANDS if c[0] == "make"} | set(re.findall(r"`make (\w+)`", README))
    assert named and named <= targets, named - targets


def test_options_named_in_the_prose_exist():
    prose = FENCE.sub("", README)
    named = set(re.findall(r"`(--[a-z][\w-]*)", prose))
    parser = build_parser()
    options = set(parser._option_string_actions)
    for action in parser._subparsers._group_actions:  # the subcommands' options
        for sub in action.choices.values():
            options |= set(sub._option_string_actions)
    assert named and named <= options, named - options


def test_layout_paths_exist():
    layout = next(body for lang, body in BLOCKS if lang == "" and "pyproject.toml" in body)
    for line in layout.splitlines():
        for name in re.split(r"\s{3,}", line.strip())[0].split():
            assert (ROOT / name).exists(), f"README layout names {name}, which does not exist"


def test_dependencies_and_extras_are_as_stated():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    runtime = {re.split(r"[<>=\[ ]", d)[0] for d in project["dependencies"]}
    assert runtime == {"numpy"}  # "runtime dependency: numpy only"
    assert "numpy only" in README
    stated = re.search(r"extras \(([\w, ]+)\)", README).group(1).split(", ")
    assert set(stated) == set(project["optional-dependencies"])
