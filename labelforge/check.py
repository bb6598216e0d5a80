"""Validate a dataset root: pair every sample's files and decode them with format checks.

Example:
    >>> from labelforge.check import check_dataset  # doctest: +SKIP
    >>> check_dataset("data/cityscapes", splits=["train", "val"]).samples  # doctest: +SKIP
    {'train': 2975, 'val': 500}
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from cityscapes_tools.layout import SamplePaths, list_samples, list_splits, validate_sample

from .progress import Progress

__all__ = ["CheckResult", "check_dataset"]


@dataclass(frozen=True)
class CheckResult:
    root: Path
    samples: dict[str, int] = field(default_factory=dict)
    with_images: dict[str, bool] = field(default_factory=dict)
    with_instances: dict[str, bool] = field(default_factory=dict)


def check_dataset(
    root: str | Path,
    splits: list[str] | None = None,
    *,
    deep: bool = True,
    workers: int = 1,
    progress: Progress | None = None,
) -> CheckResult:
    """Check the layout of ``splits`` (default: all) and, with ``deep``, decode and check every file.

    Raises a one-line :class:`~cityscapes_tools.errors.DatasetFormatError` for the first problem.
    """
    root = Path(root)
    splits = splits or list_splits(root)
    per_split = {s: list_samples(root, s) for s in splits}
    if deep:
        todo: list[SamplePaths] = [p for ps in per_split.values() for p in ps]
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
        root=root,
        samples={s: len(ps) for s, ps in per_split.items()},
        with_images={s: ps[0].image is not None for s, ps in per_split.items()},
        with_instances={s: ps[0].instance is not None for s, ps in per_split.items()},
    )
