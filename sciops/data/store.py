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

Reading checks integrity: every shard's sha256 is compared with the manifest (or, while the
dataset is still being generated, with its sidecar) when a dataset is opened, once per shard
per process (cached by path, size, mtime and inode), and shards are ordered by the sample
ranges the manifest records, each checked against the shard's own ``sample`` coordinate.
Any mismatch is a one-line :class:`SciopsError` naming the file and how to regenerate it.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import h5netcdf
import h5py
import numpy as np
import xarray as xr

from sciops import atomic
from sciops.errors import SciopsError

FORMAT = "sciops-dataset/1"
MANIFEST = "manifest.json"


def shard_name(j: int) -> str:
    return f"shard-{j:05d}.nc"


def _sidecar(path: Path) -> Path:
    return path.with_suffix(".json")


RESUME = "free space and rerun the same command: complete shards are kept"


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to ``path`` through a temporary file and an atomic rename."""
    atomic.write_json(path, data, then=RESUME)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# Hash cache. A shard's sha256 is trusted without re-reading it while its (size, mtime, ctime,
# inode) are those it had when hashed: in this process (``_HASHES``) and across processes
# (``.verified.json`` beside the manifest, best effort). Any write, truncation, rename, swap or
# copy changes one of them (ctime cannot be set back by users). File times are coarse (one
# kernel tick), so a hash is only cached if the file last changed > RACY_NS before hashing
# began; otherwise a write in the same tick could keep the times. ``sciops info --verify``
# always re-hashes everything (e.g. for bit rot underneath the file system).
STAMPS = ".verified.json"
RACY_NS = 500_000_000
_HASHES: dict[tuple, str] = {}


def _stat_key(path: Path) -> tuple:
    st = path.stat()
    return str(path.resolve()), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino


def _hash_now(path: Path) -> tuple[tuple, str]:
    """(stat key, sha256); the key is only cacheable if the file changed long enough ago."""
    t0 = time.time_ns()
    key = _stat_key(path)
    digest = sha256(path)
    if max(key[2], key[3]) < t0 - RACY_NS and _stat_key(path) == key:
        _HASHES[key] = digest
        return key, digest
    return (), digest


def cached_sha256(path: Path, *, fresh: bool = False) -> str:
    """sha256 of ``path``, hashed once per process while the file is unchanged
    (``fresh``: always re-hash)."""
    key = _stat_key(path)
    if fresh or key not in _HASHES:
        return _hash_now(path)[1]
    return _HASHES[key]


def clear_hash_cache() -> None:
    _HASHES.clear()


_REGENERATE = "rerun the same `sciops generate` command, which regenerates missing shards"


def _redo(name: str) -> str:
    return f"delete {name} and {_REGENERATE}"


def _check_record(rec: Any, where: str) -> dict[str, Any]:
    """A shard record ``{"sha256": hex, "samples": [lo, hi]}``, or a SciopsError."""
    ok = (isinstance(rec, dict) and isinstance(rec.get("sha256"), str)
          and len(rec["sha256"]) == 64 and isinstance(rec.get("samples"), list)
          and len(rec["samples"]) == 2
          and all(isinstance(v, int) and not isinstance(v, bool) for v in rec["samples"])
          and 0 <= rec["samples"][0] < rec["samples"][1])
    if not ok:
        raise SciopsError(f"{where}: malformed shard record {json.dumps(rec)[:80]}; expected "
                          f'{{"sha256": <64 hex digits>, "samples": [start, stop]}}')
    return rec


def _attr(value: Any) -> Any:
    """netCDF attributes cannot hold None or bool: store 'none' and 0/1."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (tuple, list)):
        return np.asarray(value)
    return value


