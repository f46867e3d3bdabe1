"""`sciops evaluate` and `sciops rom` end to end on a tiny generated set."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from sciops import cli
from sciops.data import generate, load_recipe, open_dataset
from sciops.evaluate import rom
from sciops.train import Trainer, build_config
from sciops.train.predict import load_run

SMALL = {"resolution": "32", "output_resolution": "32", "t_final": "6", "n_records": "6",
         "samples_per_shard": "8", "batch_size": "8"}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("ev")
    data = generate(load_recipe("ns2d-fno-nu1e-3").with_changes(samples=16, overrides=SMALL),
                    root / "ns", progress=False).out
    cfg = build_config({"name": "ev", "model": {"name": "fno", "n_modes": [8, 8],
                                                "hidden_channels": 8, "n_layers": 2},
                        "data": {"dataset": str(data), "in_steps": 2, "out_steps": 3,
                                 "train_samples": 12, "test_samples": 4},
                        "train": {"epochs": 2, "batch_size": 4}})
    Trainer(cfg, root / "run", progress=False).fit()
    return root, data


def test_evaluate_report(trained, capsys):
    root, data = trained
    out = root / "report"
    assert cli.main(["evaluate", str(root / "run"), "--data", str(data), "--out", str(out),
                     "--samples", "12:16", "--clusters", "2"]) == 0
    summary = json.loads((out / "metrics.json").read_text())["summary"]["run"]
    # independent check of the headline number: trajectory relative L2 per sample, mean
    run = load_run(root / "run")
    w = torch.from_numpy(open_dataset(data)["vorticity"].values[12:16]).float()
    pred = run.predict(w[:, :2])
    ref = ((pred - w[:, 2:5]).flatten(1).norm(dim=1) / w[:, 2:5].flatten(1).norm(dim=1)).mean()
    assert abs(summary["relative_l2"] - float(ref)) < 1e-4 * float(ref)
    text = (out / "report.md").read_text()
    assert "| run |" in text and "error per cluster" in text.lower()
    for png in ("errors.png", "spectra.png", "rollout.png", "run-samples.png"):
        img = Image.open(out / png)
        assert img.size[0] > 100 and img.size[1] > 100
        assert np.asarray(img.convert("L")).std() > 1.0  # not blank


def test_rom_study(trained):
    root, data = trained
    out = root / "rom"
    assert cli.main(["rom", str(data), "--var", "vorticity", "--k", "2", "--rank", "4",
                     "--out", str(out)]) == 0
    res = json.loads((out / "rom.json").read_text())
    g = res["mean_projection_error"]["global POD"]
    assert all(a >= b - 1e-12 for a, b in zip(g, g[1:]))  # more modes never hurt
    x = open_dataset(data)["vorticity"].values.reshape(16 * 7, -1).astype(np.float64)
    direct = rom.projection_error(x, rom.pod(x, rank=4)).mean()
    assert abs(g[-1] - direct) < 1e-9
    assert Image.open(out / "rom.png").size[0] > 100
