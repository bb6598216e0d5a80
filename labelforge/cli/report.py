"""``labelforge evaluate`` (score prediction PNGs) and ``labelforge report`` (compare runs)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._common import (
    LabelSpaceOpt,
    LayoutOpt,
    OutOpt,
    OverwriteOpt,
    RichProgress,
    WorkersOpt,
    console,
    handle_errors,
    resolve_workers,
)

__all__ = ["register", "evaluate", "report"]


@handle_errors
def evaluate(
    pred_dir: Annotated[Path, typer.Argument(help="Folder of prediction PNGs named '{sample key}*.png' (any depth).")],
    root: Annotated[Path, typer.Argument(help="Dataset root with the ground truth (any layout, see --layout).")],
    out: OutOpt,
    split: Annotated[str, typer.Option("--split", help="Ground-truth split to score against.")] = "val",
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            help="Prediction values: labelIds, trainIds, or auto (the file names when they all say labelIds "
            "or trainIds; else labelIds when a value lies in C..num_ids-1 (Cityscapes 19..33), trainIds "
            "when all lie in 0..C-1 or 255).",
        ),
    ] = "auto",
    allow_missing: Annotated[
        bool, typer.Option("--allow-missing", help="Score only the samples that have a prediction.")
    ] = False,
    label_space: LabelSpaceOpt = "auto",
    layout: LayoutOpt = "auto",
    workers: WorkersOpt = 0,
    overwrite: OverwriteOpt = False,
) -> None:
    """Score a folder of prediction PNGs (from labelforge or any other model) against a split's ground
    truth: per-class IoU, mIoU, pixel accuracy from one confusion matrix, written to OUT/metrics.json.

    Example: labelforge evaluate runs/base/predictions data/mini --split val --out runs/base-eval
    """
    from ..evaluate import EvaluateConfig, evaluate_predictions
    from ..report.tables import metrics_rich_table

    cfg = EvaluateConfig(
        pred_dir=pred_dir,
        root=root,
        out=out,
        split=split,
        format=fmt,
        allow_missing=allow_missing,
        workers=resolve_workers(workers),
        label_space=label_space,
        layout=layout,
        overwrite=overwrite,
    )
    res = evaluate_predictions(cfg, progress=RichProgress())
    title = f"split {split}: {res.num_scored} predictions ({res.format})"
    console.print(metrics_rich_table(res.summary, title))
    if res.missing:
        console.print(f"[yellow]{len(res.missing)} ground-truth samples had no prediction and were skipped[/]")
    console.print(f"wrote {res.metrics_path}")


@handle_errors
def report(
    runs: Annotated[list[Path], typer.Argument(help="Run folders (holding metrics.json) or metrics.json files.")],
    out: OutOpt,
    baseline: Annotated[
        str | None,
        typer.Option("--baseline", help="Run (or seed group) the changes are measured against; default the first."),
    ] = None,
    title: Annotated[str, typer.Option("--title", help="Title of the report and figures.")] = "labelforge report",
    name: Annotated[
        list[str] | None, typer.Option("--name", help="Name of each run, in order (repeat once per run).")
    ] = None,
    no_aggregate: Annotated[
        bool, typer.Option("--no-aggregate", help="List seed runs one by one instead of as mean ± std.")
    ] = False,
    no_plots: Annotated[bool, typer.Option("--no-plots", help="Write the tables only, no PNG figures.")] = False,
    overwrite: OverwriteOpt = False,
) -> None:
    """Compare runs like the paper's Tables 1-2: mIoU and per-class IoU with changes against a baseline,
    augmented classes highlighted; seeds of one setting averaged; figures of per-class IoU and (for a
    supp-ratio sweep) mIoU against ratio. Writes OUT/report.md, OUT/report.json and PNGs.

    Example: labelforge report runs/base runs/overlay runs/recon --baseline base --out reports/main
    """
    from ..report import ReportConfig, write_report
    from ..report.tables import per_class_rich_table, summary_rich_table

    cfg = ReportConfig(
        runs=tuple(runs),
        out=out,
        names=tuple(name or ()),
        baseline=baseline,
        title=title,
        aggregate=not no_aggregate,
        plots=not no_plots,
        overwrite=overwrite,
    )
    res = write_report(cfg, progress=RichProgress())
    console.print(summary_rich_table(res.report))
    console.print(per_class_rich_table(res.report))
    console.print("wrote " + ", ".join(str(f) for f in res.files))


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate)
    app.command("report")(report)
