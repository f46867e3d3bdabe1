"""Dataset store and sharded generation: determinism, resume, integrity, lazy access."""

import importlib
import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import xarray as xr

from sciops import cli
from sciops.data import ShardedSamples, generate, load_recipe, open_dataset, store
from sciops.errors import SciopsError

SMALL = {"resolution": "16", "output_resolution": "8", "t_final": "0.2", "n_records": "2",
         "samples_per_shard": "2", "batch_size": "2", "store_velocity": "true"}


def _recipe(samples=6):
    return load_recipe("ns2d-fno-nu1e-3").with_changes(samples=samples, seed=5, overrides=SMALL)


def _arrays(path):
    ds = open_dataset(path)
    return {k: ds[k].values for k in ("vorticity", "u", "v")}


def test_shard_count_and_resume_give_identical_arrays(tmp_path, monkeypatch):
    r = _recipe().with_changes(overrides={"batch_size": "1"})
    one = tmp_path / "one"
    generate(r, one, progress=False)
    three = tmp_path / "three"
    for i in (2, 0, 1):  # any order, as independent processes would
        rep = generate(r, three, shard=(i, 3), progress=False)
    assert rep.complete
    a, b = _arrays(one), _arrays(three)
    for k in a:
        assert np.array_equal(a[k], b[k]), k
    assert a["vorticity"].shape == (6, 3, 8, 8)

    # interrupt in the middle of the second shard, then resume
    resumed = tmp_path / "resumed"
    gen = importlib.import_module("sciops.data.generate")

    real = gen._solve_batch
    calls = {"n": 0}

    def flaky(*args, **kw):
        calls["n"] += 1
        if calls["n"] == 4:  # second sample of the second shard
            raise KeyboardInterrupt
        return real(*args, **kw)

    monkeypatch.setattr(gen, "_solve_batch", flaky)
    with pytest.raises(KeyboardInterrupt):
        generate(r, resumed, progress=False)
    monkeypatch.setattr(gen, "_solve_batch", real)
    assert sorted(p.name for p in resumed.glob("shard-*.nc")) == ["shard-00000.nc"]
    assert not list(resumed.glob(".*.tmp"))  # no half file left behind
    with pytest.raises(SciopsError, match="1 of 3 shards complete"):
        open_dataset(resumed)
    rep = generate(r, resumed, progress=False)
    assert (rep.shards_skipped, rep.shards_written) == (1, 2)
    c = _arrays(resumed)
    for k in a:
        assert np.array_equal(a[k], c[k]), k


def test_same_seed_same_data_other_seed_differs(tmp_path):
    r = _recipe(samples=2)
    generate(r, tmp_path / "a", progress=False)
    generate(r.with_changes(seed=6), tmp_path / "b", progress=False)
    a = open_dataset(tmp_path / "a")["vorticity"].values
    b = open_dataset(tmp_path / "b")["vorticity"].values
    assert np.abs(a - b).max() > 1e-3


def test_verify_detects_altered_shard(tmp_path, capsys):
    out = tmp_path / "ds"
    generate(_recipe(samples=4), out, progress=False)
    assert cli.main(["info", str(out), "--verify"]) == 0
    shard = out / "shard-00001.nc"
    with h5py.File(shard, "r+") as f:
        f["vorticity"][0, 0, 0, 0] += 1.0
    assert store.verify(out) == ["shard-00001.nc: sha256 mismatch (file altered or corrupted)"]
    assert cli.main(["info", str(out), "--verify"]) == 1
    assert "shard-00001.nc: sha256 mismatch" in capsys.readouterr().out


def test_layout_readable_by_xarray_and_h5py_and_torch(tmp_path):
    out = tmp_path / "ds"
    generate(_recipe(samples=4), out, progress=False)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["complete"] and len(manifest["shards"]) == 2
    shard = out / "shard-00001.nc"
    ds = xr.open_dataset(shard, engine="h5netcdf")
    assert ds["vorticity"].dims == ("sample", "time", "x", "y")
    assert list(ds["sample"].values) == [2, 3]
    assert np.allclose(ds["t"].values, [0.0, 0.1, 0.2])
    assert ds.attrs["nu"] == 1e-3 and ds.attrs["recipe"] == "ns2d-fno-nu1e-3"
    with h5py.File(shard, "r") as f:
        assert np.array_equal(f["vorticity"][1], ds["vorticity"].values[1])
    full = open_dataset(out)
    assert full["vorticity"].chunks is not None  # lazy (dask-backed)
    samples = ShardedSamples(out, ["vorticity"])
    assert len(samples) == 4
    assert np.array_equal(samples[3]["vorticity"].numpy(), full["vorticity"].values[3])


