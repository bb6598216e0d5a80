"""Errors that mean "bad input": the CLI prints ``str(err)`` as one line and exits with status 2.

Anything else raised inside labelforge is a bug and keeps its traceback.
"""

from __future__ import annotations

from pathlib import Path

from cityscapes_tools.errors import CityscapesError

__all__ = ["LabelforgeError", "InputError", "OutputExistsError", "USER_ERRORS"]


class LabelforgeError(Exception):
    """Base class of every error caused by the user's input or configuration."""


class InputError(LabelforgeError):
    """A named input file or folder is missing, malformed or inconsistent: ``"<path>: <problem>"``."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")

    def __reduce__(self) -> tuple[type, tuple[Path, str]]:
        # Rebuild from (path, problem) so the error crosses process boundaries (worker pools) intact.
        return (type(self), (self.path, self.problem))


class OutputExistsError(InputError):
    """The output already holds a finished (or unfinished) result and neither overwrite nor resume was asked."""


# What the CLI reports as one clean line with exit status 2.
USER_ERRORS: tuple[type[Exception], ...] = (LabelforgeError, CityscapesError)
