"""Dataset recipes: TOML files naming a PDE, its parameters, sample counts and seed.

A recipe file looks like::

    name = "ns2d-fno-nu1e-3"
    pde = "ns2d"
    description = "..."
    samples = 1200          # default sample count
    seed = 0
    samples_per_shard = 50  # a shard is the unit of resume and of parallel work
    batch_size = 10         # samples solved together; fixed so results never depend on sharding
    [params]
    nu = 1e-3

Named recipes are found in the folders of ``$SCIOPS_RECIPES`` (a list separated by
``os.pathsep``, each folder holding ``datasets/`` and ``solvers/``; earlier folders win),
then in the recipes shipped with the package (``sciops/recipes/``).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sciops import pdes
from sciops._toml import tomllib
from sciops.errors import SciopsError
from sciops.params import Params, param

_TOP_KEYS = {"name", "pde", "description", "samples", "seed", "samples_per_shard", "batch_size",
             "params"}


BUILTIN = Path(__file__).resolve().parents[1] / "recipes"


def recipe_dirs(kind: str = "datasets") -> list[Path]:
    """Folders searched for named recipes of ``kind`` (``datasets`` or ``solvers``), first wins:
    ``<folder>/<kind>`` for each folder of ``$SCIOPS_RECIPES``, then the package's own."""
    roots = [Path(r) for r in os.environ.get("SCIOPS_RECIPES", "").split(os.pathsep) if r]
    return [d for d in (r / kind for r in [*roots, BUILTIN]) if d.is_dir()]


def known_recipes(kind: str = "datasets") -> dict[str, Path]:
    """Recipe name -> file, for every ``*.toml`` in :func:`recipe_dirs`."""
    found: dict[str, Path] = {}
    for d in reversed(recipe_dirs(kind)):
        for f in sorted(d.glob("*.toml")):
            found[f.stem] = f
    return dict(sorted(found.items()))


def find_recipe_file(name_or_path: str, kind: str = "datasets") -> Path:
    """Resolve a recipe name or a path to its TOML file, or raise listing known names."""
    p = Path(name_or_path)
    if p.suffix == ".toml" or p.is_file():
        if not p.is_file():
            raise SciopsError(f"recipe file {p} does not exist")
        return p
    known = known_recipes(kind)
    if name_or_path not in known:
        raise SciopsError(f"unknown recipe {name_or_path!r}; known: {', '.join(known) or '(none)'}")
    return known[name_or_path]


@dataclass(frozen=True)
class Recipe(Params):
    """A dataset recipe with its PDE parameters already validated; a bad value raises
    SciopsError naming the recipe and the field."""

    name: str = param("", "the dataset's name (its folder): non-empty, no path separators")
    pde: str = param("", "the registered PDE (`sciops list pdes`)")
    params: Params | None = param(None, "the PDE's parameters (its own Params class)")
    samples: int = param(100, "samples to generate", range=(1, None))
    seed: int = param(0, "seed of the random inputs (sample i's stream is derived from it)",
                      range=(0, 2**63 - 1))
    samples_per_shard: int = param(50, "samples per netCDF shard (a multiple of batch_size)",
                                   range=(1, None))
    batch_size: int = param(10, "samples solved together", range=(1, None))
    description: str = param("", "what the data are (and where the setting comes from)")

    def __post_init__(self) -> None:
        try:
            super().__post_init__()
        except ValueError as e:
            where = f"recipe {self.name!r}" if isinstance(self.name, str) else "recipe"
            raise SciopsError(f"{where}: {e}") from None

    def validate(self) -> None:
        if (not self.name.strip() or self.name.strip() in (".", "..")
                or any(c in self.name for c in "/\\\0")):
            raise ValueError(f"name={self.name!r}: expected a non-empty name without path "
                             f"separators (it names the dataset folder)")
        if self.params is None:
            raise ValueError("params: the PDE's parameters are required")
        if self.samples_per_shard % self.batch_size:
            raise ValueError(f"samples_per_shard={self.samples_per_shard} must be a multiple "
                             f"of batch_size={self.batch_size}")

    @property
    def n_shards(self) -> int:
        return -(-self.samples // self.samples_per_shard)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "pde": self.pde, "description": self.description,
                "samples": self.samples, "seed": self.seed,
                "samples_per_shard": self.samples_per_shard, "batch_size": self.batch_size,
                "params": self.params.to_dict()}

    def with_changes(self, *, samples: int | None = None, seed: int | None = None,
                     overrides: dict[str, str] | None = None) -> Recipe:
        """A copy with sample count, seed and ``--set`` parameter overrides applied."""
        params = self.params
        if overrides:
            top = {k: v for k, v in overrides.items() if k in ("samples_per_shard", "batch_size")}
            rest = {k: v for k, v in overrides.items() if k not in top}
            params = _params(self.pde, {**params.to_dict(), **rest}, self.name)
            changes = {k: _int(k, v) for k, v in top.items()}
        else:
            changes = {}
        was, now = self.params.to_dict(), params.to_dict()
        changed = [f"{k}={now[k]} (recipe: {was[k]})" for k in now if now[k] != was[k]]
        if changed:  # the recipe's description no longer says what the data are
            changes["description"] = (f"{self.description} [Changed by --set: "
                                      f"{', '.join(changed)}.]")
        return dataclasses.replace(
            self, params=params, **changes,
            samples=self.samples if samples is None else samples,
            seed=self.seed if seed is None else seed)


def _int(key: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise SciopsError(f"{key}={value!r}: expected an integer") from None


def _params(pde_name: str, values: dict[str, Any], where: str) -> pdes.Params:
    if not isinstance(pde_name, str):
        raise SciopsError(f"{where}: pde={pde_name!r}: expected a PDE name "
                          f"(one of {', '.join(pdes.available())})")
    try:
        pde = pdes.get(pde_name)
    except KeyError as e:
        raise SciopsError(f"{where}: {e.args[0]}") from None
    if not isinstance(values, dict):
        raise SciopsError(f"{where}: params={values!r}: expected a table of parameter = value")
    try:
        return pde.make_params(values)
    except ValueError as e:
        raise SciopsError(f"{where}: {e}") from None


def load_recipe(name_or_path: str) -> Recipe:
    """Read and validate a dataset recipe by name (``datasets/NAME.toml``) or path."""
    path = find_recipe_file(name_or_path)
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise SciopsError(f"{path}: invalid TOML: {e}") from None
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise SciopsError(f"{path}: unknown key(s) {unknown}; allowed: {sorted(_TOP_KEYS)}")
    for key in ("name", "pde"):
        if key not in data:
            raise SciopsError(f"{path}: missing required key {key!r}")
    params = _params(data["pde"], data.get("params", {}), str(path))
    top = {k: data[k] for k in ("samples", "seed", "samples_per_shard", "batch_size",
                                "description") if k in data}
    return Recipe(name=data["name"], pde=data["pde"], params=params, **top)
