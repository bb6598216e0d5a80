"""The counting core: class pixel, image and instance counts of label maps, read in parallel.

One 256-bin histogram of a label map gives both the pixels of every label id and its presence; one
histogram of the instance map gives the distinct instance ids (``id * 1000 + k``), hence the instances
per class. Counting costs about a sixth of decoding the PNG (see bench/bench_stats.py), so the
worker processes spend their time in libpng, where it has to go.

Example:
    >>> import numpy as np
    >>> from labelforge.stats.count import count_label
    >>> lab = np.array([[7, 7], [26, 0]], np.uint8)
    >>> c = count_label(lab, "demo.png"); int(c[7]), int(c[26]), int(c.sum())
    (2, 1, 4)
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from cityscapes_tools.errors import DatasetFormatError
from cityscapes_tools.instances import decode_instance, is_instance
from cityscapes_tools.io import read_label, read_png
from cityscapes_tools.layout import check_instances

from ..errors import InputError
from ..layouts.masks import MaskCodec
from ..layouts.masks import histogram as _histogram
from ..progress import NullProgress, Progress

__all__ = ["NBINS", "Counts", "MapJob", "count_label", "count_instances", "count_map", "count_jobs"]

NBINS = 256  # label maps are uint8: every possible id has its own bin


def _zeros() -> np.ndarray:
    return np.zeros(NBINS, np.int64)


@dataclass
class Counts:
    """Summed counts over a set of label maps; arrays are indexed by label id (length :data:`NBINS`).

    ``instance_counts`` is None when no instance maps were counted (a dataset without
    ``*_instanceIds.png``, or ``instances=False``).
    """

    images: int = 0
    pixels: int = 0
    pixel_counts: np.ndarray = field(default_factory=_zeros)  # pixels per label id
    image_counts: np.ndarray = field(default_factory=_zeros)  # maps containing the id
    instance_counts: np.ndarray | None = None  # distinct instance ids per class id
    bad: list[tuple[str, str]] = field(default_factory=list)  # (file, problem) of maps skipped as bad

    def add(self, other: Counts) -> None:
        self.images += other.images
        self.pixels += other.pixels
        self.pixel_counts += other.pixel_counts
        self.image_counts += other.image_counts
        self.bad += other.bad
        if other.instance_counts is not None:
            if self.instance_counts is None:
                self.instance_counts = _zeros()
            self.instance_counts += other.instance_counts


@dataclass(frozen=True)
class MapJob:
    """One label map to count, and its instance map (None: do not count instances).

    ``masks`` says how the map's values become label ids (another layout or label space); None is a
    Cityscapes labelIds map, counted as stored.
    """

    label: Path
    instance: Path | None = None
    masks: MaskCodec | None = None


def count_label(label: np.ndarray, path: str | Path, valid: np.ndarray | None = None) -> np.ndarray:
    """(256,) int64 pixels per label id of a (H, W) uint8 map.

    ``valid`` is a (256,) bool mask of the label space's ids; a pixel with any other id raises
    :class:`DatasetFormatError` naming ``path`` (this replaces a separate ``max()`` pass).
    """
    hist = _histogram(label, NBINS)
    if valid is not None:
        bad = np.flatnonzero((hist > 0) & ~valid)
        if bad.size:
            ids = np.flatnonzero(valid)
            span = f"0..{ids[-1]}" if ids.size == ids[-1] + 1 else ", ".join(map(str, ids))
            raise DatasetFormatError(path, f"label id {int(bad[0])} outside the label space (valid ids: {span})")
    return hist


def count_instances(instance: np.ndarray, path: str | Path, valid: np.ndarray | None = None) -> np.ndarray:
    """(256,) int64 number of distinct instance ids (>= 1000) per class id of a (H, W) instance map.

    Cityscapes convention: instance pixels hold ``class_id * 1000 + k``; other pixels the plain label
    id (< 1000), which counts no instance.
    """
    if instance.dtype == np.uint8:  # 8-bit instance maps cannot hold an id >= 1000
        return _zeros()
    hist = _histogram(instance, 1 << 16) if instance.dtype == np.uint16 else np.bincount(instance.reshape(-1))
    ids = np.flatnonzero(hist)
    ids = ids[is_instance(ids)]  # the distinct instance ids present
    classes, _ = decode_instance(ids)
    bad = classes >= NBINS
    if valid is not None:
        bad |= ~valid[np.minimum(classes, NBINS - 1)]
    if bad.any():
        iid = int(ids[bad][0])
        raise DatasetFormatError(
            path, f"instance id {iid} names class id {decode_instance(iid)[0]}, outside the label space"
        )
    return np.bincount(classes, minlength=NBINS).astype(np.int64)


def _read_instance(path: Path, shape: tuple[int, int]) -> np.ndarray:
    # Like cityscapes_tools.io.read_instance, without its int32 copy (a full extra pass over the map).
    arr = read_png(path)
    if arr.ndim != 2:
        raise DatasetFormatError(path, f"instance map must have 1 channel, found {arr.shape[2]}")
    if arr.dtype not in (np.uint16, np.uint8):
        raise DatasetFormatError(path, f"instance map must be 16-bit, found {arr.dtype}")
    if arr.shape != shape:
        h, w = shape
        raise DatasetFormatError(path, f"instance map is {arr.shape[1]}x{arr.shape[0]} but its label map is {w}x{h}")
    return arr


def count_map(job: MapJob, valid: np.ndarray | None = None) -> Counts:
    """Read one sample's label map (and instance map) and count it."""
    if job.masks is not None and not job.masks.plain:
        pix, shape = job.masks.id_histogram(job.label)  # values checked and moved to their ids
        label = None
    else:
        label = read_label(job.label, check_values=False)  # ids are checked by count_label's histogram
        pix, shape = count_label(label, job.label, valid), label.shape
    inst = None
    if job.instance is not None:
        arr = _read_instance(job.instance, shape)
        if label is not None:  # wrong instances would count wrong instances per class
            check_instances(arr, label, job.instance)
        inst = count_instances(arr, job.instance, valid)
    return Counts(1, shape[0] * shape[1], pix, (pix > 0).astype(np.int64), inst)


