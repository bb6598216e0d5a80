"""Training and validation data for PSPNet: originals, image shards, paired transforms, the mixing sampler.

* :class:`TrainData` concatenates the originals of a dataset root (labelIds mapped to trainIds)
  and any number of image shard dirs; it is indexed by ``(index, seed)`` pairs so every sample's
  augmentation depends on the run seed and its position in the epoch alone, not on worker count,
  process count or interruptions.
* :class:`MixSampler` draws each epoch with an exact share of supplementary samples, cycling
  through each source in shuffled order, and hands every torchrun process its own slice.
* :class:`PairTransform` is the paper's "traditional" augmentation (random scale 0.5-2.0, rotation
  within +-10 degrees, horizontal flip, crop): images bilinear, labels nearest, label padding 255,
  image padding with the mean colour (zero after normalisation).

Images leave the workers as uint8 tensors; normalisation happens on the training device.

Example:
    >>> from labelforge.seg.data import MixSampler
    >>> s = MixSampler(n_orig=4, n_supp=4, seed=0)
    >>> s.set_epoch(0, ratio=0.5, length=8)
    >>> sum(i >= 4 for i, _ in s)
    4
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from cityscapes_tools.layout import SamplePaths

from ..dataset import read_pair
from ..labelspace import LabelSpace
from ..shards import ShardSet

__all__ = [
    "MEAN",
    "STD",
    "PairTransform",
    "TrainData",
    "ValData",
    "MixSampler",
    "normalize",
    "epoch_length",
]

# ImageNet statistics, as torchvision ResNet weights expect.
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
_MEAN_PIXEL = tuple(round(255 * m) for m in MEAN)


def normalize(images: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) uint8 -> float, ImageNet-normalised, on the tensor's own device."""
    mean = torch.tensor(MEAN, device=images.device).view(1, 3, 1, 1) * 255
    std = torch.tensor(STD, device=images.device).view(1, 3, 1, 1) * 255
    return (images.float() - mean) / std


def _resize_pair(image: np.ndarray, label: np.ndarray, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    if image.shape[:2] != (h, w):
        image = cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR)
    if label.shape != (h, w):
        label = cv2.resize(label, (w, h), interpolation=cv2.INTER_NEAREST)
    return image, label


@dataclass(frozen=True)
class PairTransform:
    """Resize to ``size`` (if set), then augment (``traditional``) and crop to ``crop``.

    With ``aug="none"`` the only randomness is the crop position (none at all when ``crop`` equals
    the image size).
    """

    size: tuple[int, int] | None
    crop: tuple[int, int]
    aug: str = "traditional"
    scale: tuple[float, float] = (0.5, 2.0)
    max_rotation: float = 10.0
    ignore_index: int = 255

    def __call__(self, image: np.ndarray, label: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        if self.size is not None:
            image, label = _resize_pair(image, label, *self.size)
        if self.aug == "traditional":
            s = rng.uniform(*self.scale)
            h, w = label.shape
            image, label = _resize_pair(image, label, max(1, round(h * s)), max(1, round(w * s)))
            angle = rng.uniform(-self.max_rotation, self.max_rotation)
            h, w = label.shape
            m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
            image = cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR, borderValue=_MEAN_PIXEL)
            label = cv2.warpAffine(
                label, m, (w, h), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=self.ignore_index
            )
            if rng.random() < 0.5:
                image, label = image[:, ::-1], label[:, ::-1]
        return self._crop(image, label, rng)

    def _crop(self, image: np.ndarray, label: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        ch, cw = self.crop
        h, w = label.shape
        ph, pw = max(ch - h, 0), max(cw - w, 0)
        if ph or pw:  # pad bottom/right: image with the mean colour, label with ignore
            image = cv2.copyMakeBorder(image, 0, ph, 0, pw, cv2.BORDER_CONSTANT, value=_MEAN_PIXEL)
            label = cv2.copyMakeBorder(label, 0, ph, 0, pw, cv2.BORDER_CONSTANT, value=self.ignore_index)
            h, w = label.shape
        y = int(rng.integers(0, h - ch + 1))
        x = int(rng.integers(0, w - cw + 1))
        return image[y : y + ch, x : x + cw], label[y : y + ch, x : x + cw]


def _to_tensors(image: np.ndarray, label: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    img = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))  # (3, H, W) uint8
    return img, torch.from_numpy(label.astype(np.int64))


