"""Read runs (metrics.json files) and group them: seeds of one setting, points of a ratio sweep.

Two runs belong to the same *setting* when their ``config`` objects are equal once the keys that
do not change the experiment are dropped: output and bookkeeping keys (``out``, ``seed``,
``resume``, ``workers``, ``device`` ... see :data:`IGNORED_KEYS`). Path values are compared by
their last component only, so the same shard folder reached from another machine still matches,
while ``shards/overlay`` and ``shards/recon`` stay different settings.

Example:
    >>> from labelforge.report.load import load_runs  # doctest: +SKIP
    >>> runs = load_runs(["runs/base", "runs/overlay/metrics.json"])  # doctest: +SKIP
    >>> [r.name for r in runs]  # doctest: +SKIP
    ['base', 'overlay']
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError, LabelforgeError
from ..seg.metrics import read_metrics

__all__ = ["IGNORED_KEYS", "RATIO_KEY", "Run", "load_run", "load_runs", "setting_key", "group_label"]

IGNORED_KEYS = frozenset(
    {
        "out",
        "out_dir",
        "output",
        "run_dir",
        "seed",
        "resume",
        "overwrite",
        "workers",
        "num_workers",
        "device",
        "quiet",
        "log_every",
        "eval_every",
        "save_predictions",
        "pred_dir",
    }
)
RATIO_KEY = "supp_ratio"


@dataclass(frozen=True)
class Run:
    """One metrics.json and the name it is reported under."""

    name: str
    path: Path
    metrics: dict[str, Any]

    @property
    def miou(self) -> float | None:
        return self.metrics.get("miou")

    @property
    def per_class_iou(self) -> dict[str, float | None]:
        return self.metrics["per_class_iou"]

    @property
    def classes(self) -> list[str]:
        return list(self.metrics.get("classes") or self.per_class_iou)

    @property
    def averaged_classes(self) -> list[str]:
        """The classes this run's own ``miou`` averages: ``miou_classes`` or, in older files, every
        class with an IoU (which then includes classes predicted but absent from the ground truth)."""
        listed = self.metrics.get("miou_classes")
        if isinstance(listed, list):
            return [str(c) for c in listed]
        return [c for c, v in self.per_class_iou.items() if v is not None]

    @property
    def gt_classes(self) -> list[str]:
        """The classes present in the ground truth the run was scored on: ``miou_classes``, else the
        confusion matrix's non-empty rows (void column included), else the classes with an IoU."""
        listed = self.metrics.get("miou_classes")
        if isinstance(listed, list):
            return [str(c) for c in listed]
        cm, void = self.metrics.get("confusion_matrix"), self.metrics.get("void_predictions")
        if isinstance(cm, list) and len(cm) == len(self.classes):
            void = void if isinstance(void, list) and len(void) == len(cm) else [0] * len(cm)
            return [c for c, row, v in zip(self.classes, cm, void, strict=True) if sum(row) + v > 0]
        return [c for c, v in self.per_class_iou.items() if v is not None]

    def miou_over(self, classes: list[str]) -> float | None:
        """The run's mIoU over ``classes``: its own figure when that is the set it averaged, else the
        mean of its per-class IoU over them (None if one of them has no IoU)."""
        if set(classes) == set(self.averaged_classes):
            return self.miou
        values = [self.per_class_iou.get(c) for c in classes]
        if not values or any(v is None for v in values):
            return None
        return sum(values) / len(values)

    @property
    def config(self) -> dict[str, Any]:
        cfg = self.metrics.get("config")
        return cfg if isinstance(cfg, dict) else {}

    @property
    def augmented_classes(self) -> list[str]:
        aug = self.metrics.get("augmented_classes") or self.config.get("augmented_classes") or []
        return [str(c) for c in aug] if isinstance(aug, (list, tuple)) else []

    @property
    def seed(self) -> Any:
        return self.config.get("seed", self.metrics.get("seed"))

    @property
    def ratio(self) -> float | None:
        r = self.config.get(RATIO_KEY)
        return float(r) if isinstance(r, (int, float)) else None


def _metrics_path(path: Path) -> Path:
    if path.is_dir():
        return path / "metrics.json"
    if not path.exists():
        raise InputError(path, "run not found (expected a run folder or its metrics.json)")
    return path


def load_run(path: str | Path, name: str | None = None) -> Run:
    """A run from its folder or its metrics.json; named after the folder unless ``name`` is given."""
    path = Path(path)
    mpath = _metrics_path(path)
    metrics = read_metrics(mpath)
    return Run(name=name or (path.name if path.is_dir() else mpath.parent.resolve().name), path=mpath, metrics=metrics)


def load_runs(paths: list[str | Path], names: list[str] | None = None) -> list[Run]:
    """Load every run; names that would collide get their parent folders prepended until unique."""
    if not paths:
        raise LabelforgeError("no run given")
    if names and len(names) != len(paths):
        raise LabelforgeError(f"{len(names)} --name values for {len(paths)} runs; give one per run or none")
    runs = [load_run(p, names[i] if names else None) for i, p in enumerate(paths)]
    if names:
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise LabelforgeError(f"run name {sorted(dup)[0]!r} given twice")
        return runs
    # Disambiguate e.g. a/seed0 and b/seed0 by walking up the run folders.
    folders = [r.path.parent.resolve() for r in runs]
    depth = [1] * len(runs)
    labels = [r.name for r in runs]
    for _ in range(8):
        clash = [i for i, n in enumerate(labels) if labels.count(n) > 1]
        if not clash:
            break
        for i in clash:
            depth[i] += 1
            labels[i] = "/".join(folders[i].parts[-depth[i] :])
    if len(set(labels)) != len(labels):
        raise LabelforgeError("two runs have the same folder; pass --name once per run")
    return [Run(name=n, path=r.path, metrics=r.metrics) for n, r in zip(labels, runs, strict=True)]


def _normalise(value: Any) -> Any:
    if isinstance(value, str) and ("/" in value or "\\" in value):
        return Path(value.replace("\\", "/")).name
    if isinstance(value, (list, tuple)):
        return [_normalise(v) for v in value]
    if isinstance(value, dict):
        return {k: _normalise(v) for k, v in sorted(value.items())}
    return value


def setting_key(run: Run, drop: frozenset[str] = frozenset()) -> str | None:
    """A canonical string of the run's experiment setting, or None when it has no config."""
    if not run.config:
        return None
    kept = {k: _normalise(v) for k, v in run.config.items() if k not in IGNORED_KEYS and k not in drop}
    return json.dumps(kept, sort_keys=True, default=str)


def group_label(names: list[str]) -> str:
    """A name for a group of seed runs: their common prefix without a trailing seed tag."""
    if len(names) == 1:
        return names[0]
    prefix = names[0]
    for n in names[1:]:
        while not n.startswith(prefix):
            prefix = prefix[:-1]
    prefix = re.sub(r"(?:[-_./\s]+(?:seed|s)?|seed)$", "", prefix)
    return prefix or "+".join(names)
