"""Sharded, deterministic, resumable dataset generation.

Determinism: sample ``k`` draws its inputs from a generator seeded by ``(seed, k)`` only,
on the CPU. Samples are solved in batches fixed by global index
(``[b * batch_size, (b+1) * batch_size)``) and shards are whole batches, so the arrays do
not depend on how many processes share the work. Process ``i`` of ``n`` (``--shard i/n``,
or a torchrun rank) writes shards ``j`` with ``j % n == i``; the last process to finish
records the shard hashes in the manifest.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from sciops import __version__, atomic, pdes
from sciops.data import sizing, store
from sciops.data.recipes import Recipe
from sciops.errors import SciopsError, check_terminated


def sample_generator(seed: int, k: int) -> torch.Generator:
    """CPU generator for sample ``k`` of a dataset seeded ``seed``; independent streams."""
    state = np.random.SeedSequence([seed, k]).generate_state(1, np.uint64)[0]
    return torch.Generator().manual_seed(int(state >> np.uint64(1)))


def parse_shard(text: str | None) -> tuple[int, int]:
    """``"i/n"`` -> (i, n); None -> the torchrun rank / world size, or (0, 1)."""
    if text is None:
        return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    try:
        i, n = (int(p) for p in text.split("/"))
    except ValueError:
        raise SciopsError(f"--shard {text}: expected i/n, e.g. 0/4") from None
    if n < 1 or not 0 <= i < n:
        raise SciopsError(f"--shard {text}: index must be in 0..{n - 1} for n={n}" if n >= 1
                          else f"--shard {text}: n must be >= 1")
    return i, n


def pick_device(name: str | None = None) -> torch.device:
    """The device to run on: ``name`` if given and usable, else CUDA when present, else CPU."""
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise SciopsError(f"--device {name!r}: not a device name; use cpu, cuda or cuda:N"
                          ) from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SciopsError(f"--device {name}: CUDA is not available on this machine")
    return dev


@dataclass
class GenerationReport:
    out: Path
    shards_written: int
    shards_skipped: int
    samples_written: int
    seconds: float
    complete: bool


def _plan(recipe: Recipe) -> dict:
    return json.loads(json.dumps(recipe.to_dict()))


def _prepare(out: Path, recipe: Recipe, overwrite: bool) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise SciopsError(f"--out {out}: cannot write there ({e.strerror or e})") from None
    manifest_path = out / store.MANIFEST
    if manifest_path.exists():
        try:
            old = store.read_manifest(out)
            same = old["recipe"] == _plan(recipe)
        except (SciopsError, KeyError):
            old, same = None, False
        if not same and not overwrite:
            if old is None:
                raise SciopsError(f"--out {out}: holds an unreadable manifest; pass --overwrite")
            if _extends(old["recipe"], _plan(recipe)):
                _extend(out, old, recipe)
                return
            diff = sorted(k for k in set(old["recipe"]) | set(_plan(recipe))
                          if old["recipe"].get(k) != _plan(recipe).get(k))
            raise SciopsError(
                f"--out {out}: holds dataset {old['recipe'].get('name')!r} with different "
                f"{', '.join(diff)}; pass --overwrite to replace it or choose another --out")
        if same and not overwrite:
            return
    elif any(out.iterdir()) and not overwrite:
        raise SciopsError(f"--out {out}: directory is not empty and holds no sciops dataset; "
                          f"pass --overwrite or choose another --out")
    if overwrite:
        for child in out.iterdir():
            shutil.rmtree(child) if child.is_dir() else child.unlink()
    recipe_plan = _plan(recipe)
    store.write_json_atomic(manifest_path, {
        "format": store.FORMAT, "recipe": recipe_plan, "pde": recipe.pde,
        "pde_source": _source(pdes.get(recipe.pde)), "sciops_version": __version__,
        "n_shards": recipe.n_shards, "complete": False, "shards": {}})


def _extends(old: dict, new: dict) -> bool:
    """Whether recipe plan ``new`` only adds samples to ``old`` (same seed, parameters and
    shard layout): sample ``k`` depends on ``(seed, k)`` alone, so the data already written
    stay valid."""
    return (new["samples"] > old["samples"]
            and {**old, "samples": new["samples"]} == new)


def _extend(out: Path, manifest: dict, recipe: Recipe) -> None:
    """Grow the dataset in ``out`` to ``recipe.samples``: keep the complete shards, drop the
    old last shard if it was partial (it is regenerated whole), record the new plan."""
    per, old_n = recipe.samples_per_shard, manifest["recipe"]["samples"]
    if old_n % per:
        last = out / store.shard_name(old_n // per)
        last.unlink(missing_ok=True)
        last.with_suffix(".json").unlink(missing_ok=True)
    shards = {k: v for k, v in manifest["shards"].items() if (out / k).is_file()}
    store.write_json_atomic(out / store.MANIFEST, {
        **manifest, "recipe": _plan(recipe), "n_shards": recipe.n_shards, "complete": False,
        "shards": shards})


def _source(pde: pdes.PDE) -> dict[str, str | None]:
    """Which installed package defines ``pde`` (a plug-in or sciops), with its version."""
    module = type(pde).__module__
    top = module.split(".")[0]
    package = (metadata.packages_distributions().get(top) or [top])[0]
    try:
        version = metadata.version(package)
    except metadata.PackageNotFoundError:
        version = None
    return {"package": package, "version": version,
            "class": f"{module}.{type(pde).__qualname__}"}


def generate(recipe: Recipe, out: str | os.PathLike, *, shard: tuple[int, int] = (0, 1),
             device: str | torch.device | None = "cpu", overwrite: bool = False,
             progress: bool = True, max_memory: int | str | None = None) -> GenerationReport:
    """Generate (or resume) this process's share of the dataset ``recipe`` into ``out``.

    Before anything is solved or written, the peak memory of one batch and the disk this
    process's shards need are estimated (:mod:`sciops.data.sizing`) and the run is refused
    if they exceed the available memory (or ``max_memory``, bytes or text like ``"8G"``)
    or the free space of ``out``."""
    import time

    out = Path(out)
    i, n = shard
    dev = device if isinstance(device, torch.device) else pick_device(device)
    _check_sizes(recipe, out, shard, overwrite, max_memory)
    _prepare(out, recipe, overwrite if i == 0 else False)
    atomic.remove_stale(out, names=lambda name: _owned(name, shard))
    pde = pdes.get(recipe.pde)
    params = recipe.params
    coords = pde.coords(params)
    attrs = {k: v for k, v in params.to_dict().items()}
    attrs.update({"recipe": recipe.name, "pde": recipe.pde, "seed": recipe.seed,
                  "sciops_version": __version__,
                  "params_json": json.dumps(params.to_dict(), sort_keys=True)})
    variables = {name: (var.dims, {"units": var.units, "long_name": var.long_name})
                 for name, var in pde.variables.items()}

    mine = [j for j in range(recipe.n_shards) if j % n == i]
    todo = [j for j in mine if store.shard_record(out, j) is None]
    total = sum(_shard_range(recipe, j)[1] - _shard_range(recipe, j)[0] for j in todo)
    t0 = time.perf_counter()
    bar = tqdm(total=total, unit="sample", disable=not progress, dynamic_ncols=True,
               desc=f"{recipe.name} [{i}/{n}]", bar_format=None)
    written = 0
    try:
        for j in todo:
            lo, hi = _shard_range(recipe, j)
            writer = store.ShardWriter(out / store.shard_name(j), hi - lo, lo, coords,
                                       variables, attrs)
            try:
                for b0 in range(lo, hi, recipe.batch_size):
                    check_terminated()
                    b1 = min(b0 + recipe.batch_size, hi)
                    arrays = _solve_batch(pde, recipe, b0, b1, dev, bar)
                    writer.write(b0 - lo, arrays)
                    written += b1 - b0
            except BaseException as e:
                writer.abort()
                if atomic.is_disk_full(e):
                    raise atomic.disk_full_error(writer.path, store.RESUME) from None
                raise
            writer.commit((lo, hi))
    finally:
        bar.close()
    complete = store.finalize(out)
    return GenerationReport(out, len(todo), len(mine) - len(todo), written,
                            time.perf_counter() - t0, complete)


def _check_sizes(recipe: Recipe, out: Path, shard: tuple[int, int], overwrite: bool,
                 max_memory: int | str | None) -> sizing.Estimate:
    """Refuse up front a batch too big for memory or shards too big for the disk."""
    i, n = shard
    resumable = not overwrite and (out / store.MANIFEST).is_file()
    todo, existing = 0, 0
    for j in range(i, recipe.n_shards, n):
        lo, hi = _shard_range(recipe, j)
        try:
            done = resumable and store.shard_record(out, j) is not None
        except SciopsError:
            done = False
        todo += 0 if done else hi - lo
    if overwrite and out.is_dir():
        existing = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    return sizing.check(recipe, out, samples=todo, max_memory=max_memory,
                        existing_bytes=existing)


def _owned(name: str, shard: tuple[int, int]) -> bool:
    """Whether process ``shard = (i, n)`` owns file ``name``: its own shards and sidecars;
    the manifest only when it works alone (others may be writing it right now)."""
    i, n = shard
    m = re.fullmatch(r"shard-(\d+)\.(nc|json)", name)
    return int(m[1]) % n == i if m else n == 1


def _shard_range(recipe: Recipe, j: int) -> tuple[int, int]:
    lo = j * recipe.samples_per_shard
    return lo, min(lo + recipe.samples_per_shard, recipe.samples)


def _solve_batch(pde: pdes.PDE, recipe: Recipe, b0: int, b1: int, device: torch.device,
                 bar: tqdm) -> dict[str, np.ndarray]:
    per_sample = [pde.sample_inputs(recipe.params, 1, sample_generator(recipe.seed, k))
                  for k in range(b0, b1)]
    inputs = {key: torch.cat([s[key] for s in per_sample]).to(device) for key in per_sample[0]}
    start = bar.n
    size = b1 - b0

    def advance(frac: float) -> None:
        bar.n = start + frac * size
        bar.refresh()

    try:
        outputs = pde.solve(recipe.params, inputs, callback=advance)
    except pdes.SolverDiverged as e:
        ids = [b0 + s for s in e.samples] or list(range(b0, b1))
        raise SciopsError(f"{recipe.name}: sample(s) {ids} diverged: {e}") from None
    except (OverflowError, FloatingPointError, ZeroDivisionError) as e:
        raise SciopsError(f"{recipe.name}: sample(s) {b0}..{b1 - 1}: numerical failure in "
                          f"the {recipe.pde} solver ({type(e).__name__}: {e}); check the "
                          f"parameters' magnitudes") from None
    bar.n = start + size
    bar.refresh()
    arrays = {k: v.detach().cpu().numpy() for k, v in outputs.items()}
    check_finite(recipe.name, arrays, b0)
    return arrays


def check_finite(name: str, arrays: dict[str, np.ndarray], first: int = 0) -> None:
    """Refuse solver output holding NaN or Inf before anything is written: a SciopsError
    naming the recipe, the first such variable and the global indices of its bad samples
    (``first`` is the global index of row 0). Applies to every PDE, plug-ins included."""
    for key, a in arrays.items():
        if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.complexfloating)):
            continue
        finite = np.isfinite(a).reshape(len(a), -1).all(axis=1) if a.ndim else np.isfinite(a)
        if not np.all(finite):
            ids = (first + np.flatnonzero(~finite)).tolist() if a.ndim else [first]
            shown = ids if len(ids) <= 20 else ids[:20] + ["..."]
            raise SciopsError(
                f"{name}: solver output {key!r} is non-finite (NaN/Inf) for sample(s) "
                f"{shown}; nothing of this shard was written and the dataset is not complete "
                f"- check the PDE parameters (or reduce dt)")
