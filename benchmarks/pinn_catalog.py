"""The PINN sweep of the catalog: ``sciops solve P --method pinn`` for every PDE with a
pointwise definition, on the budgets and bounds of ``tests/test_pinn_catalog.py``.

    .venv/bin/python benchmarks/pinn_catalog.py [--threads 1] [--only PDE ...] [--out FILE]

Writes ``benchmarks/results/pinn_catalog.json``: per PDE its ``--set``/``--option`` values,
what the error is measured against (the exact solution or the PDE's own reference solver
on its stored grid), the relative L2 error per unknown, the bound the slow test asserts,
and the wall and CPU seconds of the PINN. The table of cases lives in the test (one source);
this script only runs it. Single-threaded by default: CPU seconds estimate the time on an
idle machine when this one is shared.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _common import machine_info, peak_rss_mib, write_json  # noqa: E402


def _catalog():
    """``tests/test_pinn_catalog.py`` as a module (its CASES, pinn_pdes and solve_case)."""
    path = HERE.parent / "tests" / "test_pinn_catalog.py"
    spec = importlib.util.spec_from_file_location("pinn_catalog_cases", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--only", nargs="*", default=None,
                    help="PDE names (default: all); other rows of --out are kept")
    ap.add_argument("--out", default=str(HERE / "results" / "pinn_catalog.json"))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    cat = _catalog()
    names = args.only or cat.pinn_pdes()
    out = Path(args.out)
    # --only reruns some rows and keeps the others of an earlier run
    rows = json.loads(out.read_text())["pdes"] if args.only and out.exists() else {}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            summary = cat.solve_case(name, Path(tmp) / name)
            row = cat.CASES[name]
            worst = max(summary["rel_l2"].values())
            rows[name] = {"sets": row["sets"], "options": row["options"],
                          "reference": summary["reference"], "rel_l2": summary["rel_l2"],
                          "bound": row["bound"], "within_bound": worst < row["bound"],
                          "wall_s": round(summary["wall_s"], 2),
                          "cpu_s": round(summary["cpu_s"], 2)}
            print(f"{name:18s} rel. L2 {worst:.3g} (bound {row['bound']:g}) vs "
                  f"{summary['reference']}; {summary['cpu_s']:.1f} CPU-s", flush=True)
    write_json(out, {"machine": machine_info(), "threads": args.threads,
                     "last_run_wall_s": round(time.perf_counter() - start, 1),
                     "total_cpu_s": round(sum(r["cpu_s"] for r in rows.values()), 1),
                     "peak_rss_mib": round(peak_rss_mib(), 1), "pdes": dict(sorted(rows.items()))})
    return 0 if all(r["within_bound"] for r in rows.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
