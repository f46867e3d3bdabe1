"""Model zoo: every model is an ``nn.Module`` built from a registry name + keyword config.

``build("tfno", n_modes=(16, 16), in_channels=1, out_channels=1, hidden_channels=32)``
returns the module; :func:`available` lists the names, :func:`factory` gives the class and
:func:`kind` the data it trains on. Registration mirrors the PDE registry
(:mod:`sciops.pdes.base`): a built-in family registers its class with ``@register("name")``
(the built-in modules are imported on the first call to :func:`available`, :func:`factory`
or :func:`build`, not at import of this package), and third-party packages add theirs
through the entry-point group ``sciops.models`` (entry point name = model name, value =
``module:Class``); one that fails to load is skipped with one warning line.

A model class declares:

* ``kind`` — the data it takes, one of :data:`KINDS`: ``"grid"`` (fields on a grid,
  ``(batch, channels, *space)``; trained on stored pairs), ``"particle"`` (particle
  trajectories; trained on rollouts) or ``"point"`` (coordinates of collocation points; one
  PDE instance, ``sciops solve``). The trainer picks its task from this, never from the name;
* its keyword config: the parameters of its constructor. A class whose constructor passes
  ``**kwargs`` on to another model class names that class as ``extends``; its accepted
  keywords are then its own plus those of ``extends`` (with its own defaults winning), so a
  variant such as TFNO (FNO with other defaults) declares only what differs.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable

from torch import nn

from sciops import plugins

__all__ = ["KINDS", "register", "build", "available", "factory", "kind"]

KINDS = ("grid", "point", "particle")
_BUILTIN_MODULES = ("fno", "mg_tfno", "deeponet", "lsm", "mgno", "giorom", "pinn", "rom_net")
_REGISTRY: dict[str, Callable[..., nn.Module]] = {}
_BROKEN: set[str] = set()  # entry points that failed to load (warned about once)


def _check_kind(name: str, factory: Callable[..., nn.Module]) -> None:
    declared = getattr(factory, "kind", None)
    if declared not in KINDS:
        raise ValueError(f"model {name!r}: declare the data it takes as a class attribute "
                         f"kind = one of {', '.join(map(repr, KINDS))}, got {declared!r}")


def register(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Class decorator adding a model under ``name`` (unique); the class declares ``kind``."""

    def decorate(factory: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _REGISTRY and _REGISTRY[name] is not factory:
            raise ValueError(f"model name {name!r} is already registered by {_REGISTRY[name]!r}")
        _check_kind(name, factory)
        _REGISTRY[name] = factory
        return factory

    return decorate


def _load() -> None:
    """Import the built-in families, then register the entry points of ``sciops.models``.
    A plug-in that fails to load (import error, no valid ``kind``, name taken) is skipped
    with one line ``sciops: warning: ...`` on stderr, so it breaks no command that does not
    use it."""
    for module in _BUILTIN_MODULES:
        importlib.import_module(f"{__name__}.{module}")
    plugins.load_entry_points("sciops.models", "model", _REGISTRY, _BROKEN,
                              lambda name, cls: register(name)(cls))


def available() -> list[str]:
    """Names accepted by :func:`build`, sorted (built-in and from entry points)."""
    _load()
    return sorted(_REGISTRY)


def factory(name: str) -> Callable[..., nn.Module]:
    """The class registered as ``name``; the first line of its docstring is the model's
    one-line description (``sciops list models``). ``ValueError`` for an unknown name,
    listing the known ones."""
    if name not in _REGISTRY:
        _load()
    if name not in _REGISTRY:
        raise ValueError(f"model: unknown name {name!r}; known models: {', '.join(available())}")
    return _REGISTRY[name]


def kind(name: str) -> str:
    """The data model ``name`` takes: ``"grid"``, ``"point"`` or ``"particle"`` (see above)."""
    return factory(name).kind


def _signature(make: Callable[..., nn.Module]) -> inspect.Signature:
    """Keywords ``make`` accepts: its constructor's, merged with those of ``make.extends``
    when the constructor passes ``*args``/``**kwargs`` on to that class."""
    own = inspect.signature(make)
    base = getattr(make, "extends", None)
    if base is None or not any(p.kind is p.VAR_KEYWORD for p in own.parameters.values()):
        return own
    named = {n: p for n, p in own.parameters.items()
             if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    forwards_args = any(p.kind is p.VAR_POSITIONAL for p in own.parameters.values())
    inherited = _signature(base).parameters.values()
    if forwards_args:  # the base's parameters in its order, with this class's defaults
        merged = [p.replace(default=named.pop(p.name).default) if p.name in named else p
                  for p in inherited]
        return inspect.Signature([*merged, *named.values()])
    extra = [p.replace(kind=p.KEYWORD_ONLY) for p in inherited if p.name not in named]
    return inspect.Signature([*named.values(), *extra])


def build(name: str, **cfg) -> nn.Module:
    """The model registered as ``name``, constructed with keyword config ``cfg``.

    Raises ``ValueError`` for an unknown name (listing the known ones) and for keywords
    the model does not accept or required ones that are missing (listing the accepted ones).
    """
    make = factory(name)
    sig = _signature(make)
    accepted = [p.name for p in sig.parameters.values()
                if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    takes_any = any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
    unknown = [k for k in cfg if k not in accepted]
    if unknown and not takes_any:
        raise ValueError(f"model {name!r}: unknown keyword(s) {', '.join(map(repr, unknown))}; "
                         f"accepted keywords: {', '.join(accepted)}")
    try:
        sig.bind(**cfg)
    except TypeError as e:
        raise ValueError(f"model {name!r}: {e}; accepted keywords: {', '.join(accepted)}") from None
    return make(**cfg)