#: HDF5 files whose close failed (a full disk). HDF5 crashes the interpreter when it later
#: frees them (it retries the failed writes), so they are kept alive here and the CLI ends
#: the process with ``os._exit`` once its one-line error is printed (their temporary files
#: are already deleted; nothing else is pending).
UNCLOSABLE: list[h5netcdf.File] = []


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
        self.tmp = atomic.tmp_path(path)
        self.n = n_samples
        self.variables = variables
        # netCDF marks coordinates that are not dimensions (t on dim time) by attribute.
        self.aux_coords = " ".join(k for k, (dim, _) in coords.items() if k != dim)
        with atomic.signals_deferred():
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
            with atomic.quiet_disk_full():
                self.file.variables[name][start:start + arr.shape[0]] = arr

    def commit(self, sample_range: tuple[int, int]) -> dict[str, Any]:
        """Close, hash, write the sidecar, then rename into place. Returns the record.

        On failure nothing is published (the sidecar is written last but one, and a sidecar
        without its shard counts as absent); a full disk raises a one-line SciopsError."""
        try:
            self._close()
            record = {"sha256": sha256(self.tmp), "samples": list(sample_range)}
            write_json_atomic(_sidecar(self.path), record)
            os.replace(self.tmp, self.path)
        except BaseException as e:
            self.abort()
            if atomic.is_disk_full(e):
                raise atomic.disk_full_error(self.path, RESUME) from None
            raise
        return record

    def _close(self) -> None:
        # Closed at most once: a second close after a failed one (disk full) makes HDF5
        # flush a broken file and crash the interpreter; such a file is kept in UNCLOSABLE.
        file, self.file = self.file, None
        if file is not None:
            try:
                with atomic.quiet_disk_full(), atomic.signals_deferred():
                    file.close()
            except BaseException:
                UNCLOSABLE.append(file)
                raise

    def abort(self) -> None:
        """Drop the temporary file; never raises (it runs while another error unwinds)."""
        try:
            self._close()
        except Exception:  # noqa: BLE001 - closing a file that failed to write may fail too
            pass
        self.tmp.unlink(missing_ok=True)


