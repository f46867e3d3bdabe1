"""ns2d accuracy per cost: sciops against the FNO data generator.

The peer is ``navier_stokes_2d`` from neuraloperator's ``data_generation/navier_stokes/ns_2d.py``
(the generator of the FNO papers' Navier–Stokes data), run side by side from a local copy:

    .venv/bin/python benchmarks/ns2d.py [--peer third_party/fno_ns/ns_2d.py] [--threads 1]

Problem: unit torus, nu=1e-3, FNO forcing, the same GRF initial vorticity for every solver
(``sample_inputs`` with seed 0, float64), batch 4, T=1. Sections, all written to
``benchmarks/results/ns2d.json``:

1. reference — sciops ifrk4 in float64 at a small step, checked against half that step;
2. curves — relative L2 error at T=1 against the reference and the run time, over a ladder
   of fixed steps, for the peer, sciops ``scheme="fno"`` (the peer's arithmetic) and sciops
   ``scheme="ifrk4"`` (the default); from them the time to reach 1e-3 and 1e-5;
3. equal_dt — peer and sciops ``scheme="fno"`` at the same step: time per step, difference;
4. throughput — samples/s of the ``ns2d-fno-nu1e-3`` recipe, timed on one record interval
   and extrapolated to the recipe's T=50, peak RSS measured in a fresh process;
5. schemes — float64 error-vs-time ladders of sciops' own schemes, ``etdrk4``, ``ifrk4`` and
   ``fno``, each point the median of repeated runs taken in interleaved rounds, and the time
   each needs to reach 1e-3 and 1e-5. Needs no peer: ``--sections schemes`` runs only this
   section and updates the ``schemes`` entry of an existing results file.

The peer builds its wavenumbers, Crank–Nicolson factors and output buffer in torch's default
dtype. Runs of the peer therefore set the default dtype to the run's dtype, so a float64 run
is float64 throughout; ``equal_dt`` also records the peer as published (default float32)
with a float64 input, whose float32 factors drift by about 6e-8 per step.
"""

from __future__ import annotations

import argparse
import ast
import concurrent.futures
import contextlib
import json
import math
import multiprocessing
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_info, peak_rss_mib, timed, write_json  # noqa: E402

from sciops import pdes  # noqa: E402
from sciops.data.recipes import load_recipe  # noqa: E402
from sciops.pdes.base import SolverDiverged  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
PEER_FUNCTION = "navier_stokes_2d"
NU, T_FINAL, BATCH, SEED = 1e-3, 1.0, 4, 0
TARGETS = (1e-3, 1e-5)
DTYPES = {"float64": torch.float64, "float32": torch.float32}
# Fixed steps are powers of two so T/dt is an exact step count for both codes.
# (reference dt, ifrk4 ladder, fno/peer ladder per dtype) per resolution; chosen from a
# pilot run so that the first-order solvers bracket 1e-5 in float64 and the whole benchmark
# stays near 10 minutes on 2 cores.
LADDERS: dict[int, dict[str, Any]] = {
    64: {"ref": 2**-9, "ifrk4": [2.0**-k for k in range(0, 8)],
         "fno": {"float64": [2.0**-k for k in range(4, 14)],
                 "float32": [2.0**-k for k in range(4, 12)]}},
    256: {"ref": 2**-9, "ifrk4": [2.0**-k for k in range(0, 8)],
          "fno": {"float64": [2.0**-k for k in (4, 5, 6, 8, 10, 12)],
                  "float32": [2.0**-k for k in (4, 6, 8, 10)]}},
}
EQUAL_DT, EQUAL_T = 1e-4, 0.1
# The peer script's own step for nu=1e-3 (it runs float32, batch 20, 256²).
PEER_SCRIPT_DT = 1e-4
# A point counts as diverged when its error exceeds this (the peer has no blow-up guard).
DIVERGED_ERROR = 1.0
# Short runs are repeated (best of up to 3) until this much wall time is spent, to cut noise.
MIN_TIMED_SECONDS = 1.0
# Section 5: runs shorter than REPEAT_BELOW_S seconds are timed ROUNDS times, interleaved.
ROUNDS, REPEAT_BELOW_S = 9, 1.0


