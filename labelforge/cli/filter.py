"""``labelforge filter``: mark the rendered pixels a segmenter trained on real photos cannot read as ignore."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ._common import DeviceOpt, OutOpt, OverwriteOpt, ResumeOpt, RichProgress, console, handle_errors

if TYPE_CHECKING:
    from ..quality.filter import FilterResult

__all__ = ["register"]


@handle_errors
def filter_cmd(
    shards: Annotated[Path, typer.Argument(help="Image shard dir (render's output, or compose --copy-paste's).")],
    out: OutOpt,
    segmenter: Annotated[
        Path, typer.Option("--segmenter", "-s", help="Finished train-eval run trained on real photos only (the judge).")
    ],
    factor: Annotated[
        float,
        typer.Option("--factor", help="Drop a pixel whose loss exceeds FACTOR x its class's mean loss on real photos."),
    ] = 1.25,
    max_real: Annotated[
        int | None,
        typer.Option("--max-real", min=1, help="Class means from the first N training photos only (default: all)."),
    ] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Photos per forward pass.")] = 8,
    cache_dir: Annotated[
        Path | None,
        typer.Option("--cache-dir", help="Class-loss cache (default $LABELFORGE_CACHE or ~/.cache/labelforge)."),
    ] = None,
    preview: Annotated[int, typer.Option("--preview", min=0, help="Samples in OUT/preview.png (0: none).")] = 6,
    device: DeviceOpt = "auto",
    overwrite: OverwriteOpt = False,
    resume: ResumeOpt = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Filter noisy rendered pixels, FreeMask-style: the segmenter's mean per-pixel loss of each class on its
    real training photos sets the bar; a rendered pixel whose loss exceeds FACTOR times its class's mean is
    marked ignore (a label id with train id 255). Writes a new shard dir (the input is untouched),
    OUT/filter.json and the dropped pixels of each class.

    Example: labelforge filter out/render --segmenter runs/base --out out/filtered --factor 1.25
    """
    from ..quality.filter import FilterConfig, run_filter

    cfg = FilterConfig(
        shards=str(shards),
        segmenter=str(segmenter),
        out=str(out),
        factor=factor,
        max_real=max_real,
        batch_size=batch_size,
        device=device,
        cache_dir=None if cache_dir is None else str(cache_dir),
        preview=preview,
    )
    res = run_filter(cfg, resume=resume, overwrite=overwrite, progress=RichProgress(quiet=quiet))
    _print(res, factor)


def _print(res: FilterResult, factor: float) -> None:
    from rich.table import Table

    from ..quality.run import fmt

    table = Table(title=f"filtered pixels ({res.samples} samples, factor {factor:g})")
    for col in ("class", "pixels", "dropped", "share", "mean loss (real)", "threshold"):
        table.add_column(col, justify="left" if col == "class" else "right")
    for name, c in res.classes.items():
        thr = "not judged" if c["threshold"] is None else fmt(c["threshold"])
        table.add_row(name, str(c["pixels"]), str(c["dropped"]), f"{100 * c['share']:.1f}%", fmt(c["mean_loss"]), thr)
    share = res.dropped / res.pixels if res.pixels else 0.0
    table.add_row("all", str(res.pixels), str(res.dropped), f"{100 * share:.1f}%", "", "", style="bold")
    console.print(table)
    if res.unjudged:
        console.print(f"kept whole (absent from the real photos, no mean to judge by): {', '.join(res.unjudged)}")
    note = " (cached)" if res.class_loss_cached else ""
    console.print(f"class means{note}; {res.filtered} samples filtered now in {res.seconds:.1f}s")
    console.print(f"written: {res.out} (filter.json" + (", preview.png)" if res.preview else ")"))


def register(app: typer.Typer) -> None:
    app.command("filter")(filter_cmd)