def read_manifest(root: Path) -> dict[str, Any]:
    path = Path(root) / MANIFEST
    if not path.is_file():
        raise SciopsError(f"{root}: not a sciops dataset (no {MANIFEST})")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise SciopsError(f"{path}: corrupted manifest ({e})") from None
    except OSError as e:
        raise SciopsError(f"{path}: cannot read ({e.strerror or e})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise SciopsError(f"{path}: unknown format {found!r}; expected {FORMAT}")
    damaged = (f"the manifest is damaged; regenerate the dataset (`sciops generate` with "
               f"--overwrite) or restore {MANIFEST} from a copy")
    for key, kind in (("recipe", dict), ("n_shards", int)):
        if key not in data:
            raise SciopsError(f"{path}: missing {key!r}; {damaged}")
        if not isinstance(data[key], kind) or isinstance(data[key], bool):
            raise SciopsError(f"{path}: {key!r} is {data[key]!r}, not a {kind.__name__}; "
                              f"{damaged}")
    if data["n_shards"] < 1:
        raise SciopsError(f"{path}: n_shards = {data['n_shards']}; {damaged}")
    shards = data.setdefault("shards", {})
    if not isinstance(shards, dict):
        raise SciopsError(f"{path}: 'shards' is not a mapping; {damaged}")
    for name, rec in shards.items():
        _check_record(rec, f"{path}: {name}")
    if data.get("complete"):
        names = {shard_name(j) for j in range(data["n_shards"])}
        if set(shards) != names:
            odd = sorted(set(shards) ^ names)
            raise SciopsError(f"{path}: complete but its shard list does not match "
                              f"n_shards = {data['n_shards']} ({', '.join(odd[:3])}); {damaged}")
    return data


def shard_record(root: Path, j: int) -> dict[str, Any] | None:
    """The sidecar record of shard ``j`` if the shard is complete, else None."""
    path = Path(root) / shard_name(j)
    side = _sidecar(path)
    if not (path.is_file() and side.is_file()):
        return None
    try:
        rec = json.loads(side.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError, OSError) as e:
        raise SciopsError(f"{side}: unreadable shard record ({e}); delete {path.name} and "
                          f"{side.name} and {_REGENERATE}") from None
    return _check_record(rec, str(side))


def _expected_range(manifest: dict[str, Any], j: int) -> tuple[int, int] | None:
    """Samples of shard ``j`` by the recipe (None if the recipe does not say)."""
    r = manifest["recipe"]
    per, total = r.get("samples_per_shard"), r.get("samples")
    if not (isinstance(per, int) and isinstance(total, int)):
        return None
    return j * per, min((j + 1) * per, total)


def finalize(root: Path) -> bool:
    """Record every shard's hash in the manifest once all shards exist; True if complete.

    Every shard is checked against its sidecar (and a manifest that is already complete
    against its own records), so a rerun of ``generate`` over an altered, truncated or swapped
    shard fails with the shard's name instead of calling the dataset complete.
    """
    root = Path(root)
    manifest = read_manifest(root)
    records = {}
    for j in range(manifest["n_shards"]):
        rec = shard_record(root, j)
        if rec is None:
            return False
        records[shard_name(j)] = rec
    for j, (name, rec) in enumerate(records.items()):
        where = f"{root / name}"
        expected = _expected_range(manifest, j)
        if expected is not None and tuple(rec["samples"]) != expected:
            raise SciopsError(f"{where}: its record says samples {rec['samples']} but shard "
                              f"{j} holds {list(expected)} (files renamed or swapped?); "
                              f"{_redo(name)}")
        old = manifest["shards"].get(name)
        if old is not None and old != rec:
            raise SciopsError(f"{where}: its sidecar disagrees with {MANIFEST} (files replaced "
                              f"or swapped?); {_redo(name)}")
    check_hashes(root, list(records.items()), "its sidecar")
    manifest["shards"] = records
    manifest["complete"] = True
    write_json_atomic(root / MANIFEST, manifest)
    return True


def verify(root: Path) -> list[str]:
    """Problems found by re-hashing every shard against the manifest (empty = intact).

    While the dataset is incomplete, the shards present are checked against their sidecars.
    """
    root = Path(root)
    manifest = read_manifest(root)
    problems = []
    if manifest.get("complete"):
        records = manifest["shards"]
    else:
        records = {}
        missing = []
        for j in range(manifest["n_shards"]):
            rec = shard_record(root, j)
            if rec is None:
                missing.append(shard_name(j))
            else:
                records[shard_name(j)] = rec
        problems.append(f"incomplete: {len(missing)} of {manifest['n_shards']} shards missing "
                        f"({', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''})")
    for name, rec in sorted(records.items()):
        path = root / name
        if not path.is_file():
            problems.append(f"{name}: missing")
        elif cached_sha256(path, fresh=True) != rec["sha256"]:
            problems.append(f"{name}: sha256 mismatch (file altered or corrupted)")
        else:
            try:
                _check_samples(path, rec, _sample_coordinate(path))
            except SciopsError as e:
                problems.append(str(e).replace(f"{path}: ", f"{name}: ", 1))
    return problems


class Shard(tuple):
    """``(path, start, stop)`` of one complete shard."""

    path = property(lambda self: self[0])
    start = property(lambda self: self[1])
    stop = property(lambda self: self[2])


def _check_hash(path: Path, rec: dict[str, Any], source: str) -> None:
    check_hashes(path.parent, [(path.name, rec)], source)


def _load_stamps(root: Path) -> dict[str, Any]:
    try:
        data = json.loads((root / STAMPS).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def check_hashes(root: Path, records: list[tuple[str, dict[str, Any]]], source: str) -> None:
    """Compare each shard's sha256 with its record; SciopsError naming the first mismatch.

    Shards unchanged since they last matched (this process, or any process that could write
    ``.verified.json``) are not re-read; the others are hashed in parallel threads.
    """
    stamps = _load_stamps(root)
    todo = []
    for name, rec in records:
        path = root / name
        if not path.is_file():
            raise SciopsError(f"{path}: missing; {_REGENERATE}")
        key = _stat_key(path)
        if _HASHES.get(key) == rec["sha256"]:
            continue
        stamp = stamps.get(name)
        if (isinstance(stamp, dict) and stamp.get("stat") == list(key[1:])
                and stamp.get("sha256") == rec["sha256"]):
            _HASHES[key] = rec["sha256"]
            continue
        todo.append((path, rec))
    if not todo:
        return
    workers = min(len(todo), os.cpu_count() or 1, 8)
    with ThreadPoolExecutor(workers) as pool:  # hashlib releases the GIL
        results = list(pool.map(lambda t: _hash_now(t[0]), todo))
    for (path, rec), (_, digest) in zip(todo, results):
        if digest != rec["sha256"]:
            raise SciopsError(f"{path}: sha256 does not match {source} (file altered, "
                              f"truncated, corrupted or swapped); {_redo(path.name)}")
    fresh = {path.name: {"stat": list(key[1:]), "sha256": digest}
             for (path, _), (key, digest) in zip(todo, results) if key}
    if fresh:
        try:
            write_json_atomic(root / STAMPS, {**_load_stamps(root), **fresh})
        except (OSError, SciopsError):
            pass  # read-only dataset or full disk: the in-process cache still applies


def _sample_coordinate(path: Path) -> np.ndarray:
    try:
        with h5py.File(path, "r") as f:
            return np.asarray(f["sample"][()])
    except (OSError, KeyError, ValueError) as e:
        raise unreadable(path, e) from None


def unreadable(path: Path, e: BaseException) -> SciopsError:
    """The one-line error for a shard that HDF5 / netCDF cannot read."""
    msg = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
    return SciopsError(f"{path}: unreadable shard ({msg}); {_redo(path.name)}")


def _check_samples(path: Path, rec: dict[str, Any], samples: np.ndarray) -> None:
    """The shard's own ``sample`` coordinate must be the range its record names."""
    lo, hi = rec["samples"]
    if samples.shape != (hi - lo,) or not np.array_equal(samples, np.arange(lo, hi)):
        got = f"{samples[0]}..{samples[-1]}" if samples.size else "none"
        raise SciopsError(f"{path}: holds samples {got} but the manifest says samples "
                          f"{lo}..{hi - 1} (files renamed or swapped?); {_redo(path.name)}")


def shards(root: Path, *, allow_partial: bool = False, check: bool = True) -> list[Shard]:
    """The complete shards in sample order (from the manifest's ranges, not file names).

    Error if incomplete unless ``allow_partial``. ``check``: compare each shard's sha256 with
    the manifest (sidecar while generating), cached per process; skip only for metadata.
    """
    root = Path(root)
    manifest = read_manifest(root)
    n = manifest["n_shards"]
    if manifest.get("complete"):
        source = MANIFEST
        records = dict(manifest["shards"])
    else:
        source = "its sidecar .json"
        records = {}
        for j in range(n):
            rec = shard_record(root, j)
            if rec is not None:
                records[shard_name(j)] = rec
    if not records or (len(records) < n and not allow_partial):
        raise SciopsError(
            f"{root}: {len(records)} of {n} shards complete; rerun "
            f"`sciops generate` with the same arguments to resume")
    ordered = sorted(records.items(), key=lambda kv: kv[1]["samples"][0])
    stop = 0
    for name, rec in ordered:
        lo = rec["samples"][0]
        if lo < stop or (manifest.get("complete") and lo != stop):
            raise SciopsError(f"{root / MANIFEST}: sample ranges of the shards overlap or leave "
                              f"a gap at {name} (samples {rec['samples']}); regenerate the "
                              f"dataset (`sciops generate` with --overwrite)")
        stop = rec["samples"][1]
    if check:
        check_hashes(root, ordered, source)
    return [Shard((root / name, *rec["samples"])) for name, rec in ordered]


def _record_of(path: Path) -> tuple[dict[str, Any], str] | None:
    """The record of a single shard file of a dataset directory (None if not in one)."""
    root = path.parent
    if not (root / MANIFEST).is_file():
        return None
    manifest = read_manifest(root)
    if manifest.get("complete") and path.name in manifest["shards"]:
        return manifest["shards"][path.name], MANIFEST
    for j in range(manifest["n_shards"]):
        if shard_name(j) == path.name:
            rec = shard_record(root, j)
            return (rec, "its sidecar .json") if rec is not None else None
    return None


def _open_shard(path: Path, rec: dict[str, Any] | None) -> xr.Dataset:
    try:
        ds = xr.open_dataset(path, engine="h5netcdf", chunks={})
    except (OSError, ValueError, KeyError) as e:
        raise unreadable(path, e) from None
    if rec is not None:
        _check_samples(path, rec, np.asarray(ds["sample"].values))
    return ds


def open_dataset(path: str | os.PathLike, *, allow_partial: bool = False,
                 check: bool = True) -> xr.Dataset:
    """One lazy ``xarray.Dataset`` over every shard of a dataset directory.

    Arrays are dask-backed: nothing is read until values are used. A single ``.nc`` shard
    is opened directly; peers' files (neuraloperator ``.pt``, PDEBench and The Well HDF5)
    through :mod:`sciops.data.interop`, with the same dim names. ``check`` (default): each
    shard's sha256 is compared with the manifest first (once per process, see :func:`shards`);
    a mismatch or an unreadable shard is a one-line :class:`SciopsError` naming the file.
    """
    path = Path(path)
    if not path.exists():
        raise SciopsError(f"{path}: no such dataset")
    if path.is_file() and path.suffix == ".nc":
        found = _record_of(path) if check else None
        if found is not None:
            _check_hash(path, *found)
        return _open_shard(path, found[0] if found else None)
    if path.is_file():
        from sciops.data.interop import open_foreign

        return open_foreign(path)
    parts = [_open_shard(s.path, {"samples": [s.start, s.stop]})
             for s in shards(path, allow_partial=allow_partial, check=check)]
    if len(parts) == 1:
        return parts[0]
    combined = xr.combine_nested(
        parts, concat_dim="sample", data_vars="minimal", coords="minimal",
        compat="override", join="override", combine_attrs="override")
    combined.set_close(lambda: [part.close() for part in parts])  # as open_mfdataset does
    return combined
