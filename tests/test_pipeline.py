"""Every command on 1-D, 2-D, 3-D and particle data, as a user runs them: generate -> train ->
predict -> evaluate -> rom through `sciops.cli.main`, each on a tiny set (seconds)."""

import contextlib
import io
import json
import math

import numpy as np
import pytest
import xarray as xr
from PIL import Image

from sciops import cli
from sciops.data import open_dataset
from sciops.train.particles import ParticleTask

BURGERS1D = """name = "burgers1d-tiny"
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
HEAT2D = """name = "heat2d-tiny"
pde = "heat2d"
samples = 16
samples_per_shard = 16
batch_size = 16
[params]
nu = 0.01
resolution = 16
t_final = 0.6
n_records = 6
dt = 0.1
ic_modes = 3
"""
HEAT3D = """name = "heat3d-tiny"
pde = "heat3d"
samples = 12
samples_per_shard = 12
batch_size = 12
[params]
nu = 0.05
resolution = 8
ic_modes = 2
t_final = 0.3
n_records = 3
dt = 0.05
"""
WATER = """name = "water-tiny"
pde = "mpm2d"
samples = 6
samples_per_shard = 6
batch_size = 6
[params]
material = "water"
n_particles = 200
n_grid = 16
substeps = 5
n_records = 12
max_blocks = 1
block_min = 0.2
block_max = 0.3
"""
GRID = {"model.hidden_channels": 8, "model.n_layers": 2, "data.in_steps": 1,
        "train.batch_size": 4, "train.epochs": 3}
# case: dataset recipe, training recipe, --set values, train / test samples, variable
CASES = {
    "1d": (BURGERS1D, "fno-burgers1d",
           {"data.out_steps": 4, "model.hidden_channels": 32, "train.epochs": 30,
            "train.batch_size": 5, "train.lr": 3e-3, "train.scheduler": "cosine"}, 20, 4, "u"),
    "2d": (HEAT2D, "fno-burgers1d", {**GRID, "data.out_steps": 5, "model.n_modes": "[6,6]"},
           12, 4, "u"),
    "3d": (HEAT3D, "fno-burgers1d", {**GRID, "data.out_steps": 3, "model.n_modes": "[4,4,4]"},
           8, 4, "u"),
    "particles": (WATER, "giorom-mpm2d-water",
                  {"data.in_steps": 3, "data.out_steps": 4, "model.n_nodes": 32,
                   "model.latent": 16, "model.layers": 2, "model.radius": 0.15,
                   "model.gno_radius": 0.1, "train.epochs": 2, "train.batch_size": 4}, 4, 2,
                  "position"),
}


def _cli(*args: str) -> tuple[int, str]:
    """Exit status and stderr of one `sciops` command run in this process."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        status = cli.main([*args, "--quiet"])
    return status, err.getvalue()


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """``built(case)``: (root, data, run, stderr of evaluate), made once per case."""
    done = {}

    def get(case: str):
        if case not in done:
            recipe, solver, sets, n_train, n_test, _ = CASES[case]
            root = tmp_path_factory.mktemp(f"pipe-{case}")
            (root / "data.toml").write_text(recipe)
            data, run = root / "data", root / "run"
            assert _cli("generate", str(root / "data.toml"), "--out", str(data))[0] == 0
            sets = {**sets, "data.dataset": str(data), "data.train_samples": n_train,
                    "data.test_samples": n_test}
            args = [a for k, v in sets.items() for a in ("--set", f"{k}={v}")]
            assert _cli("train", solver, "--out", str(run), *args)[0] == 0
            assert _cli("predict", str(run), "--data", str(data), "--out",
                        str(run / "pred.nc"))[0] == 0
            status, err = _cli("evaluate", str(run), "--out", str(root / "report"),
                               "--clusters", "2")
            assert status == 0, err
            done[case] = root, data, run, err
        return done[case]

    return get


def _summary(report) -> dict:
    return json.loads((report / "metrics.json").read_text())


