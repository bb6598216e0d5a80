"""Training and validation data for PSPNet: originals, image shards, paired transforms, the mixing sampler.

* :class:`TrainData` concatenates the originals of a dataset root (labelIds mapped to trainIds)
  and any number of image shard dirs; it is indexed by ``(index, seed)`` pairs so every sample's
  augmentation depends on the run seed and its position in the epoch alone, not on worker count,
  process count or interruptions.
* :class:`MixSampler` draws each epoch with an exact share of supplementary samples, cycling
  through each source in shuffled order, and hands every torchrun process its own slice.
* :class:`RcsSampler` is DAFormer's rare-class sampling (Hoyer et al. 2022) on top of it: each
  original drawn is chosen by first drawing a class ``c`` with ``p_c ~ softmax((1 - f_c) / T)``
  (``f_c`` the class's pixel share over the training originals), then an original holding ``c``.
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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import NamedTuple

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from cityscapes_tools.layout import SamplePaths

from ..dataset import read_label, read_pair
from ..labelspace import LabelSpace
from ..shards import ShardSet
from .presets import TrainEvalConfig

__all__ = [
    "MEAN",
    "STD",
    "PairTransform",
    "TrainData",
    "ValData",
    "MixSampler",
    "RcsDraw",
    "RareClassSampling",
    "RcsSampler",
    "class_pixel_counts",
    "make_sampler",
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

    def __getitem__(self, key: tuple[int, ...]) -> dict[str, torch.Tensor | bool]:
        """``key`` is ``(index, seed)``, or an :class:`RcsDraw` whose crop must hold enough of its class."""
        index, seed = key[0], key[1]
        image, label = self.load(index)
        rng = np.random.default_rng(seed)
        out_image, out_label = self.transform(image, label, rng)
        if len(key) > 2 and key[2] >= 0:  # type: ignore[misc]
            cls, min_pixels = key[2], key[3]  # type: ignore[misc]
            # As DAFormer: crop again (up to 10 tries in all) until the drawn class is really in the crop.
            for _ in range(9):
                if np.count_nonzero(out_label == cls) > min_pixels:
                    break
                out_image, out_label = self.transform(image, label, rng)
        img, lab = _to_tensors(out_image, out_label)
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

    def _originals(self, k: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``k`` original indices and the class each was drawn for (-1: none)."""
        return self._draw(self.n_orig, k, rng), np.full(k, -1, np.int64)

    def _epoch(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rng = np.random.default_rng([self.seed, self.epoch, 0x5A3])
        k_supp = self.supp_count()
        orig, cls = self._originals(self.length - k_supp, rng)
        idx = np.concatenate([orig, self.n_orig + self._draw(self.n_supp, k_supp, rng)])
        cls = np.concatenate([cls, np.full(k_supp, -1, np.int64)])
        perm = rng.permutation(self.length)
        seeds = rng.integers(0, 2**62, size=self.length)
        return idx[perm], seeds, cls[perm]

    def global_order(self) -> tuple[np.ndarray, np.ndarray]:
        """(indices, seeds) of the whole epoch, every process together."""
        idx, seeds, _ = self._epoch()
        return idx, seeds

    def __iter__(self) -> Iterator[tuple[int, int]]:
        idx, seeds = self.global_order()
        for pos in range(self.rank, self.length, self.world):
            yield int(idx[pos]), int(seeds[pos])

    def __len__(self) -> int:
        return self.length // self.world


# rcs_min_pixels is counted at Cityscapes' full resolution, as DAFormer's 3000; other sizes scale it by area.
RCS_REFERENCE_AREA = 1024 * 2048


def class_pixel_counts(
    samples: Sequence[SamplePaths], ls: LabelSpace, workers: int = 4
) -> tuple[np.ndarray, np.ndarray]:
    """Per sample's label map (any layout): (n, C) pixels of each train id (ignore left out) and (n,) its area."""
    c = ls.num_classes

    def count(sample: SamplePaths) -> tuple[np.ndarray, int]:
        train_ids = ls.id_to_train_id[read_label(sample, ls)]
        return np.bincount(train_ids.ravel(), minlength=256)[:c], train_ids.size

    with ThreadPoolExecutor(max(1, workers)) as pool:  # PNG decoding releases the GIL
        rows = list(pool.map(count, samples))
    counts = np.stack([r[0] for r in rows]) if rows else np.zeros((0, c), np.int64)
    return counts.astype(np.int64), np.array([r[1] for r in rows], np.int64)


@dataclass(frozen=True)
class RareClassSampling:
    """What rare-class sampling draws from: the drawable classes, their probabilities, their images.

    ``frequency`` is every class's pixel share ``f_c`` over the training maps; classes that occur
    get ``p_c ~ exp((1 - f_c) / T)``. A class no map holds above the pixel threshold cannot be
    drawn and is left out (the others' probabilities are renormalised, as a softmax over them).
    """

    classes: np.ndarray  # (K,) train ids that can be drawn
    probs: np.ndarray  # (K,) their draw probabilities, summing to 1
    frequency: np.ndarray  # (C,) pixel share of every class
    images: tuple[np.ndarray, ...]  # per drawable class: indices of the maps holding it

    @classmethod
    def from_counts(
        cls, counts: np.ndarray, areas: np.ndarray, temperature: float, min_pixels: float = 3000
    ) -> RareClassSampling:
        total = counts.sum(axis=0).astype(np.float64)
        if total.sum() == 0:
            raise ValueError("rare-class sampling needs labelled pixels in the training maps")
        freq = total / total.sum()
        threshold = min_pixels * areas.astype(np.float64) / RCS_REFERENCE_AREA  # (n,)
        holders = [np.flatnonzero(counts[:, c] > threshold) for c in range(counts.shape[1])]
        keep = np.array([c for c in range(counts.shape[1]) if total[c] > 0 and holders[c].size > 0], np.int64)
        z = (1.0 - freq[keep]) / temperature
        p = np.exp(z - z.max())  # softmax, shifted so the exponent cannot overflow at T = 0.01
        return cls(keep, p / p.sum(), freq, tuple(holders[c] for c in keep))

    def draw(self, k: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``k`` (original index, class) pairs: a class by its probability, then a map holding it uniformly."""
        which = rng.choice(len(self.classes), size=k, p=self.probs)
        sizes = np.array([len(im) for im in self.images], np.int64)
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        pick = (rng.random(k) * sizes[which]).astype(np.int64)  # uniform within the drawn class's maps
        return np.concatenate(self.images)[starts[which] + pick].astype(np.int64), self.classes[which]


class RcsDraw(NamedTuple):
    """A sampler item of rare-class sampling: the crop of ``index`` should hold > ``min_pixels`` of ``cls``."""

    index: int
    seed: int
    cls: int
    min_pixels: float


class RcsSampler(MixSampler):
    """:class:`MixSampler` whose originals are drawn by rare-class sampling (supplementary draws unchanged).

    Deterministic from ``(seed, epoch)`` and sliced per process exactly like :class:`MixSampler`.
    """

    def __init__(
        self, rcs: RareClassSampling, n_orig: int, n_supp: int, seed: int, rank: int = 0, world: int = 1,
        crop_pixels: float = 0.0,
    ) -> None:  # fmt: skip
        super().__init__(n_orig, n_supp, seed, rank, world)
        self.rcs, self.crop_pixels = rcs, crop_pixels

    def _originals(self, k: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        return self.rcs.draw(k, rng)

    def __iter__(self) -> Iterator[RcsDraw]:  # type: ignore[override]
        idx, seeds, cls = self._epoch()
        for pos in range(self.rank, self.length, self.world):
            yield RcsDraw(int(idx[pos]), int(seeds[pos]), int(cls[pos]), self.crop_pixels)


def make_sampler(cfg: TrainEvalConfig, data: TrainData, rank: int = 0, world: int = 1) -> MixSampler:
    """The training sampler ``cfg.sampling`` asks for (rare-class sampling counts the originals' classes first)."""
    if cfg.sampling == "uniform":
        return MixSampler(data.n_orig, data.n_supp, cfg.seed, rank, world)
    counts, areas = class_pixel_counts(data.originals, data.ls)
    rcs = RareClassSampling.from_counts(counts, areas, cfg.rcs_temperature, cfg.rcs_min_pixels)
    crop = cfg.rcs_min_crop_ratio * cfg.rcs_min_pixels * cfg.crop[0] * cfg.crop[1] / RCS_REFERENCE_AREA
    return RcsSampler(rcs, data.n_orig, data.n_supp, cfg.seed, rank, world, crop_pixels=crop)
