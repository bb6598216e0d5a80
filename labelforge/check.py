"""Validate a dataset root of any layout: pair every sample's files and decode them with format checks.

Example:
    >>> from labelforge.check import check_dataset  # doctest: +SKIP
    >>> check_dataset("data/cityscapes", splits=["train", "val"]).samples  # doctest: +SKIP
    {'train': 2975, 'val': 500}
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from .dataset import Sample, open_dataset, validate_sample
from .labelspace import LabelSpace
from .layouts import Layout
from .progress import Progress

__all__ = ["CheckResult", "check_dataset"]


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
        todo: list[Sample] = [p for ps in per_split.values() for p in ps]
        progress = progress or Progress()
        with progress.task("checking files", total=len(todo)) as bar:
            if workers > 1:
                with ProcessPoolExecutor(workers) as pool:
                    for _ in pool.map(validate_sample, todo, chunksize=8):
                        bar.advance()
            else:
                for p in todo:
                    validate_sample(p)
                    bar.advance()
    return CheckResult(
        root=ds.root,
        layout=ds.layout.spec(),
        label_space=ds.label_space.name,
        samples={s: len(ps) for s, ps in per_split.items()},
        with_images={s: ps[0].image is not None for s, ps in per_split.items()},
        with_instances={s: ps[0].instance is not None for s, ps in per_split.items()},
    )
