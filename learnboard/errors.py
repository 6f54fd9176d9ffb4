"""Errors a user can act on.

Every exception that reaches a user derives from :class:`LearnboardError`; the CLI
prints its message (no traceback) and exits with status 2. Messages name the file,
field or value at fault and say what to do.
"""

from __future__ import annotations


class LearnboardError(Exception):
    """A user-facing error: its message is shown as is."""

    exit_code = 2
    """The command line's exit status for it."""


class InputError(LearnboardError):
    """A file, option or value given by the user is wrong."""

    def __init__(self, message: str, *, source: str | None = None, field: str | None = None):
        # a key from a file may hold a line break: keep the message on one line
        where = ": ".join(_printable(part) for part in (source, field) if part)
        super().__init__(f"{where}: {message}" if where else message)
        self.source = source
        self.field = field


def _printable(text: str) -> str:
    text = str(text)
    return text if text.isprintable() else text.encode("unicode_escape").decode("ascii")


class ConvergenceError(LearnboardError):
    """A nonlinear circuit solve did not converge."""


class LinkError(LearnboardError):
    """The host could not talk to a board (timeout, bad frames, wrong firmware)."""


class Interrupted(LearnboardError):
    """Ctrl-C stopped a command at a point that leaves the board needing something done;
    the message says what. The command line exits with 130, as a shell reports SIGINT."""

    exit_code = 130
