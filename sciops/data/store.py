"""On-disk dataset format: ``manifest.json`` plus netCDF4-layout HDF5 shards.

A dataset directory holds

* ``manifest.json`` — format tag, the full recipe (PDE, params, seed, counts), package
  version, and once complete the per-shard sha256 and sample ranges;
* ``shard-NNNNN.nc`` — samples ``[N * samples_per_shard, ...)``, dims
  ``sample, time, x, y[, z]``, coordinates stored, parameters as attributes;
* ``shard-NNNNN.json`` — the shard's sha256 and range, written before the shard is renamed
  into place, so a shard file that exists is always complete.

Shards are written under a temporary name and renamed when complete, so an interrupted run
never leaves a half file that looks whole.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import h5netcdf
import numpy as np
import xarray as xr

from sciops.errors import SciopsError

FORMAT = "sciops-dataset/1"
MANIFEST = "manifest.json"


def shard_name(j: int) -> str:
    return f"shard-{j:05d}.nc"


def _sidecar(path: Path) -> Path:
    return path.with_suffix(".json")


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to ``path`` through a temporary file and an atomic rename."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _attr(value: Any) -> Any:
    """netCDF attributes cannot hold None or bool: store 'none' and 0/1."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (tuple, list)):
        return np.asarray(value)
    return value


class ShardWriter:
    """Writes one shard incrementally (batch by batch) and publishes it atomically.

    ``coords``: name -> (dim, 1-D values); ``variables``: name -> (dims, attrs);
    ``attrs``: global attributes. Data variables are created on the first write with the
    dtype of the arrays written; per-sample chunks keep single-sample reads cheap.
    """

    def __init__(self, path: Path, n_samples: int, first_sample: int,
                 coords: Mapping[str, tuple[str, np.ndarray]],
                 variables: Mapping[str, tuple[tuple[str, ...], dict]],
                 attrs: Mapping[str, Any]):
        self.path = path
        self.tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        self.n = n_samples
        self.variables = variables
        # netCDF marks coordinates that are not dimensions (t on dim time) by attribute.
        self.aux_coords = " ".join(k for k, (dim, _) in coords.items() if k != dim)
        self.file = h5netcdf.File(self.tmp, "w")
        dims = {"sample": n_samples}
        dims.update({dim: len(values) for dim, values in coords.values()})
        self.file.dimensions = dims
        s = self.file.create_variable("sample", ("sample",), "i8")
        s[:] = np.arange(first_sample, first_sample + n_samples)
        for name, (dim, values) in coords.items():
            values = np.asarray(values)
            self.file.create_variable(name, (dim,), values.dtype)[:] = values
        for k, v in attrs.items():
            self.file.attrs[k] = _attr(v)

    def write(self, start: int, arrays: Mapping[str, np.ndarray]) -> None:
        """Write samples ``[start, start + b)`` (shard-local) of each variable."""
        for name, arr in arrays.items():
            if name not in self.variables:
                raise SciopsError(f"{self.path.name}: unexpected output variable {name!r}")
            dims, attrs = self.variables[name]
            if name not in self.file.variables:
                chunks = (1, *arr.shape[1:])
                var = self.file.create_variable(name, dims, arr.dtype, chunks=chunks)
                for k, v in attrs.items():
                    var.attrs[k] = v
                if self.aux_coords:
                    var.attrs["coordinates"] = self.aux_coords
            self.file.variables[name][start:start + arr.shape[0]] = arr

    def commit(self, sample_range: tuple[int, int]) -> dict[str, Any]:
        """Close, hash, write the sidecar, then rename into place. Returns the record."""
        self.file.close()
        record = {"sha256": sha256(self.tmp), "samples": list(sample_range)}
        write_json_atomic(_sidecar(self.path), record)
        os.replace(self.tmp, self.path)
        return record

    def abort(self) -> None:
        self.file.close()
        self.tmp.unlink(missing_ok=True)


def read_manifest(root: Path) -> dict[str, Any]:
    path = Path(root) / MANIFEST
    if not path.is_file():
        raise SciopsError(f"{root}: not a sciops dataset (no {MANIFEST})")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise SciopsError(f"{path}: corrupted manifest ({e})") from None
    if data.get("format") != FORMAT:
        raise SciopsError(f"{path}: unknown format {data.get('format')!r}; expected {FORMAT}")
    return data


def shard_record(root: Path, j: int) -> dict[str, Any] | None:
    """The sidecar record of shard ``j`` if the shard is complete, else None."""
    path = Path(root) / shard_name(j)
    side = _sidecar(path)
    if not (path.is_file() and side.is_file()):
        return None
    return json.loads(side.read_text())


def finalize(root: Path) -> bool:
    """Record every shard's hash in the manifest once all shards exist; True if complete."""
    manifest = read_manifest(root)
    records = {}
    for j in range(manifest["n_shards"]):
        rec = shard_record(root, j)
        if rec is None:
            return False
        records[shard_name(j)] = rec
    manifest["shards"] = records
    manifest["complete"] = True
    write_json_atomic(Path(root) / MANIFEST, manifest)
    return True


def verify(root: Path) -> list[str]:
    """Problems found by re-hashing every shard against the manifest (empty = intact)."""
    manifest = read_manifest(root)
    problems = []
    if not manifest.get("complete"):
        missing = [shard_name(j) for j in range(manifest["n_shards"])
                   if shard_record(root, j) is None]
        problems.append(f"incomplete: {len(missing)} of {manifest['n_shards']} shards missing "
                        f"({', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''})")
    for name, rec in sorted(manifest.get("shards", {}).items()):
        path = Path(root) / name
        if not path.is_file():
            problems.append(f"{name}: missing")
        elif sha256(path) != rec["sha256"]:
            problems.append(f"{name}: sha256 mismatch (file altered or corrupted)")
    return problems


def shard_paths(root: Path, *, allow_partial: bool = False) -> list[Path]:
    """Paths of the complete shards, in sample order; error if incomplete unless allowed."""
    root = Path(root)
    manifest = read_manifest(root)
    paths = [root / shard_name(j) for j in range(manifest["n_shards"])
             if shard_record(root, j) is not None]
    if not paths or (len(paths) < manifest["n_shards"] and not allow_partial):
        raise SciopsError(
            f"{root}: {len(paths)} of {manifest['n_shards']} shards complete; rerun "
            f"`sciops generate` with the same arguments to resume")
    return paths


def open_dataset(path: str | os.PathLike, *, allow_partial: bool = False) -> xr.Dataset:
    """One lazy ``xarray.Dataset`` over every shard of a dataset directory.

    Arrays are dask-backed: nothing is read until values are used. A single ``.nc`` shard
    is opened directly; peers' files (neuraloperator ``.pt``, PDEBench and The Well HDF5)
    through :mod:`sciops.data.interop`, with the same dim names.
    """
    path = Path(path)
    if not path.exists():
        raise SciopsError(f"{path}: no such dataset")
    if path.is_file() and path.suffix == ".nc":
        return xr.open_dataset(path, engine="h5netcdf", chunks={})
    if path.is_file():
        from sciops.data.interop import open_foreign

        return open_foreign(path)
    paths = shard_paths(path, allow_partial=allow_partial)
    return xr.open_mfdataset(
        paths, engine="h5netcdf", combine="nested", concat_dim="sample",
        data_vars="minimal", coords="minimal", compat="override", join="override",
        chunks={}, parallel=False)
