"""A third-party PDE found through its entry point: examples/sciops-brusselator, made visible
to the CLI by a hand-written ``.dist-info`` on PYTHONPATH (as `pip install` would leave it),
then listed, generated, trained on and verified in subprocesses."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sciops.data import open_dataset

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "sciops-brusselator"


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """Environment in which the plug-in is installed as far as importlib.metadata can tell."""
    site = tmp_path_factory.mktemp("site")
    info = site / "sciops_brusselator-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: sciops-brusselator\n"
                                   "Version: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[sciops.pdes]\nbrusselator = sciops_brusselator:Brusselator\n")
    path = os.pathsep.join([str(site), str(EXAMPLE / "src"), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path, "SCIOPS_RECIPES": str(EXAMPLE / "recipes"),
            "OMP_NUM_THREADS": "1"}


def sciops(env, *args):
    proc = subprocess.run([sys.executable, "-m", "sciops.cli", *args], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_entry_point_matches_the_pyproject():
    text = (EXAMPLE / "pyproject.toml").read_text()
    assert '[project.entry-points."sciops.pdes"]' in text
    assert 'brusselator = "sciops_brusselator:Brusselator"' in text


def test_plugin_is_listed(env):
    out = sciops(env, "list")
    assert any(line.split()[:1] == ["brusselator"] for line in out.splitlines()), out
    assert any(line.split()[:2] == ["brusselator1d", "brusselator"]
               for line in out.splitlines()), out


def test_generate_and_train_on_the_plugin(env, tmp_path):
    data, run = tmp_path / "data", tmp_path / "run"
    sciops(env, "generate", "brusselator1d", "--out", str(data), "--samples", "12",
           "--quiet", "--set", "resolution=64", "--set", "t_final=4", "--set", "n_records=8",
           "--set", "dt=0.02", "--set", "samples_per_shard=12", "--set", "batch_size=12")
    ds = open_dataset(data)
    assert ds["u"].dims == ("sample", "time", "x") and ds["u"].shape == (12, 9, 64)
    u, v = ds["u"].values, ds["v"].values
    assert np.isfinite(u).all() and np.isfinite(v).all()
    # the fields start around the uniform state (a, b/a) = (1, 3) with amplitude 0.5
    np.testing.assert_allclose(np.abs(u[:, 0] - 1).max(axis=-1), 0.5, rtol=1e-5)
    np.testing.assert_allclose(np.abs(v[:, 0] - 3).max(axis=-1), 0.5, rtol=1e-5)
    # past the Hopf point the perturbations grow: the spread of u at t=4 exceeds that at t=0
    assert (u[:, -1].max(-1) - u[:, -1].min(-1) > u[:, 0].max(-1) - u[:, 0].min(-1)).all()

    sciops(env, "train", "fno-brusselator1d", "--out", str(run), "--quiet",
           "--set", f"data.dataset={data}", "--set", "data.train_samples=8",
           "--set", "data.test_samples=4", "--set", "train.epochs=3",
           "--set", "train.batch_size=16", "--set", "model.hidden_channels=8")
    log = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1, 2, 3]  # 8 samples x 8 windows, batches of 16
    assert all(math.isfinite(r["test_rel_l2"]) for r in log)
    assert (run / "best.pt").is_file()


def test_plugin_passes_verify(env):
    out = sciops(env, "verify", "brusselator")
    assert "FAIL" not in out and out.count("pass") >= 5, out
