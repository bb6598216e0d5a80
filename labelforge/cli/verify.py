"""``labelforge verify``: check an output folder (shard dir, run dir, evaluate output) is whole."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from ._common import console, err_console, handle_errors


@handle_errors
def verify(
    path: Annotated[
        Path,
        typer.Argument(
            help="Output folder: shard dir, train-eval or train-generator run, evaluate output, experiment."
        ),
    ],
) -> None:
    """Check a labelforge output folder and list every problem, one line each (file: problem), exit 2 if
    any. Shard dirs (compose, render, filter): manifest, checksums, per-sample shapes and label ids,
    photos after render. Run dirs (train-eval, train-generator): run.json, checkpoint, log, metrics.
    Evaluate outputs: metrics.json. Experiment folders: every stage finished, and each shard and run folder
    among them checked as above.

    Example: labelforge verify out/render && labelforge verify runs/base && labelforge verify demo-out/experiment
    """
    from ..verify import verify_dir

    res = verify_dir(path)
    for p in res.problems:
        err_console.print(f"[bold red]error:[/] {escape(str(p))}", markup=True, highlight=False)
    if not res.ok:
        err_console.print(f"{res.path}: {res.kind}, {len(res.problems)} problem(s)", highlight=False)
        raise typer.Exit(2)
    console.print(f"[green]ok[/] {escape(str(res.path))}: {res.kind}" + (f", {res.summary}" if res.summary else ""))


def register(app: typer.Typer) -> None:
    app.command("verify")(verify)
