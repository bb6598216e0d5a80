"""Pieces every command shares: options defined once, error handling, rich progress bars."""

from __future__ import annotations

import errno
import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
import typer.core
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.progress import (
    Progress as RichBar,
)

try:  # typer >= 0.2x vendors click; earlier ones depend on it
    from typer._click import Context as ClickContext
    from typer._click.exceptions import ClickException, UsageError
except ImportError:  # pragma: no cover
    from click import ClickException, UsageError
    from click import Context as ClickContext

from ..errors import USER_ERRORS
from ..progress import Progress, ProgressTask

# Without a terminal (pipes, CI logs) rich would squeeze tables into 80 columns; give them room.
_WIDTH = None if sys.stdout.isatty() else 160
console = Console(width=_WIDTH)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)

F = TypeVar("F", bound=Callable[..., Any])

# -- options used by several commands -------------------------------------------------------------
OutOpt = Annotated[Path, typer.Option("--out", "-o", help="Output folder.")]
OverwriteOpt = Annotated[bool, typer.Option("--overwrite", help="Replace an existing output folder.")]
ResumeOpt = Annotated[bool, typer.Option("--resume", help="Continue an interrupted run in the output folder.")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Random seed; the same seed gives the same output.")]
WorkersOpt = Annotated[
    int, typer.Option("--workers", "-j", help="Worker processes (0: all cores).", min=0, show_default=True)
]
DeviceOpt = Annotated[str, typer.Option("--device", help="auto | cpu | cuda | cuda:N.")]
LabelSpaceOpt = Annotated[
    str,
    typer.Option(
        "--label-space",
        help="Label space: auto (the root's labelspace.yaml/.json, else the layout's built-in), cityscapes, "
        "voc, or a label-space .yaml/.json file (docs/datasets.md).",
    ),
]
LayoutOpt = Annotated[
    str,
    typer.Option(
        "--layout",
        help="Dataset layout: auto (detected), cityscapes, folders, voc or ade20k; "
        "suffixes as in folders:img=.jpg,ann=_mask.png.",
    ),
]
DATASET_ROOT_HELP = "Dataset root in any layout: cityscapes, folders, voc or ade20k (see --layout)."


# OS errors that are the machine's state, not a bug: a full disk, a folder the user may not write.
_ENVIRONMENT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS, errno.EFBIG}


def handle_errors(fn: F) -> F:
    """Turn input errors and the machine's (a full disk, a folder not writable) into one line on stderr and exit
    status 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except USER_ERRORS as exc:
            # The message is escaped: a "[generator]" in it is text, not rich markup.
            err_console.print(f"[bold red]error:[/] {escape(str(exc))}", markup=True, highlight=False)
            raise typer.Exit(2) from None
        except OSError as exc:
            if exc.errno not in _ENVIRONMENT_ERRNOS:
                raise
            where = f"{exc.filename}: " if exc.filename else ""
            err_console.print(f"[bold red]error:[/] {escape(where + (exc.strerror or str(exc)))}", highlight=False)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            err_console.print("interrupted; finished parts are kept, rerun with --resume to continue")
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


class _OneLineUsageError(ClickException):
    """A usage error (bad option value, missing argument) as the one line every other error is."""

    exit_code = 2

    def __init__(self, err: UsageError) -> None:
        hint = f" (see '{err.ctx.command_path} -h')" if err.ctx is not None else ""
        super().__init__(f"{err.format_message()}{hint}")

    def show(self, file: Any = None) -> None:
        err_console.print(f"[bold red]error:[/] {escape(self.format_message())}", markup=True, highlight=False)


class OneLineUsageGroup(typer.core.TyperGroup):
    """The command group: click's usage errors (usage, hint, blank line, message) become one line."""

    def make_context(self, *args: Any, **kwargs: Any) -> ClickContext:
        try:
            return super().make_context(*args, **kwargs)
        except UsageError as err:
            raise _OneLineUsageError(err) from None

    def invoke(self, ctx: ClickContext) -> Any:
        try:
            return super().invoke(ctx)
        except UsageError as err:
            raise _OneLineUsageError(err) from None


class _RichTask(ProgressTask):
    def __init__(self, bar: RichBar, task_id: Any) -> None:
        self._bar, self._id = bar, task_id

    def advance(self, n: int = 1, **fields: Any) -> None:
        info = "  ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in fields.items())
        self._bar.update(self._id, advance=n, info=info)

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is not None:
            # On failure the bar vanishes, so the error stays the one line the user reads.
            self._bar.live.transient = True
        self.close()

    def close(self) -> None:
        self._bar.stop()


class RichProgress(Progress):
    """Rich progress bars with rate and ETA, drawn on stderr so stdout stays machine-readable."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet

    def task(self, description: str, total: int | None = None, *, transient: bool = False) -> ProgressTask:
        bar = RichBar(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TaskProgressColumn(),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[info]}"),
            console=err_console,
            transient=transient,
            disable=self.quiet,
        )
        bar.start()
        return _RichTask(bar, bar.add_task(description, total=total, info=""))

    def log(self, message: str) -> None:
        err_console.print(message)


def resolve_workers(workers: int) -> int:
    import os

    return workers if workers > 0 else (os.cpu_count() or 1)