@pytest.mark.parametrize("case", list(CASES))
def test_evaluate_scores_the_test_split_into_finite_numbers(built, case):
    root, _, run, err = built(case)
    n_train, n_test = CASES[case][3:5]
    res = _summary(root / "report")
    assert res["samples"] == [n_train, n_train + n_test]  # the default is the test split
    assert res["training_samples_scored"] == {"run": 0} and "warning" not in err
    assert all(math.isfinite(v) for v in res["summary"]["run"].values()), res["summary"]
    assert res["training"]["run"]["parameters"] > 0
    text = (root / "report" / "report.md").read_text()
    assert "the test split of every run" in text
    figures = ["errors.png", "rollout.png", "loss.png",
               "run-particles.png" if case == "particles" else "run-samples.png"]
    for png in figures:
        assert f"({png})" in text
        with Image.open(root / "report" / png) as img:
            assert np.asarray(img.convert("L")).std() > 1.0  # not blank
    baseline = "constant velocity" if case == "particles" else "persistence"
    assert math.isfinite(res["summary"][baseline]["mse" if case == "particles"
                                                   else "relative_l2"])


@pytest.mark.parametrize("case", list(CASES))
def test_prediction_file_marks_the_split_and_carries_coordinates(built, case):
    _, data, run, _ = built(case)
    n_train, n_test, var = CASES[case][3:]
    stored = open_dataset(data)
    with xr.open_dataset(run / "pred.nc", engine="h5netcdf") as pred:
        n = stored.sizes["sample"]
        assert list(pred["split"].values) == (["train"] * n_train + ["test"] * n_test
                                              + ["unseen"] * (n - n_train - n_test))
        start = pred.attrs["window_start_step"]
        steps = pred.sizes["time"]
        np.testing.assert_array_equal(pred["t"].values, stored["t"].values[start:start + steps])
        for d in pred[var].dims[2:]:
            if d in stored.coords:
                np.testing.assert_array_equal(pred[d].values, stored[d].values)
        assert pred[var].attrs == stored[var].attrs  # units, long name


@pytest.mark.parametrize("case", list(CASES))
def test_prediction_file_scores_like_its_run(built, case):
    root, _, run, _ = built(case)
    status, err = _cli("evaluate", str(run / "pred.nc"), "--out", str(root / "from-file"),
                       "--clusters", "2")
    assert status == 0, err
    direct, stored = _summary(root / "report"), _summary(root / "from-file")
    assert stored["samples"] == direct["samples"]
    for key, value in direct["summary"]["run"].items():
        assert stored["summary"]["run-pred"][key] == pytest.approx(value, rel=1e-6), key


@pytest.mark.parametrize("case", list(CASES))
def test_training_samples_are_warned_about_and_marked(built, case):
    root, _, run, _ = built(case)
    n_train, n_test = CASES[case][3:5]
    status, err = _cli("evaluate", str(run), "--out", str(root / "all"), "--clusters", "2",
                       "--samples", f"0:{n_train + n_test}")
    assert status == 0
    warnings = [line for line in err.splitlines() if line.startswith("sciops: warning:")]
    assert warnings == [f"sciops: warning: run run: samples 0..{n_train - 1} ({n_train} of "
                        f"{n_train + n_test}) trained it; their errors are training errors"]
    assert _summary(root / "all")["training_samples_scored"] == {"run": n_train}
    assert f"**{n_train} train**, {n_test} test" in (root / "all" / "report.md").read_text()


@pytest.mark.parametrize("case", list(CASES))
def test_rom_studies_grids_and_refuses_particles(built, case):
    root, data, _, _ = built(case)
    var = CASES[case][-1]
    status, err = _cli("rom", str(data), "--var", var, "--k", "2", "--rank", "3",
                       "--out", str(root / "rom"))
    if case == "particles":
        assert status == 2 and err.count("\n") == 1
        assert err.startswith("sciops: error:") and "particle data" in err
        assert not (root / "rom").exists()
        return
    assert status == 0, err
    g = json.loads((root / "rom" / "rom.json").read_text())["mean_projection_error"]
    assert all(math.isfinite(v) for curve in g.values() for v in curve)
    assert all(a >= b - 1e-12 for a, b in zip(g["global POD"], g["global POD"][1:]))


