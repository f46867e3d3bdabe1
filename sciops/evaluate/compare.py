"""``sciops evaluate``: score trained runs, or their prediction files, and write a report.

A source is a run directory (its first window of every selected sample is predicted now)
or a prediction file of ``sciops predict`` (scored as stored). Each is compared with the
stored truth of the dataset: ``--data``, else the one the runs were trained on or the
files were predicted from. Samples default to the runs' test split (the intersection when
the runs' splits differ); samples that trained a run are scored on request only, with a
``sciops: warning`` line and a mark in the report.

Grid data: metrics of :func:`sciops.evaluate.metrics.evaluate_all` against the stored
targets, and a persistence baseline (the last input frame held) when a run maps a variable
to its own future. Particle data (``position``, dims ``sample, time, particle, dim``):
rollout position errors in m (:func:`sciops.evaluate.metrics.particle_errors`) and a
constant-velocity baseline.

The report (``report.md``) has a score table (which samples were scored: test or train), a
training table (parameters, epochs, steps, training time, from each run's checkpoint and
``metrics.jsonl``), loss curves, the per-sample error distribution (ECDF), the error against
physical time (median and 10-90 % band over samples), and per run either truth / prediction
/ error panels of the best, median and worst samples plus the error per sine-dissimilarity
cluster of the targets (grids), or positions of truth and prediction at a few times
(particles). Every model keeps one colour in every figure. Nothing is written before every
source has been scored, so a failure leaves no partial report.

Panels show the last output step of 2-D data (the middle ``z`` slice in 3-D); for 1-D data
they show the whole output window as a space–time image (or a line with one output step).

Non-finite samples are reported, never dropped: a sample whose prediction is NaN/inf makes
that run's means NaN/inf (``null`` in ``metrics.json``); the report and a one-line
``sciops: warning`` on stderr say how many samples, and which, were non-finite. Panels and
distributions show the finite samples. Non-finite values in the stored truth are a broken
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

from sciops import models, rom
from sciops.data import open_dataset, open_samples, sizing
from sciops.errors import SciopsError
from sciops.evaluate import metrics, report
from sciops.train import provenance
from sciops.train.config import RunConfig, config_from_dict
from sciops.train.predict import LoadedRun, ParticleRun, bar, load_run, same_dataset
from sciops.train.task import WindowedPairs, ordered_batches, resolve_dataset, split_ranges

GRID_KEYS = ["relative_l2", "nrmse", "rmse", "max_error", "rmse_low", "rmse_mid", "rmse_high",
             "h1_error", "spectrum_error"]
PARTICLE_KEYS = ["position_rmse", "final_rmse", "max_error", "mse"]


@dataclasses.dataclass
class Source:
    """One thing to score: a run directory, or a prediction file (``preds``)."""

    label: str
    path: Path
    cfg: RunConfig
    run: Path | None
    """The run directory (training log, checkpoint), if it exists."""
    data: str
    """The dataset it was trained on (run) or predicted from (file)."""
    preds: xr.Dataset | None = None

    @property
    def particles(self) -> bool:
        return "position" in self.preds if self.preds is not None else \
            models.kind(self.cfg.model["name"]) == "particle"


def _prediction_file(path: Path) -> xr.Dataset | None:
    """The content of a ``sciops predict`` file, None for anything else."""
    if not path.is_file():
        return None
    try:
        ds = xr.open_dataset(path, engine="h5netcdf")
    except (OSError, ValueError):
        return None
    return ds if "config" in ds.attrs and "dataset" in ds.attrs else None


def load_source(path: Path) -> Source:
    """A run directory (with ``config.json``) or a prediction file, else an error."""
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise SciopsError(f"{path}: not a run directory (no config.json); pass run "
                              f"directories of `sciops train` or files of `sciops predict`")
        try:
            cfg = config_from_dict(json.loads((path / "config.json").read_text()))
        except ValueError as e:
            raise SciopsError(f"{path / 'config.json'}: unreadable ({e})") from None
        return Source(path.name, path, cfg, path, next(iter(cfg.data.test.values()),
                                                       cfg.data.dataset))
    preds = _prediction_file(path)
    if preds is None:
        raise SciopsError(f"{path}: neither a run directory nor a prediction file of "
                          f"`sciops predict`")
    run = Path(preds.attrs["run"])
    return Source(f"{run.name}-{path.stem}", path, config_from_dict(json.loads(
        preds.attrs["config"])), run if run.is_dir() else None, preds.attrs["dataset"], preds)


def _dataset(sources: list[Source], data: Path | None) -> Path:
    """``--data``, else the one dataset of every source."""
    if data is not None:
        if _prediction_file(data) is not None:
            raise SciopsError(f"--data {data}: is a prediction file of `sciops predict`; pass "
                              f"it as a source instead: `sciops evaluate {data}`")
        return data
    found = {}
    for s in sources:
        try:
            path = resolve_dataset(s.data)
        except SciopsError:
            raise SciopsError(f"{s.path}: its dataset {s.data} is gone; pass --data") from None
        found.setdefault(path.resolve(), s.label)
    if len(found) > 1:
        which = ", ".join(f"{s}: {p}" for p, s in found.items())
        raise SciopsError(f"the sources come from different datasets ({which}); pass --data "
                          f"to score them on one")
    return next(iter(found))


def _default_samples(sources: list[Source], same: dict[str, bool], n: int) -> range:
    """The test split every source shares (all samples of a dataset none trained on)."""
    tests = {}
    for s in sources:
        test = split_ranges(s.cfg.data)[1] if same[s.label] else range(n)
        if not len(test):
            why = (f"it tests on the separate sets {s.cfg.data.test}: pass --data one of them"
                   if s.cfg.data.test else "data.test_samples=0")
            raise SciopsError(f"run {s.label}: has no test split ({why}); "
                              f"or pass --samples START:STOP")
        tests[s.label] = test
    lo, hi = max(t.start for t in tests.values()), min(t.stop for t in tests.values())
    if lo >= hi:
        raise SciopsError("the runs' test splits do not overlap (" + ", ".join(
            f"{k}: {t.start}:{t.stop}" for k, t in tests.items()) + "); pass --samples")
    return range(lo, hi)


def _ids(samples: range, where: np.ndarray, limit: int = 10) -> str:
    ids = [str(samples[int(i)]) for i in where[:limit]]
    return ", ".join(ids) + (f", ... ({len(where) - limit} more)" if len(where) > limit else "")


def _span(r: range) -> str:
    return f"{r.start}..{r.stop - 1}" if len(r) > 1 else str(r.start)


def _from_file(preds: xr.Dataset, names: list[str], samples: range) -> np.ndarray:
    """Stacked predictions ``(sample, ...)`` of variables ``names`` of a prediction file."""
    have = preds["sample"].values
    if samples.start < have.min() or samples.stop - 1 > have.max():
        raise SciopsError(f"{preds.encoding.get('source', 'prediction file')}: holds samples "
                          f"{have.min()}..{have.max()}, not all of {_span(samples)}")
    picked = [preds[v].sel(sample=list(samples)).values for v in names]
    return np.concatenate([p if "time" in preds[v].dims else p[:, None]
                           for p, v in zip(picked, names)], 1)


def _arrays(source: Source, loaded: LoadedRun | None, data: Path, samples: range,
            progress: bool = False) -> tuple[xr.DataArray, xr.DataArray]:
    """Prediction and truth of a grid source as DataArrays ``(sample, time|channel, ...)``."""
    cfg = dataclasses.replace(source.cfg.data, windows="first")
    pairs = WindowedPairs(data, cfg, samples)
    preds, truths = [], []
    with bar(math.ceil(len(pairs) / 16), f"evaluate {source.label}", progress) as b:
        for x, y in ordered_batches(pairs, 16):
            if loaded is not None:
                preds.append(loaded.predict(x.to(next(loaded.model.parameters()).device)).cpu())
            truths.append(y)
            b.update(1)
    truth = torch.cat(truths).numpy()
    pred = torch.cat(preds).numpy() if loaded is not None else \
        _from_file(source.preds, cfg.targets, samples)
    if pred.shape != truth.shape:
        raise SciopsError(f"{source.path}: predictions of shape {pred.shape[1:]} per sample, "
                          f"the data give {truth.shape[1:]}")
    space = ("x", "y", "z")[: pred.ndim - 2]
    timed = len(cfg.targets) == 1 and pairs.timed[cfg.targets[0]]
    dims = ("sample", "time" if timed else "channel", *space)
    coords = {"sample": np.asarray(samples)}
    return (xr.DataArray(pred, dims=dims, coords=coords),
            xr.DataArray(truth, dims=dims, coords=coords))


#: Copies of the scored targets held at once by :func:`evaluate_runs` (truth, one source's
#: prediction, the baseline, and the temporaries of :func:`metrics.evaluate_all`).
COPIES = 6
#: Clusters of the error map when ``--clusters`` is not given (capped at the sample count).
DEFAULT_CLUSTERS = 4


def _sample_bytes(source: Source, data: Path, k: int) -> int:
    """Bytes of the scored targets of one sample ``k`` of ``data`` for ``source``."""
    d = source.cfg.data
    if source.particles:
        x = open_samples(data, ["position"])[k]["position"]
        return d.out_steps * x[0].numel() * x.element_size()
    y = WindowedPairs(data, dataclasses.replace(d, windows="first"), range(k, k + 1))[0][1]
    return y.numel() * y.element_size()


def _persistence(cfg: RunConfig, data: Path, samples: range) -> xr.DataArray | None:
    """The last input frame held over the target window, when a run maps one time-dependent
    variable to its own future; else None."""
    d = dataclasses.replace(cfg.data, windows="first")
    if d.inputs != d.targets or len(d.targets) != 1:
        return None
    pairs = WindowedPairs(data, d, samples)
    if not pairs.timed[d.targets[0]]:
        return None
    last = torch.cat([x[:, -1:] for x, _ in ordered_batches(pairs, 16)]).numpy()
    held = np.repeat(last, d.out_steps, axis=1)
    space = ("x", "y", "z")[: held.ndim - 2]
    return xr.DataArray(held, dims=("sample", "time", *space),
                        coords={"sample": np.asarray(samples)})


def _particle_arrays(source: Source, loaded: ParticleRun | None, data: Path, samples: range,
                     progress: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Predicted, true and constant-velocity positions ``(sample, step, particle, dim)`` (m)
    of the rolled-out records of a particle source."""
    store = open_samples(data, ["position"])
    h, steps = source.cfg.data.in_steps, source.cfg.data.out_steps
    if h + 1 + steps > store[samples[0]]["position"].shape[0]:
        raise SciopsError(f"{data}: has fewer than data.in_steps + 1 + data.out_steps = "
                          f"{h + 1 + steps} records")
    pred, truth, base = [], [], []
    ahead = np.arange(1, steps + 1)[:, None, None]
    with bar(len(samples), f"evaluate {source.label}", progress) as b:
        for k in samples:
            x = store[k]["position"].numpy()
            truth.append(x[h + 1:h + 1 + steps])
            base.append(x[h] + ahead * (x[h] - x[h - 1]))
            if loaded is not None:
                pred.append(loaded.rollout(k, next(loaded.model.parameters()).device).numpy())
            b.update(1)
    pred = np.stack(pred) if loaded is not None else _from_file(source.preds, ["position"],
                                                                samples)
    truth = np.stack(truth)
    if pred.shape != truth.shape:
        raise SciopsError(f"{source.path}: predictions of shape {pred.shape[1:]} per sample, "
                          f"the data give {truth.shape[1:]}")
    return pred, truth, np.stack(base)


