"""ROM study on generated solution manifolds: global vs k-means vs sine-clustered local POD.

    .venv/bin/python benchmarks/rom.py [--ns-samples 60] [--darcy-samples 600] [--threads 1]

Two datasets are generated (cached in ``benchmarks/.data/``, git-ignored):

* ``ns2d-fno-nu1e-3`` vorticity, solved at 64² instead of 256² (ν = 1e-3 is resolved at
  64²; this keeps generation near a minute per 40 samples), all 50 records of each sample
  as snapshots;
* ``darcy2d-fno-r85`` pressure ``u``, solved at 211² and stored at 43²
  (every 5th point, as the recipe does from 421² to 85²).

For each: :func:`sciops.evaluate.rom_study.rom_study` (k = 8 clusters, ranks 1..10; its
``rom.png`` and ``report.md`` are kept in ``benchmarks/results/rom/``) and, on Darcy where
an input field exists, :func:`sciops.rom.efficiency_estimate` with the coefficient
``a`` as classifier input (misassignment rate and classified local error reported beside
the oracle). Writes ``benchmarks/results/rom.json`` with times and peak RSS.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_info, peak_rss_mib, timed, write_json  # noqa: E402

from sciops import rom  # noqa: E402
from sciops.data import generate, load_recipe  # noqa: E402
from sciops.evaluate.rom_study import load_snapshots, rom_study  # noqa: E402

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
CACHE = HERE / ".data"


def _dataset(name: str, samples: int, overrides: dict[str, str]) -> tuple[Path, float]:
    """Generate (or reuse) a reduced copy of recipe ``name``; returns path and CPU seconds."""
    recipe = load_recipe(name).with_changes(samples=samples, overrides=overrides)
    out = CACHE / f"{name}-{samples}"
    _, _, cpu = timed(lambda: generate(recipe, out))
    return out, cpu


def _study(data: Path, var: str, out: Path, k: int, rank: int) -> dict:
    _, wall, cpu = timed(lambda: rom_study(data, var, out, k=k, rank=rank))
    result = json.loads((out / "rom.json").read_text())
    result.update(data=data.name, study_wall_s=round(wall, 2), study_cpu_s=round(cpu, 2))
    return result


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ns-samples", type=int, default=60)
    ap.add_argument("--darcy-samples", type=int, default=600)
    ap.add_argument("--k", type=int, default=8)
    ap.add_argument("--rank", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=RESULTS / "rom.json")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    ns, ns_gen = _dataset("ns2d-fno-nu1e-3", args.ns_samples,
                          {"resolution": "64", "samples_per_shard": "20", "batch_size": "20"})
    darcy, darcy_gen = _dataset("darcy2d-fno-r85", args.darcy_samples,
                                {"resolution": "211", "output_resolution": "43",
                                 "samples_per_shard": "100", "batch_size": "20"})
    studies = {
        "ns2d-fno-nu1e-3/vorticity": _study(ns, "vorticity", RESULTS / "rom" / "ns2d", args.k,
                                            args.rank),
        "darcy2d-fno-r85/u": _study(darcy, "u", RESULTS / "rom" / "darcy2d", args.k, args.rank),
    }
    studies["ns2d-fno-nu1e-3/vorticity"]["generation_cpu_s"] = round(ns_gen, 1)
    studies["darcy2d-fno-r85/u"]["generation_cpu_s"] = round(darcy_gen, 1)
    a, u = load_snapshots(darcy, "a"), load_snapshots(darcy, "u")
    romnet, wall, cpu = timed(lambda: rom.efficiency_estimate(a, u, args.k, args.rank))
    romnet.update(wall_s=round(wall, 2), cpu_s=round(cpu, 2),
                  classifier_input="coefficient a (flattened, standardized)")
    write_json(args.out, {
        "benchmark": "ROM study: global POD vs Euclidean k-means vs sine k-medoids local POD "
                     "(oracle assignment), mean relative projection error vs rank",
        "settings": {**vars(args), "out": str(args.out)},
        "studies": studies,
        "romnet_darcy": romnet,
        "peak_rss_mib": round(peak_rss_mib(), 1),
        "machine": machine_info(),
    })
    for key, s in studies.items():
        errs = s["mean_projection_error"]
        print(f"{key}: rank {args.rank} global {errs['global POD'][-1]:.3e}, k-means "
              f"{errs['k-means local POD'][-1]:.3e}, sine {errs['sine local POD'][-1]:.3e}")
    print("ROM-net on Darcy:", {k: round(v, 4) for k, v in romnet.items()
                                if isinstance(v, float)})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
