"""Progress reporting without printing: the library calls a sink, the CLI draws it with rich.

Example:
    >>> from labelforge.progress import NullProgress
    >>> with NullProgress().task("count", total=3) as t:
    ...     for _ in range(3):
    ...         t.advance(loss=0.5)
"""

from __future__ import annotations

from typing import Any

__all__ = ["Progress", "ProgressTask", "NullProgress"]


class ProgressTask:
    """One bar. ``advance(n, **fields)`` moves it; fields (losses, rates) are shown beside it."""

    def advance(self, n: int = 1, **fields: Any) -> None:  # noqa: B027 - a no-op default is the point
        pass

    def __enter__(self) -> ProgressTask:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:  # noqa: B027
        pass


class Progress:
    """Factory of progress tasks. The default draws nothing (library use, tests)."""

    def task(self, description: str, total: int | None = None, *, transient: bool = False) -> ProgressTask:
        """``transient``: the bar vanishes when done (a preflight check, not a result to keep on screen)."""
        return ProgressTask()

    def log(self, message: str) -> None:
        """A one-line note for the user (e.g. "resuming at shard 3")."""


NullProgress = Progress
