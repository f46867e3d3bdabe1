"""fno_step benchmark: training step and spectral conv of sciops' FNO/TFNO vs neuraloperator's.

Peer: neuraloperator's ``FNO`` / ``TFNO`` and ``SpectralConv`` as shipped (the installed
``neuraloperator`` package; nothing to copy into ``third_party/``). Ours:
``sciops.models.fno.FNO`` built from the peer model with ``FNO.from_neuralop`` (the same
weights, the same function: the first losses are recorded to show it) and
``sciops.models.spectral_conv.SpectralConv.from_neuralop`` for the layer alone.

Cases (width 32, 4 layers, 1 input and 1 output channel, float32):

* ``2d``: 64², modes 16, batch 16;
* ``3d``: 32³, modes 8, batch ``--batch-3d`` (default 16).

For each case and each of FNO (dense) and TFNO (Tucker, rank 0.1):

1. **step**: forward + backward + ``AdamW.step`` of the whole model on a random batch,
   peer and ours alternately, ``--repeats`` times each after one warm-up step;
2. **conv**: forward + backward of one spectral convolution at the model's hidden shape
   (``(batch, 32, *space)``, gradient w.r.t. input and weights), alternately likewise;
3. **memory**: peak resident memory of one training step, each model in a fresh process
   (peak RSS, ``VmHWM``, during two steps minus the RSS before them), once with glibc's
   default malloc and once with ``MALLOC_MMAP_THRESHOLD_=131072`` so that RSS follows the
   live tensors (the default heap keeps freed medium blocks, which blurs the comparison);
   the table shows the latter;
4. **profile**: where our step spends its time (torch.profiler, self CPU time by operator
   family and the top operators).

Times are medians; with one thread (the default) the headline numbers are process CPU
seconds, which estimate the wall time on an idle machine (the benchmark machine is shared);
wall medians are stored alongside. Ratios are peer / ours (> 1: ours is faster).

    .venv/bin/python benchmarks/fno_step.py                  # both cases, ~40 min on 2 cores
    .venv/bin/python benchmarks/fno_step.py --cases 2d --repeats 11  # re-measure 2d only

Results are merged into ``--out`` (default ``benchmarks/results/fno_step.json``) case by case.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import torch
from _common import machine_info, timed, write_json
from neuralop.layers.spectral_convolution import SpectralConv as PeerConv
from neuralop.models import FNO as PeerFNO
from neuralop.models import TFNO as PeerTFNO

from sciops.models.fno import FNO
from sciops.models.spectral_conv import SpectralConv

WIDTH, LAYERS = 32, 4
CASES = {"2d": {"space": (64, 64), "n_modes": (16, 16), "batch": 16},
         "3d": {"space": (32, 32, 32), "n_modes": (8, 8, 8), "batch": 16}}
VARIANTS = {"fno": (PeerFNO, {}), "tfno": (PeerTFNO, {"factorization": "tucker", "rank": 0.1})}
GOALS = {"conv_ratio": 2.0, "step_ratio": 1.5, "memory": "ours <= peer"}
FAMILIES = {
    "gemm": ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm"),
    "fft": ("aten::_fft_r2c", "aten::_fft_c2r", "aten::_fft_c2c"),
    "conv1x1 (mkldnn)": ("aten::mkldnn_convolution", "aten::convolution_backward"),
    "copies / layout": ("aten::copy_", "aten::cat", "aten::clone", "aten::index_select",
                        "aten::index_copy", "aten::roll", "aten::constant_pad_nd"),
    "gelu": ("aten::gelu", "aten::gelu_backward"),
}


def build(case: str, variant: str, seed: int = 0) -> tuple[torch.nn.Module, torch.nn.Module]:
    """The peer model and ours with the same weights."""
    torch.manual_seed(seed)
    cls, kw = VARIANTS[variant]
    peer = cls(n_modes=CASES[case]["n_modes"], in_channels=1, out_channels=1,
               hidden_channels=WIDTH, n_layers=LAYERS, **kw)
    return peer, FNO.from_neuralop(peer)


def batch(case: str, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    c = CASES[case]
    shape = (c["batch"], 1, *c["space"])
    return torch.randn(shape, generator=g), torch.randn(shape, generator=g)


def stepper(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor):
    """A closure running one training step; returns the loss before the update."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def step() -> float:
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        return loss.item()

    return step


