"""Write samples in the Cityscapes layout (labelIds, instanceIds, color, and the photo if given).

Used by the synthetic generator and by ``labelforge export``. Every file is written atomically.

Example:
    >>> import numpy as np
    >>> from cityscapes_tools.writer import write_sample
    >>> lab = np.full((4, 8), 7, np.uint8)  # all road
    >>> paths = write_sample("/tmp/cs-doc", "train", "demo_000000_000000", label=lab)  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .io import write_png
from .labels import colorize
from .layout import SamplePaths, sample_paths

__all__ = ["write_sample"]


def write_sample(
    root: str | Path,
    split: str,
    key: str,
    *,
    label: np.ndarray,
    instance: np.ndarray | None = None,
    image: np.ndarray | None = None,
    color: bool = True,
) -> SamplePaths:
    """Write one sample; returns the paths written (absent parts as None).

    ``label`` is (H, W) uint8 labelIds, ``instance`` (H, W) int with values below 65536 (written as
    uint16), ``image`` (H, W, 3) uint8 RGB.
    """
    if label.dtype != np.uint8 or label.ndim != 2:
        raise ValueError(f"label must be a (H, W) uint8 array, got {label.dtype} {label.shape}")
    p = sample_paths(root, split, key)
    write_png(p.label, label)
    if instance is not None:
        if instance.shape != label.shape:
            raise ValueError(f"instance shape {instance.shape} differs from label shape {label.shape}")
        if instance.min() < 0 or instance.max() > 65535:
            raise ValueError("instance ids must lie in 0..65535 to be stored as uint16")
        write_png(p.instance, instance.astype(np.uint16))
    if image is not None:
        if image.shape != (*label.shape, 3) or image.dtype != np.uint8:
            raise ValueError(f"image must be (H, W, 3) uint8 matching the label, got {image.dtype} {image.shape}")
        write_png(p.image, image, rgb=True)
    if color:
        write_png(p.color, colorize(label), rgb=True)
    return SamplePaths(
        split=split,
        city=p.city,
        key=key,
        label=p.label,
        image=p.image if image is not None else None,
        instance=p.instance if instance is not None else None,
        color=p.color if color else None,
    )