def test_evaluate_refuses_a_prediction_file_as_data(built):
    root, _, run, _ = built("1d")
    status, err = _cli("evaluate", str(run), "--data", str(run / "pred.nc"), "--out",
                       str(root / "bad"))
    assert status == 2 and err.count("\n") == 1
    assert "is a prediction file" in err and f"sciops evaluate {run / 'pred.nc'}" in err


# -- numbers checked independently ------------------------------------------------------------
def _rel_l2(pred: np.ndarray, truth: np.ndarray) -> float:
    """Mean over samples of the trajectory relative L2 error."""
    err = np.sqrt(((pred - truth) ** 2).sum((1, 2)) / (truth**2).sum((1, 2)))
    return float(err.mean())


def test_generate_stores_a_1d_trajectory(built):
    _, data, _, _ = built("1d")
    u = open_dataset(data)["u"]
    assert u.dims == ("sample", "time", "x") and u.shape == (24, 5, 64)
    v = u.values
    assert np.isfinite(v).all()
    # viscous Burgers: the mean is conserved and the energy decays
    mean = v.mean(-1)
    assert np.abs(mean - mean[:, :1]).max() < 1e-5
    energy = (v**2).mean(-1)
    assert (np.diff(energy, axis=1) < 0).all()


def test_trained_1d_fno_beats_the_baselines_and_the_report_agrees(built):
    root, data, run, _ = built("1d")
    train, test = range(0, 20), range(20, 24)
    u = open_dataset(data)["u"].values
    truth = u[test, 1:]
    persistence = _rel_l2(np.repeat(u[test, :1], 4, axis=1), truth)
    train_mean = _rel_l2(np.broadcast_to(u[train, 1:].mean(0), truth.shape), truth)
    log = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    best = min(r["test_rel_l2"] for r in log)
    assert len(log) == 30 and math.isfinite(best)
    assert best < 0.25 * persistence and best < 0.25 * train_mean, (best, persistence, train_mean)

    pred = xr.open_dataset(run / "pred.nc", engine="h5netcdf")["u"]
    assert pred.dims == ("sample", "time", "x") and pred.shape == (24, 4, 64)
    direct = _rel_l2(pred.values[test], truth)
    assert direct == pytest.approx(best, rel=1e-4)  # predict uses best.pt
    summary = _summary(root / "report")["summary"]
    assert summary["run"]["relative_l2"] == pytest.approx(direct, rel=1e-4)
    assert summary["run"]["max_error"] == pytest.approx(
        float(np.abs(pred.values[test] - truth).max()), rel=1e-5)
    assert summary["persistence"]["relative_l2"] == pytest.approx(persistence, rel=1e-5)


def test_particle_report_equals_the_logged_rollout_error(built):
    root, data, run, _ = built("particles")
    key = getattr(ParticleTask, "metric", "test_rel_l2")
    logged = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])[key]
    summary = _summary(root / "report")["summary"]
    assert summary["run"]["mse"] == pytest.approx(logged, rel=1e-5)  # m², test split
    # position RMSE in m from the prediction file, by hand
    x = open_dataset(data)["position"].values[4:6, 4:8]
    with xr.open_dataset(run / "pred.nc", engine="h5netcdf") as pred:
        p = pred["position"].values[4:6]
    rmse = np.sqrt(((p - x) ** 2).sum(-1).mean((1, 2))).mean()
    assert summary["run"]["position_rmse"] == pytest.approx(rmse, rel=1e-5)
    base = open_dataset(data)["position"].values[4:6]
    const = base[:, 3:4] + np.arange(1, 5)[None, :, None, None] * (base[:, 3:4] - base[:, 2:3])
    assert summary["constant velocity"]["mse"] == pytest.approx(
        ((const - x) ** 2).sum(-1).mean((1, 2)).mean(), rel=1e-5)