# --- the peer ----------------------------------------------------------------------------------

def load_peer(path: Path) -> Callable[..., tuple[Tensor, Tensor]]:
    """``navier_stokes_2d`` from the peer file, without running the file's top-level script.

    Only the function definition and the top-level imports of names it uses are executed;
    the rest of the file (a CUDA data-generation job) is never run. Its code is unchanged.
    """
    tree = ast.parse(path.read_text(), filename=str(path))
    funcs = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == PEER_FUNCTION]
    if not funcs:
        raise SystemExit(f"peer: {path} defines no function {PEER_FUNCTION!r}")
    used = {n.id for n in ast.walk(funcs[0]) if isinstance(n, ast.Name)}

    def binds_used(node: ast.stmt) -> bool:
        if not isinstance(node, (ast.Import, ast.ImportFrom)):
            return False
        return any((a.asname or a.name).split(".")[0] in used for a in node.names)

    body = [n for n in tree.body if binds_used(n)] + funcs
    namespace: dict[str, Any] = {}
    exec(compile(ast.Module(body=body, type_ignores=[]), str(path), "exec"), namespace)
    return namespace[PEER_FUNCTION]


def peer_forcing(n: int, dtype: torch.dtype) -> Tensor:
    """The peer script's forcing ``0.1 (sin 2 pi (x+y) + cos 2 pi (x+y))`` on its grid, (n, n)."""
    t = torch.linspace(0, 1, n + 1, dtype=dtype)[:-1]
    X, Y = torch.meshgrid(t, t, indexing="ij")
    return 0.1 * (torch.sin(2 * math.pi * (X + Y)) + torch.cos(2 * math.pi * (X + Y)))


@contextlib.contextmanager
def default_dtype(dtype: torch.dtype) -> Iterator[None]:
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(old)


def run_peer(peer: Callable, w0: Tensor, dtype: torch.dtype, dt: float, t_final: float,
             *, constants_dtype: torch.dtype | None = None) -> Tensor:
    """Peer solve of ``w0`` (batch, n, n) to ``t_final``; vorticity (batch, n, n) in float64.

    ``constants_dtype`` is torch's default dtype during the call (the dtype of the peer's
    wavenumbers and factors); by default the run's dtype.
    """
    with default_dtype(constants_dtype or dtype):
        sol, _ = peer(w0.to(dtype), peer_forcing(w0.shape[-1], dtype), NU, t_final, dt, 1)
    return sol[..., -1].double()


# --- sciops ------------------------------------------------------------------------------------

def sciops_params(n: int, dtype: str, **changes: Any) -> pdes.Params:
    base = dict(forcing="fno", nu=NU, resolution=n, output_resolution=n, t_final=T_FINAL,
                n_records=1, dtype=dtype)
    return pdes.get("ns2d").Params(**{**base, **changes})


def run_sciops(w0: Tensor, dtype: str, **changes: Any) -> Tensor:
    """sciops solve of ``w0`` (batch, n, n); vorticity at the final time (batch, n, n), float64."""
    params = sciops_params(w0.shape[-1], dtype, **changes)
    return pdes.get("ns2d").solve(params, {"w0": w0})["vorticity"][:, -1].double()


def initial_vorticity(n: int, batch: int = BATCH) -> Tensor:
    """The shared initial condition: sciops' FNO GRF, seed 0, float64, (batch, n, n)."""
    params = sciops_params(n, "float64")
    return pdes.get("ns2d").sample_inputs(params, batch, torch.Generator().manual_seed(SEED))["w0"]


# --- measuring ---------------------------------------------------------------------------------

