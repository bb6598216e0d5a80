"""``labelforge stats``: class frequencies of dataset splits and shard dirs, IoU correlation, what to augment."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ._common import (
    LabelSpaceOpt,
    LayoutOpt,
    OverwriteOpt,
    RichProgress,
    WorkersOpt,
    console,
    handle_errors,
)

if TYPE_CHECKING:
    from ..stats import StatsResult

__all__ = ["stats", "register", "print_result"]


@handle_errors
def stats(
    sources: Annotated[
        list[Path], typer.Argument(help="Dataset roots (any layout) and/or shard dirs (with manifest.json).")
    ],
    split: Annotated[
        list[str] | None, typer.Option("--split", help="Split of each dataset root (repeatable; default train).")
    ] = None,
    iou: Annotated[
        Path | None,
        typer.Option(
            "--iou", help="Per-class IoU: train-eval's metrics.json, a JSON {class: iou} or a CSV 'name,iou'."
        ),
    ] = None,
    all_ids: Annotated[
        bool, typer.Option("--all-ids", help="Report every label id, not only the evaluated classes.")
    ] = False,
    rare_threshold: Annotated[
        float,
        typer.Option("--rare-threshold", help="A class is rare when it appears in fewer than this share of images."),
    ] = 0.25,
    weak_threshold: Annotated[
        float | None,
        typer.Option("--weak-threshold", help="A class is weak when its IoU (0..1) is below this; default mean IoU."),
    ] = None,
    max_classes: Annotated[
        int, typer.Option("--max-classes", help="Recommend at most this many classes, weakest first (0: all).", min=0)
    ] = 0,
    instances: Annotated[
        bool,
        typer.Option("--instances/--no-instances", help="Read instance maps to count instances per class."),
    ] = True,
    figure: Annotated[bool, typer.Option("--figure/--no-figure", help="Write stats.png beside stats.json.")] = True,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Folder for stats.json, stats.csv and stats.png.")
    ] = None,
    overwrite: OverwriteOpt = False,
    skip_bad: Annotated[
        bool,
        typer.Option("--skip-bad", help="Leave out maps that fail to read (listed in the summary and skipped.txt)."),
    ] = False,
    workers: WorkersOpt = 0,
    label_space: LabelSpaceOpt = "auto",
    layout: LayoutOpt = "auto",
) -> None:
    """Class statistics: per class and source, the share of images it appears in and of labelled
    pixels it covers, mean area, instances per image; with --iou, the correlation of appearance with
    IoU; and the rare (and weak) classes to augment, printed as compose options.

    Example: labelforge stats data/mini --split train --split val --iou runs/base/metrics.json --out out/stats
    """
    from ..stats import StatsConfig, run_stats

    cfg = StatsConfig(
        sources=tuple(sources),
        splits=tuple(split or ("train",)),
        label_space=label_space,
        layout=layout,
        all_ids=all_ids,
        instances=instances,
        iou=iou,
        rare_threshold=rare_threshold,
        weak_threshold=weak_threshold,
        max_classes=max_classes,
        workers=workers,
        out=out,
        overwrite=overwrite,
        figure=figure,
        skip_bad=skip_bad,
    )
    res = run_stats(cfg, progress=RichProgress())
    print_result(res, out)


def _pct(v: float | None, digits: int = 1) -> str:
    return "-" if v is None else f"{100 * v:.{digits}f}%"


def _pixels(n: int) -> str:
    return f"{n / 1e6:.1f} Mpx" if n >= 100_000 else f"{n} px"


def print_result(res: StatsResult, out: Path | None = None) -> None:
    """The rich table (sorted by appearance frequency, flagged rows highlighted) and the summary lines."""
    from rich.table import Table

    ref = res.reference
    others = [s.name for s in res.sources if s.name != ref]
    with_inst = any(s.has_instances for s in res.sources if s.name == ref)
    table = Table(title=f"class statistics ({res.label_space.name}, reference {ref})", title_justify="left")
    table.add_column("class", no_wrap=True)
    table.add_column("id", justify="right")
    table.add_column(f"{ref}\nappear", justify="right")
    table.add_column("pixels", justify="right")
    table.add_column("mean area", justify="right")
    if with_inst:
        table.add_column("inst/img", justify="right")
    for name in others:
        table.add_column(f"{name}\nappear", justify="right")
        table.add_column("shift pp", justify="right")
    if res.iou is not None:
        table.add_column("IoU", justify="right")
    table.add_column("flags", no_wrap=True)

    for c in res.by_appearance():
        r = c.sources[ref]
        row = [c.cls.name, str(c.cls.id), _pct(r.appearance_freq), _pct(r.pixel_freq, 2), _pct(r.mean_area_frac, 2)]
        if with_inst:
            row.append("-" if r.instances_per_image is None else f"{r.instances_per_image:.2f}")
        for name in others:
            d = c.shift[name]["appearance_freq"]
            row += [_pct(c.sources[name].appearance_freq), f"{100 * d:+.1f}"]
        if res.iou is not None:
            row.append(_pct(c.iou))
        flags = [f for f, on in (("rare", c.rare), ("weak", c.weak), ("augment", c.recommended)) if on]
        row.append(" ".join(flags))
        style = "bold red" if c.recommended else "yellow" if c.rare else "magenta" if c.weak else None
        table.add_row(*row, style=style)
    console.print(table)

    for s in res.sources:
        cnt = s.counts
        ignored = s.ignored_pixels / cnt.pixels if cnt.pixels else 0.0
        console.print(
            f"{s.name} ({s.source.kind}): {cnt.images} images, {_pixels(cnt.pixels)}, "
            f"{_pct(ignored)} ignored (non-evaluated ids)",
            highlight=False,
        )
    if res.correlation is not None:
        c = res.correlation
        if c.pearson is None or c.spearman is None:
            console.print(f"correlation: undefined ({c.n} classes with IoU and varying values needed, at least 3)")
        else:
            console.print(
                f"appearance frequency vs IoU over {c.n} classes: Pearson r = {c.pearson:.3f}, "
                f"Spearman rho = {c.spearman:.3f}; mean IoU {_pct(res.mean_iou)}",
                highlight=False,
            )
    absent = [c.cls.name for c in res.classes if c.evaluated and c.rare and c.sources[ref].images == 0]
    if absent:
        console.print(
            f"rare but absent from {ref}, so never recommended (no segments to paste): {', '.join(absent)}",
            highlight=False,
        )
    rec = res.recommendation
    if rec.classes:
        console.print(f"[bold]recommended classes to augment[/] ({rec.rule}):", highlight=False)
        console.print(f"  {rec.args}", markup=False, highlight=False)
    else:
        console.print(f"no class to augment ({rec.rule}); try a higher --rare-threshold", highlight=False)
    if res.skipped:
        where = f" (listed in {out}/skipped.txt)" if out is not None else ""
        path, problem = res.skipped[0]
        console.print(f"skipped {len(res.skipped)} bad map(s){where}; first: {path}: {problem}", highlight=False)
    if out is not None:
        console.print(f"wrote {out}/stats.json (compose reads it with --classes auto --stats)", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("stats")(stats)