def alternate(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, dict[str, float]]:
    """Median CPU and wall seconds of each closure, run alternately after one warm-up."""
    for fn in fns.values():
        fn()
    samples = defaultdict(list)
    for _ in range(repeats):
        for name, fn in fns.items():
            _, wall, cpu = timed(fn)
            samples[name].append((cpu, wall))
    return {name: {"cpu_s": statistics.median(c for c, _ in s),
                   "wall_s": statistics.median(w for _, w in s),
                   "cpu_s_all": [round(c, 4) for c, _ in s]} for name, s in samples.items()}


def conv_closures(case: str, variant: str) -> dict[str, Callable[[], None]]:
    torch.manual_seed(2)
    c = CASES[case]
    kw = VARIANTS[variant][1]
    peer = PeerConv(WIDTH, WIDTH, c["n_modes"], implementation="factorized",
                    **({"factorization": kw["factorization"], "rank": kw["rank"]} if kw else {}))
    ours = SpectralConv.from_neuralop(peer)
    x = torch.randn(c["batch"], WIDTH, *c["space"], requires_grad=True)
    grad = torch.randn_like(x)

    def run(conv):
        def f():
            conv(x).backward(grad)
        return f

    return {"peer": run(peer), "ours": run(ours)}


def _status_mib(field: str) -> float:
    """``VmRSS`` / ``VmHWM`` of this process in MiB. Not ``getrusage``: on Linux its peak
    survives fork + exec, so a child started by a big parent would report the parent's."""
    with open("/proc/self/status") as f:
        line = next(line for line in f if line.startswith(field + ":"))
    return int(line.split()[1]) / 1024


def memory_child(case: str, variant: str, impl: str) -> None:
    """Entry of the fresh process of the memory measurement: prints one JSON line."""
    peer, ours = build(case, variant)
    model = peer if impl == "peer" else ours
    del peer, ours
    x, y = batch(case)
    step = stepper(model, x, y)
    before = _status_mib("VmRSS")
    step()
    step()
    peak = _status_mib("VmHWM")
    print(json.dumps({"peak_step_mib": peak - before, "peak_rss_mib": peak}))


def memory(case: str, variant: str, impl: str, threads: int) -> dict[str, float]:
    """Peak step memory in a fresh process, with glibc's default malloc settings and with
    every block >= 128 KiB mmap-ed (freed memory then leaves the process at once, so RSS
    follows the live tensors instead of what the heap keeps cached)."""
    cmd = [sys.executable, __file__, "--memory-child", case, variant, impl,
           "--threads", str(threads), "--batch-3d", str(CASES["3d"]["batch"])]
    out = {}
    for key, env in (("default_malloc", {}), ("live", {"MALLOC_MMAP_THRESHOLD_": "131072"})):
        run = subprocess.run(cmd, capture_output=True, text=True, check=True,
                             env={**os.environ, **env})
        out[key] = json.loads(run.stdout.strip().splitlines()[-1])
    return out


def profile(step: Callable[[], float], top: int = 12) -> dict:
    """Self CPU time of our step by operator family, and the top operators."""
    step()
    with torch.profiler.profile(record_shapes=True) as prof:
        for _ in range(2):
            step()
    events = prof.key_averages(group_by_input_shape=True)
    total = sum(e.self_cpu_time_total for e in events)
    families = defaultdict(float)
    for e in events:
        family = next((f for f, names in FAMILIES.items() if e.key in names), "other element-wise")
        families[family] += e.self_cpu_time_total / total
    ranked = sorted(events, key=lambda e: -e.self_cpu_time_total)[:top]
    by_share = sorted(families.items(), key=lambda kv: -kv[1])
    return {"share_by_family": {k: round(v, 3) for k, v in by_share},
            "top_ops": [{"op": e.key, "shapes": str(e.input_shapes)[:120], "calls": e.count // 2,
                         "share": round(e.self_cpu_time_total / total, 3)} for e in ranked]}


