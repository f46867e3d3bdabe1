"""`make demo`: generate a small Navier–Stokes set, train a TFNO, evaluate, write a report.

Sized for a 2-core CPU: 64² solves, 20 time units, 120 samples (100 train, 20 test); TFNO
maps vorticity at t=0..9 to t=10..19 in a fixed 60 epochs (600 steps), so the result does not
depend on the machine's load, only the time does (README: measured times).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from sciops.data import generate, load_recipe, open_dataset
from sciops.evaluate.report import plot_snapshots
from sciops.train import Trainer, build_config
from sciops.train.losses import rel_lp
from sciops.train.predict import load_run
from sciops.train.task import WindowedPairs, ordered_batches

DATA_OVERRIDES = {"resolution": "64", "output_resolution": "64", "t_final": "20",
                  "n_records": "20", "samples_per_shard": "20", "batch_size": "20"}
N_TRAIN, N_TEST = 100, 20
THREADS = 1
"""Torch threads of the demo. Measured on 2 cores shared with other jobs, generation ran 6x
slower with 2 threads contending than with 1; one thread keeps the time predictable."""
RUN = {
    "name": "demo-tfno",
    "model": {"name": "tfno", "n_modes": [12, 12], "hidden_channels": 24, "n_layers": 4,
              "factorization": "tucker", "rank": 0.1},
    "data": {"inputs": ["vorticity"], "targets": ["vorticity"], "in_steps": 10, "out_steps": 10,
             "train_samples": N_TRAIN, "test_samples": N_TEST},
    "train": {"epochs": 60, "batch_size": 10, "lr": 3e-3, "weight_decay": 1e-4,
              "scheduler": "cosine"},
}


def run_demo(out: Path, device: str | None = None) -> Path:
    """Run the whole pipeline into ``out`` with :data:`THREADS` torch threads; returns the
    path of ``report.md``."""
    before = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    try:
        return _run(out, device)
    finally:
        torch.set_num_threads(before)


def _run(out: Path, device: str | None) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    recipe = load_recipe("ns2d-fno-nu1e-3").with_changes(samples=N_TRAIN + N_TEST,
                                                         overrides=DATA_OVERRIDES)
    gen = generate(recipe, out / "data" / recipe.name, device=device)

    cfg = build_config({**RUN, "data": {**RUN["data"], "dataset": str(gen.out)}})
    trainer = Trainer(cfg, out / "run", device=device)
    last = trainer.fit(resume=(out / "run" / "last.pt").is_file())
    loaded = load_run(out / "run", trainer.ctx.device)

    test = WindowedPairs(gen.out, cfg.data, range(N_TRAIN, N_TRAIN + N_TEST))
    errs, persist = [], []
    for x, y in ordered_batches(test, 10):
        pred = loaded.predict(x.to(trainer.ctx.device)).cpu()
        errs += [float(rel_lp(p[None], t[None])) for p, t in zip(pred, y)]
        last_in = x[:, -1:].expand_as(y)
        persist += [float(rel_lp(p[None], t[None])) for p, t in zip(last_in, y)]
    errs_a, persist_a = np.array(errs), np.array(persist)

    x, y = test[int(np.argsort(errs_a)[len(errs_a) // 2])]  # the median sample
    pred = loaded.predict(x[None].to(trainer.ctx.device))[0].cpu()
    cols = [0, 4, 9]
    panel = torch.stack([y[cols], pred[cols], pred[cols] - y[cols]]).numpy()
    times = [float(v) for v in open_dataset(gen.out)["t"].values[10:20][cols]]
    png = plot_snapshots(panel, [f"t = {t:g}" for t in times], out / "prediction.png",
                         title="median test sample: truth (top), TFNO (middle), error (bottom)")
    n_params = sum(p.numel() for p in loaded.model.parameters())
    summary = {"samples_per_s_generation": gen.samples_written / max(gen.seconds, 1e-9),
               "train_epochs": last.get("epoch"), "train_seconds": last.get("seconds"),
               "test_rel_l2_mean": float(errs_a.mean()),
               "persistence_rel_l2_mean": float(persist_a.mean()),
               "improvement_over_persistence": float(persist_a.mean() / errs_a.mean()),
               "parameters": n_params}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    lines = [
        "# sciops demo",
        "",
        f"1. **Data**: `{recipe.name}` with demo overrides "
        f"({', '.join(f'{k}={v}' for k, v in DATA_OVERRIDES.items())}), "
        f"{N_TRAIN + N_TEST} samples; generated {gen.samples_written} new in "
        f"{gen.seconds:.1f} s.",
        f"2. **Model**: TFNO ({n_params:,} parameters), vorticity at t=0..9 -> t=10..19, "
        f"{last.get('epoch')} of {cfg.train.epochs} epochs ({trainer.step} steps) in "
        f"{last.get('seconds', 0):.0f} s on {trainer.ctx.device}.",
        f"3. **Test** ({N_TEST} held-out samples): mean relative L2 "
        f"**{errs_a.mean():.4f}** (median {np.median(errs_a):.4f}, worst {errs_a.max():.4f}); "
        f"persistence baseline (repeat the last input) {persist_a.mean():.4f}: the TFNO error "
        f"is {persist_a.mean() / errs_a.mean():.1f}x smaller.",
        "",
        f"![truth, prediction and error]({png.name})",
        "",
    ]
    report = out / "report.md"
    report.write_text("\n".join(lines))
    return report
