"""User-facing errors: the CLI prints their message on one line, without a traceback."""


class SciopsError(Exception):
    """Bad input or state that the user can fix; the message names the problem."""
