"""Peers' files open as the same xarray view and feed the trainer's pairs unchanged."""

import h5py
import numpy as np
import pytest
import torch

from sciops.data import open_dataset, open_samples
from sciops.errors import SciopsError
from sciops.train.config import DataConfig
from sciops.train.task import WindowedPairs

rng = np.random.default_rng(0)


def test_neuralop_pt(tmp_path):
    x = torch.randn(5, 16, 16)
    y = torch.randn(5, 1, 16, 16)
    path = tmp_path / "darcy_train_16.pt"
    torch.save({"x": x, "y": y}, path)
    ds = open_dataset(path)
    assert ds["input"].dims == ("sample", "x", "y")
    assert np.array_equal(ds["output"].values, y[:, 0].numpy())
    pairs = WindowedPairs(path, DataConfig(dataset=str(path), inputs=["input"],
                                           targets=["output"]), range(3, 5))
    a, u = pairs[1]
    assert torch.equal(a[0], x[4]) and torch.equal(u[0], y[4, 0])


def test_pdebench_darcy_and_ns(tmp_path):
    nu, sol = rng.random((4, 8, 8), dtype=np.float32), rng.random((4, 1, 8, 8), dtype=np.float32)
    darcy = tmp_path / "2D_DarcyFlow_beta1.0_Train.hdf5"
    with h5py.File(darcy, "w") as f:
        f["nu"], f["tensor"] = nu, sol
        f["x-coordinate"] = f["y-coordinate"] = np.linspace(0, 1, 8)
    ds = open_dataset(darcy)
    assert ds.attrs["pdebench_layout"] == "darcy"
    assert np.array_equal(ds["u"].values, sol[:, 0]) and np.array_equal(ds["a"].values, nu)
    assert np.allclose(ds["x"].values, np.linspace(0, 1, 8))

    vel = rng.random((3, 6, 8, 8, 2), dtype=np.float32)
    ns = tmp_path / "ns_incom_inhom_2d_512-0.h5"
    with h5py.File(ns, "w") as f:
        f["velocity"], f["force"] = vel, rng.random((3, 8, 8, 2), dtype=np.float32)
        f["particles"] = rng.random((3, 6, 8, 8, 1), dtype=np.float32)
        f["t"] = np.tile(np.linspace(0, 5, 6), (3, 1))
    ds = open_dataset(ns)
    assert np.array_equal(ds["v"].values, vel[..., 1])
    assert np.allclose(ds["t"].values, np.linspace(0, 5, 6))
    cfg = DataConfig(dataset=str(ns), inputs=["u", "v"], targets=["u", "v"], in_steps=2,
                     out_steps=1, windows="sliding")
    pairs = WindowedPairs(ns, cfg, range(3))
    assert len(pairs) == 3 * 4
    x, y = pairs[5]  # sample 1, window start 1
    assert torch.equal(x[2:], torch.from_numpy(vel[1, 1:3, ..., 1]))
    assert torch.equal(y[0], torch.from_numpy(vel[1, 3, ..., 0]))


def _well_file(path):
    """A small The Well HDF5 file (2 samples, 4 times, 8 x 6, density and velocity)."""
    dens = rng.random((2, 4, 8, 6), dtype=np.float32)
    vel = rng.random((2, 4, 8, 6, 2), dtype=np.float32)
    with h5py.File(path, "w") as f:
        f.attrs["dataset_name"] = "shear_flow"
        f.attrs["n_spatial_dims"] = 2
        d = f.create_group("dimensions")
        d.attrs["spatial_dims"] = ["x", "y"]
        d["time"], d["x"], d["y"] = np.arange(4.0), np.linspace(0, 1, 8), np.linspace(0, 2, 6)
        t0 = f.create_group("t0_fields")
        t0["density"] = dens
        t0["density"].attrs.update(sample_varying=True, time_varying=True)
        t0["mask"] = np.ones((8, 6), np.float32)
        t0["mask"].attrs.update(sample_varying=False, time_varying=False)
        f.create_group("t1_fields")["velocity"] = vel
        f.create_group("t2_fields")
    return dens, vel


def test_the_well(tmp_path):
    path = tmp_path / "shear_flow.hdf5"
    dens, vel = _well_file(path)
    ds = open_dataset(path)
    assert ds["density"].dims == ("sample", "time", "x", "y")
    assert ds["mask"].dims == ("x", "y")
    assert np.array_equal(ds["velocity_y"].values, vel[..., 1])
    s = open_samples(path, ["density", "velocity_x"])
    assert torch.equal(s[1]["velocity_x"], torch.from_numpy(vel[1, ..., 0]))


def test_unknown_files_are_named(tmp_path):
    bad = tmp_path / "weird.h5"
    with h5py.File(bad, "w") as f:
        f["foo"] = np.zeros(3)
    with pytest.raises(SciopsError, match="unknown PDEBench layout"):
        open_dataset(bad)
    txt = tmp_path / "a.csv"
    txt.write_text("1,2")
    with pytest.raises(SciopsError, match="unsupported file type"):
        open_dataset(txt)


def test_info_describes_peers_files(tmp_path, capsys):
    """`sciops info` on a peer's file names its layout and the variables sciops reads (was
    "not a sciops dataset (no manifest.json)" although train/predict/evaluate read it)."""
    from sciops import cli

    pt = tmp_path / "darcy_test_16.pt"
    torch.save({"x": torch.randn(5, 16, 16), "y": torch.randn(5, 1, 16, 16)}, pt)
    assert cli.main(["info", str(pt)]) == 0
    out = capsys.readouterr().out
    assert "(neuraloperator .pt;" in out and "samples   5" in out
    assert "variable  input (sample=5, x=16, y=16) float32 (the file's x)" in out
    assert "variable  output (sample=5, x=16, y=16) float32 (the file's y)" in out
    h5 = tmp_path / "2D_DarcyFlow_beta1.0_Train.hdf5"
    with h5py.File(h5, "w") as f:
        f["nu"], f["tensor"] = rng.random((4, 8, 8)), rng.random((4, 1, 8, 8))
        f["x-coordinate"] = f["y-coordinate"] = np.linspace(0, 1, 8)
    assert cli.main(["info", str(h5)]) == 0
    out = capsys.readouterr().out
    assert "(PDEBench HDF5;" in out and "variable  a (sample=4, x=8, y=8)" in out
    well = tmp_path / "shear_flow.hdf5"
    _well_file(well)
    assert cli.main(["info", str(well)]) == 0
    out = capsys.readouterr().out
    assert "(The Well HDF5;" in out and "samples   2" in out
    assert "variable  velocity_y (sample=2, time=4, x=8, y=6) float32" in out
    assert cli.main(["info", str(pt), "--verify"]) == 2
    assert "no manifest of hashes" in capsys.readouterr().err
