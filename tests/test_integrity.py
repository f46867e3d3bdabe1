"""Nothing wrong passes silently: altered, swapped, truncated or half-written dataset files
are caught when the dataset is opened, with a one-line error naming the file."""

import json
import os
import shutil
import time

import h5py
import numpy as np
import pytest

from sciops import cli
from sciops.data import ShardedSamples, generate, load_recipe, open_dataset, open_samples, store
from sciops.errors import SciopsError

SMALL = {"resolution": "16", "modes": "4", "samples_per_shard": "2", "batch_size": "2"}


def _recipe():
    return load_recipe("poisson2d-cno").with_changes(samples=4, seed=1, overrides=SMALL)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    out = tmp_path_factory.mktemp("pristine") / "ds"
    generate(_recipe(), out, progress=False)
    return out


@pytest.fixture
def ds(pristine, tmp_path):
    out = tmp_path / "ds"
    shutil.copytree(pristine, out)
    return out


@pytest.fixture(scope="module")
def run(pristine, tmp_path_factory):
    """A one-step run trained on the intact dataset (for predict / evaluate)."""
    tmp = tmp_path_factory.mktemp("run")
    recipe = _train_recipe(tmp, pristine)
    assert cli.main(["train", str(recipe), "--out", str(tmp / "run"), "--max-steps", "1",
                     "--quiet", "--device", "cpu"]) == 0
    return tmp / "run"


def _train_recipe(tmp, data):
    recipe = tmp / "r.toml"
    recipe.write_text(
        'name = "t"\n[model]\nname = "fno"\nn_modes = [4, 4]\nhidden_channels = 4\n'
        f'n_layers = 1\n[data]\ndataset = {json.dumps(str(data))}\ninputs = ["f"]\n'
        'targets = ["u"]\ntrain_samples = 2\ntest_samples = 2\n'
        '[train]\nepochs = 1\nbatch_size = 2\nlr = 1e-3\n')
    return recipe


def _flip_bit(path, offset=None):
    """Flip one bit of the raw file, in the data of the last sample by default."""
    raw = bytearray(path.read_bytes())
    if offset is None:
        with h5py.File(path, "r") as f:
            offset = f["u"].id.get_chunk_info(1).byte_offset + 17
    raw[offset] ^= 0x04
    path.write_bytes(bytes(raw))


def _one_line_error(capsys, argv):
    code = cli.main(argv)
    cap = capsys.readouterr()
    assert code == 2, (code, cap.out, cap.err)
    err = cap.err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("sciops: error: "), err
    assert "Traceback" not in cap.err
    return err


def _all_readers_refuse(path, match):
    for read in (open_dataset, open_samples, ShardedSamples):
        with pytest.raises(SciopsError, match=match):
            read(path)


def test_flipped_bit_is_caught_by_every_reader(ds):
    before = open_dataset(ds)["u"].values  # read (and hashed) while intact
    _flip_bit(ds / "shard-00001.nc")
    with h5py.File(ds / "shard-00001.nc", "r") as f:  # the file still opens: HDF5 won't tell
        assert not np.array_equal(f["u"][1], before[3])
    _all_readers_refuse(ds, r"shard-00001\.nc.*sha256.*sciops generate")
    with pytest.raises(SciopsError, match=r"shard-00001\.nc"):
        open_dataset(ds / "shard-00001.nc")  # a single shard of a dataset is checked too


def test_changed_value_caught_and_regenerated_by_resume(ds, capsys):
    before = open_dataset(ds)["u"].values
    with h5py.File(ds / "shard-00000.nc", "r+") as f:
        f["u"][0, 0, 0] += 1.0
    # a rerun of generate does not call the dataset complete
    with pytest.raises(SciopsError, match=r"shard-00000\.nc.*delete"):
        generate(_recipe(), ds, progress=False)
    # the advice in the message works: delete the shard, rerun, get the same data back
    (ds / "shard-00000.nc").unlink()
    (ds / "shard-00000.json").unlink(missing_ok=True)
    rep = generate(_recipe(), ds, progress=False)
    assert rep.complete and rep.shards_written == 1
    assert np.array_equal(open_dataset(ds)["u"].values, before)


def test_swapped_shards_are_not_read_out_of_order(ds):
    a, b = ds / "shard-00000", ds / "shard-00001"
    for suffix in (".nc", ".json"):  # swap data and sidecar alike
        tmp = ds / f"tmp{suffix}"
        os.replace(a.with_suffix(suffix), tmp)
        os.replace(b.with_suffix(suffix), a.with_suffix(suffix))
        os.replace(tmp, b.with_suffix(suffix))
    _all_readers_refuse(ds, r"shard-0000[01]\.nc")


def test_order_comes_from_the_manifest(ds):
    m = json.loads((ds / "manifest.json").read_text())
    assert [tuple(r["samples"]) for _, r in sorted(m["shards"].items())] == [(0, 2), (2, 4)]
    # a manifest whose shard ranges disagree with the files is caught, not trusted blindly
    m["shards"]["shard-00000.nc"]["samples"], m["shards"]["shard-00001.nc"]["samples"] = \
        [2, 4], [0, 2]
    (ds / "manifest.json").write_text(json.dumps(m))
    _all_readers_refuse(ds, r"shard-0000[01]\.nc.*samples")


