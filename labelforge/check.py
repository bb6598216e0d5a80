"""Validate a dataset root of any layout: pair every sample's files and decode them with format checks.

Example:
    >>> from labelforge.check import check_dataset  # doctest: +SKIP
    >>> check_dataset("data/cityscapes", splits=["train", "val"]).samples  # doctest: +SKIP
    {'train': 2975, 'val': 500}
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from .dataset import Sample, open_dataset, validate_sample
from .labelspace import LabelSpace
from .layouts import Layout
from .progress import NullProgress, Progress

__all__ = ["CheckResult", "check_dataset", "validate_samples"]

# Below this many samples a process pool costs more than it saves.
_POOL_MIN = 64


@dataclass(frozen=True)
class CheckResult:
    root: Path
    layout: str = "cityscapes"
    label_space: str = "cityscapes"
    samples: dict[str, int] = field(default_factory=dict)
    with_images: dict[str, bool] = field(default_factory=dict)
    with_instances: dict[str, bool] = field(default_factory=dict)


def check_dataset(
    root: str | Path,
    splits: list[str] | None = None,
    *,
    deep: bool = True,
    workers: int = 1,
    layout: str | Layout = "auto",
    label_space: str | LabelSpace = "auto",
    progress: Progress | None = None,
) -> CheckResult:
    """Check the file pairing of ``splits`` (default: all) and, with ``deep``, decode and check every file
    (mask values against the label space, photo sizes, instance ids).

    Raises a one-line :class:`~cityscapes_tools.errors.DatasetFormatError` for the first problem.
    """
    ds = open_dataset(root, label_space, layout)
    splits = splits or ds.splits()
    per_split = {s: ds.samples(s) for s in splits}
    if deep:
        validate_samples([p for ps in per_split.values() for p in ps], workers=workers, progress=progress)
    return CheckResult(
        root=ds.root,
        layout=ds.layout.spec(),
        label_space=ds.label_space.name,
        samples={s: len(ps) for s, ps in per_split.items()},
        with_images={s: ps[0].image is not None for s, ps in per_split.items()},
        with_instances={s: ps[0].instance is not None for s, ps in per_split.items()},
    )


def validate_samples(samples: Sequence[Sample], *, workers: int = 1, progress: Progress | None = None) -> None:
    """Decode and check every file of ``samples`` (see :func:`labelforge.dataset.validate_sample`);
    the first problem raises its one-line error. The training commands run this before they write.
    """
    progress = progress or NullProgress()
    with progress.task("checking files", total=len(samples), transient=True) as bar:
        if workers <= 1 or len(samples) < _POOL_MIN:
            for s in samples:
                validate_sample(s)
                bar.advance()
            return
        # forkserver: callers may hold torch's threads, which a forked child must not inherit.
        ctx = multiprocessing.get_context("forkserver")
        with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
            for _ in pool.map(validate_sample, samples, chunksize=8):
                bar.advance()
