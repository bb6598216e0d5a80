"""What every dataset layout provides: find its splits, pair photos with masks, write samples back.

A layout knows file names only. Which values a mask may hold and what they mean is the label space's
business (:mod:`labelforge.layouts.masks`), so every layout reads any label space.

Samples are :class:`cityscapes_tools.layout.SamplePaths` records whatever the layout: ``key`` is the
file name without its suffix (unique within a split), ``city`` the sub-folder it lies in below the
split folder ("" for flat layouts; the Cityscapes city), ``instance`` and ``color`` are None outside
the Cityscapes layout.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from pathlib import Path
from typing import ClassVar

import numpy as np

from cityscapes_tools.errors import DatasetFormatError
from cityscapes_tools.layout import SamplePaths

from ..errors import InputError
from ..labelspace import LabelSpace

__all__ = ["Layout", "LayoutWriter", "scan_files", "pair_files", "check_key", "PHOTO_SUFFIXES"]

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png")


class LayoutWriter(ABC):
    """Writes samples into one root of a layout; ``finish`` writes what lists them (VOC's split files)."""

    @abstractmethod
    def write(
        self, split: str, key: str, *, label: np.ndarray, instance: np.ndarray | None, image: np.ndarray | None
    ) -> None:
        """Write one sample: ``label`` (H, W) uint8 label ids, ``image`` (H, W, 3) uint8 RGB or None."""

    def done(self, split: str, key: str, with_image: bool) -> bool:
        """Whether every file of the sample is already there (``--resume`` skips it)."""
        return False

    def finish(self) -> None:  # noqa: B027 - most layouts list nothing
        """Write listings, if the layout has any."""


class Layout(ABC):
    """One on-disk layout of a segmentation dataset."""

    name: ClassVar[str]
    #: what auto-detection looks for, for error messages
    marker: ClassVar[str]
    #: the built-in label space a root of this layout uses when none is given (None: a file is needed)
    default_label_space: ClassVar[str | None] = None
    #: mask values ``labelspace init`` drafts as ignored (not evaluated)
    ignored_values: ClassVar[tuple[int, ...]] = ()
    #: split names accepted for the layout's own (``train`` for ADE20K's ``training``)
    split_aliases: ClassVar[dict[str, str]] = {}

    @classmethod
    @abstractmethod
    def detect(cls, root: Path) -> bool:
        """Whether ``root`` looks like this layout (its marker folders exist)."""

    def spec(self) -> str:
        """The ``--layout`` text that gives this layout back (recorded in the configs of outputs)."""
        return self.name

    @abstractmethod
    def splits(self, root: Path) -> list[str]:
        """The splits present, sorted."""

    def split_name(self, root: Path, split: str) -> str:
        """The layout's own name of ``split`` (aliases resolved when the alias is not itself a split)."""
        if split in self.split_aliases and split not in self.splits(root):
            return self.split_aliases[split]
        return split

    @abstractmethod
    def list_samples(self, root: Path, split: str, require_images: bool = False) -> list[SamplePaths]:
        """The samples of ``split`` sorted by key; a missing file or a bad name raises one line naming it."""

    @abstractmethod
    def writer(self, root: Path, label_space: LabelSpace) -> LayoutWriter:
        """A writer of samples into ``root`` in this layout."""


def check_key(key: str, where: Path) -> None:
    """Keys become file names: refuse separators and hidden names."""
    if not key or "/" in key or "\\" in key or key.startswith(".") or "\0" in key:
        raise InputError(where, f"sample key {key!r} cannot be a file name")


def scan_files(folder: Path, suffixes: Iterable[str]) -> dict[str, tuple[Path, str]]:
    """Files below ``folder`` (any depth) ending in one of ``suffixes``: key -> (path, sub-folder).

    The key is the name without the suffix; two files with the same key raise naming both.
    """
    suffixes = tuple(suffixes)
    out: dict[str, tuple[Path, str]] = {}
    if not folder.is_dir():
        return out
    for path in sorted(folder.rglob("*")):
        suffix = next((s for s in suffixes if path.name.lower().endswith(s.lower())), None)
        if suffix is None or not path.is_file():
            continue
        key = path.name[: len(path.name) - len(suffix)]
        if key in out:
            raise DatasetFormatError(path, f"another file has the same sample key {key!r}: {out[key][0]}")
        sub = path.parent.relative_to(folder).as_posix()
        out[key] = (path, "" if sub == "." else sub)
    return out


def pair_files(
    split: str,
    masks: dict[str, tuple[Path, str]],
    photos: dict[str, tuple[Path, str]],
    *,
    have_photos: bool,
    require_images: bool,
    photo_hint: str,
    mask_hint: str,
) -> list[SamplePaths]:
    """Pair masks with photos by key; every photo needs its mask, every mask its photo when the split has
    photos (``have_photos``) or they are required."""
    for key in sorted(photos.keys() - masks.keys()):
        raise DatasetFormatError(photos[key][0], f"photo has no mask {mask_hint.format(key=key)}")
    if have_photos or require_images:
        for key in sorted(masks.keys() - photos.keys()):
            raise DatasetFormatError(masks[key][0], f"mask has no photo {photo_hint.format(key=key)}")
    return [
        SamplePaths(
            split=split, city=masks[k][1], key=k, label=masks[k][0], image=photos[k][0] if k in photos else None
        )
        for k in sorted(masks)
    ]
