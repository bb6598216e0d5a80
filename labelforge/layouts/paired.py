"""Layouts of two parallel folder trees, photos and masks, paired by file name: folders and ADE20K.

``folders`` is mmsegmentation's custom layout::

    ROOT/img_dir/{split}/**/{key}{img suffix}      .jpg, .jpeg or .png unless a suffix is given
    ROOT/ann_dir/{split}/**/{key}{ann suffix}      .png unless given: grey or palette class values

with suffixes set in the layout text: ``folders:img=_leftImg8bit.png,ann=_gtFine_labelTrainIds.png``.

``ade20k`` is the ADEChallengeData2016 release (SceneParsing, 150 classes)::

    ROOT/images/{training,validation}/{key}.jpg
    ROOT/annotations/{training,validation}/{key}.png   0 = "other" (ignored), 1..150 the classes

``train`` and ``val`` name ``training`` and ``validation``. The 0 = ignored convention (mmsegmentation's
``reduce_zero_label``) lives in the label space: value 0 is a class with train id 255.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from cityscapes_tools import io as csio
from cityscapes_tools.errors import DatasetFormatError
from cityscapes_tools.layout import SamplePaths

from ..labelspace import LabelSpace
from .base import PHOTO_SUFFIXES, Layout, LayoutWriter, check_key, pair_files, scan_files

__all__ = ["PairedDirsLayout", "FoldersLayout", "ADE20KLayout"]

JPEG_QUALITY = 95  # photos written as .jpg (VOC, ADE20K, folders with a .jpg suffix)


def write_photo(path: Path, image: np.ndarray) -> None:
    """A photo in the format its suffix names (JPEG quality 95, or lossless PNG)."""
    if path.suffix.lower() in (".jpg", ".jpeg"):
        csio.atomic_write_bytes(path, csio.encode_jpeg(image, quality=JPEG_QUALITY))
    else:
        csio.write_png(path, image, rgb=True)


class _PairedWriter(LayoutWriter):
    def __init__(self, layout: PairedDirsLayout, root: Path, ls: LabelSpace) -> None:
        self.layout, self.root, self.ls = layout, root, ls

    def _paths(self, split: str, key: str) -> tuple[Path, Path]:
        split = self.layout.split_aliases.get(split, split)
        img_suffix = self.layout.img_suffix or ".png"
        return (
            self.root / self.layout.img_root / split / f"{key}{img_suffix}",
            self.root / self.layout.ann_root / split / f"{key}{self.layout.ann_suffix}",
        )

    def write(
        self, split: str, key: str, *, label: np.ndarray, instance: np.ndarray | None, image: np.ndarray | None
    ) -> None:
        check_key(key, self.root)
        img, ann = self._paths(split, key)
        csio.write_png(ann, self.ls.id_to_value[label])
        if image is not None:
            write_photo(img, image)

    def done(self, split: str, key: str, with_image: bool) -> bool:
        img, ann = self._paths(split, key)
        return ann.is_file() and (img.is_file() or not with_image)


@dataclass(frozen=True)
class PairedDirsLayout(Layout):
    """Photos under ``img_root/{split}``, masks under ``ann_root/{split}``, paired by key."""

    img_suffix: str | None = None  # None: any of .jpg, .jpeg, .png
    ann_suffix: str = ".png"
    img_root: ClassVar[str]
    ann_root: ClassVar[str]

    def _split_dir(self, root: Path, split: str) -> Path:
        return root / self.ann_root / self.split_name(root, split)

    def splits(self, root: Path) -> list[str]:
        ann = root / self.ann_root
        if not ann.is_dir():
            raise DatasetFormatError(root, f"no {self.ann_root}/ folder: not a {self.name}-layout dataset root")
        return sorted(p.name for p in ann.iterdir() if p.is_dir())

    def list_samples(self, root: Path, split: str, require_images: bool = False) -> list[SamplePaths]:
        own = self.split_name(root, split)
        ann_dir = root / self.ann_root / own
        if not ann_dir.is_dir():
            have = ", ".join(self.splits(root)) or "none"
            raise DatasetFormatError(ann_dir, f"split {split!r} not found (splits present: {have})")
        masks = scan_files(ann_dir, (self.ann_suffix,))
        if not masks:
            raise DatasetFormatError(ann_dir, f"split {split!r} holds no *{self.ann_suffix} masks")
        img_dir = root / self.img_root / own
        suffixes = (self.img_suffix,) if self.img_suffix else PHOTO_SUFFIXES
        photos = scan_files(img_dir, suffixes)
        return pair_files(
            split,
            masks,
            photos,
            have_photos=img_dir.is_dir(),
            require_images=require_images,
            photo_hint=f"{self.img_root}/{own}/{{key}}{self.img_suffix or '.jpg|.png'}",
            mask_hint=f"{self.ann_root}/{own}/{{key}}{self.ann_suffix}",
        )

    def writer(self, root: Path, label_space: LabelSpace) -> LayoutWriter:
        return _PairedWriter(self, root, label_space)


@dataclass(frozen=True)
class FoldersLayout(PairedDirsLayout):
    name: ClassVar[str] = "folders"
    marker: ClassVar[str] = "ann_dir/"
    ignored_values: ClassVar[tuple[int, ...]] = (255,)
    img_root: ClassVar[str] = "img_dir"
    ann_root: ClassVar[str] = "ann_dir"

    @classmethod
    def detect(cls, root: Path) -> bool:
        return (root / cls.ann_root).is_dir()

    def spec(self) -> str:
        opts = [f"img={self.img_suffix}"] if self.img_suffix else []
        opts += [f"ann={self.ann_suffix}"] if self.ann_suffix != ".png" else []
        return "folders" + (":" + ",".join(opts) if opts else "")


@dataclass(frozen=True)
class ADE20KLayout(PairedDirsLayout):
    name: ClassVar[str] = "ade20k"
    marker: ClassVar[str] = "annotations/{training,validation}/"
    ignored_values: ClassVar[tuple[int, ...]] = (0,)
    split_aliases: ClassVar[dict[str, str]] = {"train": "training", "val": "validation"}
    img_root: ClassVar[str] = "images"
    ann_root: ClassVar[str] = "annotations"

    @classmethod
    def detect(cls, root: Path) -> bool:
        return any((root / cls.ann_root / s).is_dir() for s in ("training", "validation"))

    def writer(self, root: Path, label_space: LabelSpace) -> LayoutWriter:
        return _PairedWriter(ADE20KLayout(img_suffix=self.img_suffix or ".jpg"), root, label_space)
