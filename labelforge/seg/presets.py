"""The configuration of ``labelforge train-eval``: one frozen dataclass, filled from a preset plus overrides.

Presets:

* ``tiny`` — ResNet-18, images resized to 128x256, whole-image crops, batch 8, 100 iterations
  (800 images): a run on the mini-Cityscapes takes a few CPU minutes (a smoke test of the
  method, not a result).
* ``fast`` — what ``make demo`` trains 33 times: ResNet-18 at a quarter of its width
  (``resnet18-w0.25``, 1.05 M parameters), 64x128 images, batch 8, lr 0.02, 250 iterations (2000
  images, about 20 s on 2 CPU cores), one evaluation at the end. Calibrated so that on the 64x128
  mini-Cityscapes the frequent classes are learnt and the rare ones are not yet (docs/experiments.md).
* ``paper`` — the setting behind the paper's PSPNet numbers (Liu et al. report 77.31 mIoU with
  traditional augmentation, which matches the PSPNet50 of the ``semseg`` reference code): ResNet-50
  (the paper-era PSPNet101 is one ``--backbone resnet101`` away), full 1024x2048 images, 713x713
  random crops, batch 16, lr 0.01, 200 epochs, sliding-window evaluation with 713 windows.

Example:
    >>> from labelforge.seg.presets import resolve_config
    >>> cfg = resolve_config("tiny", root="data/mini", out="runs/base", epochs=2)
    >>> cfg.backbone, cfg.crop, cfg.epochs
    ('resnet18', (128, 256), 2)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from ..errors import LabelforgeError
from .backbones import parse_backbone

__all__ = [
    "TrainEvalConfig",
    "PRESETS",
    "SCHEDULES",
    "AUGS",
    "EVAL_MODES",
    "SAMPLINGS",
    "resolve_config",
    "config_to_dict",
    "config_from_dict",
]

SCHEDULES = ("mixed", "pretrain-finetune")
AUGS = ("none", "traditional")
EVAL_MODES = ("whole", "slide")
SAMPLINGS = ("uniform", "rcs")


@dataclass(frozen=True)
class TrainEvalConfig:
    """Everything that decides a training run; saved as ``run.json`` and inside every checkpoint."""

    root: str
    out: str
    supp: tuple[str, ...] = ()
    supp_ratio: float | None = None  # None: every sample once per epoch (natural share)
    schedule: str = "mixed"
    pretrain_epochs: int | None = None  # pretrain-finetune only; None: half of the run
    # How originals are drawn: every one once per epoch, or DAFormer's rare-class sampling (a class
    # drawn with p ~ softmax((1 - pixel share) / T), then an image holding it).
    sampling: str = "uniform"
    rcs_temperature: float = 0.01
    rcs_min_pixels: int = 3000  # an image "holds" a class above this many pixels at 1024x2048 (scaled by area)
    rcs_min_crop_ratio: float = 0.5  # re-crop (up to 10 times) until the crop holds this share of rcs_min_pixels
    preset: str = "tiny"
    backbone: str = "resnet18"
    backbone_weights: str | None = None
    size: tuple[int, int] | None = (128, 256)  # every image is first resized to (H, W); None: native size
    crop: tuple[int, int] = (128, 256)
    aug: str = "traditional"
    batch_size: int = 8  # global: split evenly over torchrun processes
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 1e-4
    poly_power: float = 0.9
    epochs: int | None = 8
    iters: int | None = None  # when set, replaces epochs
    eval_every: int = 1
    eval_mode: str = "whole"
    flip: bool = False
    save_predictions: bool = False
    allow_eval_leak: bool = False  # train on --supp dirs made from the val split (metrics.json lists them)
    seed: int = 0
    device: str = "auto"
    workers: int = 2
    label_space: str = "auto"  # a built-in name, a file, or the dataset's own (labelforge.dataset)
    layout: str = "auto"  # of the dataset root (labelforge.layouts)
    log_every: int = 10

    def __post_init__(self) -> None:
        checks = [
            (self.schedule in SCHEDULES, f"--schedule must be one of {', '.join(SCHEDULES)}"),
            (self.aug in AUGS, f"--aug must be one of {', '.join(AUGS)}"),
            (self.eval_mode in EVAL_MODES, f"--eval-mode must be one of {', '.join(EVAL_MODES)}"),
            (self.sampling in SAMPLINGS, f"--sampling must be one of {', '.join(SAMPLINGS)}"),
            (self.rcs_temperature > 0, "--rcs-temperature must be positive"),
            (self.rcs_min_pixels >= 0 and self.rcs_min_crop_ratio >= 0, "--rcs-min-pixels / crop ratio must be >= 0"),
            (self.supp_ratio is None or 0.0 <= self.supp_ratio <= 1.0, "--supp-ratio must lie in [0, 1]"),
            (self.batch_size >= 2, "--batch-size must be at least 2 (batch norm needs two samples)"),
            (self.lr > 0, "--lr must be positive"),
            ((self.epochs is None) != (self.iters is None), "give exactly one of --epochs and --iters"),
            (
                (self.epochs is None or self.epochs >= 1) and (self.iters is None or self.iters >= 1),
                "--epochs / --iters must be at least 1",
            ),
            (self.eval_every >= 1, "--eval-every must be at least 1"),
            (min(self.crop) >= 8, "--crop must be at least 8x8"),
            (self.size is None or min(self.size) >= 8, "--size must be at least 8x8"),
            (self.workers >= 0, "--workers must be >= 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise LabelforgeError(message)
        parse_backbone(self.backbone)  # a bad name stops the run before its folder exists
        if self.schedule == "pretrain-finetune" and not self.supp:
            raise LabelforgeError("--schedule pretrain-finetune needs at least one --supp shard dir")
        if self.supp_ratio and not self.supp:
            raise LabelforgeError("--supp-ratio > 0 needs at least one --supp shard dir")
        if self.pretrain_epochs is not None:
            if self.schedule != "pretrain-finetune":
                raise LabelforgeError("--pretrain-epochs applies to --schedule pretrain-finetune only")
            if self.pretrain_epochs < 1 or (self.epochs is not None and self.pretrain_epochs >= self.epochs):
                raise LabelforgeError("--pretrain-epochs must be at least 1 and leave at least one fine-tune epoch")


PRESETS: dict[str, dict[str, Any]] = {
    "tiny": dict(
        backbone="resnet18",
        size=(128, 256),
        crop=(128, 256),
        batch_size=8,
        lr=0.01,
        epochs=None,
        iters=100,  # 800 images: a few CPU minutes whatever the dataset size
        eval_mode="whole",
    ),
    "fast": dict(
        backbone="resnet18-w0.25",  # a quarter of ResNet-18's channels, output stride 8: 0.83 GFLOP per image
        size=(64, 128),
        crop=(64, 128),
        batch_size=8,
        lr=0.02,
        epochs=None,
        iters=250,  # 2000 images: about 20 s on 2 CPU cores (docs/experiments.md, calibration)
        eval_mode="whole",
        eval_every=1_000_000,  # the final evaluation only: an intermediate one costs a tenth of a run
    ),
    "paper": dict(
        backbone="resnet50",
        size=None,
        crop=(713, 713),
        batch_size=16,
        lr=0.01,
        epochs=200,
        eval_mode="slide",
    ),
}


def resolve_config(preset: str, **overrides: Any) -> TrainEvalConfig:
    """The preset's values, then every override that is not None.

    ``iters`` given without ``epochs`` switches the run to an iteration budget, and vice versa.
    ``size="native"`` means no resize (``size=None`` would mean "the preset's").
    """
    if preset not in PRESETS:
        raise LabelforgeError(f"unknown preset {preset!r}; valid: {', '.join(PRESETS)}")
    given = {k: v for k, v in overrides.items() if v is not None}
    names = {f.name for f in fields(TrainEvalConfig)}
    unknown = set(given) - names
    if unknown:
        raise TypeError(f"unknown config fields: {sorted(unknown)}")
    values: dict[str, Any] = {**PRESETS[preset], "preset": preset}
    if "iters" in given and "epochs" not in given:
        values["epochs"] = None
    if "epochs" in given and "iters" not in given:
        values["iters"] = None
    values.update(given)
    if values.get("size") == "native":
        values["size"] = None
    # Absolute paths, so run.json names the data whatever the working directory of a resume.
    for key in ("root", "out", "backbone_weights"):
        if values.get(key) is not None:
            values[key] = str(Path(values[key]).absolute())
    values["supp"] = tuple(str(Path(p).absolute()) for p in values.get("supp", ()))
    return TrainEvalConfig(**values)


def config_to_dict(cfg: TrainEvalConfig) -> dict[str, Any]:
    """JSON-ready dict (tuples become lists)."""
    d = asdict(cfg)
    for k, v in d.items():
        if isinstance(v, tuple):
            d[k] = list(v)
    return d


def config_from_dict(d: dict[str, Any]) -> TrainEvalConfig:
    """Inverse of :func:`config_to_dict`."""
    values = dict(d)
    for k in ("supp", "size", "crop"):
        if values.get(k) is not None:
            values[k] = tuple(values[k])
    return replace(TrainEvalConfig(root=values.pop("root"), out=values.pop("out")), **values)
