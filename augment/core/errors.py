"""User mistakes get one clear line and a non-zero exit, never a traceback."""

from __future__ import annotations


class UserError(Exception):
    """A problem with the user's input that the user can fix.

    The CLI prints ``str(err)`` on one line and exits with ``exit_code``.
    """

    exit_code = 2

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code
