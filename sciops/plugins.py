"""Plug-ins: third-party packages add PDE families (entry-point group ``sciops.pdes``) and
models (``sciops.models``) by declaring entry points ``name = "module:Class"``."""

from __future__ import annotations

import sys
from collections.abc import Callable, Container
from importlib.metadata import entry_points
from typing import Any

__all__ = ["load_entry_points"]


def load_entry_points(group: str, what: str, known: Container[str], broken: set[str],
                      add: Callable[[str, Any], None]) -> None:
    """Pass each entry point of ``group`` whose name is neither ``known`` nor in ``broken`` to
    ``add(name, loaded object)``. One that fails to load or that ``add`` refuses (any
    exception) joins ``broken`` and is skipped with one line ``sciops: warning: skipped
    {what} plug-in NAME = VALUE: ...`` on stderr, once: a broken plug-in breaks no command
    that does not use it."""
    for ep in entry_points(group=group):
        if ep.name in known or ep.name in broken:
            continue
        try:
            add(ep.name, ep.load())
        except Exception as e:  # a plug-in's import can fail in any way
            broken.add(ep.name)
            reason = " ".join(str(e).split()) or "(no message)"
            print(f"sciops: warning: skipped {what} plug-in {ep.name} = {ep.value}: "
                  f"{type(e).__name__}: {reason}", file=sys.stderr)
