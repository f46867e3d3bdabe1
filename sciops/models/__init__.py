"""Model zoo: every model is an ``nn.Module`` built from a registry name + keyword config.

``build("tfno", n_modes=(16, 16), in_channels=1, out_channels=1, hidden_channels=32)``
returns the module; :func:`available` lists the names, :func:`factory` gives the class. A
model family registers its class (or factory function) with ``@register("name")``. The
built-in families are imported on the first call to :func:`build` or :func:`available`, not
at import of this package.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable

from torch import nn

__all__ = ["register", "build", "available", "factory"]

_BUILTIN_MODULES = ("fno", "mg_tfno", "deeponet", "lsm", "mgno", "giorom", "pinn", "rom_net")
_REGISTRY: dict[str, Callable[..., nn.Module]] = {}


def register(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Class/function decorator adding a model factory under ``name`` (unique)."""

    def decorate(factory: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _REGISTRY and _REGISTRY[name] is not factory:
            raise ValueError(f"model name {name!r} is already registered by {_REGISTRY[name]!r}")
        _REGISTRY[name] = factory
        return factory

    return decorate


def _load_builtins() -> None:
    for module in _BUILTIN_MODULES:
        importlib.import_module(f"{__name__}.{module}")


def available() -> list[str]:
    """Names accepted by :func:`build`, sorted."""
    _load_builtins()
    return sorted(_REGISTRY)


def factory(name: str) -> Callable[..., nn.Module]:
    """The class or function registered as ``name``; the first line of its docstring is the
    model's one-line description (``sciops list models``). ``ValueError`` for an unknown
    name, listing the known ones."""
    known = available()
    if name not in _REGISTRY:
        raise ValueError(f"model: unknown name {name!r}; known models: {', '.join(known)}")
    return _REGISTRY[name]


def build(name: str, **cfg) -> nn.Module:
    """The model registered as ``name``, constructed with keyword config ``cfg``.

    Raises ``ValueError`` for an unknown name (listing the known ones) and for keywords
    the model does not accept or required ones that are missing (listing the accepted ones).
    """
    make = factory(name)
    params = inspect.signature(make).parameters
    accepted = [p.name for p in params.values()
                if p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)]
    takes_any = any(p.kind == inspect.Parameter.VAR_KEYWORD for p in params.values())
    unknown = [k for k in cfg if k not in accepted]
    if unknown and not takes_any:
        raise ValueError(f"model {name!r}: unknown keyword(s) {', '.join(map(repr, unknown))}; "
                         f"accepted keywords: {', '.join(accepted)}")
    try:
        inspect.signature(make).bind(**cfg)
    except TypeError as e:
        raise ValueError(f"model {name!r}: {e}; accepted keywords: {', '.join(accepted)}") from None
    return make(**cfg)
