"""Model zoo side by side: FNO, TFNO, DeepONet, MultiONet, LSM, MgNO at an equal CPU budget.

Datasets (CPU-sized subsets, regenerated here with the sciops generators):

* ``darcy2d-fno-r85``: the FNO Darcy recipe (thresholded coefficient), solved on a coarser
  grid and stored at ``--darcy-resolution`` (default 43², i.e. solver 211² and every 5th
  point; 85 reproduces the recipe's resolution at ~4x the cost);
* ``ns2d-fno-nu1e-3``: the FNO Navier-Stokes recipe solved at ``2 x --ns-resolution`` and
  stored at ``--ns-resolution`` (default 32²) over t = 0..20; vorticity at t = 0..9 -> 10..19.

Each model trains with the one sciops trainer (AdamW, cosine schedule, relative L2 loss,
normalized inputs/targets) on ``--train`` samples and is tested on the next ``--test``.
Equal budget: a short calibration run measures the process CPU seconds per training step,
and the epoch count is set so the whole cosine schedule fits in ``--minutes`` of CPU; with
one torch thread, CPU seconds estimate the wall time on an idle machine (the benchmark
machine may be shared, so wall times are stored too). Reported per model: test relative
L2, parameters, train CPU/wall seconds, inference samples/s (CPU, batch 50).

Published references (full data and full training, GPU) are listed beside: LSM paper
(Wu et al. 2023, Table 2) Darcy: LSM 0.0065, FNO 0.0108; DGNO paper (Zang &
Koutsourelakis 2025) on *smooth* (log-normal) Darcy: MultiONet 0.0048, DeepONet 0.0063.

Usage: ``python benchmarks/zoo.py [--minutes 1.5] [--train 200 --test 50]``; writes
``benchmarks/results/zoo.json``. Default run: 12 x 1.5 CPU-min of training + ~3 min of data
generation and calibration (measured: 35 min wall on 2 cores shared at load average ~6).
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_info, timed, write_json  # noqa: E402

from sciops.data import generate, load_recipe  # noqa: E402
from sciops.train import Trainer, build_config  # noqa: E402
from sciops.train.predict import load_run  # noqa: E402
from sciops.train.task import ordered_batches  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "zoo.json"
MODELS = ("fno", "tfno", "deeponet", "multionet", "lsm", "mgno")
PUBLISHED = {
    "darcy2d-fno-r85": {
        "lsm": {"test_rel_l2": 0.0065, "source": "Wu et al. 2023 (LSM), Table 2, Darcy 85^2, "
                "1000 train / 200 test"},
        "fno": {"test_rel_l2": 0.0108, "source": "as reported in Wu et al. 2023 (LSM), Table 2"},
        "multionet": {"test_rel_l2": 0.0048, "source": "Zang & Koutsourelakis 2025 (DGNO), "
                      "smooth (log-normal) Darcy, not the thresholded coefficient"},
        "deeponet": {"test_rel_l2": 0.0063, "source": "Zang & Koutsourelakis 2025 (DGNO), "
                     "smooth (log-normal) Darcy, not the thresholded coefficient"},
    },
    "ns2d-fno-nu1e-3": {},
}


def model_configs(dataset: str, n: int, channels: int) -> dict[str, dict[str, Any]]:
    """CPU-sized configurations of every model for a grid of ``n`` points per axis."""
    periodic = dataset.startswith("ns2d")
    modes = min(12, n // 2)
    sensors = [n // 2] * 2 if periodic else [(n - 1) // 2 + 1] * 2
    latent = 128 if channels == 1 else 64
    return {
        "fno": {"name": "fno", "n_modes": [modes, modes], "hidden_channels": 32, "n_layers": 4,
                **({} if periodic else {"domain_padding": 0.1})},
        "tfno": {"name": "tfno", "n_modes": [modes, modes], "hidden_channels": 32,
                 "n_layers": 4, "factorization": "tucker", "rank": 0.25,
                 **({} if periodic else {"domain_padding": 0.1})},
        "deeponet": {"name": "deeponet", "sensors": sensors, "latent": latent,
                     "branch_layers": [256], "trunk_layers": [128, 128, 128],
                     "grid": "periodic" if periodic else "closed"},
        "multionet": {"name": "multionet", "sensors": sensors, "latent": latent,
                      "branch_layers": [256], "trunk_layers": [128], "sum_layers": 3,
                      "grid": "periodic" if periodic else "closed"},
        "lsm": {"name": "lsm", "width": 32, "levels": 3, "patch_size": 3, "heads": 8,
                "grid": "periodic" if periodic else "closed"},
        "mgno": {"name": "mgno", "hidden_channels": 32, "n_layers": 4, "levels": 4,
                 "padding": "circular" if periodic else "zeros"},
    }


def make_datasets(args: argparse.Namespace, root: Path) -> dict[str, dict[str, Any]]:
    """Generate the datasets of ``args.datasets``; returns name -> {path, data config, grid
    size, generation s}."""
    total = args.train + args.test
    n_d, n_ns = args.darcy_resolution, args.ns_resolution
    specs = {
        "darcy2d-fno-r85": (
            {"resolution": str((n_d - 1) * 5 + 1), "output_resolution": str(n_d),
             "samples_per_shard": "50", "batch_size": "10"},
            {"inputs": ["a"], "targets": ["u"]}, n_d),
        "ns2d-fno-nu1e-3": (
            {"resolution": str(2 * n_ns), "output_resolution": str(n_ns), "t_final": "20",
             "n_records": "20", "samples_per_shard": "50", "batch_size": "25"},
            {"inputs": ["vorticity"], "targets": ["vorticity"], "in_steps": 10,
             "out_steps": 10}, n_ns),
    }
    out = {}
    for name, (overrides, data, n) in specs.items():
        if name not in args.datasets:
            continue
        recipe = load_recipe(name).with_changes(samples=total, overrides=overrides)
        report, wall, cpu = timed(functools.partial(generate, recipe, root / name,
                                                    progress=False))
        out[name] = {"path": report.out, "data": data, "n": n, "overrides": overrides,
                     "generation_cpu_s": round(cpu, 1), "generation_wall_s": round(wall, 1)}
        print(f"{name}: {total} samples at {n}^2 generated in {wall:.0f} s", flush=True)
    return out


def _raw(model: dict[str, Any], data_path: Path, data: dict[str, Any], args: argparse.Namespace,
         epochs: int) -> dict[str, Any]:
    return {"name": model["name"], "model": model,
            "data": {"dataset": str(data_path), **data, "train_samples": args.train,
                     "test_samples": args.test},
            "train": {"epochs": epochs, "batch_size": args.batch_size, "lr": 1e-3,
                      "weight_decay": 1e-4, "scheduler": "cosine", "loss": "rel_l2",
                      "eval_every": epochs}}


def calibrate(model: dict[str, Any], ds: dict[str, Any], args: argparse.Namespace,
              run_dir: Path) -> float:
    """Process CPU seconds per training step (data loading included), after one warm-up."""
    trainer = Trainer(build_config(_raw(model, ds["path"], ds["data"], args, 1)), run_dir,
                      progress=False)
    trainer.fit(max_steps=1)
    steps = 4
    _, _, cpu = timed(lambda: trainer.fit(resume=True, max_steps=1 + steps))
    return cpu / steps


def inference_rate(run_dir: Path, ds: dict[str, Any], args: argparse.Namespace,
                   trainer: Trainer) -> float:
    """Samples per CPU second of the trained surrogate on the test inputs, batch 50."""
    loaded = load_run(run_dir)
    inputs = [x for x, _ in ordered_batches(trainer.task.test_sets["test_rel_l2"], 50)]
    loaded.predict(inputs[0])  # warm-up
    _, _, cpu = timed(lambda: [loaded.predict(x) for x in inputs])
    return sum(len(x) for x in inputs) / cpu


def run_model(name: str, model: dict[str, Any], ds: dict[str, Any], args: argparse.Namespace,
              root: Path) -> dict[str, Any]:
    run_dir = root / "runs" / f"{ds['path'].name}-{name}"
    per_step = calibrate(model, ds, args, root / "calib" / f"{ds['path'].name}-{name}")
    steps_per_epoch = math.ceil(args.train / args.batch_size)
    epochs = max(1, int(args.minutes * 60 / (per_step * steps_per_epoch)))
    cfg = build_config(_raw(model, ds["path"], ds["data"], args, epochs))
    cfg.train = cfg.train.replace(max_minutes=10 * args.minutes)  # wall-clock guard
    trainer = Trainer(cfg, run_dir, progress=False)
    metrics, wall, cpu = timed(trainer.fit)
    if "test_rel_l2" not in metrics:  # the wall-clock guard stopped it before the evaluation
        metrics["test_rel_l2"] = trainer.evaluate()
    result = {
        "test_rel_l2": metrics["test_rel_l2"],
        "parameters": sum(p.numel() for p in trainer.model.parameters()),
        "epochs_planned": epochs, "steps": trainer.step,
        "train_cpu_s": round(cpu, 1), "train_wall_s": round(wall, 1),
        "calibrated_cpu_s_per_step": round(per_step, 4),
        "inference_samples_per_s": round(inference_rate(run_dir, ds, args, trainer), 1),
        "config": model,
    }
    print(f"  {name:<10} rel L2 {result['test_rel_l2']:.4f}  params {result['parameters']:>9,d}"
          f"  steps {trainer.step:>5d}  train {cpu:.0f} s CPU / {wall:.0f} s wall"
          f"  infer {result['inference_samples_per_s']:.0f}/s", flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=1.5,
                    help="CPU minutes of training per model and dataset (default 1.5)")
    ap.add_argument("--train", type=int, default=200)
    ap.add_argument("--test", type=int, default=50)
    ap.add_argument("--batch-size", type=int, default=10)
    ap.add_argument("--darcy-resolution", type=int, default=43,
                    help="stored Darcy grid; (n - 1) * 5 + 1 is solved (85: the recipe's)")
    ap.add_argument("--ns-resolution", type=int, default=32)
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    ap.add_argument("--datasets", nargs="+", default=list(PUBLISHED), choices=list(PUBLISHED),
                    help="a subset runs alone; entries of other datasets already in --out "
                         "are kept (run one process per dataset on separate cores)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    report: dict[str, Any] = {
        "benchmark": "model zoo at an equal CPU budget per model (sciops trainer)",
        "machine": machine_info(),
        "settings": {k: (v if not isinstance(v, Path) else str(v)) for k, v in vars(args).items()},
        "datasets": {},
    }
    with tempfile.TemporaryDirectory(prefix="sciops-zoo-") as tmp:
        root = Path(tmp)
        datasets = make_datasets(args, root)
        for ds_name, ds in datasets.items():
            configs = model_configs(ds_name, ds["n"], 10 if ds_name.startswith("ns2d") else 1)
            entry = {"grid": [ds["n"], ds["n"]], "recipe_overrides": ds["overrides"],
                     "generation_cpu_s": ds["generation_cpu_s"],
                     "published": PUBLISHED[ds_name], "settings": report["settings"],
                     "machine": report["machine"], "models": {}}
            print(f"{ds_name}:", flush=True)
            for name in args.models:
                entry["models"][name] = run_model(name, configs[name], ds, args, root)
            report["datasets"][ds_name] = entry
    report["total_wall_s"] = round(time.perf_counter() - t0, 1)
    if args.out.is_file():  # keep the other datasets' entries
        kept = json.loads(args.out.read_text()).get("datasets", {})
        report["datasets"] = {**{k: v for k, v in kept.items() if k not in args.datasets},
                              **report["datasets"]}
    write_json(args.out, report)
    print(f"wrote {args.out} after {report['total_wall_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
