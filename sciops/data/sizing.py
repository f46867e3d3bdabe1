"""Up-front size estimates of a dataset generation, checked before any solving, and the
memory check every command uses (:func:`require_memory`).

:func:`estimate` gives (a) the peak memory of one batch and (b) the disk the whole dataset
needs; :func:`check` refuses a generation whose batch cannot fit the machine's available
memory (or ``max_memory``) or whose shards cannot fit the free space of the output folder.

The memory rule is generic (it works for plug-in PDEs too) and deliberately conservative:

* stored outputs of a batch: ``batch_size x`` the bytes of every stored variable, from its
  dims in ``pde.variables`` and the lengths of ``pde.coords(params)``, in ``params.dtype``
  (float32 when absent), counted :data:`OUTPUT_COPIES` times (the solver's list of records
  and the stacked array live together);
* solver working state: ``batch_size x`` :data:`WORKING_COPIES` copies of the solver grid
  ``N^d`` (``d`` spatial axes of the stored fields; ``N`` the largest of the stored axis
  length and the grid parameters ``resolution``, ``dns_resolution`` (with ``store_fdns``),
  ``n_grid``) at :func:`solver_itemsize` bytes a point (complex spectra: twice the storage
  precision, at least 8 bytes).

The stored variables are ``pde.stored_variables(params)`` (the PDE protocol); a PDE may
replace the working-state guess by defining ``working_bytes(params, batch_size)``.
"""

from __future__ import annotations

import math
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sciops import pdes
from sciops.data.recipes import Recipe
from sciops.errors import SciopsError

#: Copies of the solver grid held per sample while solving (state, Runge-Kutta stages,
#: nonlinear-term temporaries, FFT buffers, the batched inputs). A safety factor, measured
#: against ns2d/wave2d/heat2d runs (see tests/test_sizing.py).
WORKING_COPIES = 16
#: Copies of a batch's stored outputs alive at once (per-record list + stacked array).
OUTPUT_COPIES = 2

_AXES = ("x", "y", "z")
_GRID_PARAMS = ("resolution", "n_grid")

@dataclass(frozen=True)
class Estimate:
    sample_bytes: int       # stored bytes of one sample
    output_bytes: int       # stored bytes of one batch
    working_bytes: int      # solver working state of one batch
    batch_bytes: int        # estimated peak memory of one batch
    disk_bytes: int         # stored bytes of the samples still to write
    grid: tuple[int, int]   # (points per axis, spatial dims) of the solver grid


def human(n: float) -> str:
    """Bytes as ``~34 GB`` style text (decimal units)."""
    for unit in ("B", "kB", "MB", "GB", "TB", "PB", "EB"):
        if n < 1000 or unit == "EB":
            return f"{n:.0f} {unit}" if unit == "B" or n >= 10 else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError


def parse_bytes(text: str) -> int:
    """``"8G"``, ``"512M"``, ``"1.5GB"``, ``"2GiB"``, ``"1000000"`` -> bytes (K/M/G/T = 1024^k)."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kmgtp]?)(i?b)?\s*", str(text), re.IGNORECASE)
    if not m or (m.group(3) and not m.group(2) and m.group(3).lower() != "b"):
        raise SciopsError(f"--max-memory {text!r}: expected a size like 8G, 512M or 1.5T")
    power = "kmgtp".find(m.group(2).lower()) + 1 if m.group(2) else 0
    value = float(m.group(1)) * 1024**power
    if value <= 0:
        raise SciopsError(f"--max-memory {text!r}: must be > 0")
    return int(value)


def available_memory() -> int | None:
    """Bytes of memory available to new allocations: MemAvailable, else free pages."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _itemsize(params: pdes.Params) -> int:
    try:
        return np.dtype(getattr(params, "dtype", "float32")).itemsize
    except TypeError:
        return 4


def solver_itemsize(params: pdes.Params) -> int:
    """Bytes per solver grid point: complex spectra of the storage precision, >= 8."""
    return max(8, 2 * _itemsize(params))


def _grid(pde: pdes.PDE, params: pdes.Params, lengths: dict[str, int],
          names: list[str]) -> tuple[int, int]:
    dims = max((sum(d in _AXES for d in pde.variables[v].dims) for v in names), default=0)
    n = max((lengths.get(a, 1) for a in _AXES), default=1)
    for key in _GRID_PARAMS:
        value = getattr(params, key, None)
        if isinstance(value, int) and not isinstance(value, bool):
            n = max(n, value)
    if getattr(params, "store_fdns", False) and isinstance(getattr(params, "dns_resolution",
                                                                   None), int):
        n = max(n, params.dns_resolution)
    if not dims and getattr(params, "n_grid", None):
        dims = 2
    return n, dims


