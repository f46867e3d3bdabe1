"""Nothing wrong passes silently: non-finite losses, corrupted checkpoints, NaN evaluations."""

import json
import shutil
import struct

import numpy as np
import pytest
import torch

from sciops import cli
from sciops.data import generate, load_recipe
from sciops.errors import SciopsError
from sciops.evaluate import compare
from sciops.evaluate import metrics as M
from sciops.train import Trainer, build_config
from sciops.train import checkpoint as ckpt
from sciops.train.predict import load_run

SMALL = {"resolution": "32", "output_resolution": "32", "t_final": "6", "n_records": "6",
         "samples_per_shard": "8", "batch_size": "8"}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("guards")
    r = load_recipe("ns2d-fno-nu1e-3").with_changes(samples=16, overrides=SMALL)
    return generate(r, root / "ns", progress=False).out


def _raw(data, **train):
    return {"name": "g",
            "model": {"name": "fno", "n_modes": [6, 6], "hidden_channels": 6, "n_layers": 1},
            "data": {"dataset": str(data), "in_steps": 2, "out_steps": 2, "windows": "first",
                     "train_samples": 12, "test_samples": 4},
            "train": {"epochs": 3, "batch_size": 4, "lr": 1e-3, "seed": 1, **train}}


def _recipe(tmp_path, data, **train):
    raw = _raw(data, **train)
    lines = [f"name = {json.dumps(raw['name'])}"]
    for table in ("model", "data", "train"):
        lines += [f"[{table}]"] + [f"{k} = {json.dumps(v)}" for k, v in raw[table].items()]
    path = tmp_path / "r.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _strict_json(line):
    def refuse(name):
        raise ValueError(f"bare {name} in metrics.jsonl")
    return json.loads(line, parse_constant=refuse)


def _one_error_line(capsys):
    err = capsys.readouterr().err.strip()
    assert err.startswith("sciops: error: ") and "\n" not in err, err
    assert "Traceback" not in err
    return err


def _finite_weights(path):
    state = torch.load(path, weights_only=True)
    return all(torch.isfinite(v).all() for v in state["model"].values())


# -- 1. non-finite training loss ------------------------------------------------------------
def test_lr_too_high_stops_with_one_line_error(data, tmp_path, capsys):
    recipe = _recipe(tmp_path, data, checkpoint_every=1)
    out = tmp_path / "run"
    rc = cli.main(["train", str(recipe), "--out", str(out), "--quiet", "--device", "cpu",
                   "--set", "train.lr=1e10"])
    assert rc == 2
    err = _one_error_line(capsys)
    assert "not finite" in err and "epoch" in err and "step" in err
    assert "train.lr" in err
    # what was saved before the failure holds finite weights; the log is valid JSON
    if (out / "last.pt").exists():
        assert _finite_weights(out / "last.pt")
    log = out / "metrics.jsonl"
    if log.exists():
        for line in log.read_text().splitlines():
            _strict_json(line)


class _NaNAfter(torch.utils.data.Dataset):
    """A training set that turns non-finite once ``poisoned`` is set."""

    def __init__(self, inner):
        self.inner, self.poisoned = inner, False

    def __len__(self):
        return len(self.inner)

    def __getitem__(self, i):
        x, y = self.inner[i]
        if self.poisoned:
            x = x.clone()
            x.view(-1)[0] = float("nan")
        return x, y


def test_nan_in_data_keeps_last_good_checkpoint(data, tmp_path):
    cfg = build_config(_raw(data, checkpoint_every=1))
    tr = Trainer(cfg, tmp_path / "run", progress=False)
    tr.train_set = poisoned = _NaNAfter(tr.train_set)
    tr.fit(max_steps=2)
    good = (tmp_path / "run" / "last.pt").read_bytes()
    poisoned.poisoned = True
    with pytest.raises(SciopsError) as info:
        tr.fit(resume=True)
    msg = str(info.value)
    assert "not finite" in msg and "step 3" in msg and "epoch 1" in msg
    assert "non-finite" in msg  # names the likely cause
    assert (tmp_path / "run" / "last.pt").read_bytes() == good
    assert _finite_weights(tmp_path / "run" / "last.pt")


