"""A run remembers its training data: predict and evaluate refuse another PDE's data, warn
about other physical parameters, and accept a pure resolution change (zero-shot)."""

from __future__ import annotations

import json

import pytest
from conftest import poisson_fno_recipe

from sciops import cli
from sciops.data import generate, load_recipe
from sciops.train import provenance

SMALL = {"resolution": "16", "modes": "4", "samples_per_shard": "4", "batch_size": "4"}


def _poisson(root, name, **changes):
    return generate(load_recipe("poisson2d-cno").with_changes(
        samples=8, overrides={**SMALL, **changes}), root / name, progress=False).out


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("prov")
    data = _poisson(root, "train")
    recipe = poisson_fno_recipe(root / "r.toml", data)
    run = root / "run"
    assert cli.main(["train", str(recipe), "--out", str(run), "--quiet"]) == 0
    return root, data, run


def test_training_records_its_data(env):
    root, data, run = env
    rec = json.loads((run / provenance.FILE).read_text())
    assert rec["pde"] == "poisson2d" and rec["path"] == str(data.resolve())
    assert rec["grid"] == {"x": 16, "y": 16} and rec["params"]["resolution"] == 16


def test_other_pde_is_refused(env, capsys):
    root, _, run = env
    heat = generate(load_recipe("heat2d").with_changes(samples=4, overrides={
        "resolution": "16", "n_records": "2", "samples_per_shard": "4", "batch_size": "4"}),
        root / "heat", progress=False).out
    for argv in (["predict", str(run), "--data", str(heat), "--out", str(root / "p.nc")],
                 ["evaluate", str(run), "--data", str(heat), "--out", str(root / "ev")]):
        assert cli.main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "trained on poisson2d data" in err and "heat2d" in err
    assert not (root / "p.nc").exists()


def test_other_parameters_warn_and_a_new_grid_does_not(env, capsys):
    root, _, run = env
    other = _poisson(root, "other", decay="3.0")
    assert cli.main(["predict", str(run), "--data", str(other), "--out",
                     str(root / "o.nc")]) == 0
    err = capsys.readouterr().err
    assert "sciops: warning: run run was trained on poisson2d with other parameters" in err
    assert "decay=3.0 (trained on 0.5)" in err and "resolution" not in err
    finer = _poisson(root, "finer", resolution="32")
    assert cli.main(["predict", str(run), "--data", str(finer), "--out",
                     str(root / "f.nc")]) == 0
    assert "warning" not in capsys.readouterr().err
