"""``labelforge synth``: write the procedural mini-Cityscapes (the embedded default dataset)."""

from __future__ import annotations

import re
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer

from ..errors import LabelforgeError
from ._common import OverwriteOpt, ResumeOpt, RichProgress, SeedOpt, WorkersOpt, console, handle_errors, resolve_workers

__all__ = ["register", "parse_size"]

_SIZE_RE = re.compile(r"^\s*(\d+)\s*[xX]\s*(\d+)\s*$")


def parse_size(text: str, minimum: int = 32) -> tuple[int, int]:
    """``"256x512"`` -> ``(256, 512)`` (height, width); a bad string raises a one-line LabelforgeError."""
    m = _SIZE_RE.match(text)
    if m is None:
        raise LabelforgeError(f"--size {text!r}: expected HEIGHTxWIDTH, e.g. 256x512")
    h, w = int(m[1]), int(m[2])
    if h < minimum or w < minimum:
        raise LabelforgeError(f"--size {text!r}: both sides must be at least {minimum} pixels")
    return h, w


def register(app: typer.Typer) -> None:
    @app.command("synth")
    @handle_errors
    def synth(
        out: Annotated[Path, typer.Argument(help="Dataset root to create (Cityscapes layout).", show_default=False)],
        train: Annotated[int, typer.Option("--train", min=0, help="Number of training samples.")] = 300,
        val: Annotated[int, typer.Option("--val", min=0, help="Number of validation samples.")] = 100,
        size: Annotated[str, typer.Option("--size", help="Image size HEIGHTxWIDTH.")] = "256x512",
        seed: SeedOpt = 0,
        workers: WorkersOpt = 0,
        overwrite: OverwriteOpt = False,
        resume: ResumeOpt = False,
        preview: Annotated[
            bool, typer.Option("--preview/--no-preview", help="Write OUT/preview.png: photos beside colour labels.")
        ] = True,
    ) -> None:
        """Write a procedural mini-Cityscapes: street scenes with photos, labelIds, instanceIds and colour maps
        in the genuine Cityscapes layout, with a Cityscapes-like long tail of rare classes.

        Example: labelforge synth data/mini --train 300 --val 100 --size 256x512 --seed 0
        """
        from cityscapes_tools.synth.generate import SynthConfig, generate_dataset
        from cityscapes_tools.synth.generate import preview as write_preview

        from ..outputs import mark_finished, prepare_output

        height, width = parse_size(size)
        if train + val == 0:
            raise LabelforgeError("--train and --val are both 0: nothing to generate")
        cfg = SynthConfig(train=train, val=val, height=height, width=width, seed=seed)
        root = prepare_output(out, overwrite=overwrite, resume=resume)
        progress = RichProgress()
        bar: list[Any] = []

        def advance(n: int) -> None:
            # The bar (and its refresh thread) starts only once the worker processes are forked.
            if not bar:
                bar.append(progress.task("synth", total=cfg.train + cfg.val))
            if n:
                bar[0].advance(n)

        try:
            info = generate_dataset(
                root, **asdict(cfg), workers=resolve_workers(workers), progress_callback=advance, resume=resume
            )
        finally:
            if bar:
                bar[0].close()
        preview_path = write_preview(root, root / "preview.png") if preview else None
        mark_finished(root, {"command": "synth", "config": info["config"], "counts": info["counts"]})
        rate = f", {info['samples_per_min']:.0f} samples/min" if info["samples_per_min"] else ""
        console.print(
            f"wrote {info['written']} samples ({info['skipped']} kept from before) to [bold]{root}[/] "
            f"in {info['seconds']:.1f} s{rate}"
        )
        console.print(f"splits: train {cfg.train}, val {cfg.val}; size {height}x{width}; seed {seed}")
        if preview_path is not None:
            console.print(f"preview: {preview_path}")
