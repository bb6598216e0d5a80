"""``labelforge stats`` as one library call: check inputs, count, summarise, write.

Example:
    >>> from labelforge.stats import StatsConfig, run_stats  # doctest: +SKIP
    >>> res = run_stats(StatsConfig(sources=(Path("data/mini"),), out=Path("out/stats")))  # doctest: +SKIP
    >>> res.recommendation.classes  # doctest: +SKIP
    ('train', 'bus', 'truck')
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..errors import LabelforgeError
from ..progress import Progress
from .count import NBINS, Counts, count_jobs
from .iou import load_iou
from .output import check_output, write_outputs
from .result import StatsResult, summarize
from .sources import resolve_sources, resolve_stats_label_space, shard_counts

__all__ = ["StatsConfig", "compute_stats", "run_stats"]


@dataclass(frozen=True)
class StatsConfig:
    """Everything ``labelforge stats`` does, as data (the CLI options map onto these fields)."""

    sources: tuple[Path, ...]
    splits: tuple[str, ...] = ("train",)
    label_space: str = "auto"  # a built-in name, a file, or the sources' own
    layout: str = "auto"  # of the dataset roots (labelforge.layouts)
    all_ids: bool = False  # report every label id, not only the evaluated classes
    instances: bool = True  # also read instance maps to count instances per class
    iou: Path | None = None
    rare_threshold: float = 0.25
    weak_threshold: float | None = None  # None: below the mean IoU
    max_classes: int = 0  # 0: recommend every rare (and weak) class
    workers: int = 0  # 0: all cores
    out: Path | None = None
    overwrite: bool = False
    figure: bool = True
    skip_bad: bool = False  # leave out (and list) maps that fail to read instead of stopping


def _check(cfg: StatsConfig) -> None:
    if not cfg.sources:
        raise LabelforgeError("no source given: pass a dataset root or a shard dir")
    if not cfg.splits or len(set(cfg.splits)) != len(cfg.splits):
        raise LabelforgeError(f"splits must be given once each, got {list(cfg.splits)}")
    if not 0 < cfg.rare_threshold <= 1:
        raise LabelforgeError(f"--rare-threshold must lie in (0, 1], got {cfg.rare_threshold}")
    if cfg.weak_threshold is not None and not 0 <= cfg.weak_threshold <= 1:
        raise LabelforgeError(f"--weak-threshold must be an IoU fraction in [0, 1], got {cfg.weak_threshold}")
    if cfg.max_classes < 0:
        raise LabelforgeError(f"--max-classes must be >= 0, got {cfg.max_classes}")


def compute_stats(cfg: StatsConfig, progress: Progress | None = None) -> StatsResult:
    """Count every source and summarise; reads nothing but the inputs and writes nothing."""
    _check(cfg)
    ls = resolve_stats_label_space(cfg.sources, cfg.label_space, cfg.layout)
    iou = None if cfg.iou is None else load_iou(cfg.iou, ls)  # before counting: a bad file fails fast
    sources = resolve_sources(cfg.sources, cfg.splits, ls, instances=cfg.instances, layout=cfg.layout)
    valid = np.zeros(NBINS, bool)  # the ids a label map may hold
    valid[[c.id for c in ls.classes]] = True
    datasets = [s for s in sources if s.kind == "dataset"]
    workers = cfg.workers if cfg.workers > 0 else (os.cpu_count() or 1)
    # Shard counts first: a broken manifest fails before the long part.
    by_name: dict[str, Counts] = {s.name: shard_counts(s, ls) for s in sources if s.kind == "shards"}
    if datasets:  # shard dirs alone need no decoding, hence no workers and no progress bar
        counted = count_jobs(
            [s.jobs for s in datasets], valid=valid, workers=workers, progress=progress, skip_bad=cfg.skip_bad
        )
        by_name.update({s.name: c for s, c in zip(datasets, counted, strict=True)})
    skipped = tuple(b for c in by_name.values() for b in c.bad)
    res = summarize(
        ls,
        [(s, by_name[s.name]) for s in sources],
        all_ids=cfg.all_ids,
        iou=iou,
        rare_threshold=cfg.rare_threshold,
        weak_threshold=cfg.weak_threshold,
        max_classes=cfg.max_classes,
    )
    return replace(res, skipped=skipped)


def run_stats(cfg: StatsConfig, progress: Progress | None = None) -> StatsResult:
    """Compute the statistics and, with ``cfg.out``, write stats.json/.csv/.png there.

    Nothing is written unless every input was read cleanly; an existing stats.json is refused
    (before any counting) unless ``cfg.overwrite``.
    """
    if cfg.out is not None:
        check_output(cfg.out, cfg.overwrite)
    res = compute_stats(cfg, progress)
    if cfg.out is not None:
        write_outputs(res, cfg.out, overwrite=cfg.overwrite, figure=cfg.figure)
    return res
