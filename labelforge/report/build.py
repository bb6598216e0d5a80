"""Build a comparison of runs (``labelforge report``): the paper's Tables 1-2 and Figs. 5 and 7.

Runs of one setting that differ only in seed are aggregated into one *entry* (mean, and the sample
standard deviation over seeds). Every entry's mIoU and per-class IoU are compared with a baseline
entry (default: the first). When all runs differ only in ``supp_ratio`` the report also plots mIoU
against that ratio.

Every mIoU in a report averages one class set, :attr:`Report.miou_classes`: the classes present
in the ground truth of every run. Runs scored on one val split share it; a run whose own mIoU
averaged another set (a class missing from another run's val, or a metrics file from before
metrics.json recorded ``miou_classes``, when a predicted class absent from the ground truth
counted as 0) is re-averaged over it, so means over seeds and deltas never mix class sets.

Example:
    >>> from labelforge.report import ReportConfig, write_report  # doctest: +SKIP
    >>> res = write_report(ReportConfig(runs=("runs/base", "runs/overlay"), out="report"))  # doctest: +SKIP
    >>> res.report.delta(res.report.entries[1])  # doctest: +SKIP
    0.0134
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import LabelforgeError
from ..outputs import atomic_write_text, check_output, mark_finished, prepare_output
from ..progress import NullProgress, Progress
from ..seg.metrics import to_jsonable
from .load import RATIO_KEY, Run, group_label, load_runs, setting_key

__all__ = [
    "REPORT_SCHEMA",
    "Entry",
    "RatioPoint",
    "Report",
    "ReportConfig",
    "ReportResult",
    "build_report",
    "common_classes",
    "write_report",
]

REPORT_SCHEMA = "labelforge.report/1"


def _mean_std(values: list[float | None]) -> tuple[float | None, float | None]:
    vals = [float(v) for v in values if v is not None]
    if not vals:
        return None, None
    return statistics.fmean(vals), (statistics.stdev(vals) if len(vals) > 1 else None)


@dataclass(frozen=True)
class Entry:
    """One line of the report: a single run, or the seeds of one setting averaged."""

    name: str
    runs: tuple[Run, ...]
    miou: float | None
    miou_std: float | None
    pixel_accuracy: float | None
    per_class: dict[str, float | None]
    per_class_std: dict[str, float | None]
    augmented_classes: tuple[str, ...]
    ratio: float | None

    @classmethod
    def from_runs(cls, name: str, runs: list[Run], classes: list[str], miou_classes: list[str]) -> Entry:
        miou, miou_std = _mean_std([r.miou_over(miou_classes) for r in runs])
        pa, _ = _mean_std([r.metrics.get("pixel_accuracy") for r in runs])
        per_class, per_class_std = {}, {}
        for c in classes:  # a class outside a run's ground truth has no IoU there (older files said 0)
            values = [r.per_class_iou.get(c) if c in r.gt_classes else None for r in runs]
            per_class[c], per_class_std[c] = _mean_std(values)
        aug: list[str] = []
        for r in runs:
            aug += [a for a in r.augmented_classes if a not in aug]
        ratios = {r.ratio for r in runs}
        return cls(
            name=name,
            runs=tuple(runs),
            miou=miou,
            miou_std=miou_std,
            pixel_accuracy=pa,
            per_class=per_class,
            per_class_std=per_class_std,
            augmented_classes=tuple(aug),
            ratio=ratios.pop() if len(ratios) == 1 else None,
        )

    @property
    def n(self) -> int:
        return len(self.runs)


@dataclass(frozen=True)
class RatioPoint:
    ratio: float
    miou: float | None
    miou_std: float | None
    n: int


@dataclass
class Report:
    title: str
    classes: list[str]
    entries: list[Entry]
    baseline: Entry
    ratio_points: list[RatioPoint] = field(default_factory=list)  # empty unless runs differ only in ratio
    miou_classes: list[str] = field(default_factory=list)  # the one class set every mIoU here averages

    def left_out(self) -> dict[str, list[str]]:
        """Classes of some run's ground truth outside :attr:`miou_classes`, with the runs whose lacks them."""
        out: dict[str, list[str]] = {}
        for cls in self.classes:
            if cls in self.miou_classes:
                continue
            missing = [r.name for e in self.entries for r in e.runs if cls not in r.gt_classes]
            if len(missing) < sum(e.n for e in self.entries):  # present in at least one run's ground truth
                out[cls] = missing
        return out

    def re_averaged(self) -> list[Run]:
        """Runs whose own mIoU averaged another class set than the report's."""
        return [r for e in self.entries for r in e.runs if set(r.averaged_classes) != set(self.miou_classes)]

    def delta(self, entry: Entry) -> float | None:
        """mIoU change of ``entry`` against the baseline (a fraction; x100 for points)."""
        if entry.miou is None or self.baseline.miou is None:
            return None
        return entry.miou - self.baseline.miou

    def class_delta(self, entry: Entry, cls: str) -> float | None:
        a, b = entry.per_class.get(cls), self.baseline.per_class.get(cls)
        return None if a is None or b is None else a - b

    def to_dict(self) -> dict[str, Any]:
        return to_jsonable(
            {
                "schema": REPORT_SCHEMA,
                "title": self.title,
                "baseline": self.baseline.name,
                "classes": self.classes,
                "miou_classes": self.miou_classes,
                "miou_classes_left_out": self.left_out(),
                "entries": [
                    {
                        "name": e.name,
                        "n": e.n,
                        "runs": [
                            {
                                "name": r.name,
                                "path": str(r.path),
                                "seed": r.seed,
                                "miou": r.miou_over(self.miou_classes),
                                "miou_own": r.miou,  # as the run's metrics.json has it
                            }
                            for r in e.runs
                        ],
                        "miou": e.miou,
                        "miou_std": e.miou_std,
                        "delta_miou": self.delta(e),
                        "pixel_accuracy": e.pixel_accuracy,
                        "augmented_classes": list(e.augmented_classes),
                        RATIO_KEY: e.ratio,
                        "per_class_iou": e.per_class,
                        "per_class_iou_std": e.per_class_std,
                        "per_class_delta": {c: self.class_delta(e, c) for c in self.classes},
                    }
                    for e in self.entries
                ],
                "ratio_sweep": [vars(p) for p in self.ratio_points] or None,
            }
        )


