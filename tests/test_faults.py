"""Fault suite: processes killed with SIGKILL at random moments, full disks, leftovers of
killed runs, deleted shards and checkpoints. Whatever happens, a rerun of the same command
ends with data (or weights) bitwise equal to an uninterrupted run, and every failure the user
sees is one line.

The fast part kills each of generation and training at two seeded random moments; ``pytest -m
slow`` kills at 12 moments each and writes the totals to ``benchmarks/results/faults.json``.
A real full disk is a small tmpfs when this process may mount one (root, as on the machine
and CI this suite was written on); a simulated ``ENOSPC`` at each write (shard data, shard
close, sidecar, manifest, checkpoint) runs everywhere.
"""

from __future__ import annotations

import errno
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from sciops import atomic, cli
from sciops.data import generate, load_recipe, store
from sciops.errors import SciopsError

ROOT = Path(__file__).resolve().parents[1]
BIN = ROOT / ".venv" / "bin" / "sciops"
RESULTS = ROOT / "benchmarks" / "results" / "faults.json"
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}

# 8 shards of 5 samples, 1D Burgers at 128 points, 100 steps each: ~2 s of solving
SMALL = {"resolution": "128", "nu": "0.02", "t_final": "0.5", "n_records": "4", "dt": "5e-3",
         "samples_per_shard": "5", "batch_size": "5"}
GEN_ARGS = ["generate", "burgers1d-pdebench", "--samples", "40", "--quiet", "--device", "cpu",
            *(a for k, v in SMALL.items() for a in ("--set", f"{k}={v}"))]


def _arrays(root: Path) -> dict[str, np.ndarray]:
    ds = store.open_dataset(root)
    return {k: ds[k].values for k in ds.data_vars}


def _assert_same_data(a: Path, b: Path) -> None:
    x, y = _arrays(a), _arrays(b)
    assert x.keys() == y.keys() and x
    for k in x:
        np.testing.assert_array_equal(x[k], y[k], err_msg=k)


def _leftovers(root: Path) -> list[str]:
    return sorted(f.name for f in root.rglob("*.tmp"))


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ref") / "ds"
    r = subprocess.run([str(BIN), *GEN_ARGS, "--out", str(out)], env=ENV, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    return out


def _kill_when(cmd: list[str], count, above: int, extra: float) -> bool:
    """Run ``cmd``; SIGKILL it ``extra`` s after ``count()`` first exceeds ``above``. True if
    it was killed, False if it ended first (then it must have succeeded)."""
    p = subprocess.Popen(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    deadline = time.monotonic() + 600
    while p.poll() is None and count() <= above and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(extra)
    if p.poll() is None:
        p.send_signal(signal.SIGKILL)
        p.communicate()
        return True
    out, err = p.communicate()
    assert p.returncode == 0, err
    return False


def _generation_kills(reference: Path, tmp: Path, rng: random.Random, n: int) -> dict:
    """Kill one generation ``n`` times at random moments while its shards are being written
    (resuming the same folder each time), then finish it; the result must equal
    ``reference`` bitwise, with no temporary file left behind."""
    out = tmp / "killed"
    cmd = [str(BIN), *GEN_ARGS, "--out", str(out)]
    def shards() -> int:
        return len(list(out.glob("shard-*.json")))

    killed = 0
    for _ in range(n):
        killed += _kill_when(cmd, shards, shards() + rng.randint(0, 1), rng.uniform(0.0, 0.3))
    final = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=600)
    assert final.returncode == 0, final.stderr
    assert "dataset complete" in final.stdout
    assert _leftovers(out) == []
    _assert_same_data(reference, out)
    return {"kills": n, "killed_mid_run": killed, "bitwise_equal": True}


def test_kill_9_during_generation_resumes_bitwise(reference, tmp_path):
    stats = _generation_kills(reference, tmp_path, random.Random(0), 2)
    assert stats["killed_mid_run"] == 2


# -- training ------------------------------------------------------------------------------

def _train_cmd(data: Path, out: Path, steps: int) -> list[str]:
    recipe = out.parent / f"{out.name}.toml"
    recipe.write_text(
        'name = "faults"\n[model]\nname = "fno"\nn_modes = [8]\nhidden_channels = 8\n'
        f'n_layers = 2\n[data]\ndataset = {json.dumps(str(data))}\ninputs = ["u"]\n'
        'targets = ["u"]\nin_steps = 1\nout_steps = 1\ntrain_samples = 32\ntest_samples = 8\n'
        f'[train]\nepochs = {steps // 4}\nbatch_size = 8\nlr = 1e-3\ncheckpoint_every = 1\n')
    return [str(BIN), "train", str(recipe), "--out", str(out), "--quiet", "--device", "cpu"]


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return torch.load(run / "last.pt", weights_only=True)["model"]


def _training_kills(reference: Path, tmp: Path, rng: random.Random, n: int) -> dict:
    """As :func:`_generation_kills` for a training run of 12 epochs of 4 steps that
    checkpoints every step; the final weights must equal an uninterrupted run's bitwise."""
    steps = 48
    tmp.mkdir(parents=True, exist_ok=True)
    ref_run = tmp / "ref_run"
    r = subprocess.run(_train_cmd(reference, ref_run, steps), env=ENV, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    out = tmp / "killed_run"
    cmd = _train_cmd(reference, out, steps)
    log = out / "metrics.jsonl"

    def steps_logged() -> int:
        return len(log.read_text().splitlines()) if log.exists() else 0

    killed = 0
    for _ in range(n):
        resume = ["--resume"] if (out / "last.pt").exists() else []
        killed += _kill_when(cmd + resume, steps_logged, steps_logged() + rng.randint(0, 2),
                             rng.uniform(0.0, 0.2))
    resume = ["--resume"] if (out / "last.pt").exists() else []
    final = subprocess.run(cmd + resume, env=ENV, capture_output=True, text=True, timeout=600)
    assert final.returncode == 0, final.stderr
    assert _leftovers(out) == []
    a, b = _weights(ref_run), _weights(out)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    return {"kills": n, "killed_mid_run": killed, "bitwise_equal": True}


def test_kill_9_during_training_resumes_bitwise(reference, tmp_path):
    stats = _training_kills(reference, tmp_path, random.Random(1), 2)
    assert stats["killed_mid_run"] == 2


@pytest.mark.slow
def test_kill_9_many_times_and_record(reference, tmp_path):
    rng = random.Random(2)
    gen = _generation_kills(reference, tmp_path / "g", rng, 6)
    train = _training_kills(reference, tmp_path / "t", rng, 8)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "what": "SIGKILL at seeded random moments while shards or checkpoints are written, "
                "then the same command until it completes; result compared bitwise with an "
                "uninterrupted run",
        "generation": gen, "training": train}, indent=2) + "\n")