def rel_l2(w: Tensor, ref: Tensor) -> float:
    """Relative L2 error ``||w - ref|| / ||ref||`` per sample, averaged over the batch."""
    diff = (w - ref).flatten(1).norm(dim=1) / ref.flatten(1).norm(dim=1)
    return float(diff.mean())


def measure(fn: Callable[..., Tensor], *args: Any) -> tuple[Tensor | None, float, float]:
    """Result, wall and CPU seconds of ``fn(*args)``; best of up to 3 runs if a run is short.

    A ``SolverDiverged`` gives result None.
    """
    try:
        out, wall, cpu = timed(lambda: fn(*args))
    except SolverDiverged:
        return None, math.nan, math.nan
    spent = wall
    for _ in range(2):
        if spent >= MIN_TIMED_SECONDS:
            break
        _, w, c = timed(lambda: fn(*args))
        wall, cpu, spent = min(wall, w), min(cpu, c), spent + w
    return out, wall, cpu


def point(dt: float | None, steps: int | None, out: Tensor | None, wall: float, cpu: float,
          ref: Tensor) -> dict[str, Any]:
    err = math.nan if out is None else rel_l2(out, ref)
    ok = math.isfinite(err) and err <= DIVERGED_ERROR
    return {"dt": dt, "steps": steps, "wall_s": wall if ok else None,
            "cpu_s": cpu if ok else None, "rel_l2": err if ok else None,
            "status": "ok" if ok else "diverged"}


def time_to_target(points: list[dict[str, Any]], target: float, clock: str,
                   order_hint: float) -> dict[str, Any]:
    """Time for a solver to reach ``rel_l2 <= target`` from its ladder ``points`` (by dt, large
    to small).

    * ``interpolated``: linear in log(error)-log(time) between the last point above the target
      and the first at or below it;
    * ``measured``: the cheapest point already meets the target (an upper bound);
    * ``extrapolated``: no point meets it; the line through the two most accurate points is
      extended, if its slope shows the error still falling (at least half the expected
      ``order_hint`` in error vs. time); otherwise ``unreachable`` (an error floor).
    """
    key = f"{clock}_s"
    ok = [p for p in points if p["status"] == "ok"]
    for i, p in enumerate(ok):
        if p["rel_l2"] <= target:
            if i == 0:
                return {"time_s": p[key], "method": "measured", "dt": p["dt"]}
            q = ok[i - 1]
            frac = math.log(target / q["rel_l2"]) / math.log(p["rel_l2"] / q["rel_l2"])
            t = math.exp(math.log(q[key]) + frac * math.log(p[key] / q[key]))
            return {"time_s": t, "method": "interpolated", "dt": None}
    if len(ok) >= 2:
        a, b = ok[-2], ok[-1]
        slope = math.log(b["rel_l2"] / a["rel_l2"]) / math.log(b[key] / a[key])
        if slope <= -0.5 * order_hint:
            t = b[key] * (target / b["rel_l2"]) ** (1.0 / slope)
            return {"time_s": t, "method": "extrapolated", "dt": None,
                    "fitted_error_vs_time_slope": slope}
    return {"time_s": None, "method": "unreachable (error floor)", "dt": None}


# --- sections ----------------------------------------------------------------------------------

def reference(n: int) -> dict[str, Any]:
    """sciops ifrk4 float64 at the ladder's reference step, checked against half that step."""
    w0 = initial_vorticity(n)
    dt = LADDERS[n]["ref"]
    ref, wall, _ = timed(lambda: run_sciops(w0, "float64", scheme="ifrk4", dt=dt))
    half, wall_half, _ = timed(lambda: run_sciops(w0, "float64", scheme="ifrk4", dt=dt / 2))
    return {"field": ref, "dt": dt, "wall_s": wall, "check_dt": dt / 2, "check_wall_s": wall_half,
            "rel_l2_vs_half_dt": rel_l2(ref, half)}


