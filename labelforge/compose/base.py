"""Base maps for ``--method reconstruct``: scenes that hold only the base classes (sky, road, building).

Two kinds:

* *derived* from a dataset map: every pixel of another class takes the class of its nearest base-class
  pixel (OpenCV's labelled distance transform), so the scene keeps its horizon, road shape and
  building outline while every object is removed;
* *drawn*: a horizon, a road in perspective converging to a vanishing point, a building band with a
  ragged skyline, and sky above.

Example:
    >>> import numpy as np
    >>> from labelforge.labelspace import get_label_space
    >>> from labelforge.compose.base import derived_base
    >>> lab = np.array([[23, 23, 23], [11, 26, 7], [7, 7, 7]], np.uint8)  # sky / building car road / road
    >>> derived_base(lab, get_label_space()).tolist()
    [[23, 23, 23], [11, 23, 7], [7, 7, 7]]
"""

from __future__ import annotations

import cv2
import numpy as np

from ..errors import LabelforgeError
from ..labelspace import LabelSpace

__all__ = ["base_ids", "derivable", "derived_base", "drawn_base"]


def base_ids(ls: LabelSpace) -> tuple[int, int, int]:
    """Label ids of (sky, road, building) — the label space's ``base`` group, in that order."""
    if len(ls.base) != 3:
        raise LabelforgeError(
            f"label space {ls.name!r}: reconstruct needs a base group of 3 classes (sky, road, building)"
        )
    sky, road, building = ls.ids(list(ls.base))
    return sky, road, building


def derivable(presence: np.ndarray, ls: LabelSpace) -> np.ndarray:
    """Which maps hold a base pixel, given their (..., num_ids) class presence: (...,) bool.

    A base is derived only from these; a sample drawing another map gets a :func:`drawn_base` instead.
    """
    return presence[..., list(base_ids(ls))].any(axis=-1)


def derived_base(label: np.ndarray, ls: LabelSpace) -> np.ndarray:
    """(H, W) uint8: ``label`` with every non-base pixel replaced by its nearest base pixel's class.

    Ties between equally near base pixels go to the first in raster order. A map without any base
    pixel cannot be derived (callers check :func:`derivable` first and fall back to :func:`drawn_base`).
    """
    lut = np.zeros(256, bool)
    lut[list(base_ids(ls))] = True
    keep = lut[label]
    if keep.all():
        return label.copy()
    if not keep.any():
        raise LabelforgeError("map holds no sky, road or building pixel to derive a base from")
    # Zero pixels (the base ones) are numbered 1.. in raster order; every pixel gets its nearest one's number.
    _, nearest = cv2.distanceTransformWithLabels(
        (~keep).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_5, labelType=cv2.DIST_LABEL_PIXEL
    )
    source = label[keep]  # base classes in raster order
    out = source[nearest - 1]
    out[keep] = label[keep]
    return out.astype(np.uint8)


def drawn_base(height: int, width: int, ls: LabelSpace, rng: np.random.Generator) -> np.ndarray:
    """(H, W) uint8: a drawn street: sky, a building band with a skyline, a road in perspective."""
    sky, road, building = base_ids(ls)
    horizon = int(height * rng.uniform(0.38, 0.5))
    vx = width * rng.uniform(0.4, 0.6)  # vanishing point column
    out = np.full((height, width), building, np.uint8)
    # Skyline: blocks of random width, each with its own roof height above the horizon.
    x = 0
    while x < width:
        bw = int(width * rng.uniform(0.05, 0.15))
        roof = int(horizon - height * rng.uniform(0.05, 0.35))
        out[: max(roof, 0), x : x + bw] = sky
        x += bw
    # Road: the triangle below the horizon opening from the vanishing point to beyond both bottom corners.
    spread = rng.uniform(1.2, 2.0) * width / max(height - horizon, 1)  # half-width growth per row
    ys = np.arange(height)[:, None]
    xs = np.arange(width)[None, :]
    road_mask = (ys > horizon) & (np.abs(xs - vx) <= (ys - horizon) * spread * 0.5)
    out[road_mask] = road
    return out