# -- leftovers of killed runs --------------------------------------------------------------

def test_stale_temporary_files_are_removed_by_the_next_run(reference, tmp_path):
    out = tmp_path / "ds"
    shutil.copytree(reference, out)
    for j in (0, 3):  # drop two shards, as if the run had been killed while writing them
        (out / store.shard_name(j)).unlink()
        (out / store.shard_name(j)).with_suffix(".json").unlink()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    stale = [out / f".shard-00000.nc.{dead}.tmp", out / f".shard-00003.json.{dead}.tmp",
             out / f".manifest.json.{dead}.tmp"]
    for f in stale:
        f.write_bytes(b"half a file")
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:  # a temporary file of a process that still runs is not ours to delete
        busy = out / f".shard-00005.nc.{live.pid}.tmp"
        busy.write_bytes(b"being written")
        r = subprocess.run([str(BIN), *GEN_ARGS, "--out", str(out)], env=ENV,
                           capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stderr
        assert not any(f.exists() for f in stale)
        assert busy.exists()
    finally:
        live.kill()
        live.wait()
    _assert_same_data(reference, out)


def test_remove_stale_selects_by_name(tmp_path):
    dead = 2**22 + 12345  # above the default pid_max of 4194304: never a live pid
    for name in ("shard-00000.nc", "shard-00001.nc", "manifest.json"):
        (tmp_path / f".{name}.{dead}.tmp").write_text("x")
    (tmp_path / "shard-00000.nc.tmp").write_text("not ours: no pid")
    n = atomic.remove_stale(tmp_path, names=lambda name: name.endswith("00001.nc"))
    assert n == 1
    assert sorted(f.name for f in tmp_path.iterdir()) == [
        f".manifest.json.{dead}.tmp", f".shard-00000.nc.{dead}.tmp", "shard-00000.nc.tmp"]


# -- deleted files -------------------------------------------------------------------------

def test_deleted_shard_is_named_and_regenerated(reference, tmp_path, capsys):
    out = tmp_path / "ds"
    shutil.copytree(reference, out)
    (out / store.shard_name(2)).unlink()
    with pytest.raises(SciopsError, match="shard-00002.nc"):
        store.open_dataset(out)
    assert cli.main(["info", str(out), "--verify"]) == 1
    assert "shard-00002.nc" in capsys.readouterr().out
    r = subprocess.run([str(BIN), *GEN_ARGS, "--out", str(out)], env=ENV, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    _assert_same_data(reference, out)


# -- full disk -----------------------------------------------------------------------------

def _enospc(*_args, **_kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.fixture
def small_set():
    return load_recipe("burgers1d-pdebench").with_changes(samples=20, overrides=SMALL)


@pytest.mark.parametrize("where", ["data", "close", "sidecar", "manifest"])
def test_simulated_disk_full_is_one_line_and_resumable(small_set, tmp_path, monkeypatch,
                                                       capsys, where):
    ref = tmp_path / "ref"
    generate(small_set, ref, progress=False)
    out = tmp_path / "ds"
    calls = {"n": 0}

    def failing(original, when):
        def wrapper(*args, **kwargs):
            calls["n"] += 1
            if when(args):
                _enospc()
            return original(*args, **kwargs)
        return wrapper

    if where == "data":  # the third batch write fails
        monkeypatch.setattr(store.ShardWriter, "write", failing(
            store.ShardWriter.write, lambda a: calls["n"] == 3))
    elif where == "close":
        monkeypatch.setattr(store.ShardWriter, "_close", failing(
            store.ShardWriter._close, lambda a: calls["n"] == 2))
    else:  # the third shard's sidecar, or the manifest once all shards are written
        name = "shard-00002.json" if where == "sidecar" else store.MANIFEST
        monkeypatch.setattr(atomic, "write", failing(atomic.write, lambda a: a[0].name == name
                                                     and calls["n"] > 1))
    code = cli.main(["generate", str(_recipe_file(small_set, tmp_path)), "--out", str(out),
                     "--quiet"])
    cap = capsys.readouterr()
    assert code == 2, cap
    err = cap.err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("sciops: error: "), err
    assert "disk full" in err and "rerun the same command" in err
    assert _leftovers(out) == []
    monkeypatch.undo()
    assert cli.main(["generate", str(_recipe_file(small_set, tmp_path)), "--out", str(out),
                     "--quiet"]) == 0
    _assert_same_data(ref, out)


def _recipe_file(recipe, tmp: Path) -> Path:
    f = tmp / "small.toml"
    d = recipe.to_dict()
    params = "\n".join(f"{k} = {json.dumps(v)}" for k, v in d.pop("params").items()
                       if v is not None)
    f.write_text("".join(f"{k} = {json.dumps(v)}\n" for k, v in d.items()) +
                 f"[params]\n{params}\n")
    return f


def test_simulated_disk_full_at_checkpoint_keeps_previous(reference, tmp_path, monkeypatch,
                                                         capsys):
    from sciops.train import checkpoint

    run = tmp_path / "run"
    cmd = _train_cmd(reference, run, 8)[1:3]  # in-process: "train", recipe
    assert cli.main([*cmd, "--out", str(run), "--quiet", "--max-steps", "2"]) == 0
    before = (run / "last.pt").read_bytes()
    monkeypatch.setattr(checkpoint.torch, "save", _enospc)
    code = cli.main([*cmd, "--out", str(run), "--quiet", "--resume"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "disk full" in err, err
    assert "previous last.pt is intact" in err
    assert (run / "last.pt").read_bytes() == before
    assert _leftovers(run) == []


def _can_mount() -> bool:
    if os.geteuid() != 0 or not shutil.which("mount"):
        return False
    probe = Path("/tmp") / f"sciops-mount-probe-{os.getpid()}"
    probe.mkdir(exist_ok=True)
    try:
        ok = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(probe)],
                            capture_output=True).returncode == 0
        if ok:
            subprocess.run(["umount", str(probe)], check=True)
        return ok
    finally:
        probe.rmdir()


@pytest.mark.skipif(not _can_mount(), reason="needs permission to mount a tmpfs (root); "
                    "the simulated ENOSPC tests above cover the same paths")
def test_real_full_disk_mid_generation(reference, tmp_path):
    """A 96 KiB tmpfs fills while shards (~30 KiB each) are written: one line, exit 2, no
    crash (HDF5 segfaults when freeing the broken file), no temporary file; after the disk
    grows, the same command completes bitwise equal to the reference."""
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=96k", "tmpfs", str(disk)], check=True)
    try:
        out = disk / "ds"
        # the up-front size check would refuse this disk; skip it to fill the disk mid-run
        script = ("import sys; from sciops.data import sizing; from sciops import cli; "
                  "sizing.check = lambda *a, **k: None; sys.exit(cli.main(sys.argv[1:]))")
        cmd = [sys.executable, "-c", script, *GEN_ARGS, "--out", str(out)]
        r = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=600)
        assert r.returncode == 2, (r.returncode, r.stderr)
        assert r.stderr.startswith("sciops: error: ") and r.stderr.count("\n") == 1, r.stderr
        assert "disk full" in r.stderr
        assert _leftovers(out) == []
        kept = len(list(out.glob("shard-*.nc")))
        assert 0 < kept < 8, kept
        subprocess.run(["mount", "-o", "remount,size=64m", str(disk)], check=True)
        again = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=600)
        assert again.returncode == 0, again.stderr
        _assert_same_data(reference, out)
    finally:
        time.sleep(0.1)
        subprocess.run(["umount", "-l", str(disk)])
