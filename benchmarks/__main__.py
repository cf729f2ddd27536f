"""Run every benchmark module (``benchmarks/bench_*.py``) in name order: ``python -m benchmarks``.

``python -m benchmarks NAME ...`` runs only the named ones (e.g. ``speed``, ``memory``).
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time

import benchmarks


def main(argv: list[str]) -> int:
    names = sorted(
        m.name for m in pkgutil.iter_modules(benchmarks.__path__) if m.name.startswith("bench_")
    )
    wanted = [f"bench_{a.removeprefix('bench_')}" for a in argv]
    unknown = sorted(set(wanted) - set(names))
    if unknown:
        print(f"unknown benchmark(s) {unknown}; available: {names}", file=sys.stderr)
        return 2
    for name in wanted or names:
        module = importlib.import_module(f"benchmarks.{name}")
        print(f"\n=== {name} ===", flush=True)
        start = time.perf_counter()
        module.main()
        print(f"=== {name} done in {time.perf_counter() - start:.1f} s ===", flush=True)
    if not names:
        print("no benchmarks yet")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
