"""neuraloperator's gallery TFNO Darcy-16 run, reproduced by a sciops recipe, side by side.

    .venv/bin/python benchmarks/neuralop_darcy.py [--data-dir third_party/neuralop-darcy]
                                                  [--seeds 0 1 2] [--epochs 20]

Data: neuraloperator's own small Darcy files ``darcy_train_16.pt`` (1000 pairs at 16²),
``darcy_test_16.pt`` and ``darcy_test_32.pt`` (50 pairs each; the 32² set is zero-shot). They
ship in the ``neuraloperator==0.3.0`` wheel on PyPI; ``make third_party/neuralop-darcy``
extracts them (nothing is downloaded at run time).

The run is the gallery's "Training a TFNO on Darcy-Flow": TFNO (16 × 16 modes, width 32,
projection ratio 2, Tucker, rank 0.42), AdamW (lr 8e-3, weight decay 1e-4), cosine schedule
with ``T_max`` 30 epochs, neuraloperator's ``H1Loss`` summed over the batch on standardized
targets (outputs standardized, inputs not), batch 32, 20 epochs. neuraloperator trains with
its ``Trainer`` and ``DarcyDataset``; sciops with ``sciops.train.Trainer`` and the shipped
recipe ``tfno-darcy16-neuralop`` with its files pointed at ``--data-dir`` (``loss =
"h1_neuralop"``, ``loss_reduction = "sum"``, ``loss_units = "normalized"``, ``normalize =
"output"``, two named test sets). One difference is left: sciops advances the cosine
schedule every step (``t_max`` in epochs), neuraloperator once per epoch.

Both models are scored by one function: the mean over test samples of the per-sample
relative L2 error in data units, at 16² and zero-shot at 32². Writes
``benchmarks/results/neuralop_darcy.json``: per seed and library the errors and the training
wall and CPU seconds, the mean ± std over seeds, and the time ratio.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_info, timed, write_json  # noqa: E402

FILES = ("darcy_train_16.pt", "darcy_test_16.pt", "darcy_test_32.pt")


RECIPE = "tfno-darcy16-neuralop"
"""The shipped training recipe of the gallery run (sciops/recipes/solvers/)."""


def config(data: Path, epochs: int, seed: int) -> Any:
    """The recipe's config with the files under ``data``, ``epochs`` and ``seed``."""
    from sciops.train import load_run_config

    tests = {"test_16": str(data / FILES[1]), "test_32": str(data / FILES[2])}
    return load_run_config(RECIPE, {"data.dataset": str(data / FILES[0]),
                                    "data.test": json.dumps(tests),
                                    "train.epochs": str(epochs), "train.seed": str(seed)})


def rel_l2(pred: torch.Tensor, y: torch.Tensor) -> float:
    """Mean over samples of ``|pred - y| / |y|`` (data units), both ``(N, ...)``."""
    p, t = pred.reshape(len(pred), -1), y.reshape(len(y), -1)
    return float(((p - t).norm(dim=1) / t.norm(dim=1)).mean())


def test_pairs(data: Path) -> dict[int, tuple[torch.Tensor, torch.Tensor]]:
    """``{resolution: (a (N, 1, n, n) float32, u (N, n, n))}`` of the two test files."""
    out = {}
    for res, name in ((16, FILES[1]), (32, FILES[2])):
        d = torch.load(data / name, weights_only=True)
        out[res] = (d["x"].float()[:, None], d["y"].float())
    return out


def run_sciops(data: Path, epochs: int, seed: int, out: Path) -> dict[str, Any]:
    from sciops.train import Trainer

    trainer = Trainer(config(data, epochs, seed), out / f"sciops-{seed}",
                      device="cpu", progress=False)
    _, wall, cpu = timed(trainer.fit)
    trainer.model.eval()
    errors = {}
    with torch.no_grad():
        for res, (a, u) in test_pairs(data).items():
            errors[f"test_{res}"] = rel_l2(trainer.task.predict(trainer.model, a)[:, 0], u)
    return {**errors, "train_wall_s": round(wall, 2), "train_cpu_s": round(cpu, 2)}