def _json_safe(value):
    """``value`` with every non-finite float replaced by None (strict JSON)."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


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


def _order(err: np.ndarray) -> np.ndarray:
    """Indices of the best, median and worst finite per-sample errors."""
    finite = np.flatnonzero(np.isfinite(err))
    finite = finite if len(finite) else np.arange(len(err))
    order = finite[np.argsort(err[finite])]
    return order[[0, len(order) // 2, -1]]


def _test_metric(particles: bool, cfg: RunConfig) -> tuple[str, str]:
    """The ``metrics.jsonl`` key of the training task's test error (of its first separate
    test set, if it names some), and its label."""
    from sciops.train.particles import ParticleTask
    from sciops.train.task import SupervisedTask

    if cfg.data.test and not particles:
        first = next(iter(cfg.data.test))
        return f"{first}_rel_l2", f"{first} rel. L2"
    task = ParticleTask if particles else SupervisedTask
    key = getattr(task, "metric", "test_rel_l2")
    return key, getattr(task, "metric_label", key)


def _training(source: Source, parameters: int | None, key: str) -> tuple[dict, list[dict]]:
    """Training facts of a source's run (``metrics.jsonl``, test error under ``key``) and
    its logged records."""
    records = []
    log = source.run / "metrics.jsonl" if source.run is not None else None
    if log is not None and log.is_file():
        records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    last = records[-1] if records else {}
    tests = [r[key] for r in records if r.get(key) is not None]
    return ({"model": source.cfg.model["name"],
             "parameters": None if parameters is None else int(parameters),
             "epochs": last.get("epoch"), "epochs_planned": source.cfg.train.epochs,
             "steps": last.get("step"), "seconds": last.get("seconds"),
             "final_train_loss": last.get("train_loss"),
             "best_test": min(tests) if tests else None}, records)


def _fmt(v, spec: str = ".4g") -> str:
    return "–" if v is None else format(v, spec)


def evaluate_runs(paths: list[Path], data: Path | None, out: Path, *,
                  samples: range | None = None, n_clusters: int | None = None,
                  device: str = "cpu", progress: bool = False,
                  max_memory: int | str | None = None) -> Path:
    """Evaluate run directories or prediction files ``paths`` into ``out/report.md`` (+ PNGs,
    ``metrics.json``); see the module docstring. ``data``: the dataset (default: the one
    of the sources); ``samples``: default the test split the sources share; ``n_clusters``
    of the error map: 1 to the number of samples (default: 4, capped at that number).
    Refused up front when the scored arrays would not fit the available memory (or
    ``max_memory``)."""
    if n_clusters is not None and n_clusters < 1:
        raise SciopsError(f"--clusters {n_clusters}: must be >= 1")
    sources = [load_source(p) for p in paths]
    labels = [s.label for s in sources]
    for i, s in enumerate(sources):  # the same run twice, or runs of one name elsewhere
        if labels.count(s.label) > 1:
            s.label = f"{s.label}-{labels[:i].count(s.label) + 1}"
    if len({s.particles for s in sources}) > 1:
        raise SciopsError("cannot compare particle runs with grid runs in one report")
    particles = sources[0].particles
    data = _dataset(sources, data)
    for s in sources:
        if s.preds is None:
            provenance.check(s.path, data)
    n = len(open_samples(data, ["position"] if particles else sources[0].cfg.data.targets[:1],
                         aliases=sources[0].cfg.data.variables))
    same = {s.label: same_dataset(s.cfg.data, data) for s in sources}
    samples = samples if samples is not None else _default_samples(sources, same, n)
    if samples.stop > n:
        raise SciopsError(f"--samples {samples.start}:{samples.stop} exceeds the {n} samples of "
                          f"{data}; allowed START:STOP with STOP <= {n}")
    if n_clusters is not None and n_clusters > len(samples):
        raise SciopsError(f"--clusters {n_clusters}: more clusters than the {len(samples)} "
                          f"scored samples; allowed [1, {len(samples)}]")
    per = _sample_bytes(sources[0], data, samples.start)
    sizing.require_memory(
        COPIES * per * len(samples), f"evaluate: {len(samples)} samples x {sizing.human(per)} "
        f"of targets need", "score fewer samples with --samples START:STOP (reports of "
        "consecutive ranges can be compared)", max_memory, because=f"{COPIES} copies: truth, "
        "prediction, baseline and metric temporaries")
    colors = report.colors_for([s.label for s in sources])
    splits, notes = {}, []
    for s in sources:
        train = split_ranges(s.cfg.data)[0] if same[s.label] else range(0)
        seen = range(max(train.start, samples.start), min(train.stop, samples.stop))
        splits[s.label] = len(seen)
        if len(seen):
            print(f"sciops: warning: run {s.label}: samples {_span(seen)} ({len(seen)} of "
                  f"{len(samples)}) trained it; their errors are training errors",
                  file=sys.stderr)
            notes.append(f"**Training samples:** run `{s.label}` was trained on samples "
                         f"{_span(seen)}, {len(seen)} of the {len(samples)} scored here; its "
                         f"scores are partly training errors.")
    stored = open_dataset(data)
    test_key, test_label = _test_metric(particles, sources[0].cfg)
    summary, errors, rollouts, training, logs = {}, {}, {}, {}, {}
    spectra, panels, particle_figs, bad, baseline = {}, {}, {}, {}, {}
    truth = None
    for s in sources:
        loaded = load_run(s.path, device, data) if s.preds is None else None
        training[s.label], logs[s.label] = _training(
            s, loaded.parameters if loaded is not None else s.preds.attrs.get("parameters"),
            _test_metric(particles, s.cfg)[0])
        if particles:
            pred, truth, base = _particle_arrays(s, loaded, data, samples, progress)
            m = metrics.particle_errors(pred, truth)
            if not baseline:
                baseline = {"constant velocity": metrics.particle_errors(base, truth)}
            rel = m["position_rmse"]
            mid = _order(rel.values)[1]
            pick = sorted({0, (len(pred[mid]) - 1) // 2, len(pred[mid]) - 1})
            particle_figs[s.label] = (truth[mid][pick], pred[mid][pick], pick, samples[mid])
        else:
            pred, truth = _arrays(s, loaded, data, samples, progress)
            broken = np.flatnonzero(~np.isfinite(truth.values.reshape(len(samples), -1)).all(1))
            if len(broken):
                raise SciopsError(f"{data}: the stored targets hold NaN/inf in {len(broken)} "
                                  f"sample(s) ({_ids(samples, broken)}); regenerate them or "
                                  f"choose other --samples")
            m = metrics.evaluate_all(pred, truth)
            held = None if baseline else _persistence(s.cfg, data, samples)
            if held is not None:
                baseline = {"persistence": metrics.evaluate_all(held, truth)}
            rel = m["relative_l2"]
            rel = rel.mean("channel", skipna=False) if "channel" in rel.dims else rel
            if "spectrum_pred" in m:
                spec = m["spectrum_pred"]
                spectra[s.label] = spec.mean([d for d in spec.dims if d != "k"]).values
                if "truth" not in spectra:
                    t = m["spectrum_target"]
                    spectra["truth"] = t.mean([d for d in t.dims if d != "k"]).values
            rows = [_panels(pred, truth, i) for i in _order(rel.values)]
            panels[s.label] = np.stack([r[0] for r in rows]), rows[0][1]
        summary[s.label] = metrics.summarize(m)
        errors[s.label] = rel.values
        if "rollout_error" in m and "time" in m["rollout_error"].dims:
            r = m["rollout_error"]
            rollouts[s.label] = r.mean([d for d in r.dims if d not in ("sample", "time")]) \
                .transpose("sample", "time").values
        nonfinite = np.flatnonzero(metrics.nonfinite(m).values.reshape(-1))
        if len(nonfinite):
            bad[s.label] = nonfinite
            key = "position_rmse" if particles else "relative_l2"
            print(f"sciops: warning: run {s.label}: {len(nonfinite)} of {len(samples)} samples "
                  f"have non-finite errors ({_ids(samples, nonfinite)}); its means are "
                  f"{summary[s.label][key]:.4g}", file=sys.stderr)
    for name, m in baseline.items():
        summary[name] = metrics.summarize(m)
        rel = m["position_rmse" if particles else "relative_l2"]
        errors[name] = rel.values
        if "time" in m["rollout_error"].dims:
            rollouts[name] = m["rollout_error"].transpose("sample", "time").values

    # -- figures and report: written only now that every source is scored -----------------
    out.mkdir(parents=True, exist_ok=True)
    first = sources[0].cfg.data
    start = first.in_steps + 1 if particles else first.in_steps
    t = stored["t"].values if "t" in stored.coords else None
    steps = next(iter(rollouts.values())).shape[1] if rollouts else 0
    times = t[start:start + steps] if t is not None and len(t) >= start + steps else None
    t_units = stored["t"].attrs.get("units", "s" if particles else "") if t is not None else ""
    t_label = f"t ({t_units})" if times is not None and t_units else \
        "t" if times is not None else "output step"
    what = "position RMSE (m)" if particles else "relative L2"
    report.plot_error_ecdf(errors, out / "errors.png", xlabel=what, colors=colors)
    if rollouts:
        report.plot_rollout(rollouts, out / "rollout.png", t=times, xlabel=t_label,
                            ylabel=what, colors=colors)
    logged = {k: v for k, v in logs.items() if v}
    if logged:
        report.plot_training(logged, out / "loss.png", colors=colors, test_key=test_key,
                             test_label=test_label)
    if spectra:
        report.plot_spectra(spectra, out / "spectra.png", colors=colors)
    clusters, k = {}, 0
    if particles:
        lo, hi = float(np.nanmin(truth)), float(np.nanmax(truth))
        box = (lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo))
        for label, (yt, yp, pick, sample) in particle_figs.items():
            shown = [f"t = {times[i]:.4g} {t_units}" if times is not None else f"step {i + 1}"
                     for i in pick]
            report.plot_particles(
                yt, yp, out / f"{label}-particles.png", titles=shown, color=colors[label],
                limits=box, title=f"{label}: sample {sample} (median error), truth vs prediction")
    else:
        for label, (fields, shown) in panels.items():
            report.plot_comparison(
                fields, out / f"{label}-samples.png", row_titles=("best", "median", "worst"),
                title=f"{label}: best / median / worst sample (rows), {shown}")
        snaps = truth.values.reshape(truth.sizes["sample"], -1)
        k = n_clusters or min(DEFAULT_CLUSTERS, len(snaps))
        clusters = {label: rom.error_by_cluster(snaps, errors[label], n_clusters=k)
                    for label in panels}
    (out / "metrics.json").write_text(json.dumps(_json_safe({
        "data": str(data), "samples": [samples.start, samples.stop],
        "training_samples_scored": splits, "summary": summary, "training": training,
        "nonfinite_samples": {label: [samples[int(i)] for i in idx]
                              for label, idx in bad.items()},
        "clusters": {label: {v: c[v].values.tolist() for v in ("count", "mean_error", "max_error",
                                                                  "medoid")}
                     for label, c in clusters.items()}}), indent=2, allow_nan=False))

    keys = PARTICLE_KEYS if particles else GRID_KEYS
    shared = all(splits[s.label] == 0 and same[s.label] for s in sources)
    lines = [f"# sciops evaluation on `{data}`", "",
             f"Samples {_span(samples)} ({len(samples)})" +
             (": the test split of every run." if shared else "."), ""]
    for note in notes:
        lines += [note, ""]
    lines += ["| run | scored samples | " + " | ".join(keys) + " |",
              "|---" * (len(keys) + 2) + "|"]
    for label, s in summary.items():
        kind = "reference" if label in baseline else \
            f"**{splits[label]} train**, {len(samples) - splits[label]} test" if splits[label] \
            else "test" if same[label] else "unseen"
        lines.append(f"| {label} | {kind} | " + " | ".join(
            f"{s.get(k, float('nan')):.4g}" for k in keys) + " |")
    lines += ["", "Means over samples; `max_error` is the maximum. " + (
        "Position errors in m: `position_rmse` over all rolled-out steps and particles, "
        "`final_rmse` at the last step, `mse` (m²) is the training task's test error. "
        "Constant velocity: each particle keeps its last velocity." if particles else
        "Bands are radial integer wavenumbers |k| < 4, 4-12, >= 12. Persistence: the last "
        "input frame held.") + " A non-finite sample is not dropped: it makes the means NaN "
        "or inf.", ""]
    for label, idx in bad.items():
        lines += [f"**Non-finite:** run `{label}`: {len(idx)} of {len(samples)} samples have "
                  f"non-finite errors (samples {_ids(samples, idx)}); the distributions, "
                  f"panels and sample ranking show the finite ones.", ""]
    lines += ["## Training", "", "| run | model | parameters | epochs | steps | training time "
              f"(s) | final training loss | best {test_label} |", "|---" * 8 + "|"]
    for label, tr in training.items():
        lines.append(f"| {label} | {tr['model']} | {_fmt(tr['parameters'], ',')} | "
                     f"{_fmt(tr['epochs'], 'd')} / {tr['epochs_planned']} | "
                     f"{_fmt(tr['steps'], 'd')} | {_fmt(tr['seconds'], '.1f')} | "
                     f"{_fmt(tr['final_train_loss'])} | {_fmt(tr['best_test'])} |")
    lines.append("")
    if logged:
        lines += ["![loss curves](loss.png)", ""]
    lines += ["## Errors", "", "![errors](errors.png)", ""]
    if rollouts:
        lines += ["![error vs time](rollout.png)", ""]
    if spectra:
        lines += ["![spectra](spectra.png)", ""]
    for label in (s.label for s in sources):
        lines += [f"## {label}", ""]
        if particles:
            lines += [f"![{label} particles]({label}-particles.png)", ""]
            continue
        c = clusters[label]
        lines += [f"![{label} samples]({label}-samples.png)", "",
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
