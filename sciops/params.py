"""Typed, documented, validated parameter sets: the one config system of sciops.

A set of parameters is a frozen dataclass deriving from :class:`Params` whose fields are
declared with :func:`param` (default, one-line doc, allowed range or choices). PDE
parameters, training configurations and solver options all use it, so every bad value is
refused the same way: ``ValueError`` naming the field and what is allowed.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Params", "param"]


def param(default: Any, doc: str, *, range: tuple[float | None, float | None] | None = None,
          choices: tuple[Any, ...] | None = None, open_low: bool = False) -> Any:
    """A ``Params`` field with its documentation and validation rule.

    ``range=(lo, hi)``: inclusive bounds (None = unbounded); ``open_low`` makes ``lo``
    exclusive. ``choices``: the allowed values. ``None`` is allowed when it is the default
    (it means "choose automatically") or the field's type admits it (``int | None``).
    """
    meta = {"doc": doc, "range": range, "choices": choices, "open_low": open_low}
    if isinstance(default, (list, dict)):  # a fresh copy per instance
        return dataclasses.field(default_factory=lambda: copy.deepcopy(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


@dataclass(frozen=True)
class Params:
    """Base of every PDE's frozen parameter dataclass; validates each field on creation."""

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None and (f.default is None or type(None) in
                                  typing.get_args(hints[f.name])):
                continue
            _check_type(f.name, value, hints[f.name])
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


def _check_type(name: str, value: Any, hint: Any) -> None:
    types = _base_types(hint)
    if float in types and isinstance(value, int) and not isinstance(value, bool):
        return
    if bool not in types and isinstance(value, bool):
        raise ValueError(f"{name}={value!r}: expected {'/'.join(t.__name__ for t in types)}")
    if not isinstance(value, types):
        raise ValueError(f"{name}={value!r}: expected {'/'.join(t.__name__ for t in types)}")
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is list:
        bad = not all(_is(v, args[0]) for v in value)
    elif origin is dict:
        bad = not all(_is(k, args[0]) and _is(v, args[1]) for k, v in value.items())
    else:
        bad = False
    if bad:
        raise ValueError(f"{name}={value!r}: expected {_hint_name(hint)}")


def _is(value: Any, kind: Any) -> bool:
    """``isinstance`` where ``typing.Any`` admits everything."""
    return kind is Any or isinstance(value, kind)


def _hint_name(hint: Any) -> str:
    """``list[str]`` -> 'a list of str', ``dict[str, str]`` -> 'a table of str = str'."""
    args = [a.__name__ for a in typing.get_args(hint)]
    return f"a list of {args[0]}" if typing.get_origin(hint) is list else \
        f"a table of {args[0]} = {args[1]}"


def _coerce(name: str, value: Any, hint: Any) -> Any:
    types = _base_types(hint)
    if not isinstance(value, str):
        if isinstance(value, list) and tuple in types:
            return tuple(value)
        return value
    text = value.strip()
    if list in types or dict in types:  # JSON ([...] / {...}), else a comma list
        try:
            return json.loads(text)
        except (ValueError, RecursionError):  # JSONDecodeError; >4300 digits; deep nesting
            if list not in types:
                raise ValueError(f"{name}={value!r}: expected {_hint_name(hint)} "
                                 f"(JSON)") from None
            return [p.strip() for p in text.strip("[]").split(",") if p.strip()]
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