def curves(peer: Callable, n: int, dtype: str, ref: Tensor) -> dict[str, Any]:
    """Error-vs-time ladders of the three solvers and the default CFL-step ifrk4 point."""
    w0, tdt = initial_vorticity(n), DTYPES[dtype]
    ladder = LADDERS[n]
    runners: dict[str, tuple[list[float], Callable[[float], Tensor]]] = {
        "peer": (ladder["fno"][dtype], lambda dt: run_peer(peer, w0, tdt, dt, T_FINAL)),
        "sciops_fno": (ladder["fno"][dtype],
                       lambda dt: run_sciops(w0, dtype, scheme="fno", dt=dt)),
        "sciops_ifrk4": (ladder["ifrk4"], lambda dt: run_sciops(w0, dtype, scheme="ifrk4", dt=dt)),
    }
    for dts, run in runners.values():  # warm-up: first-call FFT set-up is not the solver's cost
        run(dts[0])
    out: dict[str, Any] = {"points": {name: [] for name in runners}, "targets": {}}
    # Solvers sharing a step run back to back, so a change in machine load hits them alike.
    for dt in sorted({dt for dts, _ in runners.values() for dt in dts}, reverse=True):
        for name, (dts, run) in runners.items():
            if dt in dts:
                out["points"][name].append(point(dt, round(T_FINAL / dt), *measure(run, dt), ref))
    out["points"]["sciops_ifrk4_cfl"] = [
        point(None, None, *measure(lambda: run_sciops(w0, dtype, scheme="ifrk4")), ref)]
    orders = {"peer": 1.0, "sciops_fno": 1.0, "sciops_ifrk4": 4.0, "sciops_ifrk4_cfl": 4.0}
    out["targets"] = target_table(out["points"], orders, ("peer", "peer"),
                                  ("sciops_ifrk4", "sciops_fno"))
    return out


def target_table(points: dict[str, list], orders: dict[str, float], base: tuple[str, str],
                 others: tuple[str, ...]) -> dict[str, Any]:
    """Per clock and target: each solver's time to the target and the ratios of the time of
    ``base = (name, label)`` to the others' (``ratio_<label>_over_<name>``)."""
    tables: dict[str, Any] = {}
    for clock in ("wall", "cpu"):
        table: dict[str, Any] = {}
        for target in TARGETS:
            row = {name: time_to_target(pts, target, clock, orders[name])
                   for name, pts in points.items()}
            base_t = row[base[0]]["time_s"]
            for name in others:
                t = row[name]["time_s"]
                row[f"ratio_{base[1]}_over_{name}"] = base_t / t if base_t and t else None
            table[f"{target:g}"] = row
        tables[clock] = table
    return tables


def measure_interleaved(runs: dict[Any, Callable[[], Tensor]]
                        ) -> dict[Any, tuple[Tensor | None, float, float]]:
    """Result, median wall and median CPU seconds of each run: every run once, then those
    under ``REPEAT_BELOW_S`` again in ``ROUNDS - 1`` rounds through all of them, so a change
    in machine load hits every run alike. A ``SolverDiverged`` gives result None."""
    out: dict[Any, tuple[Tensor | None, float, float]] = {}
    times: dict[Any, tuple[list[float], list[float]]] = {}
    for key, fn in runs.items():
        try:
            result, wall, cpu = timed(fn)
        except SolverDiverged:
            out[key] = None, math.nan, math.nan
            continue
        out[key] = result, wall, cpu
        times[key] = [wall], [cpu]
    again = [key for key, (walls, _) in times.items() if walls[0] < REPEAT_BELOW_S]
    for _ in range(ROUNDS - 1):
        for key in again:
            _, wall, cpu = timed(runs[key])
            times[key][0].append(wall)
            times[key][1].append(cpu)
    return {key: (out[key][0], *map(statistics.median, times[key])) if key in times else out[key]
            for key in runs}


