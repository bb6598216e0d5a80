"""``labelforge check``: validate a Cityscapes-layout dataset root."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._common import RichProgress, WorkersOpt, console, handle_errors, resolve_workers


@handle_errors
def check(
    root: Annotated[Path, typer.Argument(help="Dataset root (holds gtFine/ and, optionally, leftImg8bit/).")],
    split: Annotated[
        list[str] | None, typer.Option("--split", help="Split to check (repeatable; default all).")
    ] = None,
    shallow: Annotated[bool, typer.Option("--shallow", help="Only pair file names; do not decode the PNGs.")] = False,
    workers: WorkersOpt = 0,
) -> None:
    """Check a dataset root: every photo has its label map, every PNG decodes with the right dtype,
    channels and size, label ids lie in the label table, instance ids agree with label ids.

    Example: labelforge check ~/data/cityscapes --split train --split val
    """
    from ..check import check_dataset

    res = check_dataset(root, split, deep=not shallow, workers=resolve_workers(workers), progress=RichProgress())
    for s, n in res.samples.items():
        parts = [
            "photos" if res.with_images[s] else "no photos",
            "instances" if res.with_instances[s] else "no instances",
        ]
        console.print(f"[green]ok[/] {s}: {n} samples ({', '.join(parts)})")


def register(app: typer.Typer) -> None:
    app.command("check")(check)
