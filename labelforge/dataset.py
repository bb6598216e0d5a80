"""A dataset root seen through a label space: list samples per split and read them, checked.

The layout is Cityscapes' (see :mod:`cityscapes_tools.layout`); the label space decides which ids
are valid, so a dataset with another class table in the same layout plugs in with a label-space
JSON file.

Example:
    >>> from labelforge.dataset import open_dataset  # doctest: +SKIP
    >>> ds = open_dataset("data/mini-cityscapes")  # doctest: +SKIP
    >>> s = ds.samples("train")[0]; ds.read_label(s).shape  # doctest: +SKIP
    (256, 512)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cityscapes_tools import io as csio
from cityscapes_tools.layout import SamplePaths, list_samples, list_splits

from .labelspace import LabelSpace, get_label_space

__all__ = ["DatasetSource", "open_dataset", "SamplePaths"]


@dataclass(frozen=True)
class DatasetSource:
    root: Path
    label_space: LabelSpace

    def splits(self) -> list[str]:
        return list_splits(self.root)

    def samples(self, split: str, require_images: bool = False) -> list[SamplePaths]:
        """The samples of ``split`` sorted by key; raises a one-line error naming the bad file."""
        return list_samples(self.root, split, require_images=require_images)

    def read_label(self, sample: SamplePaths) -> np.ndarray:
        """(H, W) uint8 label ids, checked against the label space."""
        return csio.read_label(sample.label, num_ids=self.label_space.num_ids)

    def read_instance(self, sample: SamplePaths) -> np.ndarray | None:
        """(H, W) int32 instance ids, or None when the dataset has no instance maps."""
        return None if sample.instance is None else csio.read_instance(sample.instance)

    def read_image(self, sample: SamplePaths) -> np.ndarray | None:
        """(H, W, 3) uint8 RGB photo, or None for label-only datasets."""
        return None if sample.image is None else csio.read_image(sample.image)


def open_dataset(root: str | Path, label_space: str | LabelSpace = "cityscapes") -> DatasetSource:
    ls = label_space if isinstance(label_space, LabelSpace) else get_label_space(label_space)
    root = Path(root)
    list_splits(root)  # fails early, with one line, when root is not a dataset root
    return DatasetSource(root=root, label_space=ls)