def schemes(n: int, ref: Tensor) -> dict[str, Any]:
    """float64 ladders of sciops ``etdrk4``, ``ifrk4`` and ``fno`` (the FNO generator's scheme)
    and their CFL-step points; times to the targets and the ratios to ``fno``."""
    w0, ladder = initial_vorticity(n), LADDERS[n]
    names = {"sciops_etdrk4": "etdrk4", "sciops_ifrk4": "ifrk4", "sciops_fno": "fno"}
    steps = {"sciops_etdrk4": ladder["ifrk4"], "sciops_ifrk4": ladder["ifrk4"],
             "sciops_fno": ladder["fno"]["float64"]}

    def runner(scheme: str, dt: float | None) -> Callable[[], Tensor]:
        return lambda: run_sciops(w0, "float64", scheme=scheme, dt=dt)

    for name, scheme in names.items():  # warm-up
        runner(scheme, steps[name][0])()
    runs = {(name, dt): runner(scheme, dt) for dt in sorted(
        {dt for dts in steps.values() for dt in dts}, reverse=True)
        for name, scheme in names.items() if dt in steps[name]}
    runs.update({(f"sciops_{scheme}_cfl", None): runner(scheme, None)
                 for scheme in ("etdrk4", "ifrk4")})
    out: dict[str, Any] = {"points": {name: [] for name, _ in runs}, "targets": {}}
    for (name, dt), measured in measure_interleaved(runs).items():
        n_steps = None if dt is None else round(T_FINAL / dt)
        out["points"][name].append(point(dt, n_steps, *measured, ref))
    orders = {"sciops_fno": 1.0, "sciops_ifrk4": 4.0, "sciops_etdrk4": 4.0,
              "sciops_ifrk4_cfl": 4.0, "sciops_etdrk4_cfl": 4.0}
    out["targets"] = target_table(out["points"], orders, ("sciops_fno", "fno"),
                                  ("sciops_etdrk4", "sciops_ifrk4"))
    return out


