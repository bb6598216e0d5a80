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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cityscapes_tools.errors import DatasetFormatError
from cityscapes_tools.io import atomic_write_bytes
from cityscapes_tools.layout import check_instances

from ..dataset import DatasetSource, SamplePaths
from ..errors import InputError
from ..labelspace import LabelSpace
from ..progress import NullProgress, Progress
from ._pool import imap_ordered
from .extract import (
    BORDER_BOTTOM,
    BORDER_LEFT,
    BORDER_RIGHT,
    BORDER_TOP,
    _MapSegments,
    extract_segments,
    unpack_mask,
)

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


def default_cache_dir() -> Path:
    """``$LABELFORGE_CACHE``, else ``~/.cache/labelforge``."""
    env = os.environ.get("LABELFORGE_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "labelforge"


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
