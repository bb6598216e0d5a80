"""``labelforge train-generator`` and ``labelforge render``: the data generator (pix2pixHD or OASIS).

Both bodies only parse options into frozen configs and call one library function
(:func:`labelforge.gan.train.train_generator`, :func:`labelforge.gan.render.render_shards`); torch
is imported inside them so ``labelforge --help`` stays fast.
"""

from __future__ import annotations

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
    WorkersOpt,
    console,
    handle_errors,
    resolve_workers,
)

__all__ = ["train_generator", "render", "register"]

AmpOpt = Annotated[str, typer.Option("--amp", help="Autocast dtype on CUDA: bf16 | fp16 | none (the CPU runs fp32).")]


@handle_errors
def train_generator(
    root: Annotated[Path, typer.Argument(help="Dataset root (any layout, see --layout) with photos and masks.")],
    out: OutOpt,
    arch: Annotated[
        str, typer.Option("--arch", help="Generator: pix2pixhd (the paper's) | oasis (SPADE + segmenting D).")
    ] = "pix2pixhd",
    preset: Annotated[
        str,
        typer.Option(
            "--preset", help="Model size and defaults: tiny | 512p | 1024p (pix2pixhd), tiny | cityscapes (oasis)."
        ),
    ] = "tiny",
    epochs: Annotated[int | None, typer.Option("--epochs", help="Epochs in total (default: the preset's).")] = None,
    batch_size: Annotated[
        int | None,
        typer.Option("--batch-size", help="Global batch size, split over torchrun processes (default: the preset's)."),
    ] = None,
    size: Annotated[
        str | None, typer.Option("--size", help="Training resolution HEIGHTxWIDTH, e.g. 64x128 (default: preset).")
    ] = None,
    lr: Annotated[
        float | None, typer.Option("--lr", help="Adam learning rate (default: the preset's, 2e-4 / OASIS 4e-4).")
    ] = None,
    decay_epochs: Annotated[
        int | None, typer.Option("--decay-epochs", min=0, help="Final epochs of linear LR decay (default: half).")
    ] = None,
    vgg_weights: Annotated[
        Path | None, typer.Option("--vgg-weights", help="Local torchvision VGG19 state dict: adds the VGG loss.")
    ] = None,
    split: Annotated[str, typer.Option("--split", help="Dataset split to train on.")] = "train",
    device: DeviceOpt = "auto",
    amp: AmpOpt = "bf16",
    seed: Annotated[int | None, typer.Option("--seed", help="Random seed (weights, order, flips).")] = None,
    workers: WorkersOpt = 2,
    label_space: LabelSpaceOpt = "auto",
    layout: LayoutOpt = "auto",
    resume: ResumeOpt = False,
    overwrite: OverwriteOpt = False,
) -> None:
    """Train a generator (label map -> photo) on a dataset's image/label pairs: pix2pixHD (the paper's,
    default) or OASIS (--arch oasis; renders K different photos per map).

    Writes DIR/generator.pt (every epoch, atomically), DIR/log.jsonl, DIR/samples/epoch-XXX.png
    (label | real | generated) and DIR/run.json. --resume continues from the last finished epoch;
    give the options of the run it continues (only --device, --workers, --amp and --epochs, to train
    longer, may change). For several GPUs: torchrun --nproc-per-node N -m labelforge.cli.app
    train-generator ... (--batch-size is global and must be a multiple of N).

    Example: labelforge train-generator data/mini --out runs/oasis --arch oasis --preset tiny --epochs 10
    """
    from dataclasses import replace

    from ..dataset import open_dataset
    from ..gan.archs import get_arch
    from ..gan.config import parse_size
    from ..gan.train import train_generator as run

    architecture = get_arch(arch)
    gen_cfg, base = architecture.preset(preset)
    given: dict[str, object] = {
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "decay_epochs": decay_epochs,
        "seed": seed,
        "vgg_weights": str(vgg_weights) if vgg_weights else None,
    }
    if size is not None:
        given["height"], given["width"] = parse_size(size)
    given = {k: v for k, v in given.items() if v is not None}
    cfg = replace(base, **given, split=split, device=device, amp_dtype=amp, workers=resolve_workers(workers))
    trainer = architecture.trainer()
    trainer.check(gen_cfg, cfg)  # before the dataset is read
    ds = open_dataset(root, label_space, layout)  # an open dataset stands where the root path did
    res = run(
        ds,
        out,
        gen_cfg,
        cfg,
        label_space=ds.label_space,
        resume=resume,
        overwrite=overwrite,
        progress=RichProgress(),
        trainer=trainer,
    )
    if not res.is_main:
        return
    if res.start_epoch >= res.epochs:
        console.print(f"nothing to do: {out} already holds all {res.epochs} epochs")
        return
    losses = "  ".join(f"{k} {v:.3f}" for k, v in res.losses.items())
    console.print(f"trained epochs {res.start_epoch + 1}..{res.epochs} ({res.steps} steps) in {res.seconds:.1f}s")
    console.print(f"last epoch: {losses}")
    console.print(f"checkpoint: {Path(out) / 'generator.pt'}")


