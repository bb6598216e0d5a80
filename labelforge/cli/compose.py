"""``labelforge compose`` (new label maps with rare classes pasted in, into shards) and ``labelforge export``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._common import (
    DATASET_ROOT_HELP,
    LabelSpaceOpt,
    LayoutOpt,
    OutOpt,
    OverwriteOpt,
    ResumeOpt,
    RichProgress,
    SeedOpt,
    WorkersOpt,
    console,
    handle_errors,
    resolve_workers,
)

__all__ = ["compose", "export", "register"]


@handle_errors
def compose(
    root: Annotated[Path, typer.Argument(help=DATASET_ROOT_HELP)],
    out: OutOpt,
    method: Annotated[
        str,
        typer.Option(
            "--method",
            "-m",
            help="overlay (one class), multi (several), reconstruct (from sky/road/building) "
            "or identity (base maps unchanged: the control).",
        ),
    ] = "overlay",
    class_: Annotated[
        list[str] | None, typer.Option("--class", "-c", help="Class to paste (repeatable), e.g. --class wall.")
    ] = None,
    classes: Annotated[
        str | None,
        typer.Option("--classes", help="'auto' (recommendation of --stats) or comma-separated class names."),
    ] = None,
    stats: Annotated[
        Path | None, typer.Option("--stats", help="stats.json written by `labelforge stats` (for --classes auto).")
    ] = None,
    target: Annotated[
        str, typer.Option("--target", help="reconstruct: uniform | inverse | a stats.json to aim at.")
    ] = "uniform",
    count: Annotated[int | None, typer.Option("--count", "-n", help="Number of maps to compose.")] = None,
    ratio: Annotated[
        float | None,
        typer.Option("--ratio", help="Share of composed maps in the final training set: N = R/(1-R) x originals."),
    ] = None,
    split: Annotated[str, typer.Option("--split", help="Split that gives base maps and donors.")] = "train",
    shift: Annotated[
        float, typer.Option("--shift", help="Max horizontal shift of a pasted segment, as a share of the width.")
    ] = 0.0,
    flip: Annotated[bool, typer.Option("--flip", help="Mirror pasted segments in place, half of the time.")] = False,
    protect: Annotated[
        list[str] | None, typer.Option("--protect", help="Class of the base map never painted over (repeatable).")
    ] = None,
    min_area: Annotated[int, typer.Option("--min-area", help="Smallest segment (pixels) used as a donor.")] = 100,
    min_contact: Annotated[
        float, typer.Option("--min-contact", help="Share of a standing object's lowest pixels that must touch ground.")
    ] = 0.8,
    min_visible: Annotated[
        float, typer.Option("--min-visible", help="Share of a segment that must stay visible after occlusion.")
    ] = 0.5,
    retries: Annotated[int, typer.Option("--retries", help="Placement tries per class before it is skipped.")] = 10,
    per_map: Annotated[int, typer.Option("--per-map", help="reconstruct: classes pasted per map.")] = 6,
    base: Annotated[str, typer.Option("--base", help="reconstruct: derived (from a map) or drawn bases.")] = "derived",
    copy_paste: Annotated[
        bool, typer.Option("--copy-paste", help="Also paste the donors' photo pixels (image shards; the baseline).")
    ] = False,
    samples_per_shard: Annotated[int, typer.Option("--samples-per-shard", help="Samples per shard file.")] = 64,
    preview: Annotated[int, typer.Option("--preview", help="Write OUT/preview.png of the first K samples.")] = 0,
    cache_dir: Annotated[
        Path | None,
        typer.Option("--cache-dir", help="Segment index cache (default $LABELFORGE_CACHE or ~/.cache/labelforge)."),
    ] = None,
    seed: SeedOpt = 0,
    workers: WorkersOpt = 0,
    label_space: LabelSpaceOpt = "auto",
    layout: LayoutOpt = "auto",
    overwrite: OverwriteOpt = False,
    resume: ResumeOpt = False,
    skip_bad: Annotated[
        bool,
        typer.Option("--skip-bad", help="Leave out maps that fail to read (listed in the summary and skipped.txt)."),
    ] = False,
) -> None:
    """Compose new label maps in which rare classes appear more often, into HDF5 shards.

    Segments keep their donor position (optionally shifted or flipped), standing objects must touch
    ground, nearer objects occlude farther ones, pasted instances get fresh ids.

    Example: labelforge compose data/mini --out out/wall --method overlay --class wall --ratio 0.5 --preview 8
    """
    from ..compose import ComposeConfig, run_compose

    auto = classes is not None and classes.strip().lower() == "auto"
    names = list(class_ or [])
    if classes is not None and not auto:
        names += [n.strip() for n in classes.split(",") if n.strip()]
    cfg = ComposeConfig(
        root=root,
        out=out,
        method=method,
        classes=tuple(names),
        classes_auto=auto,
        stats=stats,
        target=target,
        count=count,
        ratio=ratio,
        split=split,
        seed=seed,
        workers=resolve_workers(workers),
        shift=shift,
        flip=flip,
        protect=tuple(protect or ()),
        min_area=min_area,
        min_contact=min_contact,
        min_visible=min_visible,
        retries=retries,
        per_map=per_map,
        base=base,
        copy_paste=copy_paste,
        samples_per_shard=samples_per_shard,
        preview=preview,
        cache_dir=cache_dir,
        label_space=label_space,
        layout=layout,
        overwrite=overwrite,
        resume=resume,
        skip_bad=skip_bad,
    )
    res = run_compose(cfg, progress=RichProgress())
    what = ", ".join(res.classes) if res.classes else "none (control)"
    console.print(
        f"[green]composed[/] {res.samples} maps ({res.written} this run) into {res.shards} shard(s) at {res.out}  "
        f"classes: {what}  skipped pastes: {res.skipped}  segments: {res.segments}"
        f"{' (cached index)' if res.index_cached else ''}  {res.seconds:.1f}s"
    )
    if res.fallbacks:
        console.print(f"drawn bases: {res.fallbacks} samples (their map holds no sky, road or building pixel)")
    if res.bad:
        path, problem = res.bad[0]
        console.print(
            f"skipped {len(res.bad)} bad map(s) (listed in {res.out / 'skipped.txt'}); first: {path}: {problem}",
            highlight=False,
        )
    if res.preview is not None:
        console.print(f"preview: {res.preview}")


@handle_errors
def export(
    shards: Annotated[Path, typer.Argument(help="Shard dir written by compose or render.")],
    out: Annotated[Path, typer.Argument(help="Output dataset root.")],
    split: Annotated[str, typer.Option("--split", help="Split to write the samples into.")] = "train",
    layout: Annotated[
        str,
        typer.Option(
            "--layout",
            help="Layout to write: auto (the layout of the dataset the shards came from), cityscapes, "
            "folders, voc or ade20k.",
        ),
    ] = "auto",
    overwrite: OverwriteOpt = False,
    resume: ResumeOpt = False,
) -> None:
    """Write a shard dir as a dataset root in the layout of the dataset it was composed from (or
    --layout): masks with the label space's stored values, photos when the shards carry them, and for
    Cityscapes instanceIds and colour maps. Shard checksums are verified first.

    Example: labelforge export out/wall data/wall-voc --split train --layout voc
    """
    from ..export import ExportConfig, export_shards

    res = export_shards(
        ExportConfig(shards=shards, out=out, split=split, layout=layout, overwrite=overwrite, resume=resume),
        progress=RichProgress(),
    )
    photos = "with photos" if res.with_images else "label maps only"
    where = f"{res.out} ({res.layout} layout)"
    console.print(f"[green]exported[/] {res.samples} samples ({res.written} this run, {photos}) to {where}")


def register(app: typer.Typer) -> None:
    app.command("compose")(compose)
    app.command("export")(export)
