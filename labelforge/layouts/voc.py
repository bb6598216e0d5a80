"""The Pascal VOC segmentation layout (VOCdevkit/VOC2012 and datasets laid out like it).

::

    ROOT/JPEGImages/{key}.jpg
    ROOT/SegmentationClass/{key}.png           palette PNG: the index is the class value, 255 the border
    ROOT/ImageSets/Segmentation/{split}.txt    one key per line

A split is the keys its list names; each needs its mask and, when ``JPEGImages/`` exists, its photo.
``SegmentationObject/`` (VOC's instance masks) is not read: connected components stand in for
instances, as for every dataset without Cityscapes instance maps.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cityscapes_tools import io as csio
from cityscapes_tools.errors import DatasetFormatError
from cityscapes_tools.layout import SamplePaths

from ..errors import InputError
from ..labelspace import LabelSpace
from .base import PHOTO_SUFFIXES, Layout, LayoutWriter, check_key
from .masks import palette_png
from .paired import write_photo

__all__ = ["VOCLayout"]

_LISTS = Path("ImageSets") / "Segmentation"


class _Writer(LayoutWriter):
    def __init__(self, root: Path, ls: LabelSpace) -> None:
        self.root, self.ls = root, ls
        self.palette = np.zeros((256, 3), np.uint8)
        for c in ls.classes:
            self.palette[c.stored] = c.color
        self.keys: dict[str, list[str]] = {}

    def write(
        self, split: str, key: str, *, label: np.ndarray, instance: np.ndarray | None, image: np.ndarray | None
    ) -> None:
        check_key(key, self.root)
        grey = csio.encode_png(self.ls.id_to_value[label])
        csio.atomic_write_bytes(self.root / "SegmentationClass" / f"{key}.png", palette_png(grey, self.palette))
        if image is not None:
            write_photo(self.root / "JPEGImages" / f"{key}.jpg", image)
        self.keys.setdefault(split, []).append(key)

    def done(self, split: str, key: str, with_image: bool) -> bool:
        have = (self.root / "SegmentationClass" / f"{key}.png").is_file() and (
            not with_image or (self.root / "JPEGImages" / f"{key}.jpg").is_file()
        )
        if have:
            self.keys.setdefault(split, []).append(key)
        return have

    def finish(self) -> None:
        for split, keys in self.keys.items():
            path = self.root / _LISTS / f"{split}.txt"
            old = path.read_text().split() if path.is_file() else []
            csio.atomic_write_bytes(path, "".join(f"{k}\n" for k in dict.fromkeys(old + keys)).encode())


class VOCLayout(Layout):
    name = "voc"
    marker = "SegmentationClass/ + ImageSets/Segmentation/"
    default_label_space = "voc"
    ignored_values = (255,)

    @classmethod
    def detect(cls, root: Path) -> bool:
        return (root / "SegmentationClass").is_dir() and (root / _LISTS).is_dir()

    def splits(self, root: Path) -> list[str]:
        lists = root / _LISTS
        if not lists.is_dir():
            raise DatasetFormatError(root, f"no {_LISTS.as_posix()}/ folder: not a VOC-layout dataset root")
        return sorted(p.stem for p in lists.glob("*.txt"))

    def _keys(self, root: Path, split: str) -> list[tuple[int, str]]:
        path = root / _LISTS / f"{split}.txt"
        if not path.is_file():
            have = ", ".join(self.splits(root)) or "none"
            raise DatasetFormatError(path, f"split {split!r} not found (splits present: {have})")
        keys = [(n, line.split()[0]) for n, line in enumerate(path.read_text().splitlines(), 1) if line.strip()]
        if not keys:
            raise DatasetFormatError(path, f"split {split!r} lists no sample")
        return keys

    def list_samples(self, root: Path, split: str, require_images: bool = False) -> list[SamplePaths]:
        lst = root / _LISTS / f"{split}.txt"
        photos_dir = root / "JPEGImages"
        have_photos = photos_dir.is_dir()
        out: dict[str, SamplePaths] = {}
        for n, key in self._keys(root, split):
            check_key(key, lst)
            mask = root / "SegmentationClass" / f"{key}.png"
            if not mask.is_file():
                raise InputError(lst, f"line {n} names {key}, which has no mask SegmentationClass/{key}.png")
            photo = None
            if have_photos or require_images:
                photo = next((p for s in PHOTO_SUFFIXES if (p := photos_dir / f"{key}{s}").is_file()), None)
                if photo is None:
                    raise InputError(lst, f"line {n} names {key}, which has no photo JPEGImages/{key}.jpg")
            out[key] = SamplePaths(split=split, city="", key=key, label=mask, image=photo)
        return [out[k] for k in sorted(out)]

    def writer(self, root: Path, label_space: LabelSpace) -> LayoutWriter:
        return _Writer(root, label_space)
