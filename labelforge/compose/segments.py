"""Segments of a dataset's label maps, extracted once and cached: the donors that compose pastes.

A *segment* is one instance of an instance class (from the instance map) or one 8-connected component
of a class mask (stuff classes, and crowd regions of instance classes that carry no instance id). For
each segment the index keeps its class, donor sample, bounding box, area, which image borders it
touches, and its mask cropped to the box, bit-packed and deflated, so the index of all 2975
Cityscapes training maps stays small and photo pixels can be cut later from the donor photo (read
lazily, only for ``--copy-paste``).

Only evaluated classes (those with a train id) are indexed: the others cannot be targeted.

The index is cached under ``cache_dir/segments/<fingerprint>.npz``. The fingerprint covers the root
path, split, every label/instance file's name, size and mtime, the label-space fingerprint and the
minimum area, so any change to the dataset builds a fresh index. Nothing is written into the dataset.

Example:
    >>> from labelforge.dataset import open_dataset  # doctest: +SKIP
    >>> from labelforge.compose.segments import load_segment_index  # doctest: +SKIP
    >>> idx, cached = load_segment_index(open_dataset("data/mini"), "train", min_area=64)  # doctest: +SKIP
    >>> idx.by_class(12)[:3], idx.mask(0).shape  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from cityscapes_tools.errors import DatasetFormatError
from cityscapes_tools.instances import decode_instance, is_instance
from cityscapes_tools.io import atomic_write_bytes
from cityscapes_tools.layout import check_instances

from ..dataset import DatasetSource, SamplePaths
from ..errors import InputError
from ..labelspace import LabelSpace
from ..progress import NullProgress, Progress
from ._pool import imap_ordered

__all__ = [
    "INDEX_VERSION",
    "BORDER_LEFT",
    "BORDER_TOP",
    "BORDER_RIGHT",
    "BORDER_BOTTOM",
    "SegmentIndex",
    "extract_segments",
    "build_segment_index",
    "load_segment_index",
    "default_cache_dir",
    "index_fingerprint",
    "unpack_mask",
]

INDEX_VERSION = 2
BORDER_LEFT, BORDER_TOP, BORDER_RIGHT, BORDER_BOTTOM = 1, 2, 4, 8


def default_cache_dir() -> Path:
    """``$LABELFORGE_CACHE``, else ``~/.cache/labelforge``."""
    env = os.environ.get("LABELFORGE_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "labelforge"


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


@dataclass
class SegmentIndex:
    """All segments of one split. Arrays are parallel over segments; ``keys`` over donor maps."""

    keys: list[str]
    height: int
    width: int
    presence: np.ndarray  # (n_maps, num_ids) bool
    class_id: np.ndarray  # (S,) int16
    donor: np.ndarray  # (S,) int32 index into keys
    src_instance: np.ndarray  # (S,) int32
    crowd: np.ndarray  # (S,) bool
    bbox: np.ndarray  # (S, 4) int32 x0, y0, x1, y1
    area: np.ndarray  # (S,) int64
    border: np.ndarray  # (S,) uint8
    offsets: np.ndarray  # (S+1,) int64 byte offsets into bits
    bits: np.ndarray  # (B,) uint8
    meta: dict[str, Any] = field(default_factory=dict)
    _by_class: dict[int, np.ndarray] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.class_id)

    def mask(self, j: int) -> np.ndarray:
        """(h, w) bool mask of segment ``j`` inside its bounding box."""
        x0, y0, x1, y1 = (int(v) for v in self.bbox[j])
        h, w = y1 - y0, x1 - x0
        return unpack_mask(self.bits[self.offsets[j] : self.offsets[j + 1]].tobytes(), h, w)

    def by_class(self, class_id: int) -> np.ndarray:
        """Indices of the segments of ``class_id`` (ascending)."""
        got = self._by_class.get(class_id)
        if got is None:
            got = self._by_class[class_id] = np.flatnonzero(self.class_id == class_id)
        return got

    def image_frequency(self) -> np.ndarray:
        """(num_ids,) share of the maps in which each label id appears."""
        return self.presence.mean(axis=0) if len(self.keys) else np.zeros(self.presence.shape[1])

    # -- persistence -------------------------------------------------------------------------------
    def save(self, path: Path) -> None:
        """Write atomically (temporary file in the same folder, fsync, rename)."""
        buf = io.BytesIO()
        np.savez(  # masks are compressed already
            buf,
            keys=np.array(self.keys, dtype=str),
            size=np.array([self.height, self.width], np.int64),
            presence=self.presence,
            class_id=self.class_id,
            donor=self.donor,
            src_instance=self.src_instance,
            crowd=self.crowd,
            bbox=self.bbox,
            area=self.area,
            border=self.border,
            offsets=self.offsets,
            bits=self.bits,
            meta=np.array(json.dumps(self.meta, sort_keys=True)),
        )
        atomic_write_bytes(path, buf.getvalue())

    @classmethod
    def load(cls, path: Path) -> SegmentIndex:
        with np.load(path, allow_pickle=False) as z:
            h, w = (int(v) for v in z["size"])
            return cls(
                keys=[str(k) for k in z["keys"]],
                height=h,
                width=w,
                presence=z["presence"],
                class_id=z["class_id"],
                donor=z["donor"],
                src_instance=z["src_instance"],
                crowd=z["crowd"],
                bbox=z["bbox"],
                area=z["area"],
                border=z["border"],
                offsets=z["offsets"],
                bits=z["bits"],
                meta=json.loads(str(z["meta"])),
            )


def index_fingerprint(
    samples: list[SamplePaths], root: Path, split: str, label_space: LabelSpace, min_area: int
) -> str:
    """Hash of everything the index depends on; any file added, removed, resized or touched changes it."""
    h = hashlib.sha256()
    h.update(json.dumps([INDEX_VERSION, str(root.resolve()), split, label_space.fingerprint, int(min_area)]).encode())
    for s in samples:
        for p in (s.label, s.instance):
            if p is None:
                h.update(b"-\n")
                continue
            st = p.stat()
            h.update(f"{p.relative_to(root)}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:24]


# Worker state: set before the pool forks, so workers read it without pickling.
_SCAN: dict[str, Any] = {}


def _scan_one(i: int) -> _MapSegments:
    ds: DatasetSource = _SCAN["ds"]
    s: SamplePaths = _SCAN["samples"][i]
    label = ds.read_label(s)
    inst = ds.read_instance(s)
    if (label.shape[0], label.shape[1]) != _SCAN["size"]:
        h, w = _SCAN["size"]
        raise InputError(s.label, f"map is {label.shape[1]}x{label.shape[0]}, the split's first map is {w}x{h}")
    if inst is not None:  # segments are cut by instance: a wrong one would paste the wrong class
        check_instances(inst, label, s.instance)
    return extract_segments(label, inst, ds.label_space, _SCAN["min_area"])


def _check_one(i: int) -> tuple[tuple[int, int] | None, tuple[str, str] | None]:
    """(map size, None) when sample ``i`` reads cleanly, else (None, (file, problem))."""
    ds: DatasetSource = _SCAN["ds"]
    s: SamplePaths = _SCAN["samples"][i]
    try:
        label = ds.read_label(s)
        inst = ds.read_instance(s)
        if inst is not None:
            check_instances(inst, label, s.instance)
        if _SCAN["photos"]:
            ds.read_pair(s)
        return (int(label.shape[0]), int(label.shape[1])), None
    except (DatasetFormatError, InputError) as exc:
        return None, (str(exc.path), exc.problem)


def usable_samples(
    ds: DatasetSource, samples: list[SamplePaths], *, photos: bool = False, workers: int = 1
) -> tuple[list[SamplePaths], list[tuple[str, str]]]:
    """``--skip-bad``: the samples whose files read cleanly, agree and have the first good map's size,
    and (file, problem) of the others."""
    _SCAN.update(ds=ds, samples=samples, photos=photos)
    try:
        checked = list(imap_ordered(_check_one, range(len(samples)), workers=workers, chunksize=4))
    finally:
        _SCAN.clear()
    good: list[SamplePaths] = []
    bad = [b for _, b in checked if b is not None]
    sizes = [size for size, _ in checked if size is not None]
    for s, (size, _) in zip(samples, checked, strict=True):
        if size is not None and size != sizes[0]:
            bad.append(
                (str(s.label), f"map is {size[1]}x{size[0]}, the split's first map is {sizes[0][1]}x{sizes[0][0]}")
            )
        elif size is not None:
            good.append(s)
    return good, bad


def build_segment_index(
    ds: DatasetSource,
    samples: list[SamplePaths],
    *,
    min_area: int,
    workers: int = 1,
    progress: Progress | None = None,
    meta: dict[str, Any] | None = None,
) -> SegmentIndex:
    """Scan ``samples`` (in parallel when ``workers > 1``) and gather their segments into one index."""
    progress = progress or NullProgress()
    if not samples:
        raise InputError(ds.root, "no samples to index")
    first = ds.read_label(samples[0])
    _SCAN.update(ds=ds, samples=samples, min_area=min_area, size=first.shape[:2])
    parts: list[_MapSegments] = []
    try:
        with progress.task("indexing segments", total=len(samples)) as bar:
            for part in imap_ordered(_scan_one, range(len(samples)), workers=workers, chunksize=2):
                parts.append(part)
                bar.advance(1)
    finally:
        _SCAN.clear()
    bits = [b for p in parts for b in p.bits]
    lengths = np.fromiter((len(b) for b in bits), np.int64, count=len(bits))
    offsets = np.zeros(len(bits) + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return SegmentIndex(
        keys=[s.key for s in samples],
        height=int(first.shape[0]),
        width=int(first.shape[1]),
        presence=np.stack([p.presence for p in parts]),
        class_id=np.concatenate([p.class_id for p in parts]),
        donor=np.concatenate([np.full(len(p.class_id), i, np.int32) for i, p in enumerate(parts)]),
        src_instance=np.concatenate([p.src_instance for p in parts]),
        crowd=np.concatenate([p.crowd for p in parts]),
        bbox=np.concatenate([p.bbox for p in parts]).reshape(-1, 4),
        area=np.concatenate([p.area for p in parts]),
        border=np.concatenate([p.border for p in parts]),
        offsets=offsets,
        bits=np.frombuffer(b"".join(bits), np.uint8).copy(),
        meta=dict(meta or {}),
    )


def load_segment_index(
    ds: DatasetSource,
    split: str,
    *,
    min_area: int,
    cache_dir: str | Path | None = None,
    workers: int = 1,
    progress: Progress | None = None,
    samples: list[SamplePaths] | None = None,
) -> tuple[SegmentIndex, bool]:
    """The segment index of ``split``, from the cache when the dataset is unchanged; returns (index, cached).

    ``cache_dir`` None means :func:`default_cache_dir`. A cache folder that cannot be written only costs
    the re-scan next time.
    """
    progress = progress or NullProgress()
    samples = ds.samples(split) if samples is None else samples  # given: those --skip-bad kept
    fp = index_fingerprint(samples, ds.root, split, ds.label_space, min_area)
    path = Path(cache_dir if cache_dir is not None else default_cache_dir()) / "segments" / f"{fp}.npz"
    if path.is_file():
        try:
            idx = SegmentIndex.load(path)
            if idx.meta.get("fingerprint") == fp and idx.keys == [s.key for s in samples]:
                return idx, True
        except (OSError, ValueError, KeyError, json.JSONDecodeError):
            pass  # a damaged cache file is rebuilt below
    meta = {"fingerprint": fp, "root": str(ds.root), "split": split, "min_area": int(min_area)}
    idx = build_segment_index(ds, samples, min_area=min_area, workers=workers, progress=progress, meta=meta)
    try:
        idx.save(path)
    except OSError as exc:
        progress.log(f"segment index not cached ({path.parent}: {exc.strerror or exc})")
    return idx, False