def _classes(runs: list[Run]) -> list[str]:
    out: list[str] = []
    for r in runs:
        out += [c for c in r.classes if c not in out]
    return out


def common_classes(runs: list[Run]) -> list[str]:
    """The classes present in the ground truth of every run, in class order: the report's mIoU set."""
    sets = [set(r.gt_classes) for r in runs]
    return [c for c in _classes(runs) if all(c in s for s in sets)]


def _ratio_points(runs: list[Run], miou_classes: list[str]) -> list[RatioPoint]:
    """mIoU per ratio when every run has a config and the configs differ only in ratio (and seed)."""
    keys = {setting_key(r, drop=frozenset({RATIO_KEY})) for r in runs}
    if None in keys or len(keys) != 1 or any(r.ratio is None for r in runs):
        return []
    by_ratio: dict[float, list[Run]] = {}
    for r in runs:
        by_ratio.setdefault(r.ratio, []).append(r)  # type: ignore[arg-type]
    if len(by_ratio) < 2:
        return []
    points = []
    for ratio in sorted(by_ratio):
        mean, std = _mean_std([r.miou_over(miou_classes) for r in by_ratio[ratio]])
        points.append(RatioPoint(ratio=ratio, miou=mean, miou_std=std, n=len(by_ratio[ratio])))
    return points


def build_report(runs: list[Run], baseline: str | None = None, title: str = "", aggregate: bool = True) -> Report:
    """Group ``runs`` into entries and pick the baseline (an entry or run name; default the first)."""
    groups: dict[str, list[Run]] = {}
    for i, r in enumerate(runs):
        key = setting_key(r) if aggregate else None
        groups.setdefault(key if key is not None else f"#{i}", []).append(r)
    classes = _classes(runs)
    miou_classes = common_classes(runs)
    entries = [Entry.from_runs(group_label([r.name for r in g]), g, classes, miou_classes) for g in groups.values()]
    if baseline is None:
        base = entries[0]
    else:
        matches = [e for e in entries if e.name == baseline or any(r.name == baseline for r in e.runs)]
        if not matches:
            names = ", ".join(r.name for r in runs)
            raise LabelforgeError(f"baseline {baseline!r} is not one of the runs: {names}")
        base = matches[0]
    return Report(
        title=title or "labelforge report",
        classes=classes,
        entries=entries,
        baseline=base,
        ratio_points=_ratio_points(runs, miou_classes),
        miou_classes=miou_classes,
    )


@dataclass(frozen=True)
class ReportConfig:
    """What ``labelforge report`` was asked."""

    runs: tuple[Path, ...]
    out: Path
    names: tuple[str, ...] = ()
    baseline: str | None = None
    title: str = ""
    aggregate: bool = True
    plots: bool = True
    overwrite: bool = False


@dataclass
class ReportResult:
    report: Report
    out: Path
    files: list[Path]


def write_report(cfg: ReportConfig, progress: Progress | None = None) -> ReportResult:
    """Read the runs, build the report and write report.md, report.json and the PNG figures to ``cfg.out``."""
    from .tables import markdown_report

    progress = progress or NullProgress()
    check_output(cfg.out, overwrite=cfg.overwrite, resumable=False)
    runs = load_runs(list(cfg.runs), list(cfg.names) or None)
    report = build_report(runs, cfg.baseline, cfg.title, cfg.aggregate)
    out = prepare_output(cfg.out, overwrite=cfg.overwrite)
    figures: list[str] = []
    if cfg.plots:
        from .plots import plot_miou_vs_ratio, plot_per_class

        with progress.task("plots", total=2 if report.ratio_points else 1) as bar:
            plot_per_class(report, out / "per_class_iou.png")
            figures.append("per_class_iou.png")
            bar.advance()
            if report.ratio_points:
                plot_miou_vs_ratio(report, out / "miou_vs_ratio.png")
                figures.append("miou_vs_ratio.png")
                bar.advance()
    atomic_write_text(out / "report.md", markdown_report(report, figures))
    atomic_write_text(out / "report.json", json.dumps({**report.to_dict(), "figures": figures}, indent=2) + "\n")
    mark_finished(out, {"command": "report", "runs": [str(r.path) for r in runs]})
    return ReportResult(report, out, [out / "report.md", out / "report.json", *(out / f for f in figures)])
