"""Inference from a run directory: rebuild the model from its checkpoint, predict a dataset.

Grid runs predict the first window of every sample; particle runs (``giorom``, ``gns``) roll
out ``data.out_steps`` steps after the first ``data.in_steps + 1`` records of every sample,
as their test error does (:mod:`sciops.train.particles`). ``predict_dataset`` writes a
netCDF file that carries the dataset's coordinates (``t`` of the predicted records, ``x``,
``y``, ``z``) and units, a per-sample ``split`` ("train", "test" or "unseen" by the run),
and the run's configuration, so ``sciops evaluate`` can score the file later.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import xarray as xr
from torch import nn
from tqdm.auto import tqdm

from sciops import atomic
from sciops.data import open_dataset, open_samples
from sciops.data.store import read_manifest
from sciops.errors import SciopsError
from sciops.train import checkpoint, provenance
from sciops.train.config import DataConfig, RunConfig, config_from_dict
from sciops.train.task import (
    Normalizer,
    WindowedPairs,
    ordered_batches,
    resolve_dataset,
    split_ranges,
)

if TYPE_CHECKING:
    from sciops.train.particles import ParticleTask


@dataclasses.dataclass
class LoadedRun:
    """A trained grid surrogate: ``predict(x)`` maps physical inputs to physical outputs."""

    cfg: RunConfig
    model: nn.Module
    x_norm: Normalizer
    y_norm: Normalizer

    @property
    def parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: (batch, C_in, *space) in data units -> (batch, C_out, *space)."""
        self.model.eval()
        return self.y_norm.decode(self.model(self.x_norm.encode(x)))


@dataclasses.dataclass
class ParticleRun:
    """A trained particle surrogate with the task (features, walls, statistics) it ran in."""

    cfg: RunConfig
    model: nn.Module
    task: ParticleTask
    """Built on the dataset being predicted; ``cfg`` is the run's own configuration."""

    @property
    def parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    @property
    def start(self) -> int:
        """First predicted record: the rollout starts after ``in_steps + 1`` records."""
        return self.cfg.data.in_steps + 1

    @torch.no_grad()
    def rollout(self, sample: int, device: str | torch.device = "cpu") -> torch.Tensor:
        """Positions (steps, particles, dim) in m of records ``start .. start + out_steps - 1``
        of ``sample``, rolled out from its first ``start`` records."""
        self.model.eval()
        item = self.task.store[sample]
        history = item["position"][None, :self.start].to(device)
        material = item["material"][None].long().to(device)
        return self.task.rollout(self.model, history, material, self.cfg.data.out_steps)[0].cpu()


def load_run(run: str | os.PathLike, device: str | torch.device = "cpu",
             data: str | os.PathLike | None = None) -> LoadedRun | ParticleRun:
    """Load ``RUN/best.pt`` (or ``last.pt``) into a ready model. A particle run also reads its
    dataset (``data``, default the run's ``data.dataset``) for the walls and trajectories."""
    from sciops.train.trainer import build_model

    run = Path(run)
    path = run / "best.pt" if (run / "best.pt").is_file() else run / "last.pt"
    if not path.is_file():
        raise SciopsError(f"{run}: no best.pt or last.pt; expected a run directory written by "
                          f"`sciops train --out {run}`")
    state = checkpoint.load(path, device)
    cfg = config_from_dict(state["config"])
    if "velocity" in state["task"]:  # the particle task's statistics
        from sciops.train.particles import ParticleTask  # imports the mpm2d definitions

        on = cfg if data is None else \
            dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, dataset=str(data)))
        task = ParticleTask(on)
        model = _weights(build_model(cfg, task.in_channels, task.out_channels), state, path, cfg)
        for k, m in task.state_modules().items():
            m.load_state_dict(state["task"][k])
        return ParticleRun(cfg, model.to(device), task)
    cx, cy = (state["task"][k]["mean"].numel() for k in ("x", "y"))
    model = _weights(build_model(cfg, cx, cy), state, path, cfg).to(device)
    xn, yn = Normalizer(cx).to(device), Normalizer(cy).to(device)
    xn.load_state_dict(state["task"]["x"])
    yn.load_state_dict(state["task"]["y"])
    return LoadedRun(cfg, model, xn, yn)


def _weights(model: nn.Module, state: dict, path: Path, cfg: RunConfig) -> nn.Module:
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as e:
        raise SciopsError(f"{path}: weights do not fit model {cfg.model['name']}: "
                          f"{str(e).splitlines()[0]}") from None
    return model


