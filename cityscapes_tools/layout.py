"""The Cityscapes on-disk layout: discover a root, list and pair samples, validate them.

::

    ROOT/leftImg8bit/{split}/{city}/{city}_{seq:06}_{frame:06}_leftImg8bit.png
    ROOT/gtFine/{split}/{city}/{city}_{seq:06}_{frame:06}_gtFine_labelIds.png     uint8
    ROOT/gtFine/{split}/{city}/{city}_{seq:06}_{frame:06}_gtFine_instanceIds.png  uint16
    ROOT/gtFine/{split}/{city}/..._gtFine_color.png, ..._gtFine_polygons.json     optional

Samples pair by their key ``{city}_{seq:06}_{frame:06}``. A root with label maps but no photos at
all is valid for label-only work (stats, compose); a photo without its label map, or a split whose
photos cover only some label maps, is an error.

Example:
    >>> from cityscapes_tools.layout import list_samples  # doctest: +SKIP
    >>> samples = list_samples("data/cityscapes", "train")  # doctest: +SKIP
    >>> samples[0].key, samples[0].label.name  # doctest: +SKIP
    ('aachen_000000_000019', 'aachen_000000_000019_gtFine_labelIds.png')
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import DatasetFormatError
from .instances import INSTANCE_OFFSET
from .io import read_image, read_instance, read_label, read_png

__all__ = [
    "KEY_RE",
    "SamplePaths",
    "list_splits",
    "list_samples",
    "sample_paths",
    "validate_sample",
    "check_instances",
    "parse_key",
]

KEY_RE = re.compile(r"^(?P<city>[a-z][a-z_-]*)_(?P<seq>\d{6})_(?P<frame>\d{6})$")
_IMAGE_SUFFIX = "_leftImg8bit.png"
_LABEL_SUFFIX = "_gtFine_labelIds.png"
_INSTANCE_SUFFIX = "_gtFine_instanceIds.png"
_COLOR_SUFFIX = "_gtFine_color.png"
_POLYGONS_SUFFIX = "_gtFine_polygons.json"


@dataclass(frozen=True)
class SamplePaths:
    """The files of one sample. ``image``/``instance``/``color`` are None where the dataset lacks them."""

    split: str
    city: str
    key: str
    label: Path
    image: Path | None = None
    instance: Path | None = None
    color: Path | None = None


def parse_key(key: str) -> tuple[str, int, int]:
    """``"aachen_000000_000019"`` -> ``("aachen", 0, 19)``."""
    m = KEY_RE.match(key)
    if m is None:
        raise ValueError(f"not a Cityscapes sample key: {key!r} (expected city_SSSSSS_FFFFFF)")
    return m["city"], int(m["seq"]), int(m["frame"])


def sample_paths(root: str | Path, split: str, key: str) -> SamplePaths:
    """The canonical file paths of sample ``key`` (whether or not they exist)."""
    city = parse_key(key)[0]
    root = Path(root)
    gt = root / "gtFine" / split / city
    return SamplePaths(
        split=split,
        city=city,
        key=key,
        label=gt / f"{key}{_LABEL_SUFFIX}",
        image=root / "leftImg8bit" / split / city / f"{key}{_IMAGE_SUFFIX}",
        instance=gt / f"{key}{_INSTANCE_SUFFIX}",
        color=gt / f"{key}{_COLOR_SUFFIX}",
    )


def _check_root(root: Path) -> None:
    if not root.exists():
        raise DatasetFormatError(root, "dataset root does not exist")
    if not root.is_dir():
        raise DatasetFormatError(root, "dataset root is not a directory")
    if not (root / "gtFine").is_dir():
        raise DatasetFormatError(root, "no gtFine/ folder: not a Cityscapes-layout dataset root")


def list_splits(root: str | Path) -> list[str]:
    """Splits (``train``, ``val``, ...) that have a ``gtFine/{split}`` folder, sorted."""
    root = Path(root)
    _check_root(root)
    return sorted(p.name for p in (root / "gtFine").iterdir() if p.is_dir())


def _files_by_key(folder: Path, suffix: str) -> dict[str, Path]:
    out: dict[str, Path] = {}
    if not folder.is_dir():
        return out
    for city_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
        for f in city_dir.iterdir():
            if f.name.endswith(suffix):
                out[f.name[: -len(suffix)]] = f
    return out


def list_samples(root: str | Path, split: str, require_images: bool = False) -> list[SamplePaths]:
    """Pair the files of one split by key, sorted by key.

    Raises :class:`DatasetFormatError` for a missing split, an empty split, a photo without a
    label map, a label map without a photo when the split has photos (or ``require_images``), and
    a label map without its instance map when the split has instance maps.
    """
    root = Path(root)
    _check_root(root)
    gt_dir = root / "gtFine" / split
    img_dir = root / "leftImg8bit" / split
    if not gt_dir.is_dir():
        have = ", ".join(list_splits(root)) or "none"
        raise DatasetFormatError(gt_dir, f"split {split!r} not found (splits present: {have})")
    labels = _files_by_key(gt_dir, _LABEL_SUFFIX)
    if not labels:
        raise DatasetFormatError(gt_dir, f"split {split!r} holds no *{_LABEL_SUFFIX} files")
    images = _files_by_key(img_dir, _IMAGE_SUFFIX)
    instances = _files_by_key(gt_dir, _INSTANCE_SUFFIX)
    colors = _files_by_key(gt_dir, _COLOR_SUFFIX)
    for key in images.keys() - labels.keys():
        raise DatasetFormatError(images[key], f"photo has no label map {key}{_LABEL_SUFFIX}")
    if images or require_images:
        for key in sorted(labels.keys() - images.keys()):
            raise DatasetFormatError(labels[key], f"label map has no photo {key}{_IMAGE_SUFFIX}")
    if instances:
        for key in sorted(labels.keys() - instances.keys()):
            raise DatasetFormatError(labels[key], f"label map has no instance map {key}{_INSTANCE_SUFFIX}")
    out = []
    for key in sorted(labels):
        if KEY_RE.match(key) is None:
            raise DatasetFormatError(labels[key], "file name does not follow {city}_{seq:06}_{frame:06}")
        out.append(
            SamplePaths(
                split=split,
                city=labels[key].parent.name,
                key=key,
                label=labels[key],
                image=images.get(key),
                instance=instances.get(key),
                color=colors.get(key),
            )
        )
    return out


def validate_sample(sample: SamplePaths, label: np.ndarray | None = None) -> None:
    """Decode every file of ``sample`` and check dtypes, sizes, label values and instance ids.

    ``label``: the label map when the caller has read and checked it already (another label table).
    """
    label = read_label(sample.label) if label is None else label
    h, w = label.shape
    if sample.image is not None:
        image = read_image(sample.image)
        if image.shape[:2] != (h, w):
            raise DatasetFormatError(
                sample.image, f"photo is {image.shape[1]}x{image.shape[0]} but its label map is {w}x{h}"
            )
    if sample.instance is not None:
        check_instances(read_instance(sample.instance), label, sample.instance)
    if sample.color is not None:
        read_png(sample.color)


def check_instances(instance: np.ndarray, label: np.ndarray, path: str | Path) -> None:
    """Raise DatasetFormatError naming ``path`` unless every instance id encodes the label id beside it."""
    if instance.shape != label.shape:
        h, w = label.shape
        raise DatasetFormatError(
            path, f"instance map is {instance.shape[1]}x{instance.shape[0]} but its label map is {w}x{h}"
        )
    # Computed in the map's own dtype (uint16 as stored): no widening copy of a 2-Mpixel map.
    cls = np.where(instance >= INSTANCE_OFFSET, instance // INSTANCE_OFFSET, instance)
    bad = cls != label
    if bad.any():
        y, x = np.argwhere(bad)[0]
        raise DatasetFormatError(
            path, f"instance id {int(instance[y, x])} at (x={x}, y={y}) disagrees with label id {int(label[y, x])}"
        )
