"""``labelforge train-eval``: train PSPNet on originals (+ generated shards) and score it on val."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from ._common import (
    DeviceOpt,
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

__all__ = ["register", "parse_hw"]


def parse_hw(text: str | None, option: str, allow_native: bool = False) -> tuple[int, int] | None | str:
    """``"128x256"`` -> ``(128, 256)``; ``None`` stays None; ``"native"`` -> ``"native"`` where allowed."""
    from ..errors import LabelforgeError

    if text is None:
        return None
    if allow_native and text.strip().lower() == "native":
        return "native"
    parts = text.lower().replace("*", "x").split("x")
    try:
        h, w = (int(p) for p in parts) if len(parts) == 2 else (int(parts[0]),) * 2
    except ValueError:
        raise LabelforgeError(f"{option} {text!r}: expected HxW (e.g. 512x1024) or one number") from None
    return h, w


def train_eval_cmd(
    root: Annotated[Path, typer.Argument(help="Dataset root in any layout (see --layout) with train and val splits.")],
    out: OutOpt,
    supp: Annotated[
        list[Path] | None,
        typer.Option("--supp", help="Image shard dir of supplementary samples (render output); repeatable."),
    ] = None,
    supp_ratio: Annotated[
        float | None,
        typer.Option(
            "--supp-ratio",
            min=0.0,
            max=1.0,
            help="Share of supplementary samples among those the model sees (default: every sample once per epoch).",
        ),
    ] = None,
    schedule: Annotated[
        str,
        typer.Option(help="mixed (one mixed training set) | pretrain-finetune (supplementary first, then originals)."),
    ] = "mixed",
    pretrain_epochs: Annotated[
        int | None,
        typer.Option("--pretrain-epochs", help="pretrain-finetune: epochs on supplementary data (default: half)."),
    ] = None,
    sampling: Annotated[
        str,
        typer.Option(
            help="How originals are drawn: uniform (each once per epoch) | rcs (rare-class sampling, DAFormer)."
        ),
    ] = "uniform",
    rcs_temperature: Annotated[
        float, typer.Option("--rcs-temperature", help="rcs: softmax temperature T of p ~ exp((1 - f_c) / T).")
    ] = 0.01,
    rcs_min_pixels: Annotated[
        int,
        typer.Option("--rcs-min-pixels", help="rcs: pixels an image needs to hold a class, counted at 1024x2048."),
    ] = 3000,
    preset: Annotated[
        str,
        typer.Option(help="tiny (ResNet-18, CPU minutes) | fast (quarter-width ResNet-18, 64x128, ~20 CPU s) | paper."),
    ] = "tiny",
    backbone: Annotated[
        str | None,
        typer.Option(help="resnet18 | resnet34 | resnet50 | resnet101, + -wWIDTH, -os16 (default: the preset's)."),
    ] = None,
    backbone_weights: Annotated[
        Path | None,
        typer.Option("--backbone-weights", help="Local torchvision ResNet state dict (nothing is downloaded)."),
    ] = None,
    size: Annotated[
        str | None, typer.Option(help="Resize every image to HxW first, or 'native' (default: the preset's).")
    ] = None,
    crop: Annotated[
        str | None, typer.Option(help="Training crop HxW; also the slide window (default: preset).")
    ] = None,
    aug: Annotated[str, typer.Option(help="none | traditional (scale 0.5-2, rotate 10 deg, flip, crop).")] = (
        "traditional"
    ),
    batch_size: Annotated[
        int | None, typer.Option("--batch-size", help="Global batch size, split over torchrun processes.")
    ] = None,
    lr: Annotated[float | None, typer.Option(help="Base learning rate (heads get 10x; poly decay 0.9).")] = None,
    epochs: Annotated[int | None, typer.Option(help="Training epochs (default: the preset's).")] = None,
    iters: Annotated[int | None, typer.Option(help="Training iterations instead of epochs.")] = None,
    eval_every: Annotated[
        int | None, typer.Option("--eval-every", help="Score val every N epochs and at the end (default: preset).")
    ] = None,
    eval_mode: Annotated[
        str | None, typer.Option("--eval-mode", help="whole | slide (sliding crop windows; default: preset).")
    ] = None,
    flip: Annotated[bool, typer.Option("--flip", help="Average with horizontally flipped predictions.")] = False,
    save_predictions: Annotated[
        bool,
        typer.Option("--save-predictions", help="Write val predictions as labelIds PNGs to RUN_DIR/predictions/."),
    ] = False,
    allow_eval_leak: Annotated[
        bool,
        typer.Option(
            "--allow-eval-leak",
            help="Train on --supp dirs composed from ROOT's val split or rendered by a generator trained on it "
            "(refused otherwise; metrics.json lists them).",
        ),
    ] = False,
    seed: SeedOpt = 0,
    device: DeviceOpt = "auto",
    workers: WorkersOpt = 2,
    label_space: LabelSpaceOpt = "auto",
    layout: LayoutOpt = "auto",
    overwrite: OverwriteOpt = False,
    resume: ResumeOpt = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Train PSPNet on ROOT's train split (+ --supp shards), evaluate on val, write RUN_DIR/metrics.json.

    Example: labelforge train-eval data/mini --supp out/render-wall --supp-ratio 0.5 --preset tiny --out runs/wall

    Rare-class sampling instead of new data: labelforge train-eval data/mini --sampling rcs --out runs/rcs

    Several processes: torchrun --nproc-per-node 2 --no-python labelforge train-eval data/mini --out runs/ddp
    """
    from ..seg.presets import resolve_config
    from ..seg.train import train_eval

    size_hw = parse_hw(size, "--size", allow_native=True)
    cfg = resolve_config(
        preset,
        root=root,
        out=out,
        supp=tuple(supp or ()),
        supp_ratio=supp_ratio,
        schedule=schedule,
        pretrain_epochs=pretrain_epochs,
        sampling=sampling,
        rcs_temperature=rcs_temperature,
        rcs_min_pixels=rcs_min_pixels,
        backbone=backbone,
        backbone_weights=backbone_weights,
        crop=parse_hw(crop, "--crop"),
        aug=aug,
        batch_size=batch_size,
        lr=lr,
        epochs=epochs,
        iters=iters,
        eval_every=eval_every,
        eval_mode=eval_mode,
        flip=flip,
        save_predictions=save_predictions,
        allow_eval_leak=allow_eval_leak,
        seed=seed,
        device=device,
        workers=resolve_workers(workers),
        label_space=label_space,
        layout=layout,
        size=size_hw,  # None: the preset's; "native": no resize
    )
    main = int(os.environ.get("RANK", "0")) == 0
    metrics = train_eval(cfg, overwrite=overwrite, resume=resume, progress=RichProgress(quiet=quiet or not main))
    if main:
        _print_metrics(metrics, Path(cfg.out))


def _print_metrics(metrics: dict, out: Path) -> None:
    from rich.table import Table

    augmented = set(metrics.get("augmented_classes", []))
    table = Table(title=f"val IoU ({out})")
    table.add_column("class")
    table.add_column("IoU", justify="right")
    for name, iou in metrics["per_class_iou"].items():
        mark = " *" if name in augmented else ""
        table.add_row(name + mark, "-" if iou is None else f"{100 * iou:.2f}")
    table.add_row("[bold]mIoU[/]", f"[bold]{100 * (metrics['miou'] or 0):.2f}[/]")
    console.print(table)
    share = metrics["data"].get("supp_share_seen", 0.0)
    console.print(
        f"pixel accuracy {100 * (metrics['pixel_accuracy'] or 0):.2f}  supplementary share seen {100 * share:.1f}%"
        + ("  (* augmented class)" if augmented else "")
    )


def register(app: typer.Typer) -> None:
    app.command("train-eval")(handle_errors(train_eval_cmd))
