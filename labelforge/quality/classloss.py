"""Each class's mean per-pixel loss of a segmenter on real photos: the yardstick ``labelforge filter`` holds
rendered pixels against (FreeMask, Yang et al., NeurIPS 2023).

The loss of a pixel is the cross-entropy of the segmenter's class scores against the pixel's train id,
the scores computed as train-eval's validation does (photo resized bilinearly to the run's input size,
scores upsampled bilinearly to the label map's size), so no label is resized. A class's mean is taken
over all of its pixels in the split (pixel-weighted, as FreeMask sums loss and pixel count over the
whole set), ignored pixels left out.

A forward pass over a whole training split is the costly part of a filter, and every filter with the
same judge needs the same table, so it is cached under ``cache_dir/filter/<fingerprint>.json``. The
fingerprint covers the checkpoint's bytes, the dataset root and split, and every photo and mask file
(name, size, modification time), so a retrained judge or a touched file measures again.

Example:
    >>> import torch
    >>> logits = torch.tensor([[[[2.0]], [[0.0]]]])  # (B=1, K=2, H=1, W=1): class 0 scores 2
    >>> round(float(pixel_loss(logits, torch.tensor([[[0]]]))[0, 0, 0]), 4)  # log(1 + e^-2)
    0.1269
"""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..progress import NullProgress, Progress

__all__ = ["CLASS_LOSS_VERSION", "ClassLoss", "pixel_loss", "real_samples_fingerprint", "load_or_measure"]

CLASS_LOSS_VERSION = 1


def pixel_loss(logits: torch.Tensor, train_ids: torch.Tensor, ignore_index: int = 255) -> torch.Tensor:
    """(B, K, H, W) class scores and (B, H, W) train ids -> (B, H, W) float32 cross-entropy, 0 where ignored."""
    return F.cross_entropy(logits.float(), train_ids.long(), ignore_index=ignore_index, reduction="none")


@dataclass
class ClassLoss:
    """Per train id: pixels seen and their summed loss; the mean is what the filter's thresholds scale."""

    names: list[str]  # class names in train-id order
    pixels: np.ndarray  # (K,) int64
    loss_sum: np.ndarray  # (K,) float64
    samples: int = 0
    meta: dict[str, Any] = field(default_factory=dict)  # fingerprint, root, split, checkpoint sha256

    @classmethod
    def empty(cls, names: list[str], meta: dict[str, Any] | None = None) -> ClassLoss:
        k = len(names)
        return cls(list(names), np.zeros(k, np.int64), np.zeros(k, np.float64), 0, dict(meta or {}))

    def add(self, loss: np.ndarray, train_ids: np.ndarray, ignore_index: int = 255) -> None:
        """Accumulate a (..., H, W) loss map over its (..., H, W) train ids (ignored pixels left out)."""
        valid = train_ids != ignore_index
        ids = train_ids[valid].astype(np.int64)
        k = len(self.names)
        self.pixels += np.bincount(ids, minlength=k)[:k]
        self.loss_sum += np.bincount(ids, weights=loss[valid].astype(np.float64), minlength=k)[:k]

    @property
    def mean(self) -> np.ndarray:
        """(K,) mean loss per class; NaN for a class with no pixel in the real photos."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.pixels > 0, self.loss_sum / np.maximum(self.pixels, 1), np.nan)

    def thresholds(self, factor: float) -> np.ndarray:
        """(K,) ``factor`` x each class's mean; +inf for a class the real photos lack (it cannot be judged)."""
        mean = self.mean
        return np.where(np.isnan(mean), np.inf, factor * np.nan_to_num(mean))

    def to_dict(self) -> dict[str, Any]:
        mean = self.mean
        classes = {
            n: {"pixels": int(p), "loss_sum": float(s), "mean_loss": None if np.isnan(m) else float(m)}
            for n, p, s, m in zip(self.names, self.pixels, self.loss_sum, mean, strict=True)
        }
        return {"version": CLASS_LOSS_VERSION, **self.meta, "samples": self.samples, "classes": classes}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ClassLoss:
        names = list(d["classes"])
        pixels = np.array([d["classes"][n]["pixels"] for n in names], np.int64)
        loss_sum = np.array([d["classes"][n]["loss_sum"] for n in names], np.float64)  # exact: JSON keeps floats
        meta = {k: v for k, v in d.items() if k not in ("version", "samples", "classes")}
        return cls(names, pixels, loss_sum, int(d["samples"]), meta)