def run_neuralop(data: Path, epochs: int, seed: int) -> dict[str, Any]:
    from neuralop import H1Loss, LpLoss, Trainer
    from neuralop.data.datasets.darcy import DarcyDataset
    from neuralop.models import TFNO

    torch.manual_seed(seed)
    ds = DarcyDataset(root_dir=data, n_train=1000, n_tests=[50, 50], batch_size=32,
                      test_batch_sizes=[32, 32], train_resolution=16, test_resolutions=[16, 32],
                      download=False)
    loader = torch.utils.data.DataLoader(ds.train_db, batch_size=32, shuffle=True)
    tests = {res: torch.utils.data.DataLoader(ds.test_dbs[res], batch_size=32)
             for res in (16, 32)}
    m = config(data, epochs, seed).model  # the same hyperparameters as the recipe
    model = TFNO(in_channels=1, out_channels=1, n_modes=tuple(m["n_modes"]),
                 hidden_channels=m["hidden_channels"],
                 projection_channel_ratio=m["projection_channel_ratio"],
                 factorization=m["factorization"], rank=m["rank"])
    optimizer = torch.optim.AdamW(model.parameters(), lr=8e-3, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=30)
    processor = ds.data_processor
    trainer = Trainer(model=model, n_epochs=epochs, device="cpu", data_processor=processor,
                      eval_interval=epochs, verbose=False)
    h1 = H1Loss(d=2)

    def fit() -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            trainer.train(train_loader=loader, test_loaders=tests, optimizer=optimizer,
                          scheduler=scheduler, regularizer=False, training_loss=h1,
                          eval_losses={"l2": LpLoss(d=2, p=2)})

    _, wall, cpu = timed(fit)
    model.eval()
    processor.eval()
    errors = {}
    with torch.no_grad():
        for res, (a, u) in test_pairs(data).items():
            pred, _ = processor.postprocess(model(a), {"y": u[:, None]})
            errors[f"test_{res}"] = rel_l2(pred[:, 0], u)
    return {**errors, "train_wall_s": round(wall, 2), "train_cpu_s": round(cpu, 2)}


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and (population) std over seeds of every number."""
    keys = [k for k in runs[0] if k != "seed"]
    out = {}
    for k in keys:
        v = torch.tensor([r[k] for r in runs], dtype=torch.float64)
        out[k] = {"mean": round(float(v.mean()), 4), "std": round(float(v.std(unbiased=False)), 4)}
    return out


def record(args: argparse.Namespace, runs: dict[str, list[dict[str, Any]]], complete: bool
           ) -> tuple[dict[str, Any], float]:
    """Write the results so far (after every seed: a long run keeps what it measured)."""
    stats = {lib: summary(r) for lib, r in runs.items()}
    peer, own = stats["neuraloperator"], stats["sciops"]
    ratio = peer["train_wall_s"]["mean"] / own["train_wall_s"]["mean"]
    cpu_ratio = peer["train_cpu_s"]["mean"] / own["train_cpu_s"]["mean"]
    write_json(args.out, {
        "setting": f"neuraloperator gallery TFNO Darcy-16 (recipe {RECIPE}): "
                   f"{config(args.data_dir, args.epochs, 0).to_dict()}",
        "metric": "mean per-sample relative L2 in data units (one function for both)",
        "complete": complete, "threads": args.threads, "machine": machine_info(), "runs": runs,
        "summary": stats, "time_ratio_neuraloperator_over_sciops": round(ratio, 3),
        "cpu_time_ratio_neuraloperator_over_sciops": round(cpu_ratio, 3)})
    return stats, ratio


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", type=Path, default=Path("third_party/neuralop-darcy"))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/neuralop_darcy.json"))
    args = ap.parse_args(argv)
    missing = [f for f in FILES if not (args.data_dir / f).is_file()]
    if missing:
        print(f"neuralop_darcy: error: {args.data_dir}: missing {missing}; run `make "
              f"third_party/neuralop-darcy` (extracts them from the neuraloperator 0.3.0 "
              f"wheel on PyPI)", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    runs: dict[str, list[dict[str, Any]]] = {"sciops": [], "neuraloperator": []}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            for lib in ("neuraloperator", "sciops"):  # alternate: the load hits both alike
                r = run_neuralop(args.data_dir, args.epochs, seed) if lib == "neuraloperator" \
                    else run_sciops(args.data_dir, args.epochs, seed, Path(tmp))
                runs[lib].append({"seed": seed, **r})
                print(f"seed {seed} {lib:<14} test_16 {r['test_16']:.4f}  test_32 "
                      f"{r['test_32']:.4f}  {r['train_wall_s']:.1f} s", flush=True)
            stats, ratio = record(args, runs, complete=seed == args.seeds[-1])
    for lib, s in stats.items():
        print(f"{lib:<14} test_16 {s['test_16']['mean']:.4f} ± {s['test_16']['std']:.4f}  "
              f"test_32 {s['test_32']['mean']:.4f} ± {s['test_32']['std']:.4f}  "
              f"{s['train_wall_s']['mean']:.1f} s")
    print(f"training time ratio neuraloperator / sciops: {ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
