"""``labelforge quality``: how faithful and how real rendered photos are, measured with a segmenter.

Segmentation consistency (the protocol of SPADE and OASIS): a segmenter trained on real photos
segments every rendered photo of an image shard dir, and the prediction is scored against the
label map the photo was rendered from, in one confusion matrix over the whole dir. Photos are
resized bilinearly to the segmenter's input size; its class probabilities are upsampled
bilinearly to the label maps' size, and the label maps are scored as stored (render already
resized them, nearest neighbour, to the generator's resolution), so no label is resized here.
IoU is reported per class, as the mean over the shard config's ``classes`` (the pasted,
augmented ones) and over the rest.

Feature distance between the rendered photos and real photos (by default the validation split of
the segmenter's own dataset): FID when Inception v3 weights are given as a local file, otherwise
the same Fréchet distance on the segmenter backbone's pooled features, which is labelled as such
and is not comparable with FID. Nothing is downloaded.

Example:
    >>> from labelforge.quality.run import QualityConfig, measure_quality  # doctest: +SKIP
    >>> cfg = QualityConfig(shards="out/render", segmenter="runs/base", out="out/quality")  # doctest: +SKIP
    >>> measure_quality(cfg).consistency["augmented_miou"]  # doctest: +SKIP
    0.41
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._lock import output_lock
from ..errors import InputError, LabelforgeError
from ..outputs import atomic_write_text, check_output, mark_finished, prepare_output
from ..progress import NullProgress, Progress

__all__ = ["QualityConfig", "QualityResult", "measure_quality", "QUALITY_SCHEMA", "split_miou"]

QUALITY_SCHEMA = "labelforge.quality/1"


@dataclass(frozen=True)
class QualityConfig:
    shards: str
    segmenter: str
    out: str
    real: str | None = None  # dataset root of the real photos; None: the segmenter's training root
    real_split: str = "val"
    inception_weights: str | None = None
    max_images: int | None = None  # first N rendered samples (None: all)
    max_real: int | None = None
    batch_size: int = 8
    device: str = "auto"

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise LabelforgeError("quality: batch size must be at least 1")
        for name in ("max_images", "max_real"):
            v = getattr(self, name)
            if v is not None and v < 2:
                raise LabelforgeError(f"quality: {name.replace('_', '-')} must be at least 2 (a covariance needs two)")


@dataclass(frozen=True)
class QualityResult:
    out: Path
    samples: int
    consistency: dict[str, Any]
    feature_distance: dict[str, Any]
    resolution: dict[str, Any] = field(default_factory=dict)


def split_miou(per_class: dict[str, float | None], augmented: list[str]) -> tuple[float | None, float | None]:
    """(mean IoU of the augmented classes, of the others), each over classes with a valid IoU."""

    def mean(names: list[str]) -> float | None:
        vals = [v for n in names if (v := per_class.get(n)) is not None]
        return float(np.mean(vals)) if vals else None

    aug = [n for n in per_class if n in set(augmented)]
    return mean(aug), mean([n for n in per_class if n not in set(augmented)])


def _open_inputs(cfg: QualityConfig, device: Any) -> tuple[Any, Any, list[Any], Any]:
    """Shards, segmenter, real samples and (optional) Inception, all checked before anything is written."""
    from ..dataset import open_dataset
    from ..shards import ShardSet
    from .frechet import InceptionFeatures
    from .segmenter import load_segmenter

    ss = ShardSet(cfg.shards)
    if not ss.has_image:
        raise InputError(ss.path, "shard dir holds label maps only; give rendered shards (render's output)")
    if len(ss) < 2:
        raise InputError(ss.path, "shard dir holds fewer than 2 samples")
    seg = load_segmenter(cfg.segmenter, device)
    if ss.label_space.fingerprint != seg.label_space.fingerprint:
        raise InputError(
            ss.path, f"shards use label space {ss.label_space.name!r}, the segmenter {seg.label_space.name!r}"
        )
    real_root = Path(cfg.real) if cfg.real is not None else seg.root
    real = open_dataset(real_root, seg.label_space).samples(cfg.real_split, require_images=True)
    if len(real) < 2:
        raise InputError(real_root, f"split {cfg.real_split!r} has fewer than 2 photos")
    real = real[: cfg.max_real] if cfg.max_real else real
    inception = InceptionFeatures(cfg.inception_weights, device) if cfg.inception_weights else None
    return ss, seg, real, inception


def _score_renders(ss: Any, seg: Any, inception: Any, cfg: QualityConfig, progress: Progress) -> tuple[Any, Any]:
    """One confusion matrix over the rendered samples, and the feature statistics of their photos."""
    from ..seg.metrics import ConfusionMatrix
    from .frechet import FeatureStats

    ls = seg.label_space
    cm = ConfusionMatrix(ls.num_classes, ls.ignore_index)
    stats = FeatureStats()
    n = min(len(ss), cfg.max_images or len(ss))
    done = 0
    with progress.task("segment renders", total=n) as task:
        for j, entry in enumerate(ss.shards):
            for start in range(0, int(entry["count"]), cfg.batch_size):
                stop = min(start + cfg.batch_size, int(entry["count"]), start + n - done)
                if stop <= start:
                    break
                rows = ss.read_rows(j, start, stop, ("label", "image"))
                labels, images = rows["label"], rows["image"]
                pred, feats = seg.predict(images, labels.shape[1:])
                cm.update(ls.id_to_train_id[labels], pred)
                stats.add(inception(images) if inception is not None else feats)
                done += stop - start
                task.advance(stop - start)
    ss.close()
    return cm, stats


def _real_stats(real: list[Any], seg: Any, inception: Any, cfg: QualityConfig, progress: Progress) -> Any:
    from cityscapes_tools import io as csio

    from .frechet import FeatureStats
    from .segmenter import resize_photos

    stats = FeatureStats()
    with progress.task("real photos", total=len(real)) as task:
        for start in range(0, len(real), cfg.batch_size):
            batch = real[start : start + cfg.batch_size]
            # Photos of one split may differ in size; each is brought to the segmenter's size first.
            size = seg.size or csio.read_image(batch[0].image).shape[:2]
            images = np.stack([resize_photos(csio.read_image(s.image)[None], size)[0] for s in batch])
            stats.add(inception(images) if inception is not None else seg.embed(images))
            task.advance(len(batch))
    return stats


def measure_quality(cfg: QualityConfig, *, overwrite: bool = False, progress: Progress | None = None) -> QualityResult:
    """Score the rendered shards of ``cfg`` and write ``quality.json`` into ``cfg.out``."""
    with output_lock(cfg.out, "quality"):
        return _measure(cfg, overwrite, progress)


def _measure(cfg: QualityConfig, overwrite: bool, progress: Progress | None) -> QualityResult:
    import torch

    from .._runtime import resolve_device
    from ..seg.metrics import metrics_summary, to_jsonable
    from .frechet import frechet_distance

    progress = progress or NullProgress()
    check_output(cfg.out, overwrite=overwrite, resumable=False)
    device = resolve_device(cfg.device)
    ss, seg, real, inception = _open_inputs(cfg, device)
    out = prepare_output(cfg.out, overwrite=overwrite)
    cm, fake_stats = _score_renders(ss, seg, inception, cfg, progress)
    real_stats = _real_stats(real, seg, inception, cfg, progress)

    summary = metrics_summary(cm, seg.label_space.class_names)
    augmented = [str(c) for c in ss.config.get("classes", []) or []]
    aug_miou, rest_miou = split_miou(summary["per_class_iou"], augmented)
    consistency = {
        "miou": summary["miou"],
        "pixel_accuracy": summary["pixel_accuracy"],
        "augmented_classes": augmented,
        "augmented_miou": aug_miou,
        "rest_miou": rest_miou,
        "per_class_iou": summary["per_class_iou"],
        "confusion_matrix": summary["confusion_matrix"],
    }
    fid = inception is not None
    feature_distance = {
        "kind": "fid" if fid else "segmenter_fd",
        "label": "FID (torchvision Inception v3 pool features)"
        if fid
        else f"Frechet distance on the segmenter's backbone features ({seg.feature_name}); not FID",
        "value": frechet_distance(fake_stats, real_stats),
        "dims": fake_stats.dims,
        "rendered": fake_stats.n,
        "real": real_stats.n,
        "real_root": str(Path(cfg.real) if cfg.real else seg.root),
        "real_split": cfg.real_split,
        "inception_weights": inception and str(inception.path),
        "input_size": [299, 299] if fid else (list(seg.size) if seg.size else "native"),
    }
    resolution = {
        "labels": [ss.height, ss.width],
        "segmenter_input": list(seg.size) if seg.size else "native",
        "scoring": "photos resized bilinearly to the segmenter input; class probabilities upsampled bilinearly "
        "to the label maps' size; label maps scored as stored (not resized)",
    }
    result = QualityResult(out, fake_stats.n, consistency, feature_distance, resolution)
    doc = {
        "schema": QUALITY_SCHEMA,
        "shards": str(ss.path.resolve()),
        "shard_method": ss.method,
        "renderer": (ss.config.get("render") or {}).get("renderer"),
        "segmenter": str(seg.run.resolve()),
        "segmenter_backbone": seg.backbone,
        "segmenter_epoch": seg.epoch,
        "samples": result.samples,
        "resolution": resolution,
        "consistency": consistency,
        "feature_distance": feature_distance,
        "config": asdict(cfg),
        "torch_version": torch.__version__,
    }
    atomic_write_text(out / "quality.json", json.dumps(to_jsonable(doc), indent=2, allow_nan=False) + "\n")
    mark_finished(out, {"samples": result.samples})
    return result


def fmt(v: float | None, digits: int = 3) -> str:
    """A figure for the printed table; '-' where there is none."""
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"