def test_cli_generate_end_to_end(tmp_path, capsys):
    out = tmp_path / "cli"
    args = ["generate", "ns2d-fno-nu1e-3", "--out", str(out), "--samples", "2", "--quiet"]
    for k, v in SMALL.items():
        args += ["--set", f"{k}={v}"]
    assert cli.main(args) == 0
    assert "dataset complete" in capsys.readouterr().out
    # the stored field equals a direct solve of the same inputs
    from sciops import pdes
    from sciops.data import sample_generator

    r = _recipe(samples=2).with_changes(seed=0)
    ns = pdes.get("ns2d")
    w0 = ns.sample_inputs(r.params, 1, sample_generator(0, 1))["w0"]
    direct = ns.solve(r.params, {"w0": w0})["vorticity"][0].numpy()
    stored = open_dataset(out)["vorticity"].values[1]
    assert np.abs(stored - direct).max() < 1e-6


def _err(capsys, argv):
    code = cli.main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1, err
    return err


def test_cli_errors_are_one_line(tmp_path, capsys):
    out = str(tmp_path / "x")
    e = _err(capsys, ["generate", "nope", "--out", out])
    assert "unknown recipe" in e and "known:" in e and "ns2d-fno-nu1e-3" in e
    e = _err(capsys, ["generate", "ns2d-fno-nu1e-3", "--out", out, "--set", "viscosity=1"])
    assert "viscosity" in e and "allowed" in e
    e = _err(capsys, ["generate", "ns2d-fno-nu1e-3", "--out", out, "--set", "nu=-1"])
    assert "nu=-1.0 is out of range" in e
    e = _err(capsys, ["generate", "ns2d-fno-nu1e-3", "--out", out, "--set", "nu=abc"])
    assert "nu='abc'" in e
    assert "--shard 3/2" in _err(capsys, ["generate", "ns2d-fno-nu1e-3", "--out", out,
                                          "--shard", "3/2"])
    blocker = tmp_path / "file"
    blocker.write_text("")
    e = _err(capsys, ["generate", "ns2d-fno-nu1e-3", "--out", str(blocker / "sub")])
    assert "cannot write" in e
    # an existing dataset of another recipe is not clobbered without --overwrite
    small = ["--samples", "2", "--quiet"] + sum(
        (["--set", f"{k}={v}"] for k, v in SMALL.items()), [])
    assert cli.main(["generate", "ns2d-fno-nu1e-3", "--out", out, *small]) == 0
    e = _err(capsys, ["generate", "ns2d-fno-nu1e-4", "--out", out, *small])
    assert "different" in e and "--overwrite" in e
    assert cli.main(["generate", "ns2d-fno-nu1e-4", "--out", out, *small, "--overwrite"]) == 0
    assert store.read_manifest(Path(out))["recipe"]["name"] == "ns2d-fno-nu1e-4"
    e = _err(capsys, ["generate", "ns2d-fno-nu1e-3", "--out", str(tmp_path / "y"), "--samples",
                      "1", "--set", "dt=0.5", "--set", "scheme=fno", "--set", "resolution=16",
                      "--set", "output_resolution=16", "--set", "ic_sigma=5000", "--quiet"])
    assert "sample(s) [0] diverged" in e
    assert "not a sciops dataset" in _err(capsys, ["info", str(tmp_path / "missing")])


def test_dataset_grows_to_more_samples_bitwise(tmp_path):
    """40 -> 80 in the issue; here 5 -> 9 samples with shards of 2 (the old last shard holds 1
    sample and is regenerated whole): equal to a fresh 9-sample set, other shards untouched."""
    small, grown = tmp_path / "grown", tmp_path / "fresh"
    generate(_recipe(samples=5), small, progress=False)
    kept = (small / store.shard_name(0)).stat().st_mtime_ns
    report = generate(_recipe(samples=9), small, progress=False)
    assert report.complete and report.shards_written == 3 and report.shards_skipped == 2
    assert (small / store.shard_name(0)).stat().st_mtime_ns == kept
    generate(_recipe(samples=9), grown, progress=False)
    a, b = _arrays(small), _arrays(grown)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    assert store.read_manifest(small)["recipe"]["samples"] == 9
    with pytest.raises(SciopsError, match="different samples"):  # shrinking is not growing
        generate(_recipe(samples=4), small, progress=False)


def test_manifest_names_the_defining_package_and_the_changed_parameters(tmp_path):
    out = tmp_path / "ds"
    generate(_recipe(samples=2), out, progress=False)
    m = store.read_manifest(out)
    assert m["pde_source"]["package"] == "sciops"
    assert m["pde_source"]["class"] == "sciops.pdes.ns2d.NS2D"
    assert m["pde_source"]["version"] == importlib.metadata.version("sciops")
    desc = m["recipe"]["description"]
    assert "[Changed by --set: " in desc and "resolution=16 (recipe: 256)" in desc
    plain = load_recipe("ns2d-fno-nu1e-3")
    assert plain.with_changes(samples=3).description == plain.description
