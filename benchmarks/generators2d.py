"""Throughput of the 2D steady/wave generators: darcy2d, poisson2d, wave2d.

    .venv/bin/python benchmarks/generators2d.py [--samples 3] [--threads 1]

Sections, written to ``benchmarks/results/generators2d.json``; each runs in a fresh
process so its peak RSS is its own:

1. darcy2d — seconds per 421² FNO sample (coefficients from seed 0; assembly + solve) for
   ``solver="direct"`` (SuperLU, minimum-degree ordering), ``"amg"`` (pyamg Ruge-Stuben
   V-cycle + CG, tol 1e-6), ``"gmg"`` (geometric coarsening + the same, the default) and
   plain ``scipy.sparse.linalg.spsolve`` (default ordering) for reference; the relative L2
   difference of each multigrid solution from the direct one (goal <= 1e-8); and the
   ``darcy2d-fno-r85`` recipe's samples/s (GRF + threshold + solve + subsample). pyamg is
   imported before timing.
2. poisson2d — samples/s (inputs + exact sine solve) at 64² and 256² for both sources.
3. wave2d — samples/s at 64² and 256²: the CNO setting (exact modal, T=5, 11 records) and a
   GRF medium stepped by spectral Verlet (timed over T=1 at cfl=0.3, reported per sample
   at the recipe's T=5 by scaling, since the cost is linear in T).

Wall seconds on a shared machine are inflated by other load; ``cpu_s`` (process CPU time,
all threads) is reported beside them, and ``machine`` records the load average. torch runs
with ``--threads`` intra-op threads (default 1: on an oversubscribed machine torch's thread
pool makes small FFTs and matmuls ten times slower; scipy and pyamg are single-threaded and
sciops limits BLAS to one thread around the AMG solve).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import multiprocessing
import statistics
import sys
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse.linalg as spla
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_info, peak_rss_mib, timed, write_json  # noqa: E402

from sciops import pdes  # noqa: E402
from sciops.data import load_recipe, sample_generator  # noqa: E402
from sciops.pdes.darcy2d import assemble  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "generators2d.json"


def _median(xs: list[float]) -> float:
    return float(statistics.median(xs))


def bench_darcy(n_samples: int) -> dict[str, Any]:
    da = pdes.get("darcy2d")
    p = da.make_params({"resolution": 421, "dtype": "float64"})
    kinds = ("inputs", "direct", "amg", "gmg", "spsolve")
    rows: dict[str, dict[str, list[float]]] = {k: {"wall_s": [], "cpu_s": []} for k in kinds}
    diffs: dict[str, list[float]] = {"amg": [], "gmg": []}
    import pyamg  # noqa: F401  (import cost is not solve cost)

    for k in range(n_samples):
        inp, w, c = timed(lambda k=k: da.sample_inputs(p, 1, sample_generator(0, k)))
        rows["inputs"]["wall_s"].append(w)
        rows["inputs"]["cpu_s"].append(c)
        sols = {}
        for solver in ("direct", "amg", "gmg"):
            out, w, c = timed(lambda s=solver, i=inp: da.solve(p.replace(solver=s), i))
            sols[solver] = out["u"]
            rows[solver]["wall_s"].append(w)
            rows[solver]["cpu_s"].append(c)
        for solver, d in diffs.items():
            d.append(float((sols[solver] - sols["direct"]).norm() / sols["direct"].norm()))
        a = inp["a"][0].numpy()
        _, w, c = timed(lambda a=a: spla.spsolve(assemble(a).tocsc(), np.ones(419 * 419)))
        rows["spsolve"]["wall_s"].append(w)
        rows["spsolve"]["cpu_s"].append(c)
    recipe = load_recipe("darcy2d-fno-r85").with_changes(samples=n_samples)
    _, w, c = timed(lambda: [da.solve(recipe.params, da.sample_inputs(
        recipe.params, 1, sample_generator(recipe.seed, k))) for k in range(n_samples)])
    return {
        "resolution": 421, "samples": n_samples,
        "seconds_per_sample": {k: {"wall_s": _median(v["wall_s"]), "cpu_s": _median(v["cpu_s"])}
                               for k, v in rows.items()},
        "rel_l2_vs_direct": {k: {"max": max(v), "all": v} for k, v in diffs.items()},
        "goal_seconds": 0.3,
        "recipe_darcy2d_fno_r85_samples_per_s": {"wall": n_samples / w, "cpu": n_samples / c},
        "peak_rss_mib": peak_rss_mib(),
    }


def _rate(pde: pdes.PDE, params: pdes.Params, batch: int, warmup: bool = True) -> dict[str, float]:
    """Samples/s of drawing inputs (one generator per sample, as the driver) and solving."""
    def run(size: int) -> None:
        inputs = [pde.sample_inputs(params, 1, sample_generator(0, k)) for k in range(size)]
        pde.solve(params, {key: torch.cat([s[key] for s in inputs]) for key in inputs[0]})
    if warmup:  # lazy imports, cached bases and FFT plans
        run(1)
    _, w, c = timed(lambda: run(batch))
    return {"batch": batch, "samples_per_s_wall": batch / w, "samples_per_s_cpu": batch / c}


def bench_poisson() -> dict[str, Any]:
    po = pdes.get("poisson2d")
    out: dict[str, Any] = {}
    for source in ("cno", "multiscale"):
        for n in (64, 256):
            p = po.make_params({"source": source, "resolution": n})
            out[f"{source}_{n}"] = _rate(po, p, 64)
    out["peak_rss_mib"] = peak_rss_mib()
    return out


def bench_wave() -> dict[str, Any]:
    wa = pdes.get("wave2d")
    out: dict[str, Any] = {}
    for n, batch in ((64, 64), (256, 16)):
        p = wa.make_params({"resolution": n})
        out[f"cno_modal_{n}"] = _rate(wa, p, batch)
    for n, batch in ((64, 4), (256, 2)):
        p = wa.make_params({"resolution": n, "medium": "grf", "t_final": 1.0, "n_records": 2})
        r = _rate(wa, p, batch, warmup=False)
        # cost is linear in the simulated time: report per sample at the recipe's T=5
        r = {"batch": batch, "timed_t_final": 1.0,
             "samples_per_s_wall_at_T5": r["samples_per_s_wall"] / 5,
             "samples_per_s_cpu_at_T5": r["samples_per_s_cpu"] / 5}
        out[f"grf_verlet_{n}"] = r
    out["peak_rss_mib"] = peak_rss_mib()
    return out


def _section(name: str, n_samples: int, threads: int) -> dict[str, Any]:
    torch.set_num_threads(threads)
    if name == "darcy2d":
        return bench_darcy(n_samples)
    return bench_poisson() if name == "poisson2d" else bench_wave()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=3, help="darcy2d samples at 421²")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    result: dict[str, Any] = {"machine": machine_info()}
    ctx = multiprocessing.get_context("spawn")
    for name in ("darcy2d", "poisson2d", "wave2d"):
        with concurrent.futures.ProcessPoolExecutor(1, mp_context=ctx) as pool:
            result[name] = pool.submit(_section, name, args.samples, args.threads).result()
        print(name, result[name], flush=True)
    path = write_json(args.out, result)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
