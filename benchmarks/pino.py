"""PINO: data + PDE residual vs data only, on Burgers 1D and 2D Navier–Stokes, few samples.

For each case the same FNO, data, optimizer, schedule and number of epochs train three times
per seed:

* ``data_only``: ``[physics] weight = 0`` (the loss is exactly the supervised relative L2);
* ``data_residual``: ``weight = W`` (``loss = data + W * physics``, the mean square of the
  PDE's own grid residual of the predicted records relative to persistence's;
  :mod:`sciops.train.pino`), on the training inputs only;
* ``data_residual_unlabeled``: the same, the residual also taken on the predictions from the
  inputs of ``unlabeled`` further samples (their targets never read; PINO's instances
  without solutions). For ``ns2d`` those inputs are the first 10 records of solver runs;
* ``data_only_long``: data only for ``LONG`` times the epochs, about the CPU time of
  ``data_residual_unlabeled`` (the equal-CPU control of the variant that costs more).

Equal budget means equal epochs (equal data passes and optimizer steps) and, for the
unlabeled variant, also the equal-CPU control; the CPU seconds of each run are reported.
Equal data: the same ``train`` labelled samples; scored by the relative L2 error on ``test``
held-out samples (the trainer's ``test_rel_l2`` after the last epoch) and by the physics
loss of the predictions there (``test_physics``).

* ``burgers1d``: viscous Burgers (nu = 0.01, 128 points, ``burgers1d-pdebench`` recipe's
  random initial condition without kinks), u(0) -> u at the 50 records t = 0.01 .. 0.5
  (channels); 4th-order time differences over the 0.01 record spacing.
* ``ns2d``: the FNO vorticity benchmark (``ns2d-fno-nu1e-3``: nu = 1e-3, FNO forcing) at 64²,
  records every 0.5: vorticity at t = 0 .. 4.5 (10 channels) -> t = 5 .. 9.5 (10 channels);
  2nd-order time differences, the stack led by the last input record.

Datasets are generated once into ``benchmarks/.data/`` and reused; ``--variants`` runs some
variants only, keeping the others' results already in ``--out``. Full run (2 seeds, both
cases), single-threaded::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/pino.py
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/pino.py --seeds 1 --epochs-scale 0.05 \\
        --out /tmp/pino.json     # smoke run, ~1 min
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_info, peak_rss_mib, timed, write_json  # noqa: E402

from sciops.cli import main as cli_main  # noqa: E402
from sciops.train.config import load_run_config  # noqa: E402
from sciops.train.trainer import Trainer  # noqa: E402

HERE = Path(__file__).resolve().parent
LONG = 3
CASES: dict[str, dict[str, Any]] = {
    "burgers1d": {
        "dataset": "burgers1d-pdebench",
        "params": {"resolution": 128, "nu": 0.01, "ic_kinks": 0.0, "t_final": 0.5,
                   "n_records": 50, "dt": 1e-3},
        "recipe": "pino-burgers1d",
        "unlabeled": 64,
        "set": {"model.n_modes": [16], "model.hidden_channels": 32, "data.out_steps": 50,
                "train.batch_size": 4, "train.epochs": 300, "train.lr": 3e-3},
    },
    "ns2d": {
        "dataset": "ns2d-fno-nu1e-3",
        "params": {"resolution": 64, "output_resolution": 64, "t_final": 9.5,
                   "n_records": 19},
        "recipe": "pino-ns2d",
        "unlabeled": 32,
        "set": {"model.n_modes": [12, 12], "model.hidden_channels": 24, "train.batch_size": 4,
                "train.epochs": 120, "train.lr": 3e-3},
    },
}


VARIANTS = {  # name -> (physics weight W, unlabeled samples U) -> (weight, unlabeled, epochs x)
    "data_only": lambda w, u: (0.0, 0, 1),
    "data_residual": lambda w, u: (w, 0, 1),
    "data_residual_unlabeled": lambda w, u: (w, u, 1),
    "data_only_long": lambda w, u: (0.0, 0, LONG),
}


def dataset(name: str, case: dict[str, Any], samples: int) -> Path:
    """Generate (or reuse) the case's dataset under ``benchmarks/.data``."""
    out = HERE / ".data" / f"pino-{name}"
    argv = ["generate", case["dataset"], "--out", str(out), "--samples", str(samples),
            "--quiet"]
    for k, v in case["params"].items():
        argv += ["--set", f"{k}={v}"]
    if cli_main(argv) != 0:
        raise SystemExit(f"generating {out} failed")
    return out


