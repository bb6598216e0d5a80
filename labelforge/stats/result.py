"""From raw counts to the statistics: per class and source frequencies, IoU, correlation, flags.

Definitions (see docs/stats.md):

* appearance frequency = images containing the class / images;
* pixel frequency = pixels of the class / labelled pixels, where "labelled" means pixels of an
  evaluated class (train id not ignore) when the 19 evaluation classes are reported, and all pixels
  with ``--all-ids``; ignored pixels are always those of non-evaluated ids (void, ignore-in-eval);
* mean area = pixels of the class / images containing it (also as a fraction of the mean image size);
* instances per image = distinct instance ids of the class / images (instance classes only).

Example:
    >>> from labelforge.stats.result import summarize  # doctest: +SKIP
    >>> res = summarize(ls, [(source, counts)], iou=None)  # doctest: +SKIP
    >>> res.to_dict()["schema"]  # doctest: +SKIP
    'labelforge.stats/1'
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..labelspace import ClassDef, LabelSpace
from .correlate import pearson, spearman
from .count import NBINS, Counts
from .iou import IouTable
from .recommend import Decision, Recommendation, Thresholds, decide
from .sources import Source

__all__ = ["STATS_SCHEMA", "SourceStats", "ClassSource", "ClassStats", "Correlation", "StatsResult", "summarize"]

STATS_SCHEMA = "labelforge.stats/1"


@dataclass(frozen=True)
class SourceStats:
    source: Source
    counts: Counts
    labelled_pixels: int  # denominator of the pixel frequencies
    ignored_pixels: int  # pixels of non-evaluated ids

    @property
    def name(self) -> str:
        return self.source.name

    @property
    def has_instances(self) -> bool:
        return self.counts.instance_counts is not None


@dataclass(frozen=True)
class ClassSource:
    """One class in one source."""

    images: int
    appearance_freq: float
    pixels: int
    pixel_freq: float
    mean_area_px: float | None  # None: never present
    mean_area_frac: float | None  # mean area / mean image size
    instances: int | None = None  # None: not an instance class, or no instance maps
    instances_per_image: float | None = None
    instances_when_present: float | None = None


@dataclass(frozen=True)
class ClassStats:
    cls: ClassDef
    evaluated: bool
    sources: dict[str, ClassSource]
    shift: dict[str, dict[str, float]]  # other source -> {"appearance_freq": d, "pixel_freq": d} vs reference
    iou: float | None = None
    rare: bool = False
    weak: bool | None = None
    recommended: bool = False


@dataclass(frozen=True)
class Correlation:
    n: int
    pearson: float | None
    spearman: float | None
    x: str
    y: str = "iou"


@dataclass(frozen=True)
class StatsResult:
    label_space: LabelSpace
    all_ids: bool
    reference: str
    sources: list[SourceStats]
    classes: list[ClassStats]  # in label-id order
    thresholds: Thresholds
    recommendation: Recommendation
    iou: IouTable | None = None
    mean_iou: float | None = None
    correlation: Correlation | None = None
    skipped: tuple[tuple[str, str], ...] = ()  # (file, problem) of the maps --skip-bad left out

    def by_appearance(self) -> list[ClassStats]:
        """Classes sorted by appearance frequency in the reference, most frequent first."""
        return sorted(self.classes, key=lambda c: (-c.sources[self.reference].appearance_freq, c.cls.id))

    def to_dict(self) -> dict[str, Any]:
        """The content of stats.json (schema ``labelforge.stats/1``, documented in docs/stats.md)."""
        from .output import stats_dict  # the schema lives beside the other writers

        return stats_dict(self)


def _class_source(c: Counts, cid: int, has_instances: bool, labelled: int) -> ClassSource:
    images, pixels = int(c.image_counts[cid]), int(c.pixel_counts[cid])
    mean_image = c.pixels / c.images if c.images else 0.0
    mean_area = pixels / images if images else None
    inst = None
    if has_instances and c.instance_counts is not None:
        inst = int(c.instance_counts[cid])
    return ClassSource(
        images=images,
        appearance_freq=images / c.images if c.images else 0.0,
        pixels=pixels,
        pixel_freq=pixels / labelled if labelled else 0.0,
        mean_area_px=mean_area,
        mean_area_frac=None if mean_area is None or not mean_image else mean_area / mean_image,
        instances=inst,
        instances_per_image=None if inst is None or not c.images else inst / c.images,
        instances_when_present=None if inst is None or not images else inst / images,
    )


def summarize(
    label_space: LabelSpace,
    counted: Sequence[tuple[Source, Counts]],
    *,
    all_ids: bool = False,
    iou: IouTable | None = None,
    rare_threshold: float = 0.25,
    weak_threshold: float | None = None,
    max_classes: int = 0,
) -> StatsResult:
    """Turn per-source counts into a :class:`StatsResult`.

    The reference source (rarity, correlation, shifts) is the first dataset split given, or the first
    source when only shard dirs are given.
    """
    ls = label_space
    evaluated = np.zeros(NBINS, bool)
    evaluated[[c.id for c in ls.eval_classes]] = True
    sources = []
    for src, c in counted:
        eval_pixels = int(c.pixel_counts[evaluated].sum())
        labelled = c.pixels if all_ids else eval_pixels
        sources.append(SourceStats(src, c, labelled, c.pixels - eval_pixels))
    reference = next((s.name for s in sources if s.source.kind == "dataset"), sources[0].name)
    reported = sorted(ls.classes if all_ids else ls.eval_classes, key=lambda c: c.id)

    per_class: dict[str, dict[str, ClassSource]] = {
        cd.name: {s.name: _class_source(s.counts, cd.id, cd.has_instances, s.labelled_pixels) for s in sources}
        for cd in reported
    }
    appearance = {n: v[reference].appearance_freq for n, v in per_class.items()}
    iou_values = None if iou is None else {cd.name: iou.values.get(cd.name) for cd in reported}
    decision = decide(
        appearance,
        iou_values,
        candidates=[cd.name for cd in reported if evaluated[cd.id]],
        rare_threshold=rare_threshold,
        weak_threshold=weak_threshold,
        max_classes=max_classes,
    )

    classes = [_class_stats(cd, per_class[cd.name], reference, evaluated, iou_values, decision) for cd in reported]
    mean_iou, corr = _iou_summary(appearance, iou_values, reference)
    return StatsResult(
        label_space=ls,
        all_ids=all_ids,
        reference=reference,
        sources=sources,
        classes=classes,
        thresholds=decision.thresholds,
        recommendation=decision.recommendation,
        iou=iou,
        mean_iou=mean_iou,
        correlation=corr,
    )


def _class_stats(
    cd: ClassDef,
    sources: dict[str, ClassSource],
    reference: str,
    evaluated: np.ndarray,
    iou_values: dict[str, float | None] | None,
    decision: Decision,
) -> ClassStats:
    """One class's row: its frequencies per source, their shift against the reference, IoU and the verdicts."""
    ref = sources[reference]
    shift = {
        name: {
            "appearance_freq": cs.appearance_freq - ref.appearance_freq,
            "pixel_freq": cs.pixel_freq - ref.pixel_freq,
        }
        for name, cs in sources.items()
        if name != reference
    }
    return ClassStats(
        cls=cd,
        evaluated=bool(evaluated[cd.id]),
        sources=sources,
        shift=shift,
        iou=None if iou_values is None else iou_values[cd.name],
        rare=decision.rare[cd.name],
        weak=decision.weak[cd.name],
        recommended=cd.name in decision.recommendation.classes,
    )


def _iou_summary(
    appearance: dict[str, float], iou_values: dict[str, float | None] | None, reference: str
) -> tuple[float | None, Correlation | None]:
    """Mean IoU over the classes that have one, and how IoU follows appearance frequency."""
    if iou_values is None:
        return None, None
    pairs = [(appearance[n], v) for n, v in iou_values.items() if v is not None]
    mean_iou = sum(v for _, v in pairs) / len(pairs) if pairs else None
    xs, ys = [p[0] for p in pairs], [p[1] for p in pairs]
    ok = len(pairs) >= 3  # two points always correlate perfectly: say nothing instead
    corr = Correlation(
        n=len(pairs),
        pearson=pearson(xs, ys) if ok else None,
        spearman=spearman(xs, ys) if ok else None,
        x=f"appearance_freq of {reference}",
    )
    return mean_iou, corr