def test_repeated_opens_hash_once(ds, monkeypatch):
    time.sleep(store.RACY_NS / 1e9 + 0.1)  # files changed a moment ago are always re-hashed
    calls = []
    real = store.sha256
    monkeypatch.setattr(store, "sha256", lambda p: calls.append(p) or real(p))
    store.clear_hash_cache()
    for _ in range(3):
        open_dataset(ds)
        open_samples(ds)
    assert sorted(p.name for p in calls) == ["shard-00000.nc", "shard-00001.nc"]
    store.clear_hash_cache()  # as a new process would: .verified.json vouches for both
    open_dataset(ds)
    assert len(calls) == 2
    os.utime(ds / "shard-00000.nc", ns=(1, 1))  # changed times: hashed again
    open_dataset(ds)
    assert [p.name for p in calls[2:]] == ["shard-00000.nc"]


def test_flip_with_restored_mtime_is_caught(ds):
    time.sleep(store.RACY_NS / 1e9 + 0.1)
    open_dataset(ds)  # hashed and cached, also in .verified.json
    shard = ds / "shard-00001.nc"
    st = shard.stat()
    _flip_bit(shard)
    os.utime(shard, ns=(st.st_atime_ns, st.st_mtime_ns))  # same size, same mtime
    store.clear_hash_cache()
    _all_readers_refuse(ds, r"shard-00001\.nc.*sha256")


def test_cli_train_predict_evaluate_refuse_corrupted_data(ds, run, tmp_path, capsys):
    _flip_bit(ds / "shard-00001.nc")
    recipe = _train_recipe(tmp_path, ds)
    e = _one_line_error(capsys, ["train", str(recipe), "--out", str(tmp_path / "t"),
                                 "--max-steps", "1", "--quiet", "--device", "cpu"])
    assert "shard-00001.nc" in e and "sha256" in e
    e = _one_line_error(capsys, ["predict", str(run), "--data", str(ds),
                                 "--out", str(tmp_path / "p.nc")])
    assert "shard-00001.nc" in e
    e = _one_line_error(capsys, ["evaluate", str(run), "--data", str(ds),
                                 "--out", str(tmp_path / "rep")])
    assert "shard-00001.nc" in e


def test_truncated_shard(ds, capsys):
    shard = ds / "shard-00001.nc"
    shard.write_bytes(shard.read_bytes()[:4000])
    assert cli.main(["info", str(ds), "--verify"]) == 1
    cap = capsys.readouterr()
    assert "Traceback" not in cap.err and "verify    FAIL shard-00001.nc" in cap.out
    e = _one_line_error(capsys, ["info", str(ds)])
    assert "shard-00001.nc" in e
    _all_readers_refuse(ds, r"shard-00001\.nc")


def test_truncated_shard_of_partial_dataset(ds, capsys):
    m = json.loads((ds / "manifest.json").read_text())
    m.update(complete=False, shards={})  # as while generation is still running
    (ds / "manifest.json").write_text(json.dumps(m))
    shard = ds / "shard-00001.nc"
    shard.write_bytes(shard.read_bytes()[:4000])
    assert cli.main(["info", str(ds), "--verify"]) == 1
    assert "verify    FAIL shard-00001.nc" in capsys.readouterr().out
    with pytest.raises(SciopsError, match=r"shard-00001\.nc"):
        open_dataset(ds, allow_partial=True)


def test_invalid_sidecar_json(ds, capsys):
    (ds / "shard-00001.json").write_text('{"sha256": "ab')
    for argv in (["info", str(ds)], ["info", str(ds), "--verify"]):
        assert "shard-00001.json" in _one_line_error(capsys, argv)
    with pytest.raises(SciopsError, match=r"shard-00001\.json"):
        generate(_recipe(), ds, progress=False)
    m = json.loads((ds / "manifest.json").read_text())
    m.update(complete=False, shards={})
    (ds / "manifest.json").write_text(json.dumps(m))
    _all_readers_refuse(ds, r"shard-00001\.json")


@pytest.mark.parametrize("key", ["n_shards", "recipe"])
def test_manifest_missing_keys(ds, capsys, key):
    m = json.loads((ds / "manifest.json").read_text())
    del m[key]
    (ds / "manifest.json").write_text(json.dumps(m))
    for argv in (["info", str(ds)], ["info", str(ds), "--verify"]):
        e = _one_line_error(capsys, argv)
        assert "manifest.json" in e and key in e
    _all_readers_refuse(ds, rf"manifest\.json.*{key}")


def test_manifest_bad_shard_records(ds, capsys):
    m = json.loads((ds / "manifest.json").read_text())
    m["shards"]["shard-00001.nc"] = {"sha256": 5}
    (ds / "manifest.json").write_text(json.dumps(m))
    assert "manifest.json" in _one_line_error(capsys, ["info", str(ds), "--verify"])
    _all_readers_refuse(ds, r"manifest\.json.*shard-00001\.nc")
