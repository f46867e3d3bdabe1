"""User-facing errors: the CLI prints their message on one line, without a traceback."""

import threading


class SciopsError(Exception):
    """Bad input or state that the user can fix; the message names the problem."""


#: Set by the CLI's SIGTERM handler, which also raises KeyboardInterrupt. Python drops an
#: exception raised while a destructor or weakref callback runs, so long loops also call
#: :func:`check_terminated` once per batch or step: a SIGTERM is never lost.
TERMINATED = threading.Event()


def check_terminated() -> None:
    """Raise KeyboardInterrupt if a SIGTERM arrived (see :data:`TERMINATED`)."""
    if TERMINATED.is_set():
        raise KeyboardInterrupt
