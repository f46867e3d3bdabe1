"""1D data through every command, as a user runs them: generate -> train -> predict ->
evaluate -> rom on a tiny burgers1d set, trained with the shipped `fno-burgers1d` recipe."""

import json
import math

import numpy as np
import pytest
import xarray as xr
from PIL import Image

from sciops import cli
from sciops.data import open_dataset
from sciops.evaluate import metrics

RECIPE = """name = "burgers1d-tiny"
pde = "burgers1d"
samples = 24
samples_per_shard = 12
batch_size = 12
[params]
resolution = 64
nu = 0.02
ic_modes = 2
t_final = 0.25
n_records = 4
dt = 0.0025
"""
TRAIN, TEST = range(0, 20), range(20, 24)


def _rel_l2(pred: np.ndarray, truth: np.ndarray) -> float:
    """Mean over samples of the trajectory relative L2 error."""
    err = np.sqrt(((pred - truth) ** 2).sum((1, 2)) / (truth**2).sum((1, 2)))
    return float(err.mean())


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    root = tmp_path_factory.mktemp("p1d")
    (root / "burgers1d-tiny.toml").write_text(RECIPE)
    data, run = root / "data", root / "run"
    assert cli.main(["generate", str(root / "burgers1d-tiny.toml"), "--out", str(data),
                     "--quiet"]) == 0
    sets = {"data.dataset": str(data), "data.out_steps": 4, "data.train_samples": 20,
            "data.test_samples": 4, "model.hidden_channels": 32, "train.epochs": 30,
            "train.batch_size": 5, "train.lr": 3e-3, "train.scheduler": "cosine"}
    args = [a for k, v in sets.items() for a in ("--set", f"{k}={v}")]
    assert cli.main(["train", "fno-burgers1d", "--out", str(run), "--quiet", *args]) == 0
    return root, data, run


def test_generate_stores_a_1d_trajectory(pipeline):
    _, data, _ = pipeline
    u = open_dataset(data)["u"]
    assert u.dims == ("sample", "time", "x") and u.shape == (24, 5, 64)
    v = u.values
    assert np.isfinite(v).all()
    # viscous Burgers: the mean is conserved and the energy decays
    mean = v.mean(-1)
    assert np.abs(mean - mean[:, :1]).max() < 1e-5
    energy = (v**2).mean(-1)
    assert (np.diff(energy, axis=1) < 0).all()


def test_trained_fno_beats_the_baselines(pipeline):
    _, data, run = pipeline
    u = open_dataset(data)["u"].values
    truth = u[TEST, 1:]
    persistence = _rel_l2(np.repeat(u[TEST, :1], 4, axis=1), truth)
    train_mean = _rel_l2(np.broadcast_to(u[TRAIN, 1:].mean(0), truth.shape), truth)
    log = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    best = min(r["test_rel_l2"] for r in log)
    assert len(log) == 30 and math.isfinite(best)
    assert best < 0.25 * persistence and best < 0.25 * train_mean, (best, persistence, train_mean)


def test_predict_evaluate_agree_on_1d(pipeline):
    root, data, run = pipeline
    assert cli.main(["predict", str(run), "--data", str(data), "--out",
                     str(root / "pred.nc")]) == 0
    pred = xr.open_dataset(root / "pred.nc", engine="h5netcdf")["u"]
    assert pred.dims == ("sample", "time", "x") and pred.shape == (24, 4, 64)
    truth = open_dataset(data)["u"].values[:, 1:]
    direct = _rel_l2(pred.values[TEST], truth[TEST])
    best = min(json.loads(line)["test_rel_l2"]
               for line in (run / "metrics.jsonl").read_text().splitlines())
    assert direct == pytest.approx(best, rel=1e-4)  # predict uses best.pt

    out = root / "report"
    assert cli.main(["evaluate", str(run), "--data", str(data), "--out", str(out),
                     "--samples", "20:24", "--clusters", "2"]) == 0
    summary = json.loads((out / "metrics.json").read_text())["summary"]["run"]
    assert all(math.isfinite(v) for v in summary.values()), summary
    assert summary["relative_l2"] == pytest.approx(direct, rel=1e-4)
    assert summary["max_error"] == pytest.approx(
        float(np.abs(pred.values[TEST] - truth[TEST]).max()), rel=1e-5)
    assert "| run |" in (out / "report.md").read_text()
    for png in ("errors.png", "spectra.png", "rollout.png", "run-samples.png"):
        with Image.open(out / png) as img:
            assert np.asarray(img.convert("L")).std() > 1.0  # not blank


def test_rom_error_falls_with_rank(pipeline):
    root, data, _ = pipeline
    out = root / "rom"
    assert cli.main(["rom", str(data), "--var", "u", "--k", "2", "--rank", "6",
                     "--out", str(out)]) == 0
    curves = json.loads((out / "rom.json").read_text())["mean_projection_error"]
    g = curves["global POD"]
    assert all(a > b for a, b in zip(g, g[1:])), g
    assert g[-1] < 0.3 * g[0], g
    assert curves["sine local POD"][-1] <= 1.001 * g[-1]


@pytest.mark.parametrize("space", [("x",), ("x", "y", "z")])
def test_metrics_take_the_space_dims_from_the_data(space):
    rng = np.random.default_rng(len(space))
    shape = (3, 2, *(8,) * len(space))
    y = xr.DataArray(rng.normal(size=shape), dims=("sample", "time", *space))
    p = y + 0.1 * rng.normal(size=shape)
    ds = metrics.evaluate_all(p, y)
    assert ds.relative_l2.dims == ("sample",)  # no space dim mistaken for a batch dim
    axes = tuple(range(1, len(shape)))
    ref = np.sqrt(((p - y).values ** 2).sum(axes) / (y.values**2).sum(axes))
    np.testing.assert_allclose(ds.relative_l2.values, ref, rtol=1e-12)
    energy = metrics.energy_spectrum(y).sum("k").values
    np.testing.assert_allclose(energy, 0.5 * (y.values**2).mean(axes[1:]), rtol=1e-12)