def same_dataset(cfg: DataConfig, data: str | os.PathLike) -> bool:
    """Whether ``data`` holds the samples the run was trained on: the same directory, or a
    dataset of the same recipe (manifest). A run whose dataset is gone counts as the same,
    so that training samples are never silently taken for unseen ones."""
    try:
        own = resolve_dataset(cfg.dataset)
    except SciopsError:
        return True
    if own.resolve() == Path(data).resolve():
        return True
    try:
        return read_manifest(own)["recipe"] == read_manifest(Path(data))["recipe"]
    except (SciopsError, OSError, KeyError):
        return False


def split_labels(cfg: DataConfig, samples: range, same: bool = True) -> np.ndarray:
    """"train", "test" or "unseen" for each of ``samples`` by the run's split (all "unseen"
    when ``same`` is False: another dataset)."""
    train, test = split_ranges(cfg)
    return np.array(["train" if same and k in train else "test" if same and k in test
                     else "unseen" for k in samples])


def bar(total: int, desc: str, progress: bool) -> tqdm:
    """A progress bar on stderr; off when ``progress`` is False or stderr is not a TTY."""
    return tqdm(total=total, desc=desc, disable=None if progress else True, leave=False,
                dynamic_ncols=True)


def _coords(data: xr.Dataset, dims: tuple[str, ...], times: slice | None) -> dict:
    """The dataset's coordinates of ``dims`` with their attributes (``t`` on ``time``)."""
    coords = {}
    for d in dims:
        if d == "time" and "t" in data.coords and times is not None:
            coords["t"] = ("time", data["t"].values[times], dict(data["t"].attrs))
        elif d in data.coords and d != "sample":
            coords[d] = (d, data[d].values, dict(data[d].attrs))
    return coords


def predict_dataset(run: str | os.PathLike, data: str | os.PathLike, out: str | os.PathLike,
                    *, device: str | torch.device = "cpu", batch_size: int = 16,
                    progress: bool = False) -> Path:
    """Predict every sample of ``data`` with ``run``; write a netCDF file ``out``.

    Grid runs: each target variable as predicted for the first window, dims ``(sample,
    time, *space)`` for time-dependent targets (``time`` = the target window, ``t`` its
    record times) or ``(sample, *space)``. Particle runs: ``position`` (m), dims
    ``(sample, time, particle, dim)``, the rolled-out records. Both: ``split (sample)``,
    and attributes ``run``, ``model``, ``dataset``, ``config`` (JSON), ``parameters``,
    ``window_start_step`` (index of the first predicted record).
    """
    atomic.check_writable_file(out)
    out = Path(out)
    provenance.check(Path(run), data)
    loaded = load_run(run, device, data)
    cfg = loaded.cfg
    stored = open_dataset(data)
    if isinstance(loaded, ParticleRun):
        n = len(loaded.task.store)
        with bar(n, "predict", progress) as b:
            pos = []
            for k in range(n):
                pos.append(loaded.rollout(k, device).numpy())
                b.update(1)
        start, times = loaded.start, slice(loaded.start, loaded.start + cfg.data.out_steps)
        dims = ("sample", "time", "particle", "dim")
        ds = xr.Dataset({"position": (dims, np.stack(pos), dict(stored["position"].attrs))},
                        coords={"sample": np.arange(n), **_coords(stored, dims, times)})
    else:
        data_cfg = dataclasses.replace(cfg.data, windows="first")
        n = len(open_samples(data, cfg.data.inputs[:1], aliases=cfg.data.variables))
        pairs = WindowedPairs(data, data_cfg, range(n))
        preds = []
        with bar(math.ceil(n / batch_size), "predict", progress) as b:
            for x, _ in ordered_batches(pairs, batch_size):
                preds.append(loaded.predict(x.to(device)).cpu())
                b.update(1)
        y = torch.cat(preds).numpy()
        start, steps = cfg.data.in_steps, cfg.data.out_steps
        space = ("x", "y", "z")[: y.ndim - 2]
        ds = xr.Dataset(coords={"sample": np.arange(n),
                                **_coords(stored, ("time", *space), slice(start, start + steps))})
        c = 0
        for name in cfg.data.targets:
            attrs = {k: v for k, v in stored[pairs.store.sources[name]].attrs.items()
                     if k != "file_name"}
            if pairs.timed[name]:
                ds[name] = (("sample", "time", *space), y[:, c:c + steps], attrs)
                c += steps
            else:
                ds[name] = (("sample", *space), y[:, c], attrs)
                c += 1
    ds["split"] = ("sample", split_labels(cfg.data, range(n), same_dataset(cfg.data, data)))
    ds.attrs.update({"run": str(Path(run).resolve()), "model": cfg.model["name"],
                     "dataset": str(Path(data).resolve()),
                     "config": json.dumps(cfg.to_dict()), "parameters": loaded.parameters,
                     "window_start_step": start})
    atomic.write(out, lambda tmp: ds.to_netcdf(tmp, engine="h5netcdf"),
                 then="free space and rerun the same command")
    return out
