"""Frozen configuration of the pix2pixHD generator, its training and batch rendering.

These dataclasses import nothing heavy, so the command line can build and validate them before
torch is loaded. Every field is saved beside the output it produced (checkpoint, ``run.json``,
the rendered shards' ``config``), so a result always says how it was made.

Example:
    >>> from labelforge.gan.config import GeneratorConfig
    >>> GeneratorConfig().input_nc(num_ids=34)
    35
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from ..errors import LabelforgeError

__all__ = ["GeneratorConfig", "TrainConfig", "RenderConfig", "parse_size", "config_from_dict"]


@dataclass(frozen=True)
class GeneratorConfig:
    """Architecture of generator and discriminators (defaults: pix2pixHD's published 512p model).

    ``n_local_enhancers`` > 0 wraps the global generator (built with ``ngf * 2**n_local_enhancers``
    filters) in that many LocalEnhancer stages, as pix2pixHD's ``--netG local``.
    """

    ngf: int = 64
    n_downsample: int = 4
    n_blocks: int = 9
    n_local_enhancers: int = 0
    n_blocks_local: int = 3
    ndf: int = 64
    n_layers_d: int = 3
    num_d: int = 2
    output_nc: int = 3

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            low = 0 if f.name in ("n_local_enhancers", "n_blocks", "n_blocks_local") else 1
            if not isinstance(v, int) or v < low:
                raise LabelforgeError(f"generator config: {f.name} must be an integer >= {low}, got {v!r}")

    def input_nc(self, num_ids: int) -> int:
        """Input channels: one-hot of every label id plus the instance boundary map."""
        return num_ids + 1

    @property
    def size_multiple(self) -> int:
        """Height and width must be multiples of this so down- and upsampling meet again."""
        return 2 ** (self.n_downsample + self.n_local_enhancers)


@dataclass(frozen=True)
class TrainConfig:
    """One training run. ``height``/``width`` is the training (and rendering) resolution."""

    preset: str = "tiny"
    epochs: int = 10
    decay_epochs: int = -1  # epochs of linear LR decay at the end; -1: half of ``epochs`` (pix2pixHD)
    batch_size: int = 4
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    height: int = 64
    width: int = 128
    lambda_feat: float = 10.0
    vgg_weights: str | None = None
    split: str = "train"
    flip: bool = True
    device: str = "auto"
    amp_dtype: str = "bf16"  # autocast dtype on CUDA (bf16 | fp16 | none); the CPU always runs fp32
    seed: int = 0
    workers: int = 0
    log_every: int = 10
    num_samples: int = 4  # rows of the per-epoch sample grid

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise LabelforgeError("train config: epochs and batch size must be at least 1")
        if self.height < 8 or self.width < 8:
            raise LabelforgeError(f"train config: size {self.height}x{self.width} is too small")
        if self.amp_dtype not in ("bf16", "fp16", "none"):
            raise LabelforgeError(f"train config: amp dtype must be bf16, fp16 or none, got {self.amp_dtype!r}")
        if self.lr <= 0 or self.lambda_feat < 0:
            raise LabelforgeError("train config: lr must be positive and lambda_feat non-negative")

    @property
    def decay(self) -> int:
        return self.epochs // 2 if self.decay_epochs < 0 else min(self.decay_epochs, self.epochs)

    def lr_at(self, epoch: int) -> float:
        """Learning rate of 0-based ``epoch``: constant, then linearly down to ``lr / decay`` at the last."""
        if self.decay == 0:
            return self.lr
        return self.lr * min(1.0, (self.epochs - epoch) / self.decay)


@dataclass(frozen=True)
class RenderConfig:
    """One render run: label shards in, image shards out (K per map with ``renders_per_map``)."""

    batch_size: int = 8
    device: str = "auto"
    amp_dtype: str = "bf16"
    # Loader processes; None: one per core for the oracle (it paints in the loader), in-process for a
    # generator on the CPU (measured: 2 processes cost ~15%, taking its cores), 2 beside a GPU.
    workers: int | None = None
    preview: int = 8
    seed: int = 0  # only the oracle painter draws random numbers (per sample, from (seed, index))
    oracle: bool = False
    compile: bool = False
    channels_last: bool = False
    # Rendered photos are stored raw unless asked: deflate would save ~40% of the disk but cost ~23 ms
    # of one core per 512x1024 image, so one writer thread could not keep up with a GPU.
    compress_images: bool = False
    encoders: int = 0  # threads that encode samples for the writer; 0: 1 on the CPU, up to 8 beside a GPU
    # Photos per map, each with its own noise (OASIS, the oracle); a deterministic generator refuses K > 1.
    renders_per_map: int = 1
    # Keep the base map's real photo outside the pasted regions (overlay / multi maps): the render is
    # taken within composite_dilate px of a pasted pixel and blended over composite_feather px more.
    composite: bool = False
    composite_dilate: int = 1
    composite_feather: int = 2

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise LabelforgeError("render config: batch size must be at least 1")
        if self.renders_per_map < 1:
            raise LabelforgeError("render config: renders per map must be at least 1")
        if self.composite_dilate < 0 or self.composite_feather < 0:
            raise LabelforgeError("render config: composite dilate and feather must be >= 0 pixels")
        if self.amp_dtype not in ("bf16", "fp16", "none"):
            raise LabelforgeError(f"render config: amp dtype must be bf16, fp16 or none, got {self.amp_dtype!r}")
        if self.preview < 0:
            raise LabelforgeError("render config: preview count must be >= 0")
        if self.encoders < 0:
            raise LabelforgeError("render config: encoders must be >= 0 (0: automatic)")


def parse_size(text: str) -> tuple[int, int]:
    """``"64x128"`` -> ``(64, 128)`` (height x width)."""
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise LabelforgeError(f"size {text!r} is not HEIGHTxWIDTH, e.g. 64x128") from None
    if h < 8 or w < 8:
        raise LabelforgeError(f"size {text!r} is too small (at least 8x8)")
    return h, w


def config_from_dict(cls: type, d: dict[str, Any]) -> Any:
    """Rebuild a config dataclass from ``asdict`` output, ignoring keys this version does not know."""
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in d.items() if k in names})
