"""The PDE protocol and registry.

A PDE family is a subclass of :class:`PDE` registered under a short name with
:func:`register`. Third-party packages register theirs through the entry-point group
``sciops.pdes`` (an entry point names the class), so installing the package makes
``sciops generate <their-recipe>`` work.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor

from sciops import plugins
from sciops.params import Params, param

__all__ = ["PDE", "Params", "param", "Variable", "Condition", "Domain", "PointSample",
           "SolverDiverged", "dirichlet", "register", "available", "get"]


class SolverDiverged(RuntimeError):
    """A numerical solve produced NaN/Inf or blew up; ``samples`` are batch-local indices."""

    def __init__(self, message: str, samples: list[int] | None = None):
        super().__init__(message)
        self.samples = list(samples or [])


@dataclass(frozen=True)
class Variable:
    """Metadata of a stored variable: dims (named as in the data format), units, meaning."""

    dims: tuple[str, ...]
    units: str
    long_name: str


@dataclass(frozen=True)
class Condition:
    """A boundary or initial condition for pointwise (PINN) solvers: ``residual == 0`` on the
    face ``coord == value`` of the domain box.

    ``residual(fields, coords) -> (N,)``: ``fields`` holds the unknowns and the sample's given
    fields at the face points, ``coords`` the point coordinates (``(N,)`` tensors that may
    require grad, see :mod:`sciops.autodiff`). ``sets = (output, data)`` marks a Dirichlet
    condition ``fields[output] == fields[data]`` (``data`` None: zero), which a solver may
    impose exactly with a distance-function ansatz instead of a penalty.
    """

    name: str
    coord: str
    value: float
    residual: Callable[[Mapping[str, Tensor], Mapping[str, Tensor]], Tensor]
    sets: tuple[str, str | None] | None = None


def dirichlet(name: str, coord: str, value: float, output: str,
              data: str | None = None) -> Condition:
    """The condition ``output = data`` (``data`` None: 0) on the face ``coord == value``."""
    def residual(fields: Mapping[str, Tensor], coords: Mapping[str, Tensor]) -> Tensor:
        u = fields[output]
        return u if data is None else u - fields[data]
    return Condition(name, coord, value, residual, (output, data))


@dataclass(frozen=True)
class Domain:
    """Where a PDE's pointwise solution lives: the coordinate ``box`` (name -> (lo, hi), time
    included, in the order networks take them), the unknown fields ``outputs``, the
    ``periodic`` coordinates (period ``hi - lo``) and the side ``conditions``."""

    box: dict[str, tuple[float, float]]
    outputs: tuple[str, ...]
    periodic: tuple[str, ...] = ()
    conditions: tuple[Condition, ...] = ()


@dataclass(frozen=True)
class PointSample:
    """One problem instance as functions of the coordinates (``(N,)`` tensors by name):
    ``given`` returns the known fields (sources, coefficients, initial data) at the points,
    ``exact`` the unknowns where a closed form exists (else None)."""

    given: Callable[[Mapping[str, Tensor]], dict[str, Tensor]]
    exact: Callable[[Mapping[str, Tensor]], dict[str, Tensor]] | None = None


class PDE:
    """A PDE family: parameters, random inputs, reference solver, residual, metadata.

    Subclasses set ``name``, ``Params`` and ``variables`` and implement the methods below.
    Instances hold no state; every method takes the ``Params`` it needs.
    """

    name: ClassVar[str]
    Params: ClassVar[type[Params]]
    variables: ClassVar[dict[str, Variable]]

    def sample_inputs(self, params: Params, n: int, generator: torch.Generator
                      ) -> dict[str, Tensor]:
        """``n`` random inputs, batched on the CPU, deterministic for the generator's seed."""
        raise NotImplementedError

    def solve(self, params: Params, inputs: Mapping[str, Tensor], *,
              callback: Callable[[float], None] | None = None) -> dict[str, Tensor]:
        """Reference solution of a batch. Outputs are keyed like ``variables`` with the
        dims given there, minus nothing: the leading axis is ``sample``. ``callback``
        receives the fraction of the work done (0..1) for progress bars."""
        raise NotImplementedError

    def stored_variables(self, params: Params) -> list[str]:
        """Names of the variables :meth:`solve` returns for ``params`` (default: all of
        ``variables``; a family with optional outputs narrows it)."""
        return list(self.variables)

    def coords(self, params: Params) -> dict[str, tuple[str, np.ndarray]]:
        """Stored coordinates: name -> (dim, 1-D values), e.g. ``"t": ("time", t)``."""
        raise NotImplementedError

    def residual(self, fields: Mapping[str, Tensor], coords: Mapping[str, Tensor],
                 params: Params) -> Tensor:
        """Pointwise PDE residual of ``fields`` on ``coords`` (zero for an exact solution)."""
        raise NotImplementedError(f"{self.name}: residual is not implemented")

    def domain(self, params: Params) -> Domain:
        """Box, unknowns and side conditions for pointwise solvers (PINNs)."""
        raise NotImplementedError(f"{self.name}: no pointwise domain is declared")

    def point_sample(self, params: Params, inputs: Mapping[str, Tensor]) -> PointSample:
        """Sample 0 of ``inputs`` (from :meth:`sample_inputs`) as functions of coordinates."""
        raise NotImplementedError(f"{self.name}: its inputs cannot be evaluated at points")

    def exact(self, params: Params, *args: Any, **kwargs: Any) -> Any:
        """Closed-form solution where one exists (used by the tests)."""
        raise NotImplementedError(f"{self.name}: no closed-form solution")

    def make_params(self, values: Mapping[str, Any] | None = None) -> Params:
        return self.Params.from_mapping(dict(values or {}))


_REGISTRY: dict[str, type[PDE]] = {}


def register(cls: type[PDE]) -> type[PDE]:
    """Class decorator: register a PDE family under ``cls.name``."""
    if not getattr(cls, "name", None):
        raise ValueError(f"{cls.__name__}: a PDE needs a non-empty `name`")
    _REGISTRY[cls.name] = cls
    return cls


_BROKEN: set[str] = set()  # entry points that failed to load (warned about once)


def _load_entry_points() -> None:
    """Register the classes of the entry-point group ``sciops.pdes`` (see
    :func:`sciops.plugins.load_entry_points`: a broken one is skipped with one warning)."""

    def add(name: str, cls: type[PDE]) -> None:
        _REGISTRY[name] = cls

    plugins.load_entry_points("sciops.pdes", "PDE", _REGISTRY, _BROKEN, add)


def available() -> list[str]:
    """Names of all registered PDE families (built-in and from entry points)."""
    _load_entry_points()
    return sorted(_REGISTRY)


def get(name: str) -> PDE:
    """An instance of the PDE family registered as ``name``."""
    if name not in _REGISTRY:
        _load_entry_points()
    if name not in _REGISTRY:
        raise KeyError(f"unknown PDE {name!r}; known: {', '.join(available())}")
    return _REGISTRY[name]()
