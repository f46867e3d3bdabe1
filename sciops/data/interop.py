"""Read peers' dataset files as the same lazy ``xarray.Dataset`` view as sciops datasets.

Supported layouts (dims are renamed to ``sample, time, x, y[, z]``):

* **neuraloperator ``.pt``** — a dict of tensors saved with ``torch.save`` (e.g.
  ``darcy_train_16.pt``: ``x`` (N, X, Y) coefficient, ``y`` (N, X, Y) solution). Loaded
  memory-mapped with ``weights_only=True``. Keys ``x``/``y`` clash with the coordinate
  names, so they become ``input``/``output`` (the file's own name is kept in the
  variable's ``file_name`` attribute, and recipes may use it); other keys keep their names.
* **PDEBench HDF5** — Darcy (``nu`` (N, X, Y) coefficient, ``tensor`` (N, 1, X, Y)
  solution, ``x-coordinate``, ``y-coordinate``), 2D compressible CFD (``density``,
  ``pressure``, ``Vx``, ``Vy`` (N, T, X, Y), ``t-``/``x-``/``y-coordinate``) and 2D
  incompressible NS (``velocity`` (N, T, X, Y, 2) -> ``u``, ``v``; ``particles``;
  ``force`` (N, X, Y, 2) -> ``force_x``, ``force_y``; ``t`` (N, T)).
* **The Well HDF5** — ``t0_fields/NAME`` (B, T, X, Y[, Z]) scalars, ``t1_fields/NAME``
  vectors split into ``NAME_x``, ``NAME_y``[, ``NAME_z``], ``t2_fields`` tensors split into
  ``NAME_xx`` ...; ``dimensions/time``, ``dimensions/<spatial>``; fields that are not
  ``sample_varying`` / ``time_varying`` lack those axes (as the format specifies).
"""

from __future__ import annotations

from pathlib import Path

import dask.array as da
import h5py
import numpy as np
import torch
import xarray as xr

from sciops.errors import SciopsError

SPACE = ("x", "y", "z")


def open_neuralop_pt(path: Path) -> xr.Dataset:
    """A neuraloperator ``.pt`` dict of tensors as an xarray Dataset (memory-mapped)."""
    try:
        data = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as e:  # torch raises many types for foreign files; report one line
        raise SciopsError(f"{path}: not a readable torch file ({type(e).__name__})") from None
    if not isinstance(data, dict) or not data:
        raise SciopsError(f"{path}: expected a dict of tensors (neuraloperator layout)")
    ds = xr.Dataset()
    for key, value in data.items():
        if not isinstance(value, torch.Tensor) or value.ndim < 2:
            continue
        name = {"x": "input", "y": "output"}.get(key, key)
        arr = value.numpy()
        if arr.ndim == 4 and arr.shape[1] == 1:  # (N, 1, X, Y) channel axis
            arr = arr[:, 0]
        ds[name] = (("sample", *SPACE[: arr.ndim - 1]), arr, {"file_name": key})
    if not ds.data_vars:
        raise SciopsError(f"{path}: no tensor with a sample axis found")
    return ds


def _lazy(var: h5py.Dataset) -> da.Array:
    """A dask view of an HDF5 dataset, one chunk per leading index (nothing read yet)."""
    return da.from_array(var, chunks=(1, *var.shape[1:]))


def _h5(path: Path) -> h5py.File:
    try:
        return h5py.File(path, "r")
    except OSError as e:
        raise SciopsError(f"{path}: not a readable HDF5 file ({e})") from None


