"""Run every benchmark script in this folder with its defaults, one after the other.

Each script writes its own ``benchmarks/results/<name>.json``; this runner only sequences
them (so they never compete for the CPU) and reports which ones failed. Peers' code is
looked for under ``third_party/`` (git-ignored); a benchmark whose peer is missing says so.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    only = set(argv)
    scripts = sorted(p for p in HERE.glob("*.py")
                     if not p.name.startswith("_") and p.name != Path(__file__).name)
    failed = []
    for script in scripts:
        if only and script.stem not in only:
            continue
        t0 = time.perf_counter()
        print(f"== {script.stem}", flush=True)
        code = subprocess.call([sys.executable, str(script)], cwd=HERE.parent)
        print(f"== {script.stem}: exit {code} after {time.perf_counter() - t0:.0f} s", flush=True)
        if code:
            failed.append(script.stem)
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
