"""lungseg's exceptions. The library raises these; only the CLI turns them into messages and exit codes.

Every message says what is wrong and, where there is one, what to do about it.
"""

from __future__ import annotations

__all__ = [
    "LungsegError",
    "InputError",
    "UnsupportedInputError",
    "OutputError",
    "MissingDependencyError",
    "SettingsError",
]


class LungsegError(Exception):
    """Base class of every error lungseg raises on purpose.

    Parameters
    ----------
    message : str
        What is wrong.
    hint : str, optional
        What the user can do about it.
    """

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} ({self.hint})"


class InputError(LungsegError):
    """The input is missing, unreadable, corrupt, or cannot form an image."""


class UnsupportedInputError(InputError):
    """The input is readable but not something lungseg segments (MR, 4D, colour, ...)."""


class OutputError(LungsegError):
    """An output cannot be written where asked (missing folder, would overwrite the input, ...)."""


class MissingDependencyError(LungsegError):
    """An optional extra is needed for this feature and is not installed."""

    exit_code = 3


class SettingsError(LungsegError, ValueError):
    """A setting has an unknown name or an invalid value."""
