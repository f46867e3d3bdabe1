"""Checkpoints as plain tensors and dicts, loadable with ``torch.load(weights_only=True)``.

A checkpoint holds ``model`` (state dict), ``config`` (the run config dict), ``optimizer``,
``scheduler``, ``task`` (state dicts of the task's modules, e.g. normalizers), ``rng``
(torch CPU generator state), ``epoch``, ``step`` (global), ``step_in_epoch``, ``best``
(best test error) and ``format``. Writes go through a temporary file and an atomic rename.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from sciops.errors import SciopsError

FORMAT = "sciops-checkpoint/1"


def save(path: Path, state: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save({"format": FORMAT, **state}, tmp)
    os.replace(tmp, path)


def load(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint safely; a missing, truncated or foreign file raises SciopsError."""
    path = Path(path)
    if path.is_dir():
        path = path / "last.pt"
    if not path.is_file():
        raise SciopsError(f"{path}: no checkpoint there")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError) as e:
        raise SciopsError(f"{path}: corrupted or unreadable checkpoint "
                          f"({type(e).__name__}: {str(e).splitlines()[0][:120]})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise SciopsError(f"{path}: not a sciops checkpoint (format {FORMAT} expected)")
    return state
