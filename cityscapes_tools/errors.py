"""Errors raised by cityscapes_tools. Each names the offending file so a CLI can print one line."""

from __future__ import annotations

from pathlib import Path

__all__ = ["CityscapesError", "DatasetFormatError"]


class CityscapesError(Exception):
    """Base class of the problems cityscapes_tools reports about its inputs."""


class DatasetFormatError(CityscapesError):
    """A dataset file or folder is missing, unreadable or malformed.

    ``str(err)`` is one line: ``"<path>: <problem>"``.
    """

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")

    def __reduce__(self) -> tuple[type, tuple[Path, str]]:
        # Rebuild from (path, problem) so the error crosses process boundaries (worker pools) intact.
        return (type(self), (self.path, self.problem))