def estimate(recipe: Recipe, samples: int | None = None) -> Estimate:
    """Sizes of ``recipe``'s generation; ``samples`` still to write (default: all)."""
    pde = pdes.get(recipe.pde)
    params = recipe.params
    lengths = {dim: len(values) for dim, values in pde.coords(params).values()}
    item = _itemsize(params)
    names = pde.stored_variables(params)
    sample = 0
    for v in names:
        sample += item * math.prod(lengths.get(d, 1) for d in pde.variables[v].dims
                                   if d != "sample")
    batch = recipe.batch_size
    n, d = _grid(pde, params, lengths, names)
    hook = getattr(pde, "working_bytes", None)
    if callable(hook):
        working = int(hook(params, batch))
    else:
        working = batch * WORKING_COPIES * n**d * solver_itemsize(params)
    output = batch * sample
    todo = recipe.samples if samples is None else samples
    return Estimate(sample, output, working, OUTPUT_COPIES * output + working,
                    todo * sample, (n, d))


def require_memory(need: int, what: str, advice: str, max_memory: int | str | None = None,
                   *, because: str = "") -> None:
    """Refuse (SciopsError) ``need`` bytes above the available memory, or ``max_memory``
    (bytes or text like ``"8G"``): ``"<what> ~<need> of memory (<because>), <limit>;
    <advice>"``."""
    if isinstance(max_memory, str):
        max_memory = parse_bytes(max_memory)
    limit = max_memory if max_memory is not None else available_memory()
    if limit is not None and need > limit:
        have = (f"--max-memory is {human(limit)}" if max_memory is not None
                else f"the machine has {human(limit)} available")
        why = f" ({because})" if because else ""
        raise SciopsError(f"{what} ~{human(need)} of memory{why}, {have}; {advice}")


def _drivers(recipe: Recipe, names: tuple[str, ...]) -> str:
    values = recipe.params.to_dict()
    shown = [f"{k}={values[k]}" for k in names if k in values and values[k] is not None]
    return ", ".join(shown)


def _free_space(out: Path) -> int | None:
    p = out.absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        return shutil.disk_usage(p).free
    except OSError:
        return None


def check(recipe: Recipe, out: str | os.PathLike, *, samples: int | None = None,
          max_memory: int | str | None = None, existing_bytes: int = 0) -> Estimate:
    """Refuse (SciopsError) a generation whose batch exceeds the available memory (or
    ``max_memory``) or whose ``samples`` still to write exceed the free disk space of
    ``out`` (plus ``existing_bytes`` that will be replaced). Returns the estimate."""
    est = estimate(recipe, samples)
    n, d = est.grid
    grid_keys = tuple(k for k in ("resolution", "dns_resolution", "n_grid")
                      if getattr(recipe.params, k, None) == n)
    field_keys = ("output_resolution", "resolution", "n_records", "n_particles", "modes")
    if est.working_bytes >= est.output_bytes * OUTPUT_COPIES:
        driving = grid_keys + ("batch_size",)
        advice = f"lower {' or '.join(driving)}"
    else:
        lengths = {len(v) for _, v in pdes.get(recipe.pde).coords(recipe.params).values()}
        driving = tuple(k for k in field_keys if k == "n_records" or (
            getattr(recipe.params, k, None) in lengths and k != "modes")) + ("batch_size",)
        advice = f"lower {' or '.join(k for k in driving if k != 'modes')}"
    values = _drivers(recipe, tuple(k for k in driving if k != "batch_size"))
    require_memory(est.batch_bytes, f"{recipe.name}: one batch needs", advice, max_memory,
                   because=f"{values}, batch_size={recipe.batch_size}")
    free = _free_space(Path(out))
    if free is not None and est.disk_bytes > free + existing_bytes:
        stored = tuple(k for k in field_keys if hasattr(recipe.params, k) and k != "modes")
        count = est.disk_bytes // max(1, est.sample_bytes)
        raise SciopsError(
            f"{recipe.name}: the dataset needs ~{human(est.disk_bytes)} of disk ({count} "
            f"samples x {human(est.sample_bytes)}; {_drivers(recipe, stored)}), {Path(out)} "
            f"has {human(free)} free; lower --samples or {' or '.join(stored)}")
    return est