def open_pdebench(path: Path) -> xr.Dataset:
    """A PDEBench 2D HDF5 file (Darcy, compressible CFD or incompressible NS layout)."""
    f = _h5(path)
    keys = set(f.keys())
    ds = xr.Dataset()

    def coord(name: str, dim: str) -> None:
        if name in f:
            ds.coords[dim] = np.asarray(f[name][()]).reshape(-1)[: ds.sizes.get(dim)]

    if {"nu", "tensor"} <= keys:  # Darcy
        sol = _lazy(f["tensor"])
        ds["a"] = (("sample", "x", "y"), _lazy(f["nu"]))
        ds["u"] = (("sample", "x", "y"), sol[:, 0] if sol.ndim == 4 else sol)
        ds.attrs["pdebench_layout"] = "darcy"
    elif {"density", "pressure", "Vx", "Vy"} <= keys:  # compressible CFD
        for name in ("density", "pressure", "Vx", "Vy"):
            ds[name] = (("sample", "time", "x", "y"), _lazy(f[name]))
        ds.attrs["pdebench_layout"] = "cfd2d"
    elif "velocity" in keys:  # incompressible NS
        vel = _lazy(f["velocity"])
        ds["u"] = (("sample", "time", "x", "y"), vel[..., 0])
        ds["v"] = (("sample", "time", "x", "y"), vel[..., 1])
        if "particles" in keys:
            ds["particles"] = (("sample", "time", "x", "y"), _lazy(f["particles"])[..., 0])
        if "force" in keys:
            force = _lazy(f["force"])
            ds["force_x"] = (("sample", "x", "y"), force[..., 0])
            ds["force_y"] = (("sample", "x", "y"), force[..., 1])
        if "t" in keys:
            ds.coords["t"] = ("time", np.asarray(f["t"][0]))
        ds.attrs["pdebench_layout"] = "ns_incom2d"
    else:
        raise SciopsError(f"{path}: unknown PDEBench layout (datasets {sorted(keys)}); "
                          f"supported: Darcy (nu, tensor), CFD (density, pressure, Vx, Vy), "
                          f"incompressible NS (velocity)")
    coord("x-coordinate", "x")
    coord("y-coordinate", "y")
    if "t-coordinate" in f and "time" in ds.dims:
        ds.coords["t"] = ("time", np.asarray(f["t-coordinate"][()])[: ds.sizes["time"]])
    return ds


def open_the_well(path: Path) -> xr.Dataset:
    """A The Well HDF5 file as an xarray Dataset (trajectories become ``sample``)."""
    f = _h5(path)
    if "dimensions" not in f or "t0_fields" not in f:
        raise SciopsError(f"{path}: not a The Well file (no dimensions/ or t0_fields/ group)")
    spatial = [s.decode() if isinstance(s, bytes) else str(s)
               for s in f["dimensions"].attrs["spatial_dims"]]
    dims = SPACE[: len(spatial)]
    ds = xr.Dataset(coords={"t": ("time", np.asarray(f["dimensions/time"][()]))})
    for src, dim in zip(spatial, dims):
        ds.coords[dim] = np.asarray(f["dimensions"][src][()])
    for order in (0, 1, 2):
        group = f.get(f"t{order}_fields")
        if group is None:
            continue
        for name, var in group.items():
            lead = (("sample",) if var.attrs.get("sample_varying", True) else ()) + \
                (("time",) if var.attrs.get("time_varying", True) else ())
            arr = _lazy(var) if var.ndim else var[()]
            if order == 0:
                ds[name] = ((*lead, *dims), arr)
                continue
            comps = [""]
            for _ in range(order):
                comps = [c + d for c in comps for d in dims]
            flat = arr.reshape(*arr.shape[: len(lead) + len(dims)], -1)
            for i, comp in enumerate(comps):
                ds[f"{name}_{comp}"] = ((*lead, *dims), flat[..., i])
    ds.attrs["the_well_dataset"] = str(f.attrs.get("dataset_name", ""))
    return ds


def foreign_format(path: Path) -> str:
    """The peer layout of file ``path``: ``neuraloperator .pt``, ``The Well HDF5`` or
    ``PDEBench HDF5``; SciopsError for anything else."""
    if path.suffix == ".pt":
        return "neuraloperator .pt"
    if path.suffix in (".h5", ".hdf5"):
        with _h5(path) as f:
            return "The Well HDF5" if "t0_fields" in f and "dimensions" in f \
                else "PDEBench HDF5"
    raise SciopsError(f"{path}: unsupported file type; expected a sciops dataset directory, "
                      f".nc shard, neuraloperator .pt, PDEBench or The Well .h5/.hdf5")


def open_foreign(path: Path) -> xr.Dataset:
    """Dispatch a peer file by suffix and content (:func:`foreign_format`)."""
    kind = foreign_format(path)
    if kind == "neuraloperator .pt":
        return open_neuralop_pt(path)
    return open_the_well(path) if kind == "The Well HDF5" else open_pdebench(path)
