"""``sciops evaluate``: score trained runs on a dataset and write a Markdown report.

For each run, the first window of every selected sample is predicted, compared with the
stored truth through :func:`sciops.evaluate.metrics.evaluate_all`, and summarized; the
report shows a comparison table, error histograms, energy spectra, rollout error curves,
truth / prediction / error panels for the best, median and worst samples, and the error
per sine-dissimilarity cluster of the targets (which regimes a model fails on).

Panels show the last output step of 2-D data (the middle ``z`` slice in 3-D); for 1-D data
they show the whole output window as a space–time image (or a line with one output step).
Nothing is written before every run has been scored, so a failure leaves no partial report.

Non-finite samples are reported, never dropped: a sample whose prediction is NaN/inf makes
that run's means NaN/inf (``null`` in ``metrics.json``); the report and a one-line
``sciops: warning`` on stderr say how many samples, and which, were non-finite. Panels and
histograms show the finite samples. Non-finite values in the stored truth are a broken
dataset and stop ``evaluate`` with an error naming the samples.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from pathlib import Path

import numpy as np
import torch
import xarray as xr

from sciops.data import open_samples
from sciops.errors import SciopsError
from sciops.evaluate import metrics, report, rom
from sciops.train.predict import load_run
from sciops.train.task import WindowedPairs, ordered_batches


def _arrays(run: Path, data: Path, samples: range, device: str) -> tuple[xr.DataArray, ...]:
    """Prediction and truth of ``run`` on ``data`` as DataArrays ``(sample, time|channel, ...)``."""
    loaded = load_run(run, device)
    cfg = dataclasses.replace(loaded.cfg.data, windows="first")
    pairs = WindowedPairs(data, cfg, samples)
    preds, truths = [], []
    for x, y in ordered_batches(pairs, 16):
        preds.append(loaded.predict(x.to(device)).cpu())
        truths.append(y)
    pred, truth = torch.cat(preds).numpy(), torch.cat(truths).numpy()
    space = ("x", "y", "z")[: pred.ndim - 2]
    timed = len(cfg.targets) == 1 and pairs.timed[cfg.targets[0]]
    dims = ("sample", "time" if timed else "channel", *space)
    coords = {"sample": np.asarray(samples)}
    return (xr.DataArray(pred, dims=dims, coords=coords),
            xr.DataArray(truth, dims=dims, coords=coords))


def _panels(pred: xr.DataArray, truth: xr.DataArray, i: int) -> tuple[np.ndarray, str]:
    """Truth, prediction and error panels of sample ``i``, and what they show: a space–time
    image for 1-D data with several output steps, else the last step or channel (its
    middle ``z`` slice in 3-D)."""
    p, y = pred.values[i], truth.values[i]
    if pred.ndim == 3 and pred.dims[1] == "time" and len(p) > 1:
        return np.stack([y, p, p - y]), "space (up) vs output step (right)"
    p, y = p[-1], y[-1]
    shown = "last output step" if pred.dims[1] == "time" else f"channel {pred.shape[1] - 1}"
    if p.ndim == 3:
        p, y = p[..., p.shape[-1] // 2], y[..., y.shape[-1] // 2]
        shown += ", middle z slice"
    return np.stack([y, p, p - y]), shown


def _json_safe(value):
    """``value`` with every non-finite float replaced by None (strict JSON)."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _ids(samples: range, where: np.ndarray, limit: int = 10) -> str:
    ids = [str(samples[int(i)]) for i in where[:limit]]
    return ", ".join(ids) + (f", ... ({len(where) - limit} more)" if len(where) > limit else "")