def real_samples_fingerprint(checkpoint_sha256: str, root: Path, split: str, samples: list[Any], ls_fp: str) -> str:
    """Hash of everything the table depends on: the judge's weights, the label space and the real files."""
    h = hashlib.sha256()
    h.update(json.dumps([CLASS_LOSS_VERSION, checkpoint_sha256, str(root.resolve()), split, ls_fp]).encode())
    for s in samples:
        for p in (s.image, s.label):
            st = Path(p).stat()
            h.update(f"{Path(p).name}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:24]


def _same_shape_groups(pairs: list[tuple[np.ndarray, np.ndarray]]) -> list[list[tuple[np.ndarray, np.ndarray]]]:
    """Consecutive (photo, label) pairs of one label size, so each group is one forward pass."""
    groups: list[list[tuple[np.ndarray, np.ndarray]]] = []
    for pair in pairs:
        if groups and groups[-1][0][1].shape == pair[1].shape:
            groups[-1].append(pair)
        else:
            groups.append([pair])
    return groups


def measure(seg: Any, ds: Any, samples: list[Any], batch_size: int, progress: Progress, meta: dict) -> ClassLoss:
    """The class loss table of ``samples`` (real photos of ``ds``) under the segmenter ``seg``."""
    from .segmenter import resize_photos

    ls = seg.label_space
    table = ClassLoss.empty(ls.class_names, meta)
    lut = ls.id_to_train_id
    with ThreadPoolExecutor(4) as pool, progress.task("class loss on real photos", total=len(samples)) as task:
        for start in range(0, len(samples), batch_size):
            chunk = samples[start : start + batch_size]
            for group in _same_shape_groups(list(pool.map(ds.read_pair, chunk))):
                # Photos go to the segmenter's input size first, so one group stacks whatever their size.
                images = np.stack([resize_photos(im[None], seg.size)[0] for im, _ in group])
                train_ids = lut[np.stack([lab for _, lab in group])]
                logits = seg.logits(images, train_ids.shape[1:])
                loss = pixel_loss(logits, torch.from_numpy(train_ids).to(logits.device), ls.ignore_index)
                table.add(loss.cpu().numpy(), train_ids, ls.ignore_index)
            table.samples += len(chunk)
            task.advance(len(chunk))
    return table


def load_or_measure(
    seg: Any,
    ds: Any,
    split: str,
    samples: list[Any],
    *,
    checkpoint_sha256: str,
    cache_dir: Path,
    batch_size: int,
    progress: Progress | None = None,
) -> tuple[ClassLoss, bool]:
    """The class loss table from the cache when it matches, else measured (and cached); returns (table, cached).

    A cache folder that cannot be written only costs the forward pass next time.
    """
    progress = progress or NullProgress()
    fp = real_samples_fingerprint(checkpoint_sha256, Path(ds.root), split, samples, seg.label_space.fingerprint)
    path = Path(cache_dir) / "filter" / f"{fp}.json"
    if path.is_file():
        try:
            cached = ClassLoss.from_dict(json.loads(path.read_text()))
            if cached.meta.get("fingerprint") == fp and cached.names == seg.label_space.class_names:
                return cached, True
        except (OSError, ValueError, KeyError, TypeError):
            pass  # a damaged cache file is measured again below
    meta = {"fingerprint": fp, "root": str(ds.root), "split": split, "checkpoint_sha256": checkpoint_sha256}
    table = measure(seg, ds, samples, batch_size, progress, meta)
    try:
        from ..outputs import atomic_write_text

        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(table.to_dict(), indent=2) + "\n")
    except OSError as exc:
        progress.log(f"class loss not cached ({path.parent}: {exc.strerror or exc})")
    return table, False
