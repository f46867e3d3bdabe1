"""Accuracy at an equal CPU budget: sciops' trainer vs neuraloperator's ``Trainer``.

    .venv/bin/python benchmarks/train_budget.py [--minutes 20] [--train 1000 --test 200]

Data: ``ns2d-fno-nu1e-3`` (FNO setting, ν = 1e-3) regenerated with the solver at 64²
instead of 256² (ν = 1e-3 is resolved there) and only the first 20 records (the task needs
t = 0..19), cached in ``benchmarks/.data/``. Task: vorticity at t = 0..9 as 10 channels →
t = 10..19, 1000 train / 200 test, batch 20, AdamW (lr 1e-3, weight decay 1e-4), cosine
schedule over the planned epochs.

Models (same hyperparameters on both sides): FNO (modes 12, width 32, 4 layers), TFNO
(Tucker, rank 0.05: ≥ 10× fewer parameters) and MG-TFNO (TFNO on 2×2 patches with one
level of coarse context,
circular padding: per-sample spatial input 4× smaller). sciops runs go through
:class:`sciops.train.Trainer` (relative L2 loss, mean over the batch); neuraloperator's
through ``neuralop.training.Trainer`` with its ``FNO``/``TFNO`` models, its
``UnitGaussianNormalizer`` in a ``DefaultDataProcessor`` and its ``LpLoss`` (sum over the
batch, its default), and its ``MGPatchingDataProcessor`` (levels 1, no padding, stitching)
for MG-TFNO. Budget: a short calibration measures each setup's process CPU seconds per step;
the epoch count is the budget divided by that. Both sides are scored by the same function:
mean over test samples of the per-sample relative L2 error of the 10 output steps.

Writes ``benchmarks/results/train_budget.json``; the published FNO-2D figure (relative L2
0.0128 at ν = 1e-3, 1000 samples, 500 epochs on a GPU, T = 50 rollout) is recorded beside.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_info, peak_rss_mib, timed, write_json  # noqa: E402
from zoo import run_model  # noqa: E402

from sciops.data import generate, load_recipe, open_dataset  # noqa: E402
from sciops.train.losses import rel_lp  # noqa: E402

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".data"
RESULTS = HERE / "results" / "train_budget.json"
IN_STEPS = OUT_STEPS = 10
COMMON = {"n_modes": [12, 12], "hidden_channels": 32, "n_layers": 4}
MODELS = {
    "fno": {"name": "fno", **COMMON},
    "tfno": {"name": "tfno", **COMMON, "factorization": "tucker", "rank": 0.05},
    "mg-tfno": {"name": "mg-tfno", **COMMON, "factorization": "tucker", "rank": 0.05,
                "levels": 1},
}
PUBLISHED = {"fno": {"test_rel_l2": 0.0128, "source": "Li et al. 2021 (FNO), Table 1, "
                     "FNO-2D, nu=1e-3, N=1000, T=50 rollout, 500 epochs on a GPU"}}


def make_dataset(samples: int) -> Path:
    """The reduced ``ns2d-fno-nu1e-3`` copy (generated once, then reused)."""
    recipe = load_recipe("ns2d-fno-nu1e-3").with_changes(
        samples=samples, overrides={"resolution": "64", "t_final": "20.0", "n_records": "20"})
    out = CACHE / f"ns2d-fno-nu1e-3-r64-t20-{samples}"
    generate(recipe, out)
    return out


def load_pairs(path: Path, lo: int, hi: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Samples ``lo..hi`` as (x, y): ``(n, 10, 64, 64)`` float32 inputs and targets."""
    w = open_dataset(path)["vorticity"].isel(sample=slice(lo, hi)).transpose(
        "sample", "time", ...).values
    w = torch.from_numpy(w).float()
    return w[:, :IN_STEPS].contiguous(), w[:, IN_STEPS:IN_STEPS + OUT_STEPS].contiguous()


def _neuralop_setup(name: str, x: torch.Tensor, y: torch.Tensor) -> tuple[Any, Any]:
    """neuraloperator's model and data processor for ``name``, fitted normalizers."""
    from neuralop.data.transforms.data_processors import (
        DefaultDataProcessor,
        MGPatchingDataProcessor,
    )
    from neuralop.data.transforms.normalizers import UnitGaussianNormalizer
    from neuralop.models import FNO, TFNO

    cfg = {k: v for k, v in MODELS[name].items() if k not in ("name", "levels")}
    cfg["n_modes"] = tuple(cfg["n_modes"])
    x_norm = UnitGaussianNormalizer(dim=[0, 2, 3])
    y_norm = UnitGaussianNormalizer(dim=[0, 2, 3])
    x_norm.fit(x)
    y_norm.fit(y)
    if name == "fno":
        return FNO(in_channels=IN_STEPS, out_channels=OUT_STEPS, **cfg), DefaultDataProcessor(
            x_norm, y_norm)
    levels = MODELS[name].get("levels", 0)
    model = TFNO(in_channels=IN_STEPS * (levels + 1), out_channels=OUT_STEPS, **cfg)
    if levels:
        return model, MGPatchingDataProcessor(model, levels=levels, padding_fraction=0.0,
                                              stitching=True, in_normalizer=x_norm,
                                              out_normalizer=y_norm)
    return model, DefaultDataProcessor(x_norm, y_norm)


