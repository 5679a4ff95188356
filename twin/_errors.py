"""The one error hierarchy of citytwin.

Every problem a user can fix (a bad scenario, a missing or corrupt map, no network access)
raises a :class:`TwinError` subclass with a one-line message naming the file, the field and what
is allowed. The CLI prints that line and exits with code 2; no traceback is shown.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

__all__ = [
    "TwinError",
    "ScenarioError",
    "MapError",
    "MapNotFoundError",
    "MapFormatError",
    "NoDrivableRoadError",
    "OfflineError",
    "OutputExistsError",
    "OutputError",
    "InputError",
]


class TwinError(Exception):
    """Base class of all user-facing errors (exit code 2 in the CLI)."""

    exit_code = 2


class ScenarioError(TwinError):
    """A scenario or experiment file is invalid.

    Parameters
    ----------
    path
        The file that holds the problem (or ``None`` for in-memory scenarios).
    problems
        One ``(field, message)`` pair per problem; ``field`` is a dotted path.
    """

    def __init__(self, path: str | Path | None, problems: Iterable[tuple[str, str]]) -> None:
        self.path = None if path is None else Path(path)
        self.problems = list(problems)
        where = str(self.path) if self.path is not None else "<scenario>"
        parts = [f"{field}: {msg}" if field else msg for field, msg in self.problems]
        super().__init__(f"{where}: " + "; ".join(parts))


class MapError(TwinError):
    """A map could not be loaded."""


class MapNotFoundError(MapError):
    """A map file or catalogue name does not exist."""


class MapFormatError(MapError):
    """A map file is truncated, corrupt or of an unknown format."""


class NoDrivableRoadError(MapError):
    """A map holds no road usable for the requested network type."""


class OfflineError(MapError):
    """A map must be downloaded but the network cannot be reached."""


class OutputExistsError(TwinError):
    """The output folder exists and ``overwrite`` was not given."""


class OutputError(TwinError):
    """An output cannot be written: the target is a file, a special file, read-only, full, or not a
    folder citytwin wrote itself (``--overwrite`` replaces only run folders with a manifest)."""


class InputError(TwinError):
    """An input file or folder cannot be read: missing, a directory, a FIFO or device, unreadable,
    too long a name, too large, not UTF-8, or a damaged run folder."""
