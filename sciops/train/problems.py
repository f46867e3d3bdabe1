"""Named problem instances for ``sciops solve --recipe NAME``: TOML files in ``problems/`` of
the recipe folders (``sciops/recipes/problems/``, and ``$SCIOPS_RECIPES``).

A problem recipe names a PDE, its parameters, a manufactured solution and solver options::

    name = "gp-hm-poisson1d-sin100"
    pde = "poisson1d"
    description = "..."
    exact = "sin(100*x)"        # optional: else the PDE's own random instance (seed 0)
    eval_points = 2001          # optional: --eval-points
    [params]                    # --set
    length = 6.283185307179586
    resolution = 400
    [options.gp-kron]           # --option, per method
    steps = 300
    [options.pinn]
    adam_steps = 2000

Values given on the command line win over the recipe's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sciops._toml import tomllib
from sciops.data.recipes import find_recipe_file
from sciops.errors import SciopsError
from sciops.params import Params, param

__all__ = ["ProblemRecipe", "load_problem"]

_KEYS = {"name", "pde", "description", "exact", "eval_points", "params", "options"}


def _text(value: Any) -> str:
    """A TOML value as the ``key=value`` text of ``--set``/``--option``."""
    return json.dumps(value) if isinstance(value, (list, dict)) else str(value)


@dataclass(frozen=True)
class ProblemRecipe(Params):
    """A problem recipe; ``params`` and ``options[method]`` as ``--set``/``--option`` text."""

    name: str = param("", "the problem's name")
    pde: str = param("", "the registered PDE (`sciops list pdes`)")
    description: str = param("", "what is solved and where the setting comes from")
    exact: str | None = param(None, "a closed-form solution (--exact), else the PDE's own "
                              "random instance (seed 0)")
    eval_points: int | None = param(None, "points per axis of the error grid (--eval-points)",
                                    range=(2, None))
    params: dict[str, str] = param({}, "the PDE's parameters (--set)")
    options: dict[str, Any] = param({}, "solver options per method, ``{method: {key: "
                                    "value}}`` (--option)")


def load_problem(name_or_path: str) -> ProblemRecipe:
    """The problem recipe of a name (see the module docstring) or a TOML path; SciopsError
    naming the file and the offending key."""
    path = find_recipe_file(name_or_path, "problems")
    try:
        raw = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise SciopsError(f"problem recipe {path}: {e}") from None
    unknown = sorted(set(raw) - _KEYS)
    if unknown or "pde" not in raw:
        raise SciopsError(f"problem recipe {path}: " + (f"unknown key(s) {unknown}; allowed: "
                                                        f"{sorted(_KEYS)}" if unknown
                                                        else "needs `pde`"))
    options, params = raw.get("options", {}), raw.get("params", {})
    if not isinstance(options, dict) or not all(isinstance(v, dict) for v in options.values()):
        raise SciopsError(f"problem recipe {path}: [options.METHOD] tables expected")
    if not isinstance(params, dict):
        raise SciopsError(f"problem recipe {path}: a [params] table expected")
    try:
        return ProblemRecipe(
            name=str(raw.get("name", path.stem)), pde=str(raw["pde"]),
            description=str(raw.get("description", "")), exact=raw.get("exact"),
            eval_points=raw.get("eval_points"),
            params={k: _text(v) for k, v in params.items()},
            options={m: {k: _text(v) for k, v in o.items()} for m, o in options.items()})
    except ValueError as e:
        raise SciopsError(f"problem recipe {path}: {e}") from None