@pytest.mark.filterwarnings("ignore:Seems like `optimizer.step\\(\\)`")
def test_nan_weights_are_never_saved(data, tmp_path):
    cfg = build_config(_raw(data))
    tr = Trainer(cfg, tmp_path / "run", progress=False)
    step = tr.opt.step

    def poison(*a, **kw):
        out = step(*a, **kw)
        with torch.no_grad():
            next(tr.model.parameters()).view(-1)[0] = float("nan")
        return out

    tr.opt.step = poison
    with pytest.raises(SciopsError, match="not finite"):
        tr.fit(max_steps=1)
    assert not (tmp_path / "run" / "last.pt").exists()


def test_metrics_log_is_strict_json(data, tmp_path):
    cfg = build_config(_raw(data, epochs=1))
    tr = Trainer(cfg, tmp_path / "run", progress=False)
    tr.evaluate = lambda: {"test_rel_l2": float("nan")}
    last = tr.fit()
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert lines and _strict_json(lines[-1])["test_rel_l2"] is None
    assert np.isnan(last["test_rel_l2"])


# -- 2. checkpoint integrity -----------------------------------------------------------------
@pytest.fixture(scope="module")
def run(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "run"
    Trainer(build_config(_raw(data, epochs=2)), out, progress=False).fit()
    return out


def _flip_weight_in_file(path):
    """Flip one exponent bit of a model weight inside the file's bytes (4.8e37-like)."""
    state = torch.load(path, weights_only=True)
    w = next(v for v in state["model"].values() if v.dtype == torch.float32 and v.numel() > 8)
    raw = path.read_bytes()
    target = w.reshape(-1)[3:7].numpy().tobytes()  # 4 neighbouring values: a unique pattern
    at = raw.find(target)
    assert at >= 0 and raw.find(target, at + 1) < 0
    value = struct.unpack("<f", raw[at:at + 4])[0]
    flipped = bytearray(raw)
    flipped[at + 3] ^= 0x40  # exponent bit
    path.write_bytes(bytes(flipped))
    assert abs(struct.unpack("<f", bytes(flipped[at:at + 4]))[0]) > 1e30 or abs(value) < 1e-30


def test_checkpoint_holds_checksum_and_loads_weights_only(run):
    state = torch.load(run / "last.pt", weights_only=True)
    assert isinstance(state.get("checksum"), str) and len(state["checksum"]) == 64
    assert ckpt.load(run / "last.pt")["step"] == state["step"]


def test_bit_flip_is_detected_on_resume_predict_evaluate(data, run, tmp_path, capsys):
    bad = tmp_path / "run"
    shutil.copytree(run, bad)
    _flip_weight_in_file(bad / "last.pt")
    rc = cli.main(["train", str(_recipe(tmp_path, data, epochs=3)), "--out", str(bad),
                   "--resume", "--quiet", "--device", "cpu"])
    assert rc == 2
    err = _one_error_line(capsys)
    assert "last.pt" in err and "checksum" in err and "delete" in err
    _flip_weight_in_file(bad / "best.pt")
    with pytest.raises(SciopsError, match=r"best\.pt.*checksum"):
        load_run(bad)
    rc = cli.main(["evaluate", str(bad), "--data", str(data), "--out", str(tmp_path / "rep")])
    assert rc == 2
    assert "best.pt" in _one_error_line(capsys)


@pytest.mark.parametrize("damage", ["empty", "truncated"])
def test_empty_or_truncated_checkpoint(data, run, tmp_path, capsys, damage):
    bad = tmp_path / "run"
    shutil.copytree(run, bad)
    raw = (bad / "last.pt").read_bytes()
    (bad / "last.pt").write_bytes(b"" if damage == "empty" else raw[: len(raw) // 2])
    rc = cli.main(["train", str(_recipe(tmp_path, data, epochs=3)), "--out", str(bad),
                   "--resume", "--quiet", "--device", "cpu"])
    assert rc == 2
    err = _one_error_line(capsys)
    assert "last.pt" in err and "delete" in err and "best.pt" in err


def test_error_message_never_empty(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    path.write_bytes(b"x")

    def boom(*a, **kw):
        raise RuntimeError("")

    monkeypatch.setattr(torch, "load", boom)
    with pytest.raises(SciopsError) as info:
        ckpt.load(path)
    assert "last.pt" in str(info.value) and "RuntimeError" in str(info.value)


# -- 3. evaluate reports non-finite samples -------------------------------------------------
def test_summarize_propagates_nan_and_counts_it():
    rng = np.random.default_rng(0)
    pred, truth = rng.normal(size=(5, 2, 16, 16)), rng.normal(size=(5, 2, 16, 16))
    pred[2, 1, 3, 3] = np.nan
    import xarray as xr
    dims = ("sample", "time", "x", "y")
    s = M.summarize(M.evaluate_all(xr.DataArray(pred, dims=dims), xr.DataArray(truth, dims=dims)))
    assert np.isnan(s["relative_l2"]) and np.isnan(s["rmse"]) and np.isnan(s["max_error"])
    assert s["nonfinite_samples"] == 1


def test_evaluate_report_names_nonfinite_samples(data, run, tmp_path, monkeypatch):
    arrays = compare._arrays

    def poisoned(*a, **kw):
        pred, truth = arrays(*a, **kw)
        pred = pred.copy()
        pred.values[1, 0, 2, 2] = np.nan
        return pred, truth

    monkeypatch.setattr(compare, "_arrays", poisoned)
    out = tmp_path / "rep"
    assert cli.main(["evaluate", str(run), "--data", str(data), "--out", str(out),
                     "--samples", "12:16", "--clusters", "2"]) == 0
    summary = _strict_json((out / "metrics.json").read_text())["summary"]["run"]
    assert summary["relative_l2"] is None and summary["nonfinite_samples"] == 1
    text = (out / "report.md").read_text()
    assert "1 of 4 samples" in text and "13" in text


DDP_SCRIPT = """
import os, sys
sys.path.insert(0, {tests!r})
from test_guards_train import _NaNAfter, _raw
from sciops.errors import SciopsError
from sciops.train import Trainer, build_config
tr = Trainer(build_config(_raw({data!r}, checkpoint_every=1)), {out!r}, device="cpu",
             progress=False)
tr.train_set = poisoned = _NaNAfter(tr.train_set)
tr.fit(max_steps=2)
poisoned.poisoned = os.environ["RANK"] == "1"  # only one rank sees the NaN
try:
    tr.fit(resume=True)
except SciopsError as e:  # one file per rank: their stdout lines interleave
    with open(os.path.join({out!r}, "stopped-" + os.environ["RANK"]), "w") as f:
        f.write(str(e))
    import torch.distributed as dist
    dist.barrier()  # both files exist before torchrun sees the first rank exit
    sys.exit(2)
"""


def test_ddp_ranks_stop_together(data, tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = tmp_path / "ddp.py"
    out = tmp_path / "run"
    script.write_text(DDP_SCRIPT.format(tests=str(Path(__file__).parent), data=str(data),
                                        out=str(out)))
    torchrun = Path(sys.executable).with_name("torchrun")
    proc = subprocess.run([str(torchrun), "--standalone", "--nproc_per_node", "2", str(script)],
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True,
                          text=True, timeout=240)
    assert proc.returncode != 0
    stopped = {rank: (out / f"stopped-{rank}").read_text() for rank in "01"
               if (out / f"stopped-{rank}").is_file()}
    assert sorted(stopped) == ["0", "1"], proc.stdout + proc.stderr
    assert all("step 3" in message for message in stopped.values())
    assert "another DDP rank" in stopped["0"]
    assert _finite_weights(out / "last.pt")
    assert torch.load(out / "last.pt", weights_only=True)["step"] == 2