@handle_errors
def render(
    shards: Annotated[Path, typer.Argument(help="Label shard dir (compose's output).")],
    out: OutOpt,
    generator: Annotated[
        Path | None, typer.Option("--generator", "-g", help="Generator run dir or its generator.pt.")
    ] = None,
    oracle: Annotated[
        bool, typer.Option("--oracle", help="Paint with the mini-Cityscapes painter instead of a generator.")
    ] = False,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Label maps per forward pass.", min=1)] = 8,
    device: DeviceOpt = "auto",
    amp: AmpOpt = "bf16",
    preview: Annotated[
        int, typer.Option("--preview", help="Write preview.png with this many label | rendered pairs (0: none).")
    ] = 8,
    seed: Annotated[
        int, typer.Option("--seed", help="Noise seed (OASIS) or painter seed (oracle); per render: seed, index, k.")
    ] = 0,
    renders_per_map: Annotated[
        int,
        typer.Option(
            "--renders-per-map",
            "-k",
            min=1,
            help="K photos per map with different noise (OASIS, oracle); keys get -k<k>.",
        ),
    ] = 1,
    composite: Annotated[
        bool,
        typer.Option(
            "--composite",
            help="Keep the base map's real photo outside the pasted regions (overlay / multi maps): only the pasted"
            " objects are synthesized.",
        ),
    ] = False,
    composite_dilate: Annotated[
        int, typer.Option("--composite-dilate", min=0, help="Pixels around a pasted region rendered in full.")
    ] = 1,
    composite_feather: Annotated[
        int, typer.Option("--composite-feather", min=0, help="Pixels beyond those over which render and photo blend.")
    ] = 2,
    compile_model: Annotated[bool, typer.Option("--compile", help="torch.compile the generator (GPU runs).")] = False,
    channels_last: Annotated[
        bool, typer.Option("--channels-last", help="Run the generator in channels-last memory format.")
    ] = False,
    compress_images: Annotated[
        bool,
        typer.Option(
            "--compress-images",
            help="Deflate the rendered photos (~0.6x the disk, ~23 ms of CPU per 512x1024 image); default raw.",
        ),
    ] = False,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            "-j",
            help="Loader processes (0: all cores). Default: all cores for --oracle, none for a generator"
            " on the CPU (they would take its cores), 2 beside a GPU.",
            min=0,
        ),
    ] = None,
    resume: ResumeOpt = False,
    overwrite: OverwriteOpt = False,
) -> None:
    """Render composed label maps into photos: one output shard per input shard, with the same keys,
    labels, instances and provenance plus the image, at the generator's resolution (pix2pixHD or OASIS,
    read from the checkpoint). --renders-per-map K writes K photos per map (OASIS: the EMA generator
    with noise from seed, index, k). --composite keeps the real photo of each overlay/multi map's base
    outside the pasted objects. Several GPUs: torchrun --nproc-per-node N -m labelforge.cli.app render ...

    Example: labelforge render out/compose --generator runs/oasis --out out/render --renders-per-map 2 --composite
    """
    from ..errors import LabelforgeError
    from ..gan.config import RenderConfig
    from ..gan.render import render_shards

    if (generator is None) != oracle:
        raise LabelforgeError("give --generator DIR or --oracle (exactly one)")
    cfg = RenderConfig(
        batch_size=batch_size,
        device=device,
        amp_dtype=amp,
        workers=None if workers is None else resolve_workers(workers),
        preview=preview,
        seed=seed,
        oracle=oracle,
        compile=compile_model,
        channels_last=channels_last,
        compress_images=compress_images,
        renders_per_map=renders_per_map,
        composite=composite,
        composite_dilate=composite_dilate,
        composite_feather=composite_feather,
    )
    res = render_shards(
        shards, out, cfg, generator=generator, resume=resume, overwrite=overwrite, progress=RichProgress()
    )
    if not res.is_main:
        return
    rate = res.rendered / res.seconds if res.seconds > 0 else 0.0
    console.print(
        f"rendered {res.rendered} of {res.total} samples at {res.height}x{res.width} in {res.seconds:.1f}s"
        f" ({rate:.1f} images/s) -> {out}"
    )
    if res.preview is not None:
        console.print(f"preview: {res.preview}")


def register(app: typer.Typer) -> None:
    app.command("train-generator")(train_generator)
    app.command("render")(render)
