"""Separate, named test sets in a training recipe, and recipe names for a peer file's
variables: each set scored whole at every evaluation under its own key, the first one picks
best.pt, evaluate defaults to it, and the variable map reads the file's own names."""

import json

import numpy as np
import pytest
import torch

from sciops import cli
from sciops.errors import SciopsError
from sciops.train.config import build_config
from sciops.train.trainer import Trainer


def _smooth(a: torch.Tensor) -> torch.Tensor:
    """A fixed linear smoothing (periodic 5-point average): a map an FNO can learn."""
    out = a.clone()
    for dim in (-1, -2):
        out = out + a.roll(1, dim) + a.roll(-1, dim)
    return out / 5


@pytest.fixture(scope="module")
def peer_files(tmp_path_factory):
    """neuraloperator-layout ``.pt`` files: 24 training pairs at 16², 6 test pairs at 16²
    and 6 zero-shot pairs at 32² (keys x, y as in darcy_train_16.pt)."""
    root = tmp_path_factory.mktemp("peer")
    g = torch.Generator().manual_seed(0)
    for name, n, m in (("train_16", 24, 16), ("test_16", 6, 16), ("test_32", 6, 32)):
        x = torch.randn(n, m, m, generator=g)
        torch.save({"x": x, "y": _smooth(x)[:, None]}, root / f"{name}.pt")
    return root


def _raw(root, **data):
    return {"name": "sets",
            "model": {"name": "fno", "n_modes": [6, 6], "hidden_channels": 8, "n_layers": 2},
            "data": {"dataset": str(root / "train_16.pt"), "inputs": ["a"], "targets": ["u"],
                     "variables": {"a": "x", "u": "y"}, "train_samples": 24,
                     "test": {"test_16": str(root / "test_16.pt"),
                              "test_32": str(root / "test_32.pt")}, **data},
            "train": {"epochs": 15, "batch_size": 8, "lr": 1e-2, "seed": 0}}


def test_each_named_test_set_is_logged_and_the_first_picks_best(peer_files, tmp_path):
    trainer = Trainer(build_config(_raw(peer_files)), tmp_path / "run", device="cpu")
    trainer.fit()
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").open()]
    assert len(records) == 15
    assert all({"test_16_rel_l2", "test_32_rel_l2"} <= set(r) for r in records)
    assert all("test_rel_l2" not in r for r in records)
    first = [r["test_16_rel_l2"] for r in records]
    assert first[-1] < 0.8 * first[0]  # it learns, and both sets see it
    assert records[-1]["test_32_rel_l2"] < 0.95 * records[0]["test_32_rel_l2"]

    # best.pt holds the weights of the epoch with the lowest test_16 error: predicting the
    # test file with it gives exactly that logged number
    best = min(first)
    pred = tmp_path / "pred.nc"
    assert cli.main(["predict", str(tmp_path / "run"), "--data",
                     str(peer_files / "test_16.pt"), "--out", str(pred)]) == 0
    import xarray as xr
    with xr.open_dataset(pred, engine="h5netcdf") as ds:
        u_hat = ds["u"].values
    u = torch.load(peer_files / "test_16.pt")["y"][:, 0].numpy()
    err = np.linalg.norm((u_hat - u).reshape(6, -1), axis=1) / \
        np.linalg.norm(u.reshape(6, -1), axis=1)
    assert err.mean() == pytest.approx(best, rel=1e-4)

    # evaluate scores the first test set by default, with its name in the training table
    assert cli.main(["evaluate", str(tmp_path / "run"), "--out", str(tmp_path / "rep")]) == 0
    report = (tmp_path / "rep" / "report.md").read_text()
    assert str(peer_files / "test_16.pt") in report and "best test_16 rel. L2" in report
    metrics = json.loads((tmp_path / "rep" / "metrics.json").read_text())
    assert json.dumps(metrics).count("relative_l2") >= 1


def test_the_dataset_split_is_not_used_when_test_sets_are_named(peer_files):
    cfg = build_config(_raw(peer_files, test_samples=200))  # 24 + 200 > 24: not needed
    assert cfg.data.test_samples == 200
    from sciops.train.task import SupervisedTask
    task = SupervisedTask(cfg)
    assert len(task.train_set) == 24
    assert [len(s) for s in task.test_sets.values()] == [6, 6]
    assert task.metric == "test_16_rel_l2"


def test_a_string_is_one_set_named_test_and_names_must_be_identifiers(peer_files):
    raw = _raw(peer_files)
    raw["data"]["test"] = str(peer_files / "test_16.pt")
    assert build_config(raw).data.test == {"test": str(peer_files / "test_16.pt")}
    cfg = build_config(_raw(peer_files), {"data.test": '{"zs": "%s"}' % (peer_files /
                                                                          "test_32.pt")})
    assert list(cfg.data.test) == ["zs"]
    raw["data"]["test"] = {"test 16": "x.pt"}
    with pytest.raises(SciopsError, match="data.test=.*letters, digits and _"):
        build_config(raw)


def test_variable_map_reads_the_files_own_names_and_missing_ones_are_named(peer_files):
    from sciops.data import open_samples
    x = torch.load(peer_files / "test_16.pt")["x"]
    store = open_samples(peer_files / "test_16.pt", ["a"], aliases={"a": "x"})
    assert torch.equal(store[2]["a"], x[2])
    # the file's own key works without a map too, as does sciops' name for it
    assert torch.equal(open_samples(peer_files / "test_16.pt", ["x"])[2]["x"], x[2])
    assert torch.equal(open_samples(peer_files / "test_16.pt", ["input"])[2]["input"], x[2])
    with pytest.raises(SciopsError, match=r"no variable\(s\) \['a \(= k\)'\]; stored: "):
        open_samples(peer_files / "test_16.pt", ["a"], aliases={"a": "k"})
