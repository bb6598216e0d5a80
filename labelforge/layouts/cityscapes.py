"""The Cityscapes layout, as :mod:`cityscapes_tools.layout` reads and :mod:`cityscapes_tools.writer` writes it.

::

    ROOT/leftImg8bit/{split}/{city}/{key}_leftImg8bit.png
    ROOT/gtFine/{split}/{city}/{key}_gtFine_labelIds.png      (+ _instanceIds.png, _color.png)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cityscapes_tools.layout import KEY_RE, SamplePaths, list_samples, list_splits, sample_paths
from cityscapes_tools.writer import write_sample

from ..errors import InputError
from ..labelspace import LabelSpace
from .base import Layout, LayoutWriter

__all__ = ["CityscapesLayout"]


class _Writer(LayoutWriter):
    def __init__(self, root: Path, ls: LabelSpace) -> None:
        self.root, self.ls = root, ls

    def write(
        self, split: str, key: str, *, label: np.ndarray, instance: np.ndarray | None, image: np.ndarray | None
    ) -> None:
        if KEY_RE.match(key) is None:
            raise InputError(self.root, f"sample key {key!r} is not a Cityscapes key (city_SSSSSS_FFFFFF)")
        if instance is not None and (instance.min() < 0 or instance.max() > 65535):
            raise InputError(self.root, f"{key}: instance ids exceed 16 bits")
        values = label if self.ls.stores_ids else self.ls.id_to_value[label]
        write_sample(self.root, split, key, label=values, instance=instance, image=image)

    def done(self, split: str, key: str, with_image: bool) -> bool:
        p = sample_paths(self.root, split, key)
        files = [p.label, p.instance, p.color] + ([p.image] if with_image else [])
        return all(f is not None and f.is_file() for f in files)


class CityscapesLayout(Layout):
    name = "cityscapes"
    marker = "gtFine/"
    default_label_space = "cityscapes"

    @classmethod
    def detect(cls, root: Path) -> bool:
        return (root / "gtFine").is_dir()

    def splits(self, root: Path) -> list[str]:
        return list_splits(root)

    def list_samples(self, root: Path, split: str, require_images: bool = False) -> list[SamplePaths]:
        return list_samples(root, split, require_images=require_images)

    def writer(self, root: Path, label_space: LabelSpace) -> LayoutWriter:
        return _Writer(root, label_space)
