"""The PDE protocol and registry.

A PDE family is a subclass of :class:`PDE` registered under a short name with
:func:`register`. Third-party packages register theirs through the entry-point group
``sciops.pdes`` (an entry point names the class), so installing the package makes
``sciops generate <their-recipe>`` work.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor


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


def param(default: Any, doc: str, *, range: tuple[float | None, float | None] | None = None,
          choices: tuple[Any, ...] | None = None, open_low: bool = False) -> Any:
    """A ``Params`` field with its documentation and validation rule.

    ``range=(lo, hi)``: inclusive bounds (None = unbounded); ``open_low`` makes ``lo``
    exclusive. ``choices``: the allowed values. ``None`` is always allowed when it is the
    default (it means "choose automatically").
    """
    meta = {"doc": doc, "range": range, "choices": choices, "open_low": open_low}
    return dataclasses.field(default=default, metadata=meta)


@dataclass(frozen=True)
class Params:
    """Base of every PDE's frozen parameter dataclass; validates each field on creation."""

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None and f.default is None:
                continue
            _check_type(type(self).__name__, f.name, value, hints[f.name])
            choices = f.metadata.get("choices")
            if choices is not None and value not in choices:
                raise ValueError(f"{f.name}={value!r} is not allowed; "
                                 f"choose one of {list(choices)}")
            rng = f.metadata.get("range")
            if rng is None and isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"{f.name}={value!r}: must be a finite number")
            if rng is not None:
                lo, hi = rng
                bad_lo = lo is not None and (value <= lo if f.metadata["open_low"] else value < lo)
                bad_hi = hi is not None and value > hi
                if bad_lo or bad_hi or (isinstance(value, float) and not math.isfinite(value)):
                    lo_s = "-inf" if lo is None else repr(lo)
                    hi_s = "inf" if hi is None else repr(hi)
                    left = "(" if f.metadata["open_low"] or lo is None else "["
                    right = ")" if hi is None else "]"
                    raise ValueError(f"{f.name}={value!r} is out of range; "
                                     f"allowed {left}{lo_s}, {hi_s}{right}")
        self.validate()

    def validate(self) -> None:
        """Cross-field checks; override in subclasses. Raise ValueError naming the fields."""

    @classmethod
    def field_docs(cls) -> dict[str, str]:
        return {f.name: f.metadata.get("doc", "") for f in dataclasses.fields(cls)}

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> Params:
        """Build from a mapping whose values may be strings (``--set key=value``)."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"unknown parameter(s) {unknown}; allowed: {sorted(names)}")
        hints = typing.get_type_hints(cls)
        parsed = {k: _coerce(k, v, hints[k]) for k, v in values.items()}
        return cls(**parsed)

    @classmethod
    def defaults(cls, **values: Any) -> type[Params]:
        """A subclass with new defaults for some fields (docs and rules kept), to build a
        family's ``Params`` on: ``class Params(SemilinearParams.defaults(dt=0.01)): ...``."""
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ValueError(f"{cls.__name__}.defaults: unknown field(s) {unknown}")
        hints = typing.get_type_hints(cls)
        ns: dict[str, Any] = {"__annotations__": {k: hints[k] for k in values},
                              "__module__": cls.__module__, "__qualname__": cls.__qualname__}
        for k, v in values.items():
            ns[k] = dataclasses.field(default=v, metadata=known[k].metadata)
        return dataclass(frozen=True)(type(cls.__name__, (cls,), ns))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> Params:
        return dataclasses.replace(self, **changes)


def _base_types(hint: Any) -> tuple[type, ...]:
    """The runtime types a hint allows: the members of a union (None dropped), else the
    hint's origin (``tuple[float, ...]`` -> ``tuple``)."""
    union = typing.get_origin(hint) in (typing.Union, types.UnionType)
    members = [a for a in typing.get_args(hint) if a is not type(None)] if union else [hint]
    return tuple(typing.get_origin(t) or t for t in members)


def _check_type(owner: str, name: str, value: Any, hint: Any) -> None:
    types = _base_types(hint)
    if float in types and isinstance(value, int) and not isinstance(value, bool):
        return
    if bool not in types and isinstance(value, bool):
        raise ValueError(f"{name}={value!r}: expected {'/'.join(t.__name__ for t in types)}")
    if not isinstance(value, types):
        raise ValueError(f"{name}={value!r}: expected {'/'.join(t.__name__ for t in types)}")


def _coerce(name: str, value: Any, hint: Any) -> Any:
    if not isinstance(value, str):
        if isinstance(value, list):
            return tuple(value)
        return value
    types = _base_types(hint)
    text = value.strip()
    if text.lower() in ("none", "null") and type(None) in typing.get_args(hint):
        return None
    for t in types:
        try:
            if t is bool:
                if text.lower() in ("true", "1", "yes"):
                    return True
                if text.lower() in ("false", "0", "no"):
                    return False
                continue
            if t is int:
                return int(text)
            if t is float:
                return float(text)
            if t is str:
                return text
            if t is tuple:
                return tuple(float(p) for p in text.strip("()[]").split(",") if p.strip())
        except ValueError:
            continue
    raise ValueError(f"{name}={value!r}: expected {'/'.join(t.__name__ for t in types)}")


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
    """Register the classes of the entry-point group ``sciops.pdes``. One that fails to load
    is skipped with one line ``sciops: warning: ...`` on stderr, so a broken plug-in breaks
    no command that does not use it."""
    for ep in entry_points(group="sciops.pdes"):
        if ep.name in _REGISTRY or ep.name in _BROKEN:
            continue
        try:
            _REGISTRY[ep.name] = ep.load()
        except Exception as e:  # a plug-in's import can fail in any way
            _BROKEN.add(ep.name)
            reason = " ".join(str(e).split()) or "(no message)"
            print(f"sciops: warning: skipped PDE plug-in {ep.name} = {ep.value}: "
                  f"{type(e).__name__}: {reason}", file=sys.stderr)


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
