"""Up-front size checks of `sciops generate` (sciops.data.sizing)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from sciops.cli import main
from sciops.data import known_recipes, load_recipe, sizing

HUGE = [
    ["les3d-hit-32", "--set", "resolution=2048"],
    ["les3d-hit-32", "--set", "resolution=2048", "--set", "store_fdns=false"],
    ["wave2d-cno", "--set", "resolution=8192", "--set", "modes=4096",
     "--set", "n_records=1000000"],
    ["ns2d-fno-nu1e-3", "--set", "resolution=8192", "--set", "n_records=1000000"],
]


@pytest.mark.parametrize("argv", HUGE, ids=lambda a: " ".join(a[::2]))
def test_huge_sizes_refused_fast(argv, tmp_path, capsys):
    out = tmp_path / "out"
    t0 = time.perf_counter()
    rc = main(["generate", *argv, "--out", str(out), "--quiet"])
    elapsed = time.perf_counter() - t0
    err = capsys.readouterr().err
    assert rc == 2
    assert elapsed < 1.0
    assert err.count("\n") == 1 and err.startswith("sciops: error: ")
    assert not out.exists()  # refused before anything is written


def test_message_names_drivers_and_estimate(tmp_path, capsys):
    rc = main(["generate", "ns2d-fno-nu1e-3", "--set", "resolution=8192", "--out",
               str(tmp_path / "o"), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "resolution=8192" in err and "batch_size=20" in err and "GB" in err
    assert "lower resolution" in err


def test_max_memory_option(tmp_path, capsys):
    rc = main(["generate", "heat2d", "--samples", "2", "--max-memory", "1M", "--out",
               str(tmp_path / "o"), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and "--max-memory" in err and "one batch needs" in err
    rc = main(["generate", "heat2d", "--max-memory", "lots", "--out", str(tmp_path / "p")])
    assert rc == 2 and "expected a size" in capsys.readouterr().err


def test_disk_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sizing, "_free_space", lambda out: 1000)
    rc = main(["generate", "heat2d", "--samples", "2", "--out", str(tmp_path / "o"),
               "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and "of disk" in err and "lower --samples" in err


@pytest.mark.parametrize("name", sorted(known_recipes()))
def test_shipped_recipes_pass(name, tmp_path):
    est = sizing.check(load_recipe(name), tmp_path)
    assert 0 < est.batch_bytes < 8e9


def test_parse_bytes():
    assert sizing.parse_bytes("8G") == 8 * 1024**3
    assert sizing.parse_bytes("512MiB") == 512 * 1024**2
    assert sizing.parse_bytes("1000") == 1000


_MEASURE = """
import json, sys
from pathlib import Path
from sciops.data import generate, load_recipe, sizing


def status(key):  # kB in /proc/self/status
    line = next(l for l in Path("/proc/self/status").read_text().splitlines() if l.startswith(key))
    return int(line.split()[1]) * 1024


r = load_recipe(sys.argv[1]).with_changes(samples=int(sys.argv[2]), overrides=dict(
    a.split("=", 1) for a in sys.argv[4:]))
est = sizing.estimate(r)
generate(r, sys.argv[3] + "-warm-up", progress=False)  # lazy imports and caches first
Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM) to the current RSS
before = status("VmRSS")
generate(r, sys.argv[3], progress=False)
print(json.dumps({"estimate": est.batch_bytes, "growth": status("VmHWM") - before,
                  "before": before}))
"""


@pytest.mark.parametrize("name,sets", [
    ("ns2d-fno-nu1e-3", ["resolution=256", "output_resolution=64", "n_records=10",
                         "t_final=1.0", "batch_size=4", "samples_per_shard=4"]),
])
def test_estimate_within_factor_3_of_measured(name, sets, tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    run = subprocess.run([sys.executable, "-c", _MEASURE, name, "4", str(tmp_path / "o"), *sets],
                         capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr
    m = json.loads(run.stdout.strip().splitlines()[-1])
    print(f"{name}: estimate {m['estimate'] / 1e6:.1f} MB, measured peak RSS growth "
          f"{m['growth'] / 1e6:.1f} MB")
    assert m["growth"] / 3 <= m["estimate"] <= 3 * m["growth"]
