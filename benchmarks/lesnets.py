"""LESnets reproduction: a physics-only FNO against a data-trained FNO and the LES solver.

Decaying isotropic turbulence of the ``les3d-hit-32`` recipe (Smagorinsky LES, C_s = 0.17,
32³, nu = 4e-3, E0 = 0.5, k0 = 4) over t in [0, 4], every 0.1. Three predictors start from
the same LES initial field of each test sample:

* ``les``: the LES solver (:meth:`LES3D.solve`);
* ``lesnets``: the registry's 3D ``fno`` trained by :class:`sciops.train.pino.RolloutTask`
  with the LES residual only (no solved data; inputs are random fields followed by the model's
  own predictions), K = 4 frames of dt = 0.1 per call, rolled out by feeding back the last;
* ``data_fno``: the same architecture, steps and optimizer trained on the label loss only,
  on windows of LES solver trajectories from random initial fields.

References: the LES solver at 32³, and filtered DNS ("fDNS") of the same initial field: DNS
at ``--dns-resolution`` (64³ by default, not the recipe's 128³, to fit the CPU budget: about
k_max eta = 0.5 there, so the fDNS is itself approximate at the smallest resolved scales;
0 skips it) sharp-filtered onto the LES band. Reported over time: relative L2 error against
both references, kinetic energy, dissipation (for predictions, resolved + Smagorinsky of the
predicted field, as the LES defines it; for fDNS, the unfiltered DNS's), energy spectra at
t = 1, 2, 4 (also ``lesnets.png``), and CPU time per record of each predictor (single thread;
the LES solver's is per sample of a batched solve, the FNO's a batch-1 rollout).

Runs are resumable: trained models and references live under ``--work`` (default
``/tmp/lesnets``, keyed by their configuration) and are reused. Full run: about 21
CPU-minutes single-threaded (fDNS 1.5, LESnets training 9, data generation + training of the
data-trained FNO 10)::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/lesnets.py
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/lesnets.py --steps 100 --dns-resolution 0 \\
        --train-trajectories 2 --out /tmp/lesnets.json      # smoke run, ~3 CPU-minutes
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_info, timed, write_json  # noqa: E402

from sciops import pdes, spectral  # noqa: E402
from sciops.data.recipes import load_recipe  # noqa: E402
from sciops.pdes import les3d  # noqa: E402
from sciops.train.config import RunConfig, TrainConfig  # noqa: E402
from sciops.train.pino import RolloutConfig, RolloutTask, stream_seed  # noqa: E402
from sciops.train.trainer import Trainer  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
SPECTRUM_TIMES = (1.0, 2.0, 4.0)
BENCH_STREAM = 2  # test fields: disjoint from the task's train (0) and test (1) streams
LES = pdes.get("les3d")


def _cpu(fn):
    """``fn()`` and the process CPU seconds it took."""
    out, _, cpu = timed(fn)
    return out, cpu


def solve(params: les3d.LES3DParams, u0: Tensor, t_final: float, n_records: int) -> Tensor:
    """LES solver velocities ``(B, n_records + 1, 3, n, n, n)`` on ``[0, t_final]`` from ``u0``
    (B, 3, n, n, n)."""
    q = params.replace(t_final=t_final, n_records=n_records, store_fdns=False)
    out = LES.solve(q, {"u0": u0})
    return torch.stack([out[c] for c in "uvw"], dim=2)


def initial(params: les3d.LES3DParams, seeds: list[int]) -> Tensor:
    """The LES initial fields ``(len(seeds), 3, m, m, m)`` (``m = input_resolution``) drawn
    from each seed, as the PINO task draws them."""
    return torch.cat([LES.sample_inputs(params, 1, torch.Generator().manual_seed(s))["u0"]
                      for s in seeds])


def references(params: les3d.LES3DParams, args: argparse.Namespace) -> dict[str, Any]:
    """Initial fields, LES solver runs (timed) and fDNS of the test samples, cached."""
    path = Path(args.work) / f"reference-{args.seed}-{args.n_test}-{args.dns_resolution}.pt"
    if path.exists():
        return torch.load(path, weights_only=True)
    seeds = [stream_seed(args.seed, BENCH_STREAM, i) for i in range(args.n_test)]
    n_records = round(params.t_final / args.dt)
    les = params.replace(store_fdns=False)
    out: dict[str, Any] = {}
    if args.dns_resolution:
        p = params.replace(store_fdns=True, dns_resolution=args.dns_resolution,
                           n_records=n_records)
        run, cpu = _cpu(lambda: LES.solve(p, {"u0": initial(p, seeds)}))
        out["fdns"] = torch.stack([run[f"{c}_fdns"] for c in "uvw"], 2)
        out["energy_dns"], out["dissipation_dns"] = run["energy_dns"], run["dissipation_dns"]
        out["fdns_cpu_s"] = cpu
        u0 = torch.stack([run[c][:, 0] for c in "uvw"], 1)  # the LES's filtered start
    else:
        u0 = initial(les, seeds)
    out["les"], out["les_cpu_s"] = _cpu(lambda: solve(les, u0, les.t_final, n_records))
    out["u0"] = out["les"][:, 0]
    torch.save(out, path)
    return out


def train(name: str, params: les3d.LES3DParams, options: RolloutConfig,
          args: argparse.Namespace) -> tuple[torch.nn.Module, RolloutTask, dict[str, Any]]:
    """Train (or reload) one FNO; returns it, its task and the training summary."""
    model = {"name": "fno", "n_modes": [args.modes] * 3, "hidden_channels": args.hidden,
             "n_layers": args.layers, "positional_embedding": None}
    task, setup_cpu = _cpu(lambda: RolloutTask(LES, params, options))
    steps_per_epoch = len(task.train_set)  # batch size 1
    epochs = max(1, round(args.steps / steps_per_epoch))
    cfg = RunConfig(name=name, model=model, train=TrainConfig(
        epochs=epochs, batch_size=1, lr=args.lr, weight_decay=0.0, scheduler="cosine",
        seed=args.seed, eval_every=epochs))
    key = json.dumps([model, options.to_dict(), args.steps, args.lr, args.seed], sort_keys=True)
    run_dir = Path(args.work) / f"{name}-{hashlib.sha1(key.encode()).hexdigest()[:10]}"
    trainer = Trainer(cfg, run_dir, task=task, progress=False)
    summary_path = run_dir / "summary.json"
    last, cpu = _cpu(lambda: trainer.fit(resume=True))
    if not summary_path.exists():
        summary = {"steps": trainer.step, "setup_cpu_s": round(setup_cpu, 2),
                   "train_cpu_s": round(cpu, 2), "final_train_loss": last.get("train_loss"),
                   "test_rel_l2_k_frames": last.get("test_rel_l2"),
                   "parameters": sum(p.numel() for p in trainer.model.parameters()),
                   "model": model, "options": options.to_dict()}
        summary_path.write_text(json.dumps(summary, indent=1))
    trainer.model.eval()
    return trainer.model, task, json.loads(summary_path.read_text())


def rollout(task: RolloutTask, model: torch.nn.Module, u0: Tensor, n_records: int
            ) -> tuple[Tensor, float]:
    """Batch-1 rollouts from each ``u0`` (N, 3, n, n, n): frames (N, n_records + 1, ...) and
    CPU seconds per record per sample."""
    calls = math.ceil(n_records / task.options.n_steps)
    frames, cpu = [], 0.0
    for one in u0.split(1):
        f, c = _cpu(lambda one=one: task.rollout(model, one, calls))
        frames.append(f[:, :n_records + 1])
        cpu += c
    return torch.cat(frames), cpu / (len(u0) * n_records)


def diagnostics(params: les3d.LES3DParams, frames: Tensor) -> dict[str, np.ndarray]:
    """Sample-mean energy, LES dissipation (T,) and shell spectrum (T, shells) of frames
    (N, T, 3, n, n, n), as the les3d solver computes them."""
    ops = LES.operators(params, params.resolution, params.mode == "les", frames.device,
                        frames.dtype)
    diag = les3d.diagnostics(ops, spectral.rfft(frames.flatten(0, 1), 3))
    return {k: v.view(*frames.shape[:2], *v.shape[1:]).mean(0).numpy().astype(float)
            for k, v in diag.items()}


def rel_l2(pred: Tensor, ref: Tensor) -> np.ndarray:
    """Sample-mean relative L2 error per record, (T,)."""
    err = (pred - ref).flatten(2).norm(dim=2) / ref.flatten(2).norm(dim=2)
    return err.mean(0).numpy().astype(float)


def plot(path: Path, t: np.ndarray, res: dict[str, Any]) -> None:
    """Errors, energy and dissipation over time (top), spectra at SPECTRUM_TIMES (bottom)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    styles = {"fdns": ("k", "-"), "les": ("tab:blue", "-"), "lesnets": ("tab:red", "--"),
              "data_fno": ("tab:green", ":"), "persistence": ("0.6", "-.")}
    series = res["series"]
    fig, ax = plt.subplots(2, 3, figsize=(15, 8))
    for ref, marker in (("les", None), ("fdns", ".")):
        for name, err in res.get(f"rel_l2_vs_{ref}", {}).items():
            c, ls = styles[name]
            ax[0, 0].plot(t, err, color=c, ls=ls, marker=marker, markersize=3,
                          label=f"{name} vs {'fDNS' if ref == 'fdns' else 'LES'}")
    ax[0, 0].set(xlabel="t", ylabel="relative L2 error", ylim=(0, 1.6),
                 title="velocity error (dots: against fDNS)")
    for name, d in series.items():
        c, ls = styles[name]
        ax[0, 1].plot(t, d["energy"], color=c, ls=ls, label=name)
        ax[0, 2].plot(t, d["dissipation"], color=c, ls=ls, label=name)
        for j, ts in enumerate(SPECTRUM_TIMES):
            e = np.asarray(d["spectra"][str(ts)])
            ax[1, j].loglog(np.arange(1, len(e)), e[1:], color=c, ls=ls, label=name)
    ax[0, 1].set(xlabel="t", ylabel="E = <|u|²>/2", title="kinetic energy")
    ax[0, 2].set(xlabel="t", ylabel="dissipation",
                 title="dissipation (LES: resolved + model; fDNS: the DNS's)")
    for j, ts in enumerate(SPECTRUM_TIMES):
        ax[1, j].set(xlabel="k", ylabel="E(k)", ylim=(1e-6, 0.2), title=f"spectrum at t = {ts:g}")
    for a in ax.flat:
        a.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(RESULTS / "lesnets.json"))
    ap.add_argument("--work", default="/tmp/lesnets")
    ap.add_argument("--steps", type=int, default=1200, help="optimizer steps of each FNO")
    ap.add_argument("--lr", type=float, default=1e-2)
    ap.add_argument("--modes", type=int, default=16, help="FNO modes per axis")
    ap.add_argument("--hidden", type=int, default=32)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--pool", type=int, default=64, help="LESnets input pool size")
    ap.add_argument("--train-trajectories", type=int, default=32,
                    help="LES trajectories of the data-trained FNO (37 windows each)")
    ap.add_argument("--n-test", type=int, default=2)
    ap.add_argument("--dns-resolution", type=int, default=64, help="fDNS grid; 0 skips fDNS")
    ap.add_argument("--dt", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    Path(args.work).mkdir(parents=True, exist_ok=True)
    params = load_recipe("les3d-hit-32").params
    les = params.replace(store_fdns=False)
    t = np.round(np.arange(round(params.t_final / args.dt) + 1) * args.dt, 10)
    n_records = len(t) - 1

    ref = references(params, args)
    physics = RolloutConfig(dt=args.dt, n_train=args.pool, n_test=1, t_max=params.t_final,
                         seed=args.seed)
    data = RolloutConfig(dt=args.dt, physics_weight=0.0, data_weight=1.0, inputs="solver",
                      n_train=args.train_trajectories, n_test=1, t_max=params.t_final,
                      seed=args.seed)
    res: dict[str, Any] = {
        "setup": {"recipe": "les3d-hit-32", "resolution": les.resolution, "nu": les.nu,
                  "cs": les.cs, "k0": les.k0, "energy0": les.energy, "t": t.tolist(),
                  "n_test": args.n_test, "dns_resolution": args.dns_resolution or None,
                  "K": physics.n_steps, "dt": args.dt, "threads": 1},
        "machine": machine_info(), "training": {}, "timing": {}, "series": {},
        "rel_l2_vs_les": {}}
    frames = {"les": ref["les"], "persistence": ref["u0"][:, None].expand_as(ref["les"])}
    les_per_record = ref["les_cpu_s"] / (args.n_test * n_records)
    res["timing"]["les"] = {"cpu_s_per_record": les_per_record}
    for name, options in (("lesnets", physics), ("data_fno", data)):
        model, task, summary = train(name, les, options, args)
        res["training"][name] = summary
        frames[name], per_record = rollout(task, model, ref["u0"], n_records)
        res["timing"][name] = {"cpu_s_per_record": per_record,
                               "speedup_vs_les": les_per_record / per_record}
    if "fdns" in ref:
        frames["fdns"] = ref["fdns"]
        res["timing"]["fdns"] = {"cpu_s_per_record": ref["fdns_cpu_s"] / (args.n_test * n_records)}
        res["dns"] = {"energy": ref["energy_dns"].mean(0).tolist(),
                      "dissipation": ref["dissipation_dns"].mean(0).tolist()}
        res["rel_l2_vs_fdns"] = {}
    for name, f in frames.items():
        f = torch.nan_to_num(f.float(), nan=1e6, posinf=1e6, neginf=-1e6)
        if name != "persistence":
            d = diagnostics(les, f)
            if name == "fdns":  # the LES model's value on filtered fields is no reference
                d["dissipation"] = ref["dissipation_dns"].mean(0).numpy()
            res["series"][name] = {
                "energy": d["energy"].tolist(), "dissipation": d["dissipation"].tolist(),
                "spectra": {str(s): d["spectrum"][round(s / args.dt)].tolist()
                            for s in SPECTRUM_TIMES}}
        if name not in ("les", "fdns"):
            res["rel_l2_vs_les"][name] = rel_l2(f, ref["les"]).tolist()
        if "fdns" in ref and name != "fdns":
            res["rel_l2_vs_fdns"][name] = rel_l2(f, ref["fdns"]).tolist()
    res["summary"] = summarize(t, res)
    write_json(args.out, res)
    png = Path(args.out).with_suffix(".png")
    plot(png, t, res)
    print(json.dumps(res["summary"], indent=1))
    print(f"wrote {args.out} and {png}")
    return 0


def summarize(t: np.ndarray, res: dict[str, Any]) -> dict[str, Any]:
    """Errors at t = 1, 2, 4 and over the whole decay, energies at t = 4, speed-ups."""
    at = {str(s): int(np.argmin(np.abs(t - s))) for s in SPECTRUM_TIMES}
    out: dict[str, Any] = {}
    for ref_name in ("les", "fdns"):
        table = res.get(f"rel_l2_vs_{ref_name}")
        if table:
            out[f"rel_l2_vs_{ref_name}"] = {
                name: {**{f"t={s}": err[i] for s, i in at.items()},
                       "mean_over_t": float(np.mean(err[1:]))} for name, err in table.items()}
    out["energy_t4"] = {name: d["energy"][-1] for name, d in res["series"].items()}
    out["peak_dissipation"] = {name: {"value": max(d["dissipation"]),
                                      "t": float(t[int(np.argmax(d["dissipation"]))])}
                               for name, d in res["series"].items()}
    out["speedup_vs_les"] = {name: v["speedup_vs_les"] for name, v in res["timing"].items()
                             if "speedup_vs_les" in v}
    out["train_cpu_min"] = {name: round((s["train_cpu_s"] + s["setup_cpu_s"]) / 60, 2)
                            for name, s in res["training"].items()}
    return out


if __name__ == "__main__":
    sys.exit(main())
