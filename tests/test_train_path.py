"""The newcomer's training path through ``sciops train``: --data/--model, a recipe for every
model, resume from the run's stored config, honest summaries and one-line errors."""

import json
import math
import re
from pathlib import Path

import pytest
import torch

from sciops import cli, models
from sciops._toml import tomllib
from sciops.data import generate, known_recipes, load_recipe
from sciops.train.checkpoint import load as load_checkpoint

NS = {"resolution": "32", "output_resolution": "32", "t_final": "12", "n_records": "12",
      "samples_per_shard": "24", "batch_size": "12"}
DARCY = {"resolution": "33", "output_resolution": "33", "samples_per_shard": "40",
         "batch_size": "20"}
WATER = {"n_particles": "640", "n_grid": "32", "n_records": "20", "substeps": "5",
         "block_min": "0.2", "block_max": "0.35", "max_blocks": "2", "samples_per_shard": "6",
         "batch_size": "6"}
# fno-ns2d-nu1e-3 shrunk to the small NS set: 3 epochs of 4 steps
SMALL_NS = ["--set", "data.in_steps=4", "--set", "data.out_steps=4", "--set",
            "data.train_samples=20", "--set", "data.test_samples=4", "--set", "train.epochs=3",
            "--set", "train.batch_size=5", "--set", "model.hidden_channels=8", "--set",
            "model.n_modes=6,6", "--set", "model.n_layers=2"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Small NS (24 samples of 32², 13 records), Darcy (40 of 33²) and water (6) sets."""
    root = tmp_path_factory.mktemp("data")
    out = {}
    for key, recipe, n, overrides in (("ns", "ns2d-fno-nu1e-3", 24, NS),
                                      ("darcy", "darcy2d-fno-r85", 40, DARCY),
                                      ("water", "mpm2d-water", 6, WATER)):
        r = load_recipe(recipe).with_changes(samples=n, overrides=overrides)
        out[key] = str(generate(r, root / key, progress=False).out)
    return out


def _train(capsys, *args):
    """``sciops train ARGS --quiet``: (exit status, stdout, stderr)."""
    rc = cli.main(["train", *map(str, args), "--quiet"])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def _error(capsys, *args) -> str:
    rc, out, err = _train(capsys, *args)
    assert rc == 2 and err.startswith("sciops: error: ") and err.count("\n") == 1, err
    return err


def _log(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


# -- a recipe for every model ---------------------------------------------------------------


def test_every_model_but_pinn_has_a_training_recipe_on_a_builtin_dataset():
    datasets = known_recipes("datasets")
    covered = {}
    for name, path in known_recipes("solvers").items():
        raw = tomllib.loads(path.read_text())
        assert re.search(r"\([A-Z][^()]* 20\d\d\b", raw["description"]), name  # cites a source
        if Path(raw["data"]["dataset"]).suffix:  # a peer's file (benchmark reproductions)
            continue
        assert raw["data"]["dataset"] in datasets, name
        covered.setdefault(raw["model"]["name"], name)
    assert set(models.available()) - set(covered) == {"pinn"}


SHRINK = {  # new recipe -> (dataset, --set options making it small; lr raised for 8 steps)
    "lsm-darcy": ("darcy", ["model.width=8", "model.levels=2", "model.heads=2",
                            "model.patch_size=4", "model.projection_channels=16"]),
    "mgno-darcy": ("darcy", ["model.hidden_channels=8", "model.n_layers=2", "model.levels=3"]),
    "multionet-darcy": ("darcy", ["model.sensors=17,17", "model.latent=32",
                                  "model.branch_layers=[32]", "model.trunk_layers=32,32"]),
    "gns-mpm2d-water": ("water", ["model.radius=0.03", "model.latent=16", "model.layers=2",
                                  "data.out_steps=3", "data.window_stride=4"]),
}


@pytest.mark.parametrize("recipe", list(SHRINK))
def test_new_recipe_trains_with_a_finite_decreasing_loss(data, tmp_path, capsys, recipe):
    dataset, sets = SHRINK[recipe]
    n_train = 8 if dataset == "darcy" else 4
    rc, out, err = _train(capsys, recipe, "--data", data[dataset], "--out", tmp_path / "run",
                          "--set", f"data.train_samples={n_train}", "--set",
                          "data.test_samples=2", "--set", "train.batch_size=4", "--set",
                          "train.epochs=4", "--set", "train.lr=3e-3",
                          *[a for s in sets for a in ("--set", s)])
    assert rc == 0, err
    losses = [r["train_loss"] for r in _log(tmp_path / "run")]
    print(recipe, "epoch train losses", losses)
    assert len(losses) == 4 and all(math.isfinite(v) for v in losses)
    assert losses[-1] < losses[0]
    if dataset == "water":  # the particle metric is named as what it is
        assert "test position MSE (m²)" in out and "rel. L2" not in out
        assert math.isfinite(_log(tmp_path / "run")[-1]["test_position_mse"])


def test_rom_net_recipe_is_fitted_in_one_pass(data, tmp_path, capsys):
    run = tmp_path / "run"
    rc, out, err = _train(capsys, "rom-net-darcy", "--data", data["darcy"], "--out", run,
                          "--set", "data.train_samples=32", "--set", "data.test_samples=8",
                          "--set", "model.n_clusters=2", "--set", "model.rank=8")
    assert rc == 0, err
    (record,) = _log(run)
    print("rom-net on 32 Darcy pairs:", record)
    assert record["step"] == 0 and "fitted in one pass" in out
    assert record["train_loss"] < 0.1 and math.isfinite(record["test_rel_l2"])
    # too many clusters for the pairs: one line, not a LinAlgError traceback
    err = _error(capsys, "rom-net-darcy", "--data", data["darcy"], "--out", tmp_path / "bad",
                 "--set", "data.train_samples=8", "--set", "data.test_samples=4")
    assert "rom-net could not be fitted on the 8 training pairs" in err


# -- --data and --model -----------------------------------------------------------------------


def test_model_swaps_in_its_own_defaults_and_set_model_name_does_the_same(data, tmp_path,
                                                                           capsys):
    lsm = tomllib.loads(known_recipes("solvers")["lsm-darcy"].read_text())["model"]
    small = ["--set", "model.width=8", "--set", "model.levels=2", "--set", "model.heads=2"]
    common = ["fno-ns2d-nu1e-3", "--data", data["ns"], *SMALL_NS[:-6], "--max-steps", "1"]
    assert _train(capsys, *common, "--out", tmp_path / "a", "--model", "lsm", *small)[0] == 0
    assert _train(capsys, *common, "--out", tmp_path / "b", "--set", "model.name=lsm",
                  *small)[0] == 0
    a, b = (json.loads((tmp_path / r / "config.json").read_text()) for r in "ab")
    assert a == b
    assert a["model"] == {**lsm, "width": 8, "levels": 2, "heads": 2}  # no FNO key left
    assert a["data"]["dataset"] == data["ns"]


@pytest.mark.parametrize("recipe,dataset,words", [
    ("giorom-mpm2d-water", "ns", ["model giorom needs particle trajectories",
                                  "dataset ns2d-fno-nu1e-3 with 2d grid data"]),
    ("gns-mpm2d-water", "darcy", ["model gns needs particle", "darcy2d-fno-r85 with 2d grid"]),
    ("fno-ns2d-nu1e-3", "water", ["model fno needs fields on a grid",
                                  "dataset mpm2d-water with particle data"]),
])
def test_model_on_the_wrong_kind_of_data_is_refused(data, tmp_path, capsys, recipe, dataset,
                                                     words):
    err = _error(capsys, recipe, "--data", data[dataset], "--out", tmp_path / "r")
    for w in words:
        assert w in err
    assert data[dataset] in err


def test_model_defaults_that_do_not_fit_the_data_are_one_line(data, tmp_path, capsys):
    # deeponet's only recipe is 1D (sensors = [100]): on a 2D grid its first step cannot run
    err = _error(capsys, "fno-ns2d-nu1e-3", "--data", data["ns"], *SMALL_NS[:-6], "--model",
                 "deeponet", "--out", tmp_path / "r")
    assert "model deeponet cannot take the data" in err and "--set model.KEY=VALUE" in err
    rc, _, err = _train(capsys, "fno-ns2d-nu1e-3", "--data", data["ns"], *SMALL_NS[:-6],
                        "--model", "deeponet", "--set", "model.sensors=16,16", "--out",
                        tmp_path / "r", "--max-steps", "1")
    assert rc == 0, err


def test_pinn_points_to_solve(data, tmp_path, capsys):
    err = _error(capsys, "fno-ns2d-nu1e-3", "--data", data["ns"], "--model", "pinn", "--out",
                 tmp_path / "r")
    assert "sciops solve PDE --method pinn" in err


def test_comma_lists_for_model_keys(data, tmp_path, capsys):
    rc, _, err = _train(capsys, "fno-ns2d-nu1e-3", "--data", data["ns"], *SMALL_NS,
                        "--max-steps", "1", "--out", tmp_path / "r")
    assert rc == 0, err
    assert json.loads((tmp_path / "r" / "config.json").read_text())["model"]["n_modes"] == [6, 6]
    err = _error(capsys, "fno-ns2d-nu1e-3", "--data", data["ns"], *SMALL_NS,
                 "--set", "model.n_modes=6,x", "--out", tmp_path / "bad")
    assert "n_modes" in err or "'x'" in err


def test_too_few_samples_proposes_a_split(data, tmp_path, capsys):
    err = _error(capsys, "tfno-ns2d-nu1e-3", "--data", data["ns"], "--out", tmp_path / "r")
    assert "holds 24 samples" in err and "1000 + 200 = 1200" in err
    assert "--set data.train_samples=20 --set data.test_samples=4" in err


def test_missing_dataset_names_the_generate_command(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SCIOPS_DATA", str(tmp_path / "root"))
    err = _error(capsys, "fno-ns2d-nu1e-3", "--out", tmp_path / "r")
    out = tmp_path / "root" / "ns2d-fno-nu1e-3"
    assert f"`sciops generate ns2d-fno-nu1e-3 --out {out}`" in err
    err = _error(capsys, "fno-ns2d-nu1e-3", "--data", "somewhere/ns2d-fno-nu1e-3", "--out",
                 tmp_path / "r")
    assert "`sciops generate ns2d-fno-nu1e-3 --out somewhere/ns2d-fno-nu1e-3`" in err


def test_named_dataset_resolves_under_the_data_root(data, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SCIOPS_DATA", str(Path(data["ns"]).parent))
    monkeypatch.chdir(tmp_path)
    rc, out, err = _train(capsys, "fno-ns2d-nu1e-3", "--data", "ns", *SMALL_NS,
                          "--max-steps", "1", "--out", "r")
    assert rc == 0, err


# -- summary line -----------------------------------------------------------------------------


def test_summary_after_one_step_prints_real_values(data, tmp_path, capsys):
    rc, out, err = _train(capsys, "fno-ns2d-nu1e-3", "--data", data["ns"], *SMALL_NS,
                          "--max-steps", "1", "--out", tmp_path / "r")
    assert rc == 0, err
    assert "None" not in out and "nan" not in out
    assert "step 1 of 12" in out and "stopped at step 1 of 4 in epoch 1" in out
    loss = float(re.search(r"train loss ([0-9.e+-]+) \(mean of the 1 step taken", out)[1])
    assert loss == pytest.approx(load_checkpoint(tmp_path / "r" / "last.pt")["epoch_loss"]["sum"],
                                 rel=1e-3)
    assert "test rel. L2: not evaluated yet" in out


# -- resume -----------------------------------------------------------------------------------


def test_resume_uses_the_stored_config_and_the_whole_epoch_loss(data, tmp_path, capsys):
    args = ["fno-ns2d-nu1e-3", "--data", data["ns"], *SMALL_NS]
    assert _train(capsys, *args, "--out", tmp_path / "full")[0] == 0
    # stop mid-epoch 2 (4 steps per epoch), resume without the recipe and the --set options
    assert _train(capsys, *args, "--out", tmp_path / "part", "--max-steps", "6")[0] == 0
    stopped = load_checkpoint(tmp_path / "part" / "last.pt")
    assert stopped["epoch_loss"]["count"] == 2 and stopped["seconds"] > 0
    rc, out, err = _train(capsys, "--resume", "--out", tmp_path / "part")
    assert rc == 0, err
    full, part = _log(tmp_path / "full"), _log(tmp_path / "part")
    assert [r["step"] for r in part] == [4, 8, 12]
    for a, b in zip(full, part):  # epoch 2's loss averages all 4 of its steps
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-12, abs=0)
        assert b["test_rel_l2"] == a["test_rel_l2"]
    assert part[1]["seconds"] > stopped["seconds"]  # elapsed time continues
    a = torch.load(tmp_path / "full" / "last.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "part" / "last.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    # the recipe alone (no --set) resumes too
    assert _train(capsys, *args, "--out", tmp_path / "again", "--max-steps", "2")[0] == 0
    rc, _, err = _train(capsys, "fno-ns2d-nu1e-3", "--out", tmp_path / "again", "--resume")
    assert rc == 0, err
    assert _log(tmp_path / "again")[-1]["step"] == 12


def test_resume_refuses_changed_settings(data, tmp_path, capsys):
    run = tmp_path / "run"
    assert _train(capsys, "fno-ns2d-nu1e-3", "--data", data["ns"], *SMALL_NS, "--out", run,
                  "--max-steps", "2")[0] == 0
    err = _error(capsys, "--resume", "--out", run, "--set", "train.epochs=5")
    assert "train.epochs=5 differs from the run's stored train.epochs=3" in err
    err = _error(capsys, "--resume", "--out", run, "--model", "tfno")
    assert "model.name='tfno' differs from the run's stored model.name='fno'" in err
    err = _error(capsys, "tfno-ns2d-nu1e-3", "--resume", "--out", run)
    assert "holds a run of recipe 'fno-ns2d-nu1e-3', not 'tfno-ns2d-nu1e-3'" in err
    # settings that leave the result unchanged may differ; the same values may be repeated
    rc, _, err = _train(capsys, "--resume", "--out", run, "--set", "train.max_minutes=30",
                        "--set", "train.epochs=3", "--data", data["ns"])
    assert rc == 0, err
    err = _error(capsys, "--out", tmp_path / "none", "--resume")
    assert "holds no run to resume" in err
