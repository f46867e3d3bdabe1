"""Checkpoints as plain tensors and dicts, loadable with ``torch.load(weights_only=True)``.

A checkpoint holds ``model`` (state dict), ``config`` (the run config dict), ``optimizer``,
``scheduler``, ``task`` (state dicts of the task's modules, e.g. normalizers), ``rng``
(torch CPU generator state), ``epoch``, ``step`` (global), ``step_in_epoch``, ``best``
(best test error), ``epoch_loss`` (``sum`` and ``count`` of the train losses of the current
epoch's steps so far, so a resumed epoch logs its whole mean), ``seconds`` (training time so
far, resumed calls included), ``format`` and ``checksum``. Writes go through a temporary
file and an atomic rename.

``checksum`` is the sha256 (hex) of every other entry, walked in a fixed order (dict keys
sorted; for each tensor its dtype, shape and raw bytes; other values by ``repr``), so a
flipped bit in any weight, optimizer moment or counter is caught by :func:`load`, which
every reader (resume, ``predict``, ``evaluate``) goes through. Checkpoints written before
checksums existed (no ``checksum`` entry) still load, unverified.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import torch

from sciops import atomic
from sciops.errors import SciopsError

FORMAT = "sciops-checkpoint/1"


def _feed(h: Any, value: Any) -> None:
    if isinstance(value, torch.Tensor):
        t = value.detach().cpu().contiguous().reshape(-1)
        h.update(f"T{t.dtype}{tuple(value.shape)}:".encode())
        h.update(t.view(torch.uint8).numpy().tobytes())
    elif isinstance(value, dict):
        h.update(f"D{len(value)}:".encode())
        for k in sorted(value, key=lambda k: (type(k).__name__, str(k))):
            h.update(f"K{type(k).__name__}{k!r}:".encode())
            _feed(h, value[k])
    elif isinstance(value, (list, tuple)):
        h.update(f"L{type(value).__name__}{len(value)}:".encode())
        for v in value:
            _feed(h, v)
    else:
        h.update(f"V{type(value).__name__}{value!r};".encode())


def checksum(state: dict[str, Any]) -> str:
    """sha256 (hex) of ``state`` without its ``checksum`` entry, independent of the file."""
    h = hashlib.sha256()
    _feed(h, {k: v for k, v in state.items() if k != "checksum"})
    return h.hexdigest()


def save(path: Path, state: dict[str, Any]) -> None:
    body = {"format": FORMAT, **{k: v for k, v in state.items() if k != "checksum"}}
    body["checksum"] = checksum(body)
    atomic.write(path, lambda tmp: torch.save(body, tmp),
                 then=f"the previous {path.name} is intact; free space and rerun with --resume")


def remedy(path: Path) -> str:
    """What the user can do about a damaged checkpoint ``path`` of a run directory."""
    other = path.with_name("best.pt" if path.name == "last.pt" else "last.pt")
    if path.name == "last.pt" and other.is_file():
        return (f"delete it to restart the run from scratch, or copy {other} over it to resume "
                f"from the best checkpoint")
    if path.name == "last.pt":
        return "delete it to restart the run from scratch"
    if path.name == "best.pt" and other.is_file():
        return f"delete it to use {other} instead (predict and evaluate fall back to last.pt)"
    return "delete it and train again"


def _first_line(e: BaseException) -> str:
    text = (str(e).strip().splitlines() or [""])[0][:120]
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def load(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint safely and verify its checksum; a missing, empty, truncated,
    corrupted or foreign file raises SciopsError naming the file and the way out."""
    path = Path(path)
    if path.is_dir():
        path = path / "last.pt"
    if not path.is_file():
        raise SciopsError(f"{path}: no checkpoint there")
    if path.stat().st_size == 0:
        raise SciopsError(f"{path}: empty checkpoint (0 bytes; an interrupted copy?); "
                          f"{remedy(path)}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # any failure to unpickle means the file is unusable
        raise SciopsError(f"{path}: corrupted or unreadable checkpoint ({_first_line(e)}); "
                          f"{remedy(path)}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise SciopsError(f"{path}: not a sciops checkpoint (format {FORMAT} expected)")
    stored = state.get("checksum")
    if stored is not None and stored != checksum(state):
        raise SciopsError(f"{path}: checksum mismatch, the checkpoint is corrupted (a flipped "
                          f"bit or a damaged copy); {remedy(path)}")
    return state