def run_case(case: str, variant: str, repeats: int, threads: int) -> dict:
    peer, ours = build(case, variant)
    x, y = batch(case)
    steps = {"peer": stepper(peer, x, y), "ours": stepper(ours, x, y)}
    first = {name: fn() for name, fn in steps.items()}  # same weights: same first loss
    step_times = alternate(steps, repeats)
    conv_times = alternate(conv_closures(case, variant), repeats)
    mem = {impl: memory(case, variant, impl, threads) for impl in ("peer", "ours")}
    return {
        "config": {**CASES[case], "width": WIDTH, "layers": LAYERS, "variant": variant,
                   "repeats": repeats},
        "first_loss": first,
        "step": step_times,
        "conv": conv_times,
        "memory": mem,
        "ratios": {
            "step_cpu": step_times["peer"]["cpu_s"] / step_times["ours"]["cpu_s"],
            "step_wall": step_times["peer"]["wall_s"] / step_times["ours"]["wall_s"],
            "conv_cpu": conv_times["peer"]["cpu_s"] / conv_times["ours"]["cpu_s"],
            "conv_wall": conv_times["peer"]["wall_s"] / conv_times["ours"]["wall_s"],
            "peak_step_memory_live": (mem["peer"]["live"]["peak_step_mib"]
                                      / mem["ours"]["live"]["peak_step_mib"]),
            "peak_step_memory_default_malloc": (mem["peer"]["default_malloc"]["peak_step_mib"]
                                                / mem["ours"]["default_malloc"]["peak_step_mib"]),
        },
        "profile_ours": profile(steps["ours"]),
    }


def table(results: dict) -> str:
    head = (f"{'case':<9}{'step peer':>11}{'step ours':>11}{'ratio':>7}"
            f"{'conv peer':>11}{'conv ours':>11}{'ratio':>7}{'mem peer':>10}{'mem ours':>10}")
    lines = [head, "-" * len(head)]
    for name, r in results.items():
        s, c, m = r["step"], r["conv"], r["memory"]
        ratio = r["ratios"]
        lines.append(
            f"{name:<9}{s['peer']['cpu_s']:>10.3f}s{s['ours']['cpu_s']:>10.3f}s"
            f"{ratio['step_cpu']:>7.2f}{c['peer']['cpu_s'] * 1e3:>9.1f}ms"
            f"{c['ours']['cpu_s'] * 1e3:>9.1f}ms{ratio['conv_cpu']:>7.2f}"
            f"{m['peer']['live']['peak_step_mib']:>7.0f}MiB"
            f"{m['ours']['live']['peak_step_mib']:>7.0f}MiB")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", nargs="+", choices=sorted(CASES), default=sorted(CASES))
    p.add_argument("--variants", nargs="+", choices=sorted(VARIANTS), default=sorted(VARIANTS))
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--batch-3d", type=int, default=CASES["3d"]["batch"])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "fno_step.json")
    p.add_argument("--memory-child", nargs=3, metavar=("CASE", "VARIANT", "IMPL"),
                   help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    CASES["3d"]["batch"] = args.batch_3d
    if args.memory_child:
        memory_child(*args.memory_child)
        return 0
    # Runs merge into the results file, so cases can be (re)measured one at a time.
    saved = json.loads(args.out.read_text()) if args.out.is_file() else {}
    results = saved.get("results", {})
    for case in args.cases:
        for variant in args.variants:
            name = f"{case}-{variant}"
            print(f"== {name}", flush=True)
            info = machine_info()
            results[name] = run_case(case, variant, args.repeats, args.threads)
            results[name]["machine"] = {**info, "load_average_at_end": list(os.getloadavg())}
            print(json.dumps(results[name]["ratios"]), flush=True)
            write_json(args.out, {"goals": GOALS, "results": dict(sorted(results.items()))})
    print(table({k: v for k, v in sorted(results.items())}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
