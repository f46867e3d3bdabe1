"""What a run was trained on, and whether a dataset to predict or evaluate matches it.

At the start of training the run directory gets ``provenance.json``: the training dataset's
path, PDE, parameters, seed and grid sizes (from its manifest and coordinates). ``predict``
and ``evaluate`` compare a dataset with it before using the run:

* another PDE: refused (the surrogate maps other fields);
* the same PDE with other physical parameters (viscosity, horizon, forcing, ...): one
  warning line naming each parameter with both values;
* only the grid differs (``resolution``-type parameters and the x/y/z sizes): accepted
  silently, as the zero-shot resolution change neural operators are evaluated on.

Peers' files carry no manifest: only their path is recorded and nothing is compared.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from sciops import atomic
from sciops.data import open_dataset
from sciops.data.store import MANIFEST, read_manifest
from sciops.errors import SciopsError

FILE = "provenance.json"
#: Parameters that only set the grid: changing them is a resolution change, not new physics.
GRID_PARAMS = ("resolution", "output_resolution", "n_grid", "dns_resolution", "dtype")


def describe(dataset: str | Path) -> dict[str, Any]:
    """``{"path", "pde", "recipe", "seed", "params", "grid"}`` of a dataset (all but ``path``
    empty for a peer's file); ``grid``: sizes of the x/y/z dims, e.g. ``{"x": 64, "y": 64}``."""
    path = Path(dataset)
    recipe = _recipe(path)
    info: dict[str, Any] = {"path": str(path.resolve()), "pde": None, "recipe": None,
                            "seed": None, "params": None, "grid": {}}
    if recipe is not None:
        sizes = open_dataset(path, allow_partial=True, check=False).sizes
        info.update(pde=recipe.get("pde"), recipe=recipe.get("name"), seed=recipe.get("seed"),
                    params=recipe.get("params"),
                    grid={d: int(n) for d, n in sizes.items() if d in ("x", "y", "z")})
    return info


def _recipe(path: Path) -> dict[str, Any] | None:
    """The recipe in the manifest of dataset ``path``; None for a peer's file."""
    return read_manifest(path)["recipe"] if (path / MANIFEST).is_file() else None


def record(run_dir: Path, dataset: str | Path) -> None:
    """Write ``run_dir/provenance.json`` for the training ``dataset``."""
    atomic.write_json(Path(run_dir) / FILE, describe(dataset),
                      then="free space and rerun the same command")


def check(run_dir: Path, dataset: str | Path) -> list[str]:
    """Compare ``dataset`` with what ``run_dir`` was trained on: a SciopsError for another
    PDE; warning lines (also printed on stderr) for other physical parameters; nothing for a
    grid change or when either side does not say (runs trained before provenance existed,
    peers' files)."""
    path = Path(run_dir) / FILE
    if not path.is_file():
        return []
    trained = json.loads(path.read_text())
    now = _recipe(Path(dataset))
    if trained["pde"] is None or now is None:
        return []
    run = Path(run_dir).name
    if trained["pde"] != now.get("pde"):
        raise SciopsError(f"run {run} was trained on {trained['pde']} data "
                          f"({trained['path']}); {dataset} holds {now.get('pde')} data")
    was, new = trained["params"] or {}, now.get("params") or {}
    differ = [f"{k}={new.get(k)!r} (trained on {was.get(k)!r})"
              for k in sorted(set(was) | set(new))
              if k not in GRID_PARAMS and was.get(k) != new.get(k)]
    warnings = []
    if differ:
        warnings.append(f"sciops: warning: run {run} was trained on {trained['pde']} with other "
                        f"parameters than {dataset}: {', '.join(differ)}")
    for w in warnings:
        print(w, file=sys.stderr)
    return warnings