def run(case: dict[str, Any], data: Path, variant: tuple[float, int, int], seed: int,
        args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Train one FNO (physics weight, unlabeled samples, epochs factor of ``variant``); its
    held-out scores and CPU seconds."""
    weight, unlabeled, factor = variant
    sets = {**case["set"], "data.dataset": str(data), "data.train_samples": args.train,
            "data.test_samples": args.test, "train.seed": seed, "physics.weight": weight,
            "physics.unlabeled": unlabeled, "train.eval_every": 10**6}
    sets["train.epochs"] = max(1, round(sets["train.epochs"] * factor * args.epochs_scale))
    cfg = load_run_config(case["recipe"], {k: json.dumps(v) if not isinstance(v, str) else v
                                           for k, v in sets.items()})
    trainer = Trainer(cfg, work / f"{case['recipe']}-w{weight}-u{unlabeled}-x{factor}-s{seed}",
                      progress=False)
    last, wall, cpu = timed(trainer.fit)
    return {"test_rel_l2": last["test_rel_l2"], "test_physics": last["test_physics"],
            "train_loss": last["train_loss"], "steps": trainer.step,
            "cpu_s": round(cpu, 1), "wall_s": round(wall, 1)}


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and spread over seeds of each score."""
    out: dict[str, Any] = {}
    for key in ("test_rel_l2", "test_physics", "cpu_s"):
        v = np.array([r[key] for r in rows], dtype=float)
        out[key] = {"mean": float(v.mean()), "min": float(v.min()), "max": float(v.max())}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(HERE / "results" / "pino.json"))
    ap.add_argument("--cases", default=",".join(CASES), help="comma list of " + ", ".join(CASES))
    ap.add_argument("--weight", type=float, default=0.1, help="physics weight W")
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--train", type=int, default=16, help="training samples")
    ap.add_argument("--test", type=int, default=64, help="held-out samples")
    ap.add_argument("--epochs-scale", type=float, default=1.0,
                    help="multiplies each case's epochs (smoke runs)")
    ap.add_argument("--variants", default=",".join(VARIANTS),
                    help="comma list of " + ", ".join(VARIANTS))
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    old = json.loads(Path(args.out).read_text()) if Path(args.out).is_file() else {}
    res: dict[str, Any] = {"setup": {"weight": args.weight, "seeds": args.seeds,
                                     "train_samples": args.train, "test_samples": args.test,
                                     "budget": f"equal epochs; data_only_long: {LONG}x epochs",
                                     "threads": args.threads},
                           "machine": machine_info(), "cases": old.get("cases", {})}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.cases.split(","):
            case = CASES[name]
            data = dataset(name, case, args.train + args.test + case["unlabeled"])
            variants = {k: VARIANTS[k](args.weight, case["unlabeled"])
                        for k in args.variants.split(",")}
            rows = res["cases"].get(name, {}).get("runs", {})
            rows.update({k: [] for k in variants})
            for seed in range(args.seeds):
                for label, variant in variants.items():
                    rows[label].append(run(case, data, variant, seed, args, Path(tmp)))
                    print(name, label, seed, rows[label][-1], flush=True)
            res["cases"][name] = {"params": case["params"], "training": case["set"],
                                  "unlabeled": case["unlabeled"], "runs": rows,
                                  "summary": {k: summarize(v) for k, v in rows.items()}}
    res["peak_rss_mib"] = peak_rss_mib()
    write_json(args.out, res)
    print(json.dumps({k: v["summary"] for k, v in res["cases"].items()}, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
