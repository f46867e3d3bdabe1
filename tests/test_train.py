"""Trainer: exact resume, DDP equivalence, learning beats persistence, clear errors."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from sciops import cli
from sciops.data import generate, load_recipe
from sciops.train import Trainer, build_config
from sciops.train.checkpoint import load as load_checkpoint

SMALL = {"resolution": "32", "output_resolution": "32", "t_final": "12", "n_records": "12",
         "samples_per_shard": "12", "batch_size": "12", "nu": "1e-3"}


@pytest.fixture(scope="module")
def ns_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("ns")
    r = load_recipe("ns2d-fno-nu1e-3").with_changes(samples=48, overrides=SMALL)
    return generate(r, root / "ns", progress=False).out


def _raw(data, **train):
    return {"name": "t",
            "model": {"name": "fno", "n_modes": [8, 8], "hidden_channels": 12, "n_layers": 2},
            "data": {"dataset": str(data), "in_steps": 2, "out_steps": 2, "windows": "sliding",
                     "window_stride": 4, "train_samples": 8, "test_samples": 4},
            "train": {"epochs": 3, "batch_size": 8, "lr": 1e-3, "seed": 3, **train}}


def _weights(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_resume_is_bitwise_exact(ns_data, tmp_path):
    cfg = build_config(_raw(ns_data, checkpoint_every=2))
    full = Trainer(cfg, tmp_path / "full", progress=False)
    full.fit()
    part = Trainer(cfg, tmp_path / "part", progress=False)
    part.fit(max_steps=5)  # stops mid-epoch 2 (3 steps per epoch)
    assert load_checkpoint(tmp_path / "part" / "last.pt")["step"] == 5
    resumed = Trainer(cfg, tmp_path / "part", progress=False)
    resumed.fit(resume=True)
    a, b = _weights(full.model), _weights(resumed.model)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    # checkpoints load with weights_only=True
    state = torch.load(tmp_path / "part" / "last.pt", weights_only=True)
    assert state["step"] == 9 and state["epoch"] == 3


def test_ddp_two_ranks_equal_one_process(ns_data, tmp_path):
    recipe = tmp_path / "r.toml"
    raw = _raw(ns_data)
    # JSON scalars and arrays are valid TOML values
    lines = [f"name = {json.dumps(raw['name'])}"]
    for table in ("model", "data", "train"):
        lines += [f"[{table}]"] + [f"{k} = {json.dumps(v)}" for k, v in raw[table].items()]
    recipe.write_text("\n".join(lines) + "\n")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    one = tmp_path / "one"
    assert cli.main(["train", str(recipe), "--out", str(one), "--max-steps", "5", "--quiet",
                     "--device", "cpu"]) == 0
    two = tmp_path / "two"
    torchrun = Path(sys.executable).with_name("torchrun")
    proc = subprocess.run(
        [str(torchrun), "--standalone", "--nproc_per_node", "2", "-m", "sciops.cli", "train",
         str(recipe), "--out", str(two), "--max-steps", "5", "--quiet", "--device", "cpu"],
        env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    a = torch.load(one / "last.pt", weights_only=True)
    b = torch.load(two / "last.pt", weights_only=True)
    assert a["step"] == b["step"] == 5
    for k in a["model"]:
        diff = (a["model"][k] - b["model"][k]).abs().max()
        assert diff <= 1e-6, (k, float(diff))


def test_tfno_beats_persistence(ns_data, tmp_path):
    raw = _raw(ns_data, epochs=40, batch_size=8, lr=3e-3)
    raw["model"] = {"name": "tfno", "n_modes": [10, 10], "hidden_channels": 16, "n_layers": 3,
                    "factorization": "tucker", "rank": 0.2}
    raw["data"].update(in_steps=4, out_steps=4, windows="first", train_samples=40,
                       test_samples=8)
    cfg = build_config(raw)
    tr = Trainer(cfg, tmp_path / "tfno", progress=False)
    last = tr.fit()
    from sciops.train.losses import rel_lp
    from sciops.train.task import ordered_batches

    persistence = [float(rel_lp(x[:, -1:].expand_as(y), y))
                   for x, y in ordered_batches(tr.task.test_sets["test_rel_l2"], 8)]
    ratio = sum(persistence) / len(persistence) / last["test_rel_l2"]
    print("tfno test rel L2", last["test_rel_l2"], "persistence ratio", ratio)
    assert ratio >= 5.0


def test_clear_errors(ns_data, tmp_path, capsys):
    def err(raw, **kw):
        from sciops.errors import SciopsError
        with pytest.raises(SciopsError) as info:
            Trainer(build_config(raw), tmp_path / "e", progress=False, **kw)
        return str(info.value)

    raw = _raw(ns_data)
    raw["model"]["name"] = "nope"
    assert "nope" in err(raw)
    raw = _raw(ns_data)
    raw["data"]["inputs"] = ["pressure"]
    assert "pressure" in err(raw)
    raw = _raw(ns_data)
    raw["model"]["in_channels"] = 7
    assert "model.in_channels=7 but the data give 2 channels" in err(raw)
    from sciops.errors import SciopsError
    with pytest.raises(SciopsError, match="train.lr"):
        build_config(_raw(ns_data, lr="fast"))
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(SciopsError, match="corrupted or unreadable checkpoint"):
        load_checkpoint(bad)
