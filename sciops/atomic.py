"""Files that are either whole or absent: temporary names, atomic renames, stale leftovers,
and disk-full errors.

Every file sciops writes (shards, sidecars, manifests, checkpoints, run metadata) goes to
``.NAME.PID.tmp`` next to its final path and is renamed into place when complete, so a
killed process never leaves a half file under a real name. What it does leave is its
temporary file; :func:`remove_stale` deletes those of dead processes when the next run starts.
A full disk (``ENOSPC``/``EDQUOT``, also as reported inside HDF5 errors) becomes one
:class:`SciopsError` naming the file and the free space, after the temporary file is removed.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import re
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from sciops.errors import SciopsError

_TMP = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.tmp$")
_DISK_FULL_TEXT = re.compile(r"errno = 28\b|No space left on device")


def tmp_path(path: Path) -> Path:
    """The temporary name this process writes ``path`` under: ``.NAME.PID.tmp``."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def remove_stale(folder: Path, *, names: Callable[[str], bool] = lambda name: True) -> int:
    """Delete temporary files in ``folder`` left by processes that no longer run on this host
    (their PID is gone, or is this process's own from an earlier run in the same PID).

    ``names`` selects by final file name, e.g. the shards this process owns: a concurrent
    writer on another host sharing the folder keeps its own files. Returns the count removed.
    """
    removed = 0
    if not folder.is_dir():
        return 0
    for f in folder.iterdir():
        m = _TMP.match(f.name)
        if not m or not names(m["name"]):
            continue
        pid = int(m["pid"])
        if pid != os.getpid() and _alive(pid):
            continue
        f.unlink(missing_ok=True)
        removed += 1
    return removed


def check_writable_file(path: str | os.PathLike, option: str = "--out") -> None:
    """Refuse up front (SciopsError) a file ``path`` that cannot be written: an existing
    directory or a name ending in a separator, or a folder that cannot be created or written
    to. Creates the folder."""
    text, path = os.fspath(path), Path(path)
    try:
        if path.is_dir() or text.endswith(("/", os.sep)):
            raise SciopsError(f"{option} {path}: is a directory; give a file name, e.g. "
                              f"{path / 'pred.nc'}")
        probe = tmp_path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise SciopsError(f"{option} {path}: cannot write there ({e.strerror or e})") from None


def is_disk_full(e: BaseException) -> bool:
    """True for an out-of-space error, including HDF5's (which carry ``errno = 28`` in text)."""
    if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    return bool(_DISK_FULL_TEXT.search(str(e)))


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM until the block ends (on POSIX, in the main thread): opening or
    closing an HDF5 file interrupted halfway leaves an object whose destructor fails noisily.
    A signal that arrives meanwhile is delivered right after the block."""
    import signal
    import threading

    hold = {signal.SIGINT, signal.SIGTERM}
    if not hasattr(signal, "pthread_sigmask") or \
            threading.current_thread() is not threading.main_thread():
        yield
        return
    before = signal.pthread_sigmask(signal.SIG_BLOCK, hold)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


@contextlib.contextmanager
def quiet_disk_full() -> Iterator[None]:
    """Hold back what the block prints on stderr about a full disk: HDF5 reports a failed
    write from destructors, as tracebacks, before (or instead of) raising it; the error that
    is finally raised is reported once, on one line."""
    held = io.StringIO()
    try:
        with contextlib.redirect_stderr(held):
            yield
    finally:
        text = held.getvalue()
        if not _DISK_FULL_TEXT.search(text):
            sys.stderr.write(text)


def disk_full_error(path: Path, then: str) -> SciopsError:
    """The one-line error for a full disk while writing ``path``; ``then``: what to do next."""
    try:
        free = f"{shutil.disk_usage(path.parent).free / 2**20:.1f} MiB free"
    except OSError:
        free = "free space unknown"
    return SciopsError(f"{path}: disk full while writing ({free}); nothing partial was kept; "
                       f"{then}")


def write(path: Path, write_to: Callable[[Path], object], *, then: str) -> None:
    """Write ``path`` whole or not at all: ``write_to(tmp)`` then an atomic rename.

    On any failure the temporary file is removed; a full disk raises :func:`disk_full_error`
    (``then``: the user's next step), anything else propagates.
    """
    tmp = tmp_path(path)
    try:
        write_to(tmp)
        os.replace(tmp, path)
    except BaseException as e:
        tmp.unlink(missing_ok=True)
        if is_disk_full(e):
            raise disk_full_error(path, then) from None
        raise


def write_json(path: Path, data: object, *, then: str) -> None:
    """:func:`write` of ``data`` as indented JSON with sorted keys."""
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    write(path, lambda tmp: tmp.write_text(text), then=then)