def evaluate_runs(runs: list[Path], data: Path, out: Path, *, samples: range | None = None,
                  n_clusters: int = 4, device: str = "cpu") -> Path:
    """Evaluate ``runs`` on ``data`` into ``out/report.md`` (+ PNGs, ``metrics.json``).

    ``samples`` default to the whole dataset.
    """
    n = len(open_samples(data))
    samples = samples if samples is not None else range(n)
    if samples.stop > n:
        raise SciopsError(f"--samples {samples.start}:{samples.stop} exceeds the {n} samples "
                          f"of {data}")
    table, errors, spectra, rollouts, summary, panels = [], {}, {}, {}, {}, {}
    truth, bad = None, {}
    for run in runs:
        label = run.name
        pred, truth = _arrays(run, data, samples, device)
        broken = np.flatnonzero(~np.isfinite(truth.values.reshape(len(samples), -1)).all(1))
        if len(broken):
            raise SciopsError(f"{data}: the stored targets hold NaN/inf in {len(broken)} "
                              f"sample(s) ({_ids(samples, broken)}); regenerate them or "
                              f"choose other --samples")
        m = metrics.evaluate_all(pred, truth)
        s = metrics.summarize(m)
        summary[label] = s
        rel = m["relative_l2"]
        rel = rel.mean("channel", skipna=False) if "channel" in rel.dims else rel
        errors[label] = rel.values
        nonfinite = np.flatnonzero(metrics.nonfinite(m).values.reshape(-1))
        if len(nonfinite):
            bad[label] = nonfinite
            print(f"sciops: warning: run {label}: {len(nonfinite)} of {len(samples)} samples "
                  f"have non-finite errors ({_ids(samples, nonfinite)}); its means are "
                  f"{s['relative_l2']:.4g}", file=sys.stderr)
        if "spectrum_pred" in m:
            spec = m["spectrum_pred"]
            spectra[label] = spec.mean([d for d in spec.dims if d != "k"]).values
            if "truth" not in spectra:
                t = m["spectrum_target"]
                spectra["truth"] = t.mean([d for d in t.dims if d != "k"]).values
        if "rollout_error" in m and "time" in m["rollout_error"].dims:
            r = m["rollout_error"]
            rollouts[label] = r.mean([d for d in r.dims if d != "time"]).values
        table.append((label, s))
        finite = np.flatnonzero(np.isfinite(errors[label]))
        finite = finite if len(finite) else np.arange(len(errors[label]))
        order = finite[np.argsort(errors[label][finite])]
        rows = [_panels(pred, truth, i)  # best, median, worst
                for i in (order[0], order[len(order) // 2], order[-1])]
        panels[label] = np.stack([r[0] for r in rows]), rows[0][1]
    out.mkdir(parents=True, exist_ok=True)
    for label, (fields, shown) in panels.items():
        report.plot_snapshots(fields, ["truth", "prediction", "error"],
                              out / f"{label}-samples.png",
                              title=f"{label}: best / median / worst sample (rows), {shown}")
    report.plot_error_histogram({k: e[np.isfinite(e)] for k, e in errors.items()},
                                out / "errors.png")
    if spectra:
        report.plot_spectra(spectra, out / "spectra.png")
    if rollouts:
        report.plot_rollout(rollouts, out / "rollout.png")
    snaps = truth.values.reshape(truth.sizes["sample"], -1)
    k = min(n_clusters, len(snaps))
    clusters = {label: rom.error_by_cluster(snaps, err, n_clusters=k)
                for label, err in errors.items()}
    (out / "metrics.json").write_text(json.dumps(_json_safe({
        "summary": summary,
        "nonfinite_samples": {label: [samples[int(i)] for i in idx]
                              for label, idx in bad.items()},
        "clusters": {label: {v: c[v].values.tolist() for v in ("count", "mean_error", "max_error",
                                                                  "medoid")}
                     for label, c in clusters.items()}}), indent=2, allow_nan=False))
    keys = ["relative_l2", "nrmse", "rmse", "max_error", "rmse_low", "rmse_mid", "rmse_high",
            "h1_error", "spectrum_error"]
    lines = [f"# sciops evaluation on `{data}` (samples {samples.start}..{samples.stop - 1})", "",
             "| run | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for label, s in table:
        lines.append(f"| {label} | " + " | ".join(f"{s.get(k, float('nan')):.4g}" for k in keys)
                     + " |")
    lines += ["", "Means over samples; `max_error` is the maximum. Bands are radial integer "
              "wavenumbers |k| < 4, 4-12, >= 12. A non-finite sample is not dropped: it makes "
              "the means NaN or inf.", ""]
    for label, idx in bad.items():
        lines += [f"**Non-finite:** run `{label}`: {len(idx)} of {len(samples)} samples have "
                  f"non-finite errors (samples {_ids(samples, idx)}); the histogram, panels "
                  f"and sample ranking show the finite ones.", ""]
    lines += ["![errors](errors.png)", ""]
    if spectra:
        lines += ["![spectra](spectra.png)", ""]
    if rollouts:
        lines += ["![rollout](rollout.png)", ""]
    for label, c in clusters.items():
        lines += [f"## {label}", "", f"![{label} samples]({label}-samples.png)", "",
                  f"Error per cluster of the targets (sine dissimilarity, k-medoids, k={k}):", "",
                  "| cluster | samples | mean rel. L2 | max rel. L2 | medoid sample |",
                  "|---|---|---|---|---|"]
        for j in range(k):
            lines.append(f"| {j} | {int(c['count'][j])} | {float(c['mean_error'][j]):.4g} | "
                         f"{float(c['max_error'][j]):.4g} | "
                         f"{samples[int(c['medoid'][j])]} |")
        lines.append("")
    path = out / "report.md"
    path.write_text("\n".join(lines))
    return path