class TrainData(Dataset):
    """Originals (indices ``0..n_orig-1``) followed by the samples of every shard dir.

    Items are indexed by ``(index, seed)`` (see :class:`MixSampler`) and are dicts
    ``image`` (3, h, w) uint8, ``label`` (h, w) int64 train ids, ``supp`` bool.

    ``supp_size`` (H, W), when set, brings every supplementary sample to that size before the
    transform (image bilinear, label nearest): a generator renders at its own resolution (512x1024
    for ``512p``), and at native input size its objects would otherwise appear at another scale
    than the originals'.
    """

    def __init__(
        self,
        originals: Sequence[SamplePaths],
        shards: Sequence[ShardSet],
        ls: LabelSpace,
        transform: PairTransform,
        supp_size: tuple[int, int] | None = None,
    ) -> None:
        self.originals = list(originals)
        self.shards = list(shards)
        self.ls = ls
        self.transform = transform
        self.supp_size = supp_size
        self.n_orig = len(self.originals)
        self._starts = np.cumsum([self.n_orig] + [len(s) for s in self.shards]).tolist()

    def __len__(self) -> int:
        return self._starts[-1]

    @property
    def n_supp(self) -> int:
        return len(self) - self.n_orig

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """(image (H, W, 3) uint8 RGB, label (H, W) uint8 train ids) of sample ``index``, untransformed."""
        if index < self.n_orig:
            image, ids = read_pair(self.originals[index], self.ls)  # any layout; sizes checked
        else:
            k = int(np.searchsorted(self._starts, index, side="right")) - 1
            item = self.shards[k][index - self._starts[k]]
            image, ids = item["image"], item["label"]
            if self.supp_size is not None:
                image, ids = _resize_pair(image, ids, *self.supp_size)
        return image, self.ls.id_to_train_id[ids]

    def __getitem__(self, key: tuple[int, int]) -> dict[str, torch.Tensor | bool]:
        index, seed = key
        image, label = self.load(index)
        image, label = self.transform(image, label, np.random.default_rng(seed))
        img, lab = _to_tensors(image, label)
        return {"image": img, "label": lab, "supp": index >= self.n_orig}


class ValData(Dataset):
    """Validation samples: the image resized to ``size`` (uint8 tensor), the label at its native size."""

    def __init__(self, samples: Sequence[SamplePaths], ls: LabelSpace, size: tuple[int, int] | None) -> None:
        self.samples = list(samples)
        self.ls = ls
        self.size = size

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> dict[str, object]:
        s = self.samples[i]
        image, ids = read_pair(s, self.ls)
        label = self.ls.id_to_train_id[ids]
        if self.size is not None and image.shape[:2] != self.size:
            image = cv2.resize(image, (self.size[1], self.size[0]), interpolation=cv2.INTER_LINEAR)
        img, lab = _to_tensors(image, label)
        return {"image": img, "label": lab, "key": s.key, "city": s.city}


def epoch_length(n_orig: int, n_supp: int, ratio: float | None) -> int:
    """Samples per epoch: every original once, plus supplementary draws making up ``ratio`` of the epoch.

    ``ratio=None`` means the natural concatenation (every sample once); ``ratio=1`` an epoch over the
    supplementary samples alone.
    """
    if ratio is None:
        return n_orig + n_supp
    if ratio >= 1.0 or n_orig == 0:
        return n_supp
    return max(1, round(n_orig / (1.0 - ratio)))


class MixSampler(Sampler):
    """Yields ``(dataset index, augmentation seed)`` with an exact supplementary share per epoch.

    Indices ``< n_orig`` are originals, the rest supplementary. Each source is drawn through
    consecutive random permutations, so nothing repeats before its source is exhausted. The epoch's
    global order is fixed by ``(seed, epoch)``; process ``rank`` of ``world`` takes positions
    ``rank, rank + world, ...`` (like DistributedSampler), so the union of the processes' batches
    is the same whatever the process count.
    """

    def __init__(self, n_orig: int, n_supp: int, seed: int, rank: int = 0, world: int = 1) -> None:
        self.n_orig, self.n_supp, self.seed, self.rank, self.world = n_orig, n_supp, seed, rank, world
        self.epoch, self.ratio, self.length = 0, 0.0, n_orig

    def set_epoch(self, epoch: int, ratio: float, length: int) -> None:
        """Configure the next pass: ``length`` global samples (a multiple of ``world``), ``ratio`` supplementary."""
        if length % self.world:
            raise ValueError(f"epoch length {length} is not a multiple of the process count {self.world}")
        self.epoch, self.ratio, self.length = epoch, ratio, length

    def supp_count(self) -> int:
        """Supplementary draws in the configured epoch (all processes together)."""
        n = round(self.ratio * self.length)
        return 0 if self.n_supp == 0 else (self.length if self.n_orig == 0 else n)

    @staticmethod
    def _draw(n: int, k: int, rng: np.random.Generator) -> np.ndarray:
        if k == 0:
            return np.zeros(0, np.int64)
        reps = math.ceil(k / n)
        return np.concatenate([rng.permutation(n) for _ in range(reps)])[:k]

    def global_order(self) -> tuple[np.ndarray, np.ndarray]:
        """(indices, seeds) of the whole epoch, every process together."""
        rng = np.random.default_rng([self.seed, self.epoch, 0x5A3])
        k_supp = self.supp_count()
        idx = np.concatenate(
            [self._draw(self.n_orig, self.length - k_supp, rng), self.n_orig + self._draw(self.n_supp, k_supp, rng)]
        )
        idx = idx[rng.permutation(self.length)]
        seeds = rng.integers(0, 2**62, size=self.length)
        return idx, seeds

    def __iter__(self) -> Iterator[tuple[int, int]]:
        idx, seeds = self.global_order()
        for pos in range(self.rank, self.length, self.world):
            yield int(idx[pos]), int(seeds[pos])

    def __len__(self) -> int:
        return self.length // self.world
