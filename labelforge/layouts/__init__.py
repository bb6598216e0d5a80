"""Dataset layouts: Cityscapes, folders (mmsegmentation's custom layout), Pascal VOC and ADE20K.

``--layout`` takes ``auto`` (detect from the root's folders; an ambiguous or unknown root is refused
with the candidates), a layout name, or a name with options: ``folders:img=.jpg,ann=_mask.png``.

Example:
    >>> from labelforge.layouts import parse_layout
    >>> parse_layout("folders:img=.jpg").spec()
    'folders:img=.jpg'
"""

from __future__ import annotations

from pathlib import Path

from cityscapes_tools.errors import DatasetFormatError

from ..errors import LabelforgeError
from .base import Layout, LayoutWriter
from .cityscapes import CityscapesLayout
from .paired import ADE20KLayout, FoldersLayout
from .voc import VOCLayout

__all__ = ["LAYOUTS", "Layout", "LayoutWriter", "parse_layout", "detect_layout", "resolve_layout"]

LAYOUTS: dict[str, type[Layout]] = {
    "cityscapes": CityscapesLayout,
    "folders": FoldersLayout,
    "voc": VOCLayout,
    "ade20k": ADE20KLayout,
}
_OPTIONS = {"img": "img_suffix", "ann": "ann_suffix"}


def parse_layout(spec: str) -> Layout:
    """A layout from its ``--layout`` text (not ``auto``); a bad name lists the valid ones."""
    name, _, opts = spec.partition(":")
    cls = LAYOUTS.get(name.strip().lower())
    if cls is None:
        raise LabelforgeError(f"unknown layout {name!r}; valid: auto, {', '.join(LAYOUTS)}")
    kwargs: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in opts.split(","))):
        key, eq, value = part.partition("=")
        if not eq or key not in _OPTIONS or not value or cls not in (FoldersLayout, ADE20KLayout):
            valid = "img=SUFFIX, ann=SUFFIX" if cls in (FoldersLayout, ADE20KLayout) else "none"
            raise LabelforgeError(f"layout option {part!r} not understood for {cls.name} (options: {valid})")
        kwargs[_OPTIONS[key]] = value
    return cls(**kwargs)


def detect_layout(root: Path) -> Layout:
    """The one layout whose marker folders ``root`` holds; none or several raise one line naming the root."""
    if not root.exists():
        raise DatasetFormatError(root, "dataset root does not exist")
    if not root.is_dir():
        raise DatasetFormatError(root, "dataset root is not a directory")
    found = [cls for cls in LAYOUTS.values() if cls.detect(root)]
    if len(found) > 1:
        names = ", ".join(f"{c.name} ({c.marker})" for c in found)
        raise DatasetFormatError(root, f"looks like several layouts: {names}; pass --layout")
    if not found:
        known = "; ".join(f"{c.name}: {c.marker}" for c in LAYOUTS.values())
        raise DatasetFormatError(root, f"not a dataset root: none of the layouts' folders is there ({known})")
    return found[0]()


def resolve_layout(root: Path, spec: str | Layout = "auto") -> Layout:
    """``spec`` as a layout: detected from ``root`` for ``auto``."""
    if isinstance(spec, Layout):
        return spec
    return detect_layout(root) if spec in ("auto", "") else parse_layout(spec)
