"""Evaluator throughput: every metric over 1000 samples x 50 steps at 64² (goal < 10 s).

Three cases, each in its own process so that its peak RSS is its own:

* ``memory``: float32 numpy arrays already in RAM (1.6 GB for pred + target);
* ``disk``: the same sizes written as a sciops shard (netCDF4/HDF5, one chunk per sample)
  and opened lazily with ``sciops.data.open_dataset``; the evaluator reads one chunk of
  samples at a time, so the peak RSS stays far below the data size;
* ``disk_chunked``: the same shard opened with dask chunks of ``chunk_size`` samples
  (``xarray.open_dataset(..., chunks={"sample": chunk_size})``), which removes the
  per-sample dask task overhead of ``open_dataset``'s storage-sized chunks.

Plus the ROM clustering cost on 1000 snapshots of 64² (sine dissimilarity, k-medoids with
k = 8, local POD of rank 10). The data are synthetic Gaussian random fields (the ns2d
initial-condition law): throughput does not depend on the values.

Usage: ``python benchmarks/evaluate.py [--samples 1000 --steps 50 --n 64]``; writes
``benchmarks/results/evaluate.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
import xarray as xr

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_info, peak_rss_mib, timed, write_json  # noqa: E402

from sciops import random_fields, rom  # noqa: E402
from sciops.data.store import ShardWriter, open_dataset  # noqa: E402
from sciops.evaluate import metrics  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "evaluate.json"


def _fields(samples: int, steps: int, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Target GRFs and a prediction = target + 10 % GRF noise, float32 ``(samples, steps, n, n)``,
    generated 20 samples at a time to keep the float64 intermediates small."""
    g = torch.Generator().manual_seed(seed)
    target = np.empty((samples, steps, n, n), np.float32)
    pred = np.empty_like(target)
    for s in range(0, samples, 20):
        b = min(20, samples - s)
        y = random_fields.grf(b * steps, (n, n), (1.0, 1.0), generator=g).reshape(b, steps, n, n)
        e = random_fields.grf(b * steps, (n, n), (1.0, 1.0), generator=g).reshape(b, steps, n, n)
        target[s:s + b] = y.numpy()
        pred[s:s + b] = (y + 0.1 * e).numpy()
    return pred, target


def _write_shard(path: Path, pred: np.ndarray, target: np.ndarray) -> None:
    samples, steps, n, _ = target.shape
    dims = ("sample", "time", "x", "y")
    grid = np.arange(n) / n
    writer = ShardWriter(path, samples, 0,
                         {"t": ("time", np.arange(steps, dtype=np.float64)),
                          "x": ("x", grid), "y": ("y", grid)},
                         {"pred": (dims, {}), "target": (dims, {})}, {"source": "synthetic GRF"})
    for s in range(0, samples, 50):
        writer.write(s, {"pred": pred[s:s + 50], "target": target[s:s + 50]})
    writer.commit((0, samples))


def case_memory(args: argparse.Namespace) -> dict:
    pred, target = _fields(args.samples, args.steps, args.n, seed=0)
    ds, wall, cpu = timed(lambda: metrics.evaluate_all(pred, target, chunk_size=args.chunk_size))
    return {"wall_s": wall, "cpu_s": cpu, "peak_rss_mib": peak_rss_mib(),
            "data_mib": 2 * target.nbytes / 2**20, "summary": metrics.summarize(ds)}


def _case_disk(args: argparse.Namespace, chunked: bool) -> dict:
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        path = Path(tmp) / "shard-00000.nc"
        # written by a child so that the arrays never count in this process's RSS
        subprocess.run([sys.executable, __file__, "--case", "write", "--out", str(path),
                        *_size_args(args)], check=True)
        lazy = (xr.open_dataset(path, engine="h5netcdf", chunks={"sample": args.chunk_size})
                if chunked else open_dataset(path))
        base = peak_rss_mib()
        ds, wall, cpu = timed(lambda: metrics.evaluate_all(lazy.pred, lazy.target,
                                                            chunk_size=args.chunk_size))
        return {"wall_s": wall, "cpu_s": cpu, "peak_rss_mib": peak_rss_mib(),
                "rss_before_mib": base, "file_mib": path.stat().st_size / 2**20,
                "summary": metrics.summarize(ds)}


def case_write(args: argparse.Namespace) -> dict:
    _write_shard(Path(args.out), *_fields(args.samples, args.steps, args.n, seed=0))
    return {}


def case_rom(args: argparse.Namespace) -> dict:
    _, target = _fields(args.samples, 1, args.n, seed=1)
    snaps = target.reshape(args.samples, -1).astype(np.float64)
    dist, t_dist, _ = timed(lambda: rom.sine_dissimilarity(snaps))
    (labels, _), t_km, _ = timed(lambda: rom.kmedoids(dist, 8))
    bases, t_pod, _ = timed(lambda: rom.local_pod(snaps, labels, 10))
    glob = rom.projection_error(snaps, rom.pod(snaps, 10)).mean()
    local = rom.local_projection_error(snaps, labels, bases).mean()
    return {"snapshots": args.samples, "dof": snaps.shape[1], "sine_dissimilarity_s": t_dist,
            "kmedoids_k8_s": t_km, "local_pod_r10_s": t_pod,
            "mean_projection_error_global_r10": float(glob),
            "mean_projection_error_sine_local_r10": float(local),
            "peak_rss_mib": peak_rss_mib()}


CASES = {"memory": case_memory, "disk": lambda a: _case_disk(a, chunked=False),
         "disk_chunked": lambda a: _case_disk(a, chunked=True), "write": case_write,
         "rom": case_rom}


def _size_args(args: argparse.Namespace) -> list[str]:
    out = ["--samples", str(args.samples), "--steps", str(args.steps), "--n", str(args.n),
           "--chunk-size", str(args.chunk_size)]
    return out + (["--threads", str(args.threads)] if args.threads else [])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--samples", type=int, default=1000)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--n", type=int, default=64)
    p.add_argument("--chunk-size", type=int, default=50)
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads (default: torch's choice); with 1, cpu_s estimates the "
                        "wall time on an idle machine")
    p.add_argument("--tmp", default=None, help="directory for the on-disk case's shard")
    p.add_argument("--case", choices=sorted(CASES), help=argparse.SUPPRESS)
    p.add_argument("--out", default=str(RESULTS))
    args = p.parse_args()
    if args.case:
        if args.threads:
            torch.set_num_threads(args.threads)
        out = CASES[args.case](args)
        if args.case != "write":
            print(json.dumps(out))
        return
    start = machine_info()
    results = {}
    for case in ("memory", "disk", "disk_chunked", "rom"):
        cmd = [sys.executable, __file__, "--case", case, *_size_args(args)]
        if args.tmp:
            cmd += ["--tmp", args.tmp]
        proc = subprocess.run(cmd, check=True, capture_output=True, text=True)
        results[case] = json.loads(proc.stdout.strip().splitlines()[-1])
        print(case, {k: v for k, v in results[case].items() if k != "summary"}, flush=True)
    snapshots = args.samples * args.steps
    report = {
        "benchmark": "evaluate_all: every metric, float32",
        "size": {"samples": args.samples, "steps": args.steps, "grid": [args.n, args.n],
                 "chunk_size": args.chunk_size},
        "goal_s": 10.0,
        "snapshots_per_s_memory": snapshots / results["memory"]["wall_s"],
        "results": results,
        "machine": {**start, "case_torch_threads": args.threads or torch.get_num_threads(),
                    "load_average_1_5_15min_end": list(os.getloadavg()),
                    "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS", "unset")},
    }
    write_json(args.out, report)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
