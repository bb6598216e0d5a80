"""``labelforge labelspace init``: draft a label-space file from a dataset's masks."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._common import DATASET_ROOT_HELP, LayoutOpt, RichProgress, WorkersOpt, console, handle_errors, resolve_workers

__all__ = ["init", "register"]

labelspace_app = typer.Typer(
    help="Label-space files: the classes of a dataset (names, ids, colours, evaluated or ignored, groups).",
    no_args_is_help=True,
)


@handle_errors
def init(
    root: Annotated[Path, typer.Argument(help=DATASET_ROOT_HELP)],
    out: Annotated[Path, typer.Option("--out", "-o", help="File to write: .yaml (commented) or .json.")],
    split: Annotated[
        list[str] | None, typer.Option("--split", help="Split whose masks are read (repeatable; default all).")
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="Label space name (default: the root's name).")] = None,
    layout: LayoutOpt = "auto",
    workers: WorkersOpt = 0,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing file.")] = False,
) -> None:
    """Draft a label space from the values found in ROOT's masks (palette colours where the masks have a
    palette), for you to edit: class names, what is evaluated or ignored, things vs stuff, and the
    ground / standing / base groups that compose uses.

    Example: labelforge labelspace init ~/data/ADEChallengeData2016 --out ~/data/ADEChallengeData2016/labelspace.yaml
    """
    from ..labelspace_draft import DraftConfig, draft_label_space

    cfg = DraftConfig(
        root=root,
        out=out,
        layout=layout,
        splits=tuple(split or ()),
        name=name,
        workers=resolve_workers(workers),
        overwrite=overwrite,
    )
    res = draft_label_space(cfg, progress=RichProgress())
    ls = res.label_space
    ignored = [c.name for c in ls.classes if c.train_id == ls.ignore_index]
    colours = "palette of the masks" if res.palette else "default colour map"
    console.print(
        f"[green]wrote[/] {res.out}: {len(ls.classes)} classes from {res.masks} masks, "
        f"{ls.num_classes} evaluated, ignored: {', '.join(ignored) or 'none'}; colours: {colours}"
    )
    missing = [g for g in ("ground", "standing", "base") if not getattr(ls, g)]
    if missing:
        console.print(f"edit the class names and fill the groups {', '.join(missing)} (compose uses them)")


def register(app: typer.Typer) -> None:
    labelspace_app.command("init")(init)
    app.add_typer(labelspace_app, name="labelspace")
