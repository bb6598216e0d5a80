"""Which classes are rare, which are weak, and which to augment.

* rare: appearance frequency in the reference source below ``rare_threshold`` (default 0.25: the
  class is in fewer than a quarter of the images);
* weak (only with IoU): IoU below ``weak_threshold``, by default below the mean IoU of the reported
  classes that have one;
* recommended: evaluated classes that occur at least once in the reference (composition needs donor
  segments), are rare, and with IoU also weak. Ordered weakest first (by IoU, else by appearance).

Example:
    >>> from labelforge.stats.recommend import decide
    >>> d = decide({"wall": 0.1, "road": 1.0, "train": 0.02}, {"wall": 0.3, "road": 0.9, "train": 0.7},
    ...            candidates=["wall", "road", "train"])
    >>> d.recommendation.classes, d.thresholds.weak_iou
    (('wall',), 0.6333333333333333)
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = ["Thresholds", "Recommendation", "Decision", "decide", "class_args"]


@dataclass(frozen=True)
class Thresholds:
    rare_appearance: float
    weak_iou: float | None = None  # the IoU threshold applied (None without IoU)
    weak_rule: str | None = None  # "below mean IoU" | "below --weak-threshold"


@dataclass(frozen=True)
class Recommendation:
    classes: tuple[str, ...]
    rule: str

    @property
    def args(self) -> str:
        """The classes as ``compose`` options: ``--class wall --class 'traffic light'``."""
        return class_args(self.classes)


@dataclass(frozen=True)
class Decision:
    rare: dict[str, bool]
    weak: dict[str, bool | None]  # None: no IoU for that class (or no IoU file)
    thresholds: Thresholds
    recommendation: Recommendation


def class_args(names: Sequence[str]) -> str:
    return " ".join(f"--class {shlex.quote(n)}" for n in names)


def decide(
    appearance: Mapping[str, float],
    iou: Mapping[str, float | None] | None,
    *,
    candidates: Sequence[str],
    rare_threshold: float = 0.25,
    weak_threshold: float | None = None,
    max_classes: int = 0,
) -> Decision:
    """Flag every class of ``appearance`` and pick the ``candidates`` (evaluated classes) to augment.

    ``iou`` maps class names to IoU fractions (None: not measured); without it nothing is weak and
    rarity alone decides. ``max_classes`` > 0 keeps only the weakest that many.
    """
    rare = {n: a < rare_threshold for n, a in appearance.items()}
    weak: dict[str, bool | None] = dict.fromkeys(appearance)
    if iou is None:
        thresholds = Thresholds(rare_threshold)
        rule = f"appearance frequency below {rare_threshold:g}"
    else:
        known = [v for n, v in iou.items() if v is not None and n in appearance]
        if weak_threshold is None:
            limit, how = (sum(known) / len(known) if known else 0.0), "below mean IoU"
        else:
            limit, how = weak_threshold, "below --weak-threshold"
        thresholds = Thresholds(rare_threshold, limit, how)
        weak = {n: (None if iou.get(n) is None else iou[n] < limit) for n in appearance}  # type: ignore[operator]
        rule = f"appearance frequency below {rare_threshold:g} and IoU {how} ({limit:.4g})"
    picked = [n for n in candidates if n in appearance and appearance[n] > 0 and rare[n] and weak[n] is not False]
    if iou is not None:
        picked = [n for n in picked if weak[n]]
        picked.sort(key=lambda n: (iou[n], appearance[n]))  # type: ignore[arg-type, return-value]
    else:
        picked.sort(key=lambda n: appearance[n])
    if max_classes > 0:
        picked = picked[:max_classes]
        rule += f", the {max_classes} weakest"
    return Decision(rare, weak, thresholds, Recommendation(tuple(picked), rule))
