"""`sciops evaluate` and `sciops rom` end to end on a tiny generated set."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from sciops import cli, rom
from sciops.data import generate, load_recipe, open_dataset
from sciops.evaluate import report
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


def test_evaluate_refuses_up_front_what_cannot_fit(trained, capsys):
    """4 samples x 3 records x 32^2 float32 = 48 kB of targets, 6 copies: 295 kB > 200 kB."""
    root, _ = trained
    out = root / "too-big"
    assert cli.main(["evaluate", str(root / "run"), "--out", str(out),
                     "--max-memory", "200000"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "evaluate: 4 samples x 12 kB" in err, err
    assert "~295 kB" in err and "--max-memory is 200 kB" in err and "--samples" in err
    assert not (out / "report.md").exists()
    assert cli.main(["evaluate", str(root / "run"), "--out", str(out), "--clusters", "2",
                     "--max-memory", "400000"]) == 0


# -- which samples are scored ---------------------------------------------------------------
def _copy_run(root, name, train, test):
    """A copy of the trained run whose config.json declares another split."""
    import shutil

    run = root / name
    shutil.copytree(root / "run", run, dirs_exist_ok=True)
    cfg = json.loads((run / "config.json").read_text())
    cfg["data"].update(train_samples=train, test_samples=test)
    (run / "config.json").write_text(json.dumps(cfg))
    return run


def test_evaluate_defaults_to_the_shared_test_split(trained, capsys):
    root, data = trained
    assert cli.main(["evaluate", str(root / "run"), "--out", str(root / "dflt"),
                     "--clusters", "2"]) == 0  # no --data: the run's dataset
    res = json.loads((root / "dflt" / "metrics.json").read_text())
    assert res["samples"] == [12, 16] and res["data"] == str(data.resolve())
    other = _copy_run(root, "other", 10, 6)  # test split 10..15: the runs share 12..15
    assert cli.main(["evaluate", str(root / "run"), str(other), "--out", str(root / "both"),
                     "--clusters", "2"]) == 0
    assert json.loads((root / "both" / "metrics.json").read_text())["samples"] == [12, 16]
    assert "warning" not in capsys.readouterr().err


def test_evaluate_refuses_runs_whose_test_splits_are_disjoint(trained, capsys):
    root, _ = trained
    other = _copy_run(root, "disjoint", 8, 4)  # test split 8..11
    assert cli.main(["evaluate", str(root / "run"), str(other), "--out",
                     str(root / "never")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "do not overlap" in err and "run: 12:16" in err
    assert not (root / "never").exists()


# -- figures --------------------------------------------------------------------------------
def test_error_panel_has_its_own_colour_scale(tmp_path):
    x = np.linspace(0, 2 * np.pi, 32)
    truth = np.sin(x)[:, None] * np.cos(x)[None, :]
    pred = truth + 1e-3 * np.cos(3 * x)[:, None]  # an error 1000x below the field
    fields = np.stack([truth, pred, pred - truth])[None]
    path = report.plot_comparison(fields, tmp_path / "c.png")
    rgb = np.asarray(Image.open(path).convert("RGB")).astype(float)
    err_panel = rgb[:, 2 * rgb.shape[1] // 3 + 10:-60]  # right column, without colourbar
    assert err_panel.std(axis=(0, 1)).max() > 40  # blue and red stripes, not a white square


@pytest.mark.parametrize("lo, hi", [(0.021, 0.048), (1e-3, 0.9), (1e-8, 2.0), (0.99, 1.02)])
def test_log_axis_tick_labels_do_not_overlap(lo, hi):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.set_xscale("log")
    ax.plot([lo, hi], [0, 1])
    report._tidy_log(ax.xaxis, np.array([lo, hi]))
    fig.canvas.draw()
    boxes = sorted((t.get_window_extent() for t in ax.get_xticklabels(which="both")
                    if t.get_visible() and t.get_text() and lo <= t.get_position()[0] <= hi),
                   key=lambda b: b.x0)
    plt.close(fig)
    assert len(boxes) >= 2, (lo, hi)
    assert all(a.x1 < b.x0 for a, b in zip(boxes, boxes[1:])), [(b.x0, b.x1) for b in boxes]


def test_each_model_keeps_its_colour_in_every_figure(tmp_path):
    colors = report.colors_for(["a", "b"])
    assert colors["a"] != colors["b"] and colors["a"] not in report.REFERENCE_COLORS.values()
    colors["a"] = "#ff0000"  # pure red, which no default colour is
    rng = np.random.default_rng(0)
    paths = [
        report.plot_error_ecdf({"b": rng.uniform(0.1, 1, 9), "a": rng.uniform(0.1, 1, 9)},
                               tmp_path / "e.png", colors=colors),
        report.plot_rollout({"b": rng.uniform(0.1, 1, (9, 4)), "a": rng.uniform(0.1, 1, (9, 4))},
                            tmp_path / "r.png", colors=colors),
        report.plot_spectra({"b": np.ones(8), "a": np.arange(8.0) + 1}, tmp_path / "s.png",
                            colors=colors),
        report.plot_training({"b": [{"epoch": 1, "train_loss": 1.0, "test_rel_l2": 0.5}],
                              "a": [{"epoch": 1, "train_loss": 2.0, "test_rel_l2": 0.4},
                                    {"epoch": 2, "train_loss": 1.5, "test_rel_l2": 0.3}]},
                             tmp_path / "t.png", colors=colors)]
    for path in paths:
        rgb = np.asarray(Image.open(path).convert("RGB")).astype(int)
        red = (rgb[..., 0] > 230) & (rgb[..., 1] < 40) & (rgb[..., 2] < 40)
        assert red.sum() > 20, path.name
