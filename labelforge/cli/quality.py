"""``labelforge quality``: segmentation consistency and feature distance of rendered photos."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ._common import DeviceOpt, OutOpt, OverwriteOpt, RichProgress, console, handle_errors

if TYPE_CHECKING:
    from ..quality.run import QualityResult

__all__ = ["register"]


@handle_errors
def quality(
    shards: Annotated[Path, typer.Argument(help="Image shard dir (render's output).")],
    out: OutOpt,
    segmenter: Annotated[
        Path, typer.Option("--segmenter", "-s", help="Finished train-eval run dir trained on real photos.")
    ],
    real: Annotated[
        Path | None,
        typer.Option("--real", help="Dataset root of the real photos (default: the segmenter's training root)."),
    ] = None,
    real_split: Annotated[str, typer.Option("--real-split", help="Split of the real photos.")] = "val",
    inception_weights: Annotated[
        Path | None,
        typer.Option(
            "--inception-weights",
            help="Local state dict of torchvision's inception_v3: report FID. Without it, a Frechet distance on "
            "the segmenter's backbone features (labelled as such). Nothing is downloaded.",
        ),
    ] = None,
    max_images: Annotated[
        int | None, typer.Option("--max-images", min=2, help="Score only the first N rendered samples.")
    ] = None,
    max_real: Annotated[int | None, typer.Option("--max-real", min=2, help="Use only the first N real photos.")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Photos per forward pass.")] = 8,
    device: DeviceOpt = "auto",
    overwrite: OverwriteOpt = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Measure rendered photos with a segmenter trained on real data (the SPADE/OASIS protocol): per-class
    IoU of its predictions against the label maps they were rendered from (augmented classes and the
    rest), and a feature distance to real photos. Writes OUT/quality.json.

    Example: labelforge quality out/render --segmenter runs/base --out out/quality
    """
    from ..quality.run import QualityConfig, measure_quality

    cfg = QualityConfig(
        shards=str(shards),
        segmenter=str(segmenter),
        out=str(out),
        real=None if real is None else str(real),
        real_split=real_split,
        inception_weights=None if inception_weights is None else str(inception_weights),
        max_images=max_images,
        max_real=max_real,
        batch_size=batch_size,
        device=device,
    )
    res = measure_quality(cfg, overwrite=overwrite, progress=RichProgress(quiet=quiet))
    _print(res)


def _print(res: QualityResult) -> None:
    from rich.table import Table

    from ..quality.run import fmt

    c, fd, r = res.consistency, res.feature_distance, res.resolution
    table = Table(title=f"render quality ({res.samples} samples)")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for name in c["augmented_classes"]:
        table.add_row(f"IoU {name} (augmented)", fmt(c["per_class_iou"].get(name)))
    table.add_row("mIoU augmented classes", fmt(c["augmented_miou"]))
    table.add_row("mIoU other classes", fmt(c["rest_miou"]))
    table.add_row("mIoU all classes", fmt(c["miou"]))
    table.add_row("pixel accuracy", fmt(c["pixel_accuracy"]))
    table.add_row("FID" if fd["kind"] == "fid" else "segmenter-feature FD (not FID)", fmt(fd["value"], 2))
    console.print(table)
    console.print(f"labels scored at {r['labels'][0]}x{r['labels'][1]}; segmenter input {r['segmenter_input']}")
    console.print(f"feature distance: {fd['label']}; {fd['rendered']} rendered vs {fd['real']} real photos")
    console.print(f"written: {Path(res.out) / 'quality.json'}")


def register(app: typer.Typer) -> None:
    app.command("quality")(quality)