def equal_dt(peer: Callable, n: int, dtype: str) -> dict[str, Any]:
    """Peer vs sciops ``scheme="fno"`` at the same step ``EQUAL_DT`` over ``EQUAL_T``."""
    w0, tdt = initial_vorticity(n), DTYPES[dtype]
    steps = math.ceil(EQUAL_T / EQUAL_DT)

    def run_p(w: Tensor, t: float = EQUAL_T) -> Tensor:
        return run_peer(peer, w, tdt, EQUAL_DT, t)

    def run_s(w: Tensor, t: float = EQUAL_T) -> Tensor:
        return run_sciops(w, dtype, scheme="fno", dt=EQUAL_DT, t_final=t)

    run_p(w0, 10 * EQUAL_DT), run_s(w0, 10 * EQUAL_DT)  # warm-up
    wp, wall_p, cpu_p = measure(lambda: run_p(w0))
    ws, wall_s, cpu_s = measure(lambda: run_s(w0))
    scale = float(ws.abs().max())
    res: dict[str, Any] = {
        "dt": EQUAL_DT, "t_final": EQUAL_T, "steps": steps, "batch": BATCH,
        "peer_ms_per_step": {"wall": 1e3 * wall_p / steps, "cpu": 1e3 * cpu_p / steps},
        "sciops_fno_ms_per_step": {"wall": 1e3 * wall_s / steps, "cpu": 1e3 * cpu_s / steps},
        "ratio_peer_over_sciops": {"wall": wall_p / wall_s, "cpu": cpu_p / cpu_s},
        "max_abs_diff": float((wp - ws).abs().max()),
        "max_abs_diff_over_max_abs_w": float((wp - ws).abs().max()) / scale,
    }
    if dtype == "float64":
        # As published: float64 input but float32 constants (torch's default dtype).
        pub = run_peer(peer, w0, tdt, EQUAL_DT, EQUAL_T, constants_dtype=torch.float32)
        res["peer_as_published_max_abs_diff"] = float((pub - ws).abs().max())
        # The codes differ only in the Nyquist wavenumber of the first derivatives (sciops
        # zeroes it, the peer uses -n/2); without Nyquist content they agree to round-off.
        # 100 steps suffice to show it.
        w0_hat = torch.fft.rfft2(w0)
        w0_hat[:, n // 2, :] = 0
        w0_hat[..., n // 2] = 0
        smooth = torch.fft.irfft2(w0_hat, s=(n, n))
        t_check = 100 * EQUAL_DT
        res["without_nyquist_mode"] = {
            "t_final": t_check,
            "max_abs_diff": float((run_p(smooth, t_check) - run_s(smooth, t_check)).abs().max())}
    return res


def _throughput_child(kind: str, peer_path: str, threads: int, t_span: float) -> dict[str, Any]:
    """In a fresh process: time ``kind`` ("sciops" or "peer") on the recipe's batch."""
    torch.set_num_threads(threads)
    recipe = load_recipe("ns2d-fno-nu1e-3")
    p = recipe.params
    params = p.replace(t_final=t_span, n_records=1)
    ns = pdes.get("ns2d")
    w0 = ns.sample_inputs(params, recipe.batch_size, torch.Generator().manual_seed(SEED))["w0"]
    rss_before = peak_rss_mib()
    if kind == "sciops":
        _, wall, cpu = timed(lambda: ns.solve(params, {"w0": w0}))
    else:
        peer = load_peer(Path(peer_path))
        _, wall, cpu = timed(lambda: run_peer(peer, w0, params.torch_dtype, PEER_SCRIPT_DT,
                                              t_span))
    scale = p.t_final / t_span
    per_batch = {"wall": wall * scale, "cpu": cpu * scale}
    return {"batch": recipe.batch_size, "t_span_timed": t_span, "t_final_recipe": p.t_final,
            "timed_s": {"wall": wall, "cpu": cpu}, "seconds_per_batch_to_T": per_batch,
            "samples_per_s": {k: recipe.batch_size / v for k, v in per_batch.items()},
            "peak_rss_mib": peak_rss_mib(), "rss_after_setup_mib": rss_before}



def throughput(peer_path: Path, threads: int) -> dict[str, Any]:
    """Recipe throughput (256² solve, 64² stored, batch 20, float32), sciops default vs the
    peer at its script's dt; each in a fresh process so its peak RSS is its own."""
    ctx = multiprocessing.get_context("spawn")
    spans = {"sciops": 1.0, "peer": 50 * PEER_SCRIPT_DT}
    out: dict[str, Any] = {}
    for kind, span in spans.items():
        with concurrent.futures.ProcessPoolExecutor(1, mp_context=ctx) as pool:
            out[kind] = pool.submit(_throughput_child, kind, str(peer_path), threads, span).result()
    out["ratio_sciops_over_peer"] = {
        k: out["sciops"]["samples_per_s"][k] / out["peer"]["samples_per_s"][k]
        for k in ("wall", "cpu")}
    out["note"] = (
        "Timed over t_span_timed and extrapolated linearly to the recipe's T=50 (not run in "
        "full). sciops: recipe defaults (ifrk4, CFL-adaptive dt, float32) over one record "
        "interval. peer: its script's dt=1e-4, float32, record_steps=1 (the script's "
        "record_steps=200 would add a 20x256x256x200 float32 buffer, 1.0 GiB).")
    return out


# --- report ------------------------------------------------------------------------------------

def _fmt_time(entry: dict[str, Any]) -> str:
    if entry["time_s"] is None:
        return "unreachable"
    tag = {"interpolated": "i", "measured": "m", "extrapolated": "EXTRAP"}[entry["method"]]
    return f"{entry['time_s']:.3g}s ({tag})"


def print_report(results: dict[str, Any]) -> None:
    clock = results["settings"]["headline_clock"]
    other = "wall" if clock == "cpu" else "cpu"
    print(f"times: {clock} clock ({results['settings']['headline_clock_why']}); "
          f"{other} clock in brackets / in the json")
    for key, ref in results["reference"].items():
        print(f"reference {key}: ifrk4 float64 dt={ref['dt']:g}, rel. L2 vs dt/2 = "
              f"{ref['rel_l2_vs_half_dt']:.2e}")
    for key, cur in results["curves"].items():
        print(f"\n== {key}: time to reach rel. L2 error at T=1 "
              "(i=interpolated, m=cheapest measured point, EXTRAP=extrapolated) ==")
        rows, rows_other = cur["targets"][clock], cur["targets"][other]
        print(f"{'solver':<18}" + "".join(f"{'<= ' + t:>24}" for t in rows))
        for name in cur["points"]:
            print(f"{name:<18}" + "".join(f"{_fmt_time(rows[t][name]):>24}" for t in rows))
        for name in ("sciops_ifrk4", "sciops_fno"):
            cells = []
            for t in rows:
                r, ro = (x[t][f"ratio_peer_over_{name}"] for x in (rows, rows_other))
                cells.append("-" if r is None or ro is None else f"{r:.3g}x ({ro:.3g}x)")
            print(f"{'peer/' + name[7:]:<18}" + "".join(f"{c:>24}" for c in cells))
    print("\n== equal dt (sciops scheme='fno' vs peer) ==")
    for key, e in results["equal_dt"].items():
        print(f"{key}: peer {e['peer_ms_per_step'][clock]:.2f} ms/step, sciops "
              f"{e['sciops_fno_ms_per_step'][clock]:.2f} ms/step, ratio "
              f"{e['ratio_peer_over_sciops'][clock]:.2f}x "
              f"({e['ratio_peer_over_sciops'][other]:.2f}x), max|diff|/max|w| "
              f"{e['max_abs_diff_over_max_abs_w']:.1e}")
    th = results["throughput"]
    print("\n== throughput, ns2d-fno-nu1e-3 (256², batch 20, float32, extrapolated to T=50) ==")
    for kind in ("sciops", "peer"):
        r = th[kind]
        print(f"{kind:<7} {r['samples_per_s'][clock]:.3g} samples/s "
              f"({r['samples_per_s'][other]:.3g}), {r['seconds_per_batch_to_T'][clock]:.0f} s "
              f"per batch of {r['batch']}, peak RSS {r['peak_rss_mib']:.0f} MiB")
    print(f"sciops/peer throughput: {th['ratio_sciops_over_peer'][clock]:.3g}x "
          f"({th['ratio_sciops_over_peer'][other]:.3g}x)")


def print_schemes(results: dict[str, Any]) -> None:
    clock = results["settings"]["headline_clock"]
    for key, cur in results["schemes"].items():
        rows = cur["targets"][clock]
        print(f"\n== schemes {key}: {clock} time to reach rel. L2 error at T=1 (median of "
              "interleaved repeats; i=interpolated, m=cheapest measured point, "
              "EXTRAP=extrapolated) ==")
        print(f"{'solver':<20}" + "".join(f"{'<= ' + t:>24}" for t in rows))
        for name in cur["points"]:
            print(f"{name:<20}" + "".join(f"{_fmt_time(rows[t][name]):>24}" for t in rows))
        for name in ("sciops_etdrk4", "sciops_ifrk4"):
            cells = [rows[t][f"ratio_fno_over_{name}"] for t in rows]
            print(f"{'fno/' + name[7:]:<20}"
                  + "".join(f"{'-' if r is None else f'{r:.3g}x':>24}" for r in cells))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--peer", type=Path, default=REPO / "third_party/fno_ns/ns_2d.py",
                    help="path of the FNO generator's ns_2d.py")
    ap.add_argument("--threads", type=int, default=1, help="torch threads, same for both codes")
    ap.add_argument("--resolutions", type=int, nargs="+", default=[256, 64],
                    choices=sorted(LADDERS))
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks/results/ns2d.json")
    ap.add_argument("--sections", choices=("all", "schemes"), default="all",
                    help="'schemes': only section 5, written into the existing --out file")
    args = ap.parse_args(argv)
    if args.sections == "schemes":
        return main_schemes(args)
    if not args.peer.is_file():
        print(f"peer file {args.peer} not found: copy neuraloperator's "
              "data_generation/navier_stokes/ns_2d.py there (see benchmarks/README.md)",
              file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    peer = load_peer(args.peer)
    start = time.perf_counter()
    results: dict[str, Any] = {
        "benchmark": "ns2d accuracy per cost vs the FNO data generator",
        "machine": machine_info(),
        "settings": {
            "peer": str(args.peer), "nu": NU, "t_final": T_FINAL, "batch": BATCH, "seed": SEED,
            "forcing": "fno", "targets": list(TARGETS), "threads": args.threads,
            "error": "relative L2 of the vorticity at T=1 per sample, mean over the batch, "
                     "against the float64 sciops ifrk4 reference at the same resolution "
                     "(time-discretisation error only)",
            "timing": "wall_s: wall clock; cpu_s: process CPU time. Runs shorter than "
                      f"{MIN_TIMED_SECONDS:g}s are best of up to 3.",
            "headline_clock": "cpu" if args.threads == 1 else "wall",
            "headline_clock_why": "one thread: process CPU time estimates the wall time on an "
                                  "idle machine and ignores time descheduled by other load"
                                  if args.threads == 1 else "several threads: wall clock",
            "peer_constants_dtype": "torch default dtype set to the run dtype (see docstring)",
            "ladders": {str(n): LADDERS[n] for n in args.resolutions},
        },
        "reference": {}, "curves": {}, "equal_dt": {}, "schemes": {},
    }
    for n in args.resolutions:
        ref = reference(n)
        results["reference"][f"{n}"] = {k: v for k, v in ref.items() if k != "field"}
        for dtype in DTYPES:
            results["curves"][f"{n}-{dtype}"] = curves(peer, n, dtype, ref["field"])
            results["equal_dt"][f"{n}-{dtype}"] = equal_dt(peer, n, dtype)
        results["schemes"][f"{n}-float64"] = schemes(n, ref["field"])
        write_json(args.out, results)  # partial results survive an interruption
    results["throughput"] = throughput(args.peer, args.threads)
    results["total_wall_s"] = time.perf_counter() - start
    write_json(args.out, results)
    print_report(results)
    print_schemes(results)
    print(f"\nwrote {args.out.relative_to(REPO) if args.out.is_relative_to(REPO) else args.out}")
    return 0


def main_schemes(args: argparse.Namespace) -> int:
    """Section 5 alone: ``schemes`` and its run's ``schemes_run`` (machine, time) replaced in
    ``args.out``, every other entry kept."""
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    results = json.loads(args.out.read_text()) if args.out.is_file() else {}
    results.setdefault("settings", {})["headline_clock"] = "cpu" if args.threads == 1 else "wall"
    results["schemes"] = {}
    results["schemes_run"] = {"machine": machine_info(), "threads": args.threads,
                              "timing": f"median of {ROUNDS} interleaved rounds for runs "
                                        f"under {REPEAT_BELOW_S:g} s, else one run"}
    for n in args.resolutions:
        ref = reference(n)
        results["schemes"][f"{n}-float64"] = {
            **schemes(n, ref["field"]),
            "reference": {k: v for k, v in ref.items() if k != "field"}}
        write_json(args.out, results)  # partial results survive an interruption
    results["schemes_run"]["total_wall_s"] = time.perf_counter() - start
    write_json(args.out, results)
    print_schemes(results)
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