# -- parallel reading -------------------------------------------------------------------------------
def _count_chunk(jobs: Sequence[MapJob], valid: np.ndarray | None, skip_bad: bool = False) -> Counts:
    """Worker body: the summed counts of a chunk. A bad file raises DatasetFormatError, which
    pickles, so it reaches the parent as the same one-line error; with ``skip_bad`` it is listed instead."""
    total = Counts()
    for job in jobs:
        try:
            total.add(count_map(job, valid))
        except (DatasetFormatError, InputError) as exc:
            if not skip_bad:
                raise
            total.bad.append((str(exc.path), exc.problem))
    return total


def _worker_init() -> None:
    cv2.setNumThreads(1)  # one process per core already; OpenCV's own threads would only compete


def _chunks(n: int, workers: int) -> list[range]:
    # Small chunks keep the progress bar live and the load balanced; large ones save IPC round trips.
    size = max(1, min(16, n // (workers * 8) or 1))
    return [range(i, min(i + size, n)) for i in range(0, n, size)]


def count_jobs(
    groups: Sequence[Sequence[MapJob]],
    *,
    valid: np.ndarray | None = None,
    workers: int = 1,
    progress: Progress | None = None,
    description: str = "counting label maps",
    skip_bad: bool = False,
) -> list[Counts]:
    """Count several groups of maps (one group per source/split) with ``workers`` processes.

    Returns one :class:`Counts` per group, in order. The first bad file stops the work and raises
    :class:`DatasetFormatError` naming it, however many processes run.
    """
    progress = progress or NullProgress()
    tasks = [(g, [jobs[i] for i in r]) for g, jobs in enumerate(groups) for r in _chunks(len(jobs), max(1, workers))]
    results = [Counts() for _ in groups]
    for g, jobs in enumerate(groups):
        if jobs and jobs[0].instance is not None:
            results[g].instance_counts = _zeros()
    total = sum(len(jobs) for jobs in groups)
    with progress.task(description, total=total) as bar:
        if workers <= 1 or len(tasks) <= 1:
            for g, chunk in tasks:
                results[g].add(_count_chunk(chunk, valid, skip_bad))
                bar.advance(len(chunk))
            return results
        ctx = multiprocessing.get_context("forkserver")  # a clean, thread-free parent for the workers
        ctx.set_forkserver_preload([__name__])
        with ProcessPoolExecutor(min(workers, len(tasks)), mp_context=ctx, initializer=_worker_init) as pool:
            pending: dict[Future, tuple[int, int]] = {
                pool.submit(_count_chunk, chunk, valid, skip_bad): (g, len(chunk)) for g, chunk in tasks
            }
            try:
                while pending:
                    done, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for fut in done:
                        g, n = pending.pop(fut)
                        results[g].add(fut.result())
                        bar.advance(n)
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)
                raise
    return results
