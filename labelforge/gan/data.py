"""Image/label pairs of a dataset root for generator training: resized, optionally flipped.

Items are small uint8/int32 arrays (the one-hot input is built later, on the device). Label and
instance maps are resized with nearest neighbour, photos with area averaging. Whether sample ``i``
is flipped in epoch ``e`` depends only on ``(seed, e, i)``, so runs repeat whatever the worker count.

Example:
    >>> from labelforge.gan.data import PairDataset  # doctest: +SKIP
    >>> ds = PairDataset("data/mini", size=(64, 128)); item = ds[0]  # doctest: +SKIP
    >>> item["label"].shape, item["image"].shape  # doctest: +SKIP
    ((64, 128), (64, 128, 3))
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from ..dataset import DatasetSource, open_dataset
from ..errors import InputError
from ..labelspace import LabelSpace

__all__ = ["PairDataset", "resize_label", "resize_image", "collate"]


def resize_label(arr: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of an (H, W) map to ``size`` = (height, width), dtype kept."""
    h, w = size
    if arr.shape == (h, w):
        return arr
    if arr.dtype == np.int32:  # OpenCV's resize does not take int32; ids < 2**31 pass through float64 exactly
        return cv2.resize(arr.astype(np.float64), (w, h), interpolation=cv2.INTER_NEAREST).astype(np.int32)
    return cv2.resize(arr, (w, h), interpolation=cv2.INTER_NEAREST)


def resize_image(arr: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Area (down) or bicubic (up) resize of an (H, W, 3) uint8 photo."""
    h, w = size
    if arr.shape[:2] == (h, w):
        return arr
    interp = cv2.INTER_AREA if h <= arr.shape[0] else cv2.INTER_CUBIC
    return cv2.resize(arr, (w, h), interpolation=interp)


class PairDataset(torch.utils.data.Dataset):
    """Samples of one split that have a photo: ``{"label", "instance", "image", "index"}``."""

    def __init__(
        self,
        root: str | Path | DatasetSource,
        size: tuple[int, int],
        label_space: LabelSpace | str = "auto",
        split: str = "train",
        flip: bool = False,
        seed: int = 0,
    ) -> None:
        self.source = open_dataset(root, label_space)
        self.samples = self.source.samples(split)
        if self.samples[0].image is None:
            raise InputError(self.source.root, f"split {split!r} has no photos; the generator needs them")
        self.size, self.flip, self.seed, self.epoch = size, flip, seed, 0

    def set_epoch(self, epoch: int) -> None:
        """Flips differ per epoch; call before each epoch's DataLoader iteration."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> dict[str, Any]:
        s = self.samples[i]
        image, label = self.source.read_pair(s)  # a photo of another size than its mask is refused
        label = resize_label(label, self.size)
        inst = self.source.read_instance(s)
        inst = label.astype(np.int32) if inst is None else resize_label(inst, self.size)
        image = resize_image(image, self.size)
        if self.flip and np.random.default_rng([self.seed, self.epoch, i]).random() < 0.5:
            label, inst, image = label[:, ::-1], inst[:, ::-1], image[:, ::-1]
        return {
            "label": np.ascontiguousarray(label),
            "instance": np.ascontiguousarray(inst),
            "image": np.ascontiguousarray(image),
            "index": i,
        }


def collate(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack array fields into tensors; keep everything else as lists."""
    out: dict[str, Any] = {}
    for k in items[0]:
        vals = [it[k] for it in items]
        if isinstance(vals[0], np.ndarray):
            out[k] = torch.from_numpy(np.stack(vals))
        elif isinstance(vals[0], int):
            out[k] = torch.tensor(vals, dtype=torch.int64)
        else:
            out[k] = vals
    return out
