"""Torch access to stored datasets: one sample at a time, read lazily from the shards."""

from __future__ import annotations

import bisect
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import h5py
import numpy as np
import torch
import xarray as xr
from torch.utils.data import Dataset

from sciops.data import store
from sciops.errors import SciopsError


def _resolve(path: Path, wanted: list[str], stored: list[str],
             aliases: Mapping[str, str] | None, file_names: Mapping[str, str] | None = None
             ) -> dict[str, str]:
    """``{name asked for: stored variable}``. A name is looked up through ``aliases`` (a
    recipe's ``data.variables``: name -> variable in the file), then among the stored
    variables, then among the peer file's own names (``file_names``: its name -> stored)."""
    aliases, file_names = aliases or {}, file_names or {}
    out, missing = {}, []
    for name in wanted:
        source = aliases.get(name, name)
        if source in stored:
            out[name] = source
        elif source in file_names:
            out[name] = file_names[source]
        else:
            missing.append(name if source == name else f"{name} (= {source})")
    if missing:
        known = sorted({*stored, *file_names})
        raise SciopsError(f"{path}: no variable(s) {missing}; stored: {known}")
    return out


class ShardedSamples(Dataset):
    """``dataset[k]`` -> ``{name: tensor}`` for sample ``k`` of a dataset directory.

    Only the requested sample is read (per-sample HDF5 chunks), so memory does not grow
    with the dataset. Files are opened lazily per process, which keeps it safe to use in
    ``DataLoader`` workers. ``variables`` defaults to every variable with a ``sample`` dim.
    """

    def __init__(self, path: str | os.PathLike, variables: Sequence[str] | None = None,
                 dtype: torch.dtype | None = torch.float32,
                 aliases: Mapping[str, str] | None = None):
        self.root = Path(path)
        # hash-checked against the manifest (cached per process), ordered by its sample ranges
        shards = store.shards(self.root)
        self.paths = [s.path for s in shards]
        self.starts = [s.start for s in shards]
        self.sizes = [s.stop - s.start for s in shards]
        for s in shards:
            with self._open(s.path) as f:
                if "sample" not in f:
                    raise store.unreadable(s.path, KeyError("no 'sample' coordinate"))
                store._check_samples(s.path, {"samples": [s.start, s.stop]}, f["sample"][()])
                if s.path == self.paths[0]:
                    stored = [k for k, v in f.items()
                              if isinstance(v, h5py.Dataset) and v.ndim > 1 and k != "sample"]
        self.variables = list(variables) if variables is not None else stored
        self.sources = _resolve(self.root, self.variables, stored, aliases)
        try:
            with xr.open_dataset(self.paths[0], engine="h5netcdf") as ds:
                self.dims = {n: ds[s].dims for n, s in self.sources.items()}
        except (OSError, ValueError, KeyError) as e:
            raise store.unreadable(self.paths[0], e) from None
        self.dtype = dtype
        self._files: dict[int, h5py.File] = {}

    @staticmethod
    def _open(path: Path) -> h5py.File:
        try:
            return h5py.File(path, "r")
        except (OSError, ValueError) as e:
            raise store.unreadable(path, e) from None

    def __len__(self) -> int:
        return sum(self.sizes)

    def _file(self, j: int) -> h5py.File:
        if j not in self._files:
            self._files[j] = self._open(self.paths[j])
        return self._files[j]

    def __getitem__(self, k: int) -> dict[str, torch.Tensor]:
        if not -len(self) <= k < len(self):
            raise IndexError(f"sample {k} out of range for {len(self)} samples")
        k %= len(self)
        offsets = np.cumsum([0, *self.sizes])
        j = bisect.bisect_right(offsets, k) - 1
        f = self._file(j)
        out = {}
        for name, source in self.sources.items():
            t = torch.from_numpy(np.asarray(f[source][k - offsets[j]]))
            out[name] = t.to(self.dtype) if self.dtype is not None else t
        return out

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_files"] = {}
        return state


class XarraySamples(Dataset):
    """``dataset[k]`` for any lazy xarray Dataset with a ``sample`` dim (peers' files)."""

    def __init__(self, ds: xr.Dataset, path: Path, variables: Sequence[str] | None = None,
                 dtype: torch.dtype | None = torch.float32,
                 aliases: Mapping[str, str] | None = None):
        stored = [k for k, v in ds.data_vars.items() if "sample" in v.dims]
        file_names = {ds[k].attrs["file_name"]: k for k in stored if "file_name" in ds[k].attrs}
        self.variables = list(variables) if variables is not None else stored
        sources = _resolve(path, self.variables, stored, aliases, file_names)
        self.ds = ds[list(dict.fromkeys(sources.values()))].transpose("sample", ...)
        self.sources = sources
        self.dims = {n: self.ds[s].dims for n, s in sources.items()}
        self.dtype = dtype

    def __len__(self) -> int:
        return self.ds.sizes["sample"]

    def __getitem__(self, k: int) -> dict[str, torch.Tensor]:
        if not -len(self) <= k < len(self):
            raise IndexError(f"sample {k} out of range for {len(self)} samples")
        out = {}
        for name, source in self.sources.items():
            t = torch.from_numpy(np.ascontiguousarray(self.ds[source][k].values))
            out[name] = t.to(self.dtype) if self.dtype is not None else t
        return out


def open_samples(path: str | os.PathLike, variables: Sequence[str] | None = None,
                 dtype: torch.dtype | None = torch.float32,
                 aliases: Mapping[str, str] | None = None) -> ShardedSamples | XarraySamples:
    """Per-sample torch access to a sciops dataset directory or a peer's file; samples are
    keyed by the names asked for, read from ``aliases[name]`` where the mapping has one."""
    p = Path(path)
    if p.is_dir():
        return ShardedSamples(p, variables, dtype, aliases)
    return XarraySamples(store.open_dataset(p), p, variables, dtype, aliases)
