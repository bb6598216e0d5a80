"""Segments of one label map: instances and connected components, each with its box, area, the image
borders it touches and its bit-packed mask (what the segment index stores; see ``segments``).

Example:
    >>> import numpy as np
    >>> from labelforge.labelspace import get_label_space
    >>> label = np.zeros((8, 8), np.uint8); label[2:6, 2:6] = 26  # a car on unlabeled ground (not indexed: no train id)
    >>> segs = extract_segments(label, None, get_label_space("cityscapes"), min_area=4)
    >>> segs.class_id.tolist(), segs.area.tolist()
    ([26], [16])
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import cv2
import numpy as np

from cityscapes_tools.instances import decode_instance, is_instance

from ..labelspace import LabelSpace

__all__ = ["BORDER_LEFT", "BORDER_TOP", "BORDER_RIGHT", "BORDER_BOTTOM", "extract_segments", "unpack_mask"]

BORDER_LEFT, BORDER_TOP, BORDER_RIGHT, BORDER_BOTTOM = 1, 2, 4, 8


@dataclass
class _MapSegments:
    """The segments of one map, as parallel arrays (what a worker sends back)."""

    class_id: np.ndarray  # (S,) int16
    src_instance: np.ndarray  # (S,) int32: the donor's instance id, 0 for components
    crowd: np.ndarray  # (S,) bool: instance-class pixels without an instance id in a dataset that has them
    bbox: np.ndarray  # (S, 4) int32: x0, y0, x1, y1 (exclusive)
    area: np.ndarray  # (S,) int64
    border: np.ndarray  # (S,) uint8 BORDER_* flags
    bits: list[bytes]  # packed bbox-cropped masks
    presence: np.ndarray  # (num_ids,) bool: classes present in the map (any area)


def _pack(mask: np.ndarray) -> bytes:
    # Bit-packed, then deflated: large blobby masks (road, sky) shrink ~20x more, so the index of the
    # whole of Cityscapes stays a few tens of MB in memory.
    return zlib.compress(np.packbits(mask).tobytes(), 1)


def unpack_mask(data: bytes, h: int, w: int) -> np.ndarray:
    """(h, w) bool mask from the bytes the index stores for it."""
    bits = np.frombuffer(zlib.decompress(data), np.uint8)
    return np.unpackbits(bits, count=h * w).reshape(h, w).view(bool)  # (h, w)


def _border_flags(x0: int, y0: int, x1: int, y1: int, h: int, w: int) -> int:
    return (
        (BORDER_LEFT if x0 == 0 else 0)
        | (BORDER_TOP if y0 == 0 else 0)
        | (BORDER_RIGHT if x1 == w else 0)
        | (BORDER_BOTTOM if y1 == h else 0)
    )


# One segment as extraction finds it: class id, donor instance id, crowd, bbox, area, packed mask.
_Row = tuple[int, int, bool, tuple[int, int, int, int], int, bytes]


def _instance_segments(instance: np.ndarray, wanted: np.ndarray, min_area: int) -> tuple[list[_Row], np.ndarray]:
    """Segments of the instance ids whose class is ``wanted`` (a 256-entry LUT), in id order, and the
    (H, W) bool mask of every pixel those instances cover (small ones included)."""
    h, w = instance.shape
    flat = instance.ravel()
    idx = np.flatnonzero(is_instance(flat))
    idx = idx[np.argsort(flat[idx], kind="stable")]  # grouped by id, pixels in raster order
    vals = flat[idx]
    covered = np.zeros((h, w), bool)
    if not vals.size:
        return [], covered
    starts = np.flatnonzero(np.r_[True, vals[1:] != vals[:-1]])
    ends = np.r_[starts[1:], vals.size]
    cls_of, _ = decode_instance(vals[starts])
    keep = (cls_of < 256) & wanted[np.minimum(cls_of, 255)]
    covered.ravel()[idx[np.repeat(keep, ends - starts)]] = True
    rows: list[_Row] = []
    for s, e, cid in zip(starts[keep].tolist(), ends[keep].tolist(), cls_of[keep].tolist(), strict=True):
        if e - s < min_area:
            continue
        ys, xs = np.divmod(idx[s:e], w)
        y0, y1, x0, x1 = int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1
        mask = np.zeros((y1 - y0, x1 - x0), bool)
        mask[ys - y0, xs - x0] = True
        rows.append((cid, int(vals[s]), False, (x0, y0, x1, y1), e - s, _pack(mask)))
    return rows, covered


def _component_segments(
    label: np.ndarray, class_ids: list[int], covered: np.ndarray | None, thing: np.ndarray, min_area: int
) -> list[_Row]:
    """8-connected components of each class mask in ``class_ids``, class by class in raster order.
    Pixels in ``covered`` (taken by instances) are left out of thing classes; what remains of a thing
    class there is a crowd region."""
    rows: list[_Row] = []
    for cid in class_ids:
        m = label == cid
        if covered is not None and thing[cid]:
            m &= ~covered
        # Crop to the class's bounding box first: connected components on the full map cost more.
        ry = np.flatnonzero(m.any(axis=1))
        if ry.size == 0:
            continue
        rx = np.flatnonzero(m.any(axis=0))
        oy, ox = int(ry[0]), int(rx[0])
        sub = m[oy : ry[-1] + 1, ox : rx[-1] + 1].astype(np.uint8)
        n, comp, stats, _ = cv2.connectedComponentsWithStats(sub, connectivity=8)
        crowd = bool(thing[cid] and covered is not None)
        for k in range(1, n):
            x, y, bw, bh, area = (int(v) for v in stats[k])
            if area >= min_area:
                x0, y0 = ox + x, oy + y
                rows.append((cid, 0, crowd, (x0, y0, x0 + bw, y0 + bh), area, _pack(comp[y : y + bh, x : x + bw] == k)))
    return rows


def _as_arrays(rows: list[_Row], presence: np.ndarray, h: int, w: int) -> _MapSegments:
    if not rows:
        return _MapSegments(
            np.zeros(0, np.int16),
            np.zeros(0, np.int32),
            np.zeros(0, bool),
            np.zeros((0, 4), np.int32),
            np.zeros(0, np.int64),
            np.zeros(0, np.uint8),
            [],
            presence,
        )
    cls, src, crowd, bbox, area, bits = zip(*rows, strict=True)
    return _MapSegments(
        class_id=np.array(cls, np.int16),
        src_instance=np.array(src, np.int32),
        crowd=np.array(crowd, bool),
        bbox=np.array(bbox, np.int32).reshape(-1, 4),
        area=np.array(area, np.int64),
        border=np.array([_border_flags(*b, h, w) for b in bbox], np.uint8),
        bits=list(bits),
        presence=presence,
    )


def extract_segments(
    label: np.ndarray, instance: np.ndarray | None, label_space: LabelSpace, min_area: int
) -> _MapSegments:
    """Segments of one (H, W) label map (and its instance map, if any) with at least ``min_area`` pixels.

    Order is deterministic: instances by instance id, then components class by class in raster order.
    """
    h, w = label.shape
    n_ids = label_space.num_ids
    indexed = np.zeros(256, bool)
    indexed[[c.id for c in label_space.eval_classes]] = True
    thing = np.zeros(256, bool)
    thing[list(label_space.instance_ids)] = True
    rows: list[_Row] = []
    covered = None  # pixels already taken by an instance
    if instance is not None:
        rows, covered = _instance_segments(instance, indexed & thing, min_area)
    counts = np.bincount(label.ravel(), minlength=n_ids)[:n_ids]
    big = np.flatnonzero(counts[: min(n_ids, 256)] >= max(min_area, 1)).tolist()
    rows += _component_segments(label, [c for c in big if indexed[c]], covered, thing, min_area)
    return _as_arrays(rows, counts > 0, h, w)