def _neuralop_step_cpu(model: Any, processor: Any, loader: Any, loss: Any) -> float:
    """CPU seconds per training step of neuraloperator's loop body, after one warm-up."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    first = next(iter(loader))

    def step() -> None:
        batch = processor.preprocess(dict(first))
        out, batch = processor.postprocess(model(batch["x"]), batch)
        opt.zero_grad()
        loss(out, batch["y"]).backward()
        opt.step()

    step()
    _, _, cpu = timed(lambda: [step() for _ in range(4)])
    return cpu / 4


def _neuralop_score(model: Any, processor: Any, x: torch.Tensor, y: torch.Tensor) -> float:
    """Mean per-sample relative L2 of the decoded predictions (sciops' definition)."""
    model.eval()
    processor.eval()
    total = 0.0
    with torch.no_grad():
        for i in range(0, len(x), 50):
            batch = processor.preprocess({"x": x[i:i + 50], "y": y[i:i + 50]})
            out, _ = processor.postprocess(model(**batch), batch)
            total += float(rel_lp(out, y[i:i + 50])) * len(out)
    return total / len(x)


def run_neuralop(name: str, data: Path, args: argparse.Namespace) -> dict[str, Any]:
    from neuralop.data.datasets.tensor_dataset import TensorDataset
    from neuralop.losses import LpLoss
    from neuralop.training import Trainer

    torch.manual_seed(0)
    x, y = load_pairs(data, 0, args.train)
    xt, yt = load_pairs(data, args.train, args.train + args.test)
    model, processor = _neuralop_setup(name, x, y)
    loader = torch.utils.data.DataLoader(TensorDataset(x, y), batch_size=args.batch_size,
                                         shuffle=True)
    test = torch.utils.data.DataLoader(TensorDataset(xt, yt), batch_size=args.batch_size)
    loss = LpLoss(d=2, p=2)
    per_step = _neuralop_step_cpu(model, processor, loader, loss)
    epochs = max(1, int(args.minutes * 60 / (per_step * len(loader))))
    torch.manual_seed(0)
    model, processor = _neuralop_setup(name, x, y)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    trainer = Trainer(model=model, n_epochs=epochs, data_processor=processor,
                      eval_interval=epochs, verbose=False)
    _, wall, cpu = timed(lambda: trainer.train(loader, {"test": test}, opt, sched,
                                               training_loss=loss, eval_losses={"l2": loss}))
    result = {"test_rel_l2": _neuralop_score(model, processor, xt, yt),
              "parameters": sum(p.numel() for p in model.parameters()),
              "epochs_planned": epochs, "steps": epochs * len(loader),
              "train_cpu_s": round(cpu, 1), "train_wall_s": round(wall, 1),
              "calibrated_cpu_s_per_step": round(per_step, 4)}
    print(f"  neuralop {name:<8} rel L2 {result['test_rel_l2']:.4f}  params "
          f"{result['parameters']:>9,d}  epochs {epochs}  train {cpu:.0f} s CPU", flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=20.0, help="CPU minutes per run")
    ap.add_argument("--train", type=int, default=1000)
    ap.add_argument("--test", type=int, default=200)
    ap.add_argument("--batch-size", type=int, default=20)
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    # neuraloperator's Trainer passes the whole batch dict to the model and the loss
    warnings.filterwarnings("ignore", message=".*received unexpected keyword arguments")
    torch.set_num_threads(args.threads)
    data, gen_wall, gen_cpu = timed(lambda: make_dataset(args.train + args.test))
    ds = {"path": data, "data": {"inputs": ["vorticity"], "targets": ["vorticity"],
                                 "in_steps": IN_STEPS, "out_steps": OUT_STEPS}}
    zoo_args = SimpleNamespace(minutes=args.minutes, train=args.train, test=args.test,
                               batch_size=args.batch_size)
    runs: dict[str, dict[str, Any]] = {}
    root = CACHE / "train_budget_runs"
    for name in args.models:
        print(f"{name}:", flush=True)
        runs[name] = {"sciops": run_model(name, MODELS[name], ds, zoo_args, root)}
        try:
            runs[name]["neuralop"] = run_neuralop(name, data, args)
        except Exception as e:  # noqa: BLE001 — record a peer failure instead of losing the run
            runs[name]["neuralop"] = {"error": f"{type(e).__name__}: {e}"}
    sc = {k: v["sciops"] for k, v in runs.items()}
    goals = {}
    if {"fno", "tfno"} <= sc.keys():
        goals["tfno_error_le_fno"] = sc["tfno"]["test_rel_l2"] <= sc["fno"]["test_rel_l2"]
        goals["tfno_parameter_reduction"] = round(
            sc["fno"]["parameters"] / sc["tfno"]["parameters"], 2)
    if {"tfno", "mg-tfno"} <= sc.keys():
        goals["mg_tfno_error_over_tfno"] = round(
            sc["mg-tfno"]["test_rel_l2"] / sc["tfno"]["test_rel_l2"], 3)
        goals["mg_tfno_input_reduction"] = 4.0  # 2x2 patches of a 64² field: 32² per sample
    write_json(args.out, {
        "benchmark": "test relative L2 at an equal CPU budget per run, ns2d-fno-nu1e-3 10->10",
        "settings": {**{k: v for k, v in vars(args).items() if k != "out"},
                     "solver_resolution": 64, "grid": [64, 64]},
        "dataset": {"path": data.name, "generation_wall_s": round(gen_wall, 1),
                    "generation_cpu_s": round(gen_cpu, 1)},
        "published": PUBLISHED,
        "runs": runs,
        "goals": goals,
        "peak_rss_mib": round(peak_rss_mib(), 1),
        "machine": machine_info(),
    })
    print(f"wrote {args.out}: {goals}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
