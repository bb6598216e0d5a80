"""``labelforge check``: validate a Cityscapes-layout dataset root."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._common import (
    DATASET_ROOT_HELP,
    LabelSpaceOpt,
    LayoutOpt,
    RichProgress,
    WorkersOpt,
    console,
    handle_errors,
    resolve_workers,
)


@handle_errors
def check(
    root: Annotated[Path, typer.Argument(help=DATASET_ROOT_HELP)],
    split: Annotated[
        list[str] | None, typer.Option("--split", help="Split to check (repeatable; default all).")
    ] = None,
    shallow: Annotated[bool, typer.Option("--shallow", help="Only pair file names; do not decode the PNGs.")] = False,
    workers: WorkersOpt = 0,
    layout: LayoutOpt = "auto",
    label_space: LabelSpaceOpt = "auto",
) -> None:
    """Check a dataset root: every photo has its mask and every mask its photo, every file decodes with
    the right dtype, channels and size, mask values lie in the label space, instance ids agree with
    label ids (Cityscapes).

    Example: labelforge check ~/data/VOC2012 --split train --split val
    """
    from ..check import check_dataset

    res = check_dataset(
        root,
        split,
        deep=not shallow,
        workers=resolve_workers(workers),
        layout=layout,
        label_space=label_space,
        progress=RichProgress(),
    )
    console.print(f"{res.root}: {res.layout} layout, label space {res.label_space}")
    for s, n in res.samples.items():
        parts = [
            "photos" if res.with_images[s] else "no photos",
            "instances" if res.with_instances[s] else "no instances",
        ]
        console.print(f"[green]ok[/] {s}: {n} samples ({', '.join(parts)})")


def register(app: typer.Typer) -> None:
    app.command("check")(check)
