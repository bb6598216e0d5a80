"""A dataset root seen through a layout and a label space: list samples per split and read them, checked.

Every command opens its dataset here. The layout (:mod:`labelforge.layouts`: cityscapes, folders,
voc, ade20k; detected from the root unless given) finds the files; the label space decides which
mask values are valid and which label id each stands for. Samples carry how their masks are read,
so code that holds only a sample reads it with :func:`read_label` / :func:`read_image` /
:func:`read_pair` and gets the same arrays and checks as through the dataset.

Label space ``auto``: a ``labelspace.yaml`` (``.yml``, ``.json``) in the root, else the layout's
built-in one (Cityscapes, Pascal VOC); otherwise the user is told how to draft one.

Example:
    >>> from labelforge.dataset import open_dataset  # doctest: +SKIP
    >>> ds = open_dataset("data/mini")  # doctest: +SKIP
    >>> s = ds.samples("train")[0]; ds.read_label(s).shape, ds.layout.name  # doctest: +SKIP
    ((256, 512), 'cityscapes')
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from functools import cached_property
from pathlib import Path

import numpy as np

from cityscapes_tools import io as csio
from cityscapes_tools.errors import DatasetFormatError
from cityscapes_tools.layout import SamplePaths
from cityscapes_tools.layout import validate_sample as _validate_files

from .errors import InputError
from .labelspace import LabelSpace, get_label_space, read_label_space_file
from .layouts import Layout, resolve_layout
from .layouts.cityscapes import CityscapesLayout
from .layouts.masks import MaskCodec

__all__ = [
    "DatasetSource",
    "Sample",
    "SamplePaths",
    "LABEL_SPACE_FILES",
    "open_dataset",
    "resolve_label_space",
    "read_label",
    "read_instance",
    "read_image",
    "read_pair",
    "validate_sample",
]

LABEL_SPACE_FILES = ("labelspace.yaml", "labelspace.yml", "labelspace.json")


@dataclass(frozen=True)
class Sample(SamplePaths):
    """The files of one sample and how its mask decodes into label ids (``masks``)."""

    masks: MaskCodec | None = None  # None: Cityscapes labelIds (ids stored as they are, 0..33)


def read_label(sample: SamplePaths, label_space: LabelSpace | None = None) -> np.ndarray:
    """(H, W) uint8 label ids of ``sample``, every value checked against its label space."""
    masks = getattr(sample, "masks", None)
    if masks is not None:
        return masks.read(sample.label)
    if label_space is not None:
        return MaskCodec.build(label_space).read(sample.label)
    return csio.read_label(sample.label)


def read_instance(sample: SamplePaths) -> np.ndarray | None:
    """(H, W) int32 instance ids (Cityscapes ``*_instanceIds.png``), or None where the dataset has none."""
    return None if sample.instance is None else csio.read_instance(sample.instance)


def read_image(sample: SamplePaths) -> np.ndarray | None:
    """(H, W, 3) uint8 RGB photo (PNG or JPEG), or None for label-only datasets."""
    return None if sample.image is None else csio.read_image(sample.image)


def read_pair(sample: SamplePaths, label_space: LabelSpace | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(photo, label ids) of a sample that has a photo; a photo of another size than its mask raises."""
    if sample.image is None:
        raise InputError(sample.label, "mask has no photo")
    label = read_label(sample, label_space)
    image = csio.read_image(sample.image)
    if image.shape[:2] != label.shape:
        h, w = label.shape
        raise DatasetFormatError(sample.image, f"photo is {image.shape[1]}x{image.shape[0]} but its mask is {w}x{h}")
    return image, label


def validate_sample(sample: SamplePaths) -> None:
    """Decode every file of ``sample``: mask values, photo size, instance ids (Cityscapes), colour PNG."""
    masks = getattr(sample, "masks", None)
    _validate_files(sample, label=None if masks is None or masks.plain else masks.read(sample.label))


def resolve_label_space(root: Path, layout: Layout, label_space: str | LabelSpace = "auto") -> LabelSpace:
    """The label space of a dataset: as given, or for ``auto`` the root's file, else the layout's built-in."""
    if isinstance(label_space, LabelSpace):
        return label_space
    if label_space not in ("auto", ""):
        return get_label_space(label_space)
    for name in LABEL_SPACE_FILES:
        if (root / name).is_file():
            return read_label_space_file(root / name)
    if layout.default_label_space is not None:
        return get_label_space(layout.default_label_space)
    raise InputError(
        root,
        f"no label space for this {layout.name} dataset: pass --label-space FILE or put labelspace.yaml in "
        f"the root (draft one: labelforge labelspace init {root} --out {root / 'labelspace.yaml'})",
    )


@dataclass(frozen=True)
class DatasetSource:
    """A dataset root opened with its layout and label space. It stands wherever a root path does
    (``str()``/``os.fspath()`` give the root), and :func:`open_dataset` accepts it back as it is."""

    root: Path
    label_space: LabelSpace
    layout: Layout = field(default_factory=CityscapesLayout)

    def __str__(self) -> str:
        return str(self.root)

    def __fspath__(self) -> str:
        return str(self.root)

    @cached_property
    def masks(self) -> MaskCodec:
        return MaskCodec.build(self.label_space)

    def splits(self) -> list[str]:
        return self.layout.splits(self.root)

    def samples(self, split: str, require_images: bool = False) -> list[Sample]:
        """The samples of ``split`` sorted by key; raises a one-line error naming the bad file."""
        plain = self.layout.list_samples(self.root, split, require_images=require_images)
        masks = self.masks
        return [Sample(**{f.name: getattr(s, f.name) for f in fields(s)}, masks=masks) for s in plain]

    def read_label(self, sample: SamplePaths) -> np.ndarray:
        """(H, W) uint8 label ids, checked against the label space."""
        return read_label(sample, self.label_space)

    def read_instance(self, sample: SamplePaths) -> np.ndarray | None:
        """(H, W) int32 instance ids, or None when the dataset has no instance maps."""
        return read_instance(sample)

    def read_image(self, sample: SamplePaths) -> np.ndarray | None:
        """(H, W, 3) uint8 RGB photo, or None for label-only datasets."""
        return read_image(sample)

    def read_pair(self, sample: SamplePaths) -> tuple[np.ndarray, np.ndarray]:
        """(photo, label ids), sizes checked."""
        return read_pair(sample, self.label_space)


def open_dataset(
    root: str | Path | DatasetSource, label_space: str | LabelSpace = "auto", layout: str | Layout = "auto"
) -> DatasetSource:
    """Open a dataset root: its layout (detected for ``auto``) and label space (see the module docstring).

    An already open dataset comes back as it is, or with the label space given instead.
    """
    if isinstance(root, DatasetSource):
        if label_space in ("auto", "") or (
            isinstance(label_space, LabelSpace) and label_space.fingerprint == root.label_space.fingerprint
        ):
            return root
        return DatasetSource(root.root, resolve_label_space(root.root, root.layout, label_space), root.layout)
    root = Path(root)
    lay = resolve_layout(root, layout)
    ls = resolve_label_space(root, lay, label_space)
    lay.splits(root)  # fails early, with one line, when root is not a dataset root of that layout
    return DatasetSource(root=root, label_space=ls, layout=lay)
