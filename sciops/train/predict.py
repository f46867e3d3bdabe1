"""Inference from a run directory: rebuild the model from its checkpoint, predict a dataset."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import torch
import xarray as xr
from torch import nn

from sciops.data import open_samples
from sciops.errors import SciopsError
from sciops.train import checkpoint
from sciops.train.config import RunConfig, config_from_dict
from sciops.train.task import Normalizer, WindowedPairs, ordered_batches


@dataclasses.dataclass
class LoadedRun:
    """A trained surrogate: ``predict(x)`` maps physical inputs to physical outputs."""

    cfg: RunConfig
    model: nn.Module
    x_norm: Normalizer
    y_norm: Normalizer

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: (batch, C_in, *space) in data units -> (batch, C_out, *space)."""
        self.model.eval()
        return self.y_norm.decode(self.model(self.x_norm.encode(x)))


def load_run(run: str | os.PathLike, device: str | torch.device = "cpu") -> LoadedRun:
    """Load ``RUN/best.pt`` (or ``last.pt``) into a ready model."""
    from sciops.train.trainer import build_model

    run = Path(run)
    path = run / "best.pt" if (run / "best.pt").is_file() else run / "last.pt"
    state = checkpoint.load(path, device)
    cfg = config_from_dict(state["config"])
    cx, cy = (state["task"][k]["mean"].numel() for k in ("x", "y"))
    model = build_model(cfg, cx, cy).to(device)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as e:
        raise SciopsError(f"{path}: weights do not fit model {cfg.model['name']}: "
                          f"{str(e).splitlines()[0]}") from None
    xn, yn = Normalizer(cx).to(device), Normalizer(cy).to(device)
    xn.load_state_dict(state["task"]["x"])
    yn.load_state_dict(state["task"]["y"])
    return LoadedRun(cfg, model, xn, yn)


def predict_dataset(run: str | os.PathLike, data: str | os.PathLike, out: str | os.PathLike,
                    *, device: str | torch.device = "cpu", batch_size: int = 16) -> Path:
    """Predict the first window of every sample of ``data``; write a netCDF file ``out``.

    The file holds each target variable as predicted, dims ``(sample, time, *space)`` for
    time-dependent targets (``time`` = the target window) or ``(sample, *space)``.
    """
    loaded = load_run(run, device)
    cfg = loaded.cfg
    data_cfg = dataclasses.replace(cfg.data, windows="first")
    n = len(open_samples(data, cfg.data.inputs[:1]))
    pairs = WindowedPairs(data, data_cfg, range(n))
    preds = [loaded.predict(x.to(device)).cpu() for x, _ in ordered_batches(pairs, batch_size)]
    y = torch.cat(preds).numpy()
    space_dims = ("x", "y", "z")[: y.ndim - 2]
    ds = xr.Dataset(coords={"sample": np.arange(n)})
    c = 0
    for name in cfg.data.targets:
        if pairs.timed[name]:
            steps = cfg.data.out_steps
            ds[name] = (("sample", "time", *space_dims), y[:, c:c + steps])
            c += steps
        else:
            ds[name] = (("sample", *space_dims), y[:, c])
            c += 1
    ds.attrs.update({"run": str(run), "model": cfg.model["name"], "dataset": str(data),
                     "window_start_step": cfg.data.in_steps})
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    ds.to_netcdf(out, engine="h5netcdf")
    return out
