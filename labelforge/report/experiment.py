"""The experiment report: the paper's Tables 1-2 over seeds, with a test of every change against the seed spread.

Rows are the plan's conditions (x ratio x schedule); each holds its seeds' runs. For every row:

* **mIoU**, recomputed per run over one class set for the whole experiment — the classes present in
  the val ground truth — so runs that happen to predict an absent class (IoU 0) and runs that do
  not (IoU undefined) are averaged over the same classes;
* **rare mIoU**, the mean IoU of the plan's rare classes (those present in val), its own column;
* mean ± sample std over seeds, the change against the baseline row, and Welch's t-test of that
  change over seeds (:mod:`labelforge.report.welch`): it *exceeds the seed spread* when p < 0.05;
* per-class IoU of the rare classes (Table 2).

Plus the dataset's counts of the rare classes (from the stats stage), the ratio curve (Fig. 7), a
preview of each condition's training data, and beside every condition that trains on shards the
quality of those shards as the judge (the baseline of the first seed) sees them (``labelforge
quality``: segmentation consistency of the augmented classes and of the rest, feature distance) and,
for a filter condition, the share of pixels the filter dropped. Written as report.md, report.json and a self-contained
report.html.

Example:
    >>> from labelforge.report.experiment import summarize  # doctest: +SKIP
    >>> rep = summarize(params, runs)  # doctest: +SKIP
    >>> rep.rows[1].miou.delta  # doctest: +SKIP
    0.0213
"""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import LabelforgeError
from ..outputs import atomic_write_text, mark_finished, prepare_output
from ..progress import NullProgress, Progress
from ..seg.metrics import read_metrics, to_jsonable
from .welch import ALPHA, welch_test

__all__ = [
    "SCHEMA",
    "Score",
    "Row",
    "ExperimentReport",
    "summarize",
    "write_experiment_report",
    "ExperimentReportResult",
]

SCHEMA = "labelforge.experiment-report/1"


@dataclass
class Score:
    """One number over seeds: values, mean, std, and against the baseline the change and Welch's test."""

    values: list[float]
    mean: float | None = None
    std: float | None = None
    delta: float | None = None
    t: float | None = None
    df: float | None = None
    p: float | None = None

    def __post_init__(self) -> None:
        if self.values:
            self.mean = statistics.fmean(self.values)
            self.std = statistics.stdev(self.values) if len(self.values) > 1 else None

    def compare(self, base: Score) -> None:
        if self.mean is None or base.mean is None:
            return
        self.delta = self.mean - base.mean
        w = welch_test(self.values, base.values)
        if w is not None:
            self.t, self.df, self.p = w.t, w.df, w.p

    @property
    def exceeds_spread(self) -> bool | None:
        """Whether the change against the baseline is beyond seed noise (None: too few seeds to say)."""
        return None if self.p is None else self.p < ALPHA


@dataclass
class Row:
    name: str
    kind: str
    ratio: float | None
    schedule: str | None
    seeds: list[int]
    runs: list[str]  # run folders
    miou: Score
    rare: Score
    per_class: dict[str, Score]
    config: dict[str, Any] = field(default_factory=dict)  # the first seed's train-eval config (for the preview)
    quality: dict[str, Any] | None = None  # its training shards under the judge (quality.json, condensed)
    filter: dict[str, Any] | None = None  # a filter condition's dropped pixels (filter.json, condensed)

    @property
    def label(self) -> str:
        if self.ratio is None:
            return self.name
        return f"{self.name} r{self.ratio:g}" + ("" if self.schedule == "mixed" else f" {self.schedule}")


@dataclass
class ExperimentReport:
    title: str
    classes: list[str]  # the plan's rare classes
    class_set: list[str]  # classes present in the val ground truth: what mIoU averages over
    rows: list[Row]
    baseline: Row
    dataset: dict[str, dict[str, Any]] = field(default_factory=dict)  # rare class -> train/val image counts
    notes: list[str] = field(default_factory=list)
    judge: dict[str, Any] | None = None  # the run that measured the training shards: condition, seed

    def ratio_curves(self) -> dict[str, list[Row]]:
        """Rows by condition (and schedule), for conditions trained at two or more ratios."""
        curves: dict[str, list[Row]] = {}
        for r in self.rows:
            if r.ratio is not None:
                curves.setdefault(r.name if r.schedule == "mixed" else f"{r.name} {r.schedule}", []).append(r)
        return {k: sorted(v, key=lambda r: r.ratio or 0.0) for k, v in curves.items() if len(v) > 1}

    def to_dict(self) -> dict[str, Any]:
        rows = []
        for r in self.rows:
            d = asdict(r)
            d.pop("config")
            d["label"] = r.label
            for key in ("miou", "rare"):
                d[key]["exceeds_spread"] = getattr(r, key).exceeds_spread
            rows.append(d)
        return to_jsonable(
            {
                "schema": SCHEMA,
                "title": self.title,
                "classes": self.classes,
                "class_set": self.class_set,
                "baseline": self.baseline.label,
                "test": f"Welch's t-test over seeds against the baseline, two-sided, alpha {ALPHA}",
                "rows": rows,
                "dataset": self.dataset,
                "ratio_curves": {k: [r.label for r in v] for k, v in self.ratio_curves().items()},
                "judge": self.judge,
                "notes": self.notes,
            }
        )


def _present_in_val(metrics: dict[str, Any]) -> list[str]:
    cm, void = metrics["confusion_matrix"], metrics.get("void_predictions") or [0] * len(metrics["classes"])
    return [c for c, row, v in zip(metrics["classes"], cm, void, strict=True) if sum(row) + v > 0]


def _mean_iou(metrics: dict[str, Any], classes: list[str], where: Path) -> float | None:
    values = [metrics["per_class_iou"].get(c) for c in classes]
    if any(v is None for v in values):
        raise LabelforgeError(f"{where}: a class present in the val ground truth has no IoU")
    return statistics.fmean(values) if values else None  # type: ignore[arg-type]


def condense_quality(doc: dict[str, Any]) -> dict[str, Any]:
    """What the report shows of a quality.json: the consistency figures and the feature distance."""
    c, fd = doc["consistency"], doc["feature_distance"]
    return {
        "augmented_miou": c["augmented_miou"],
        "rest_miou": c["rest_miou"],
        "miou": c["miou"],
        "augmented_classes": c["augmented_classes"],
        "fd": fd["value"],
        "fd_kind": fd["kind"],
        "fd_label": fd["label"],
        "samples": doc["samples"],
    }


def condense_filter(doc: dict[str, Any]) -> dict[str, Any]:
    """What the report shows of a filter.json: the factor, and the pixels dropped in all and per class."""
    return {
        "factor": doc["filter"]["factor"],
        "pixels": doc["total"]["pixels"],
        "dropped": doc["total"]["dropped"],
        "share": doc["total"]["share"],
        "classes": {n: c["share"] for n, c in doc["classes"].items()},
    }


def summarize(
    params: dict[str, Any],
    runs: dict[str, dict[str, Any]],
    paths: dict[str, Path],
    measures: dict[str, dict[str, Any]] | None = None,
) -> ExperimentReport:
    """The report of ``params`` (the report stage's) over ``runs`` (input name -> metrics.json content);
    ``measures`` maps the rows' ``quality`` and ``filter`` inputs to their quality.json / filter.json."""
    measures = measures or {}
    if not runs:
        raise LabelforgeError("the experiment has no finished train-eval run to report")
    sets = {tuple(_present_in_val(m)) for m in runs.values()}
    class_set = [c for c in next(iter(runs.values()))["classes"] if all(c in s for s in sets)]
    notes = [] if len(sets) == 1 else ["runs saw different val ground truths; mIoU uses the classes common to all"]
    rare = [c for c in params["classes"] if c in class_set]
    missing = [c for c in params["classes"] if c not in class_set]
    if missing:
        notes.append(f"rare classes absent from the val ground truth, left out of rare mIoU: {', '.join(missing)}")
    rows = []
    for spec in params["rows"]:
        ms = [(r["seed"], r["input"], runs[r["input"]]) for r in spec["runs"]]
        per_class = {c: Score([m["per_class_iou"][c] for _, _, m in ms]) for c in params["classes"] if c in class_set}
        rows.append(
            Row(
                name=spec["name"],
                kind=spec["kind"],
                ratio=spec["ratio"],
                schedule=spec["schedule"],
                seeds=[s for s, _, _ in ms],
                runs=[str(paths[i]) for _, i, _ in ms],
                miou=Score([_mean_iou(m, class_set, paths[i]) for _, i, m in ms]),  # type: ignore[misc]
                rare=Score([_mean_iou(m, rare, paths[i]) for _, i, m in ms] if rare else []),  # type: ignore[misc]
                per_class=per_class,
                config=ms[0][2].get("config") or {},
                quality=condense_quality(measures[spec["quality"]]) if spec.get("quality") in measures else None,
                filter=condense_filter(measures[spec["filter"]]) if spec.get("filter") in measures else None,
            )
        )
    base = next(r for r in rows if r.name == params["baseline"])
    for r in rows:
        if r is not base:
            r.miou.compare(base.miou)
            r.rare.compare(base.rare)
            for c, s in r.per_class.items():
                s.compare(base.per_class[c])
    rep = ExperimentReport(params["title"], list(params["classes"]), class_set, rows, base, notes=notes)
    rep.judge = params.get("judge")
    return rep


def dataset_counts(stats_json: Path, classes: list[str]) -> dict[str, dict[str, Any]]:
    """Per rare class: maps of the train and val splits holding it (and the train share), from stats.json."""
    doc = json.loads(stats_json.read_text())
    splits = {s["name"]: s["split"] for s in doc["sources"]}
    out: dict[str, dict[str, Any]] = {}
    for c in doc["classes"]:
        if c["name"] in classes:
            by_split = {splits[name]: cs for name, cs in c["sources"].items()}
            out[c["name"]] = {
                "train_images": by_split.get("train", {}).get("images"),
                "train_share": by_split.get("train", {}).get("appearance_freq"),
                "val_images": by_split.get("val", {}).get("images"),
            }
    return out


@dataclass
class ExperimentReportResult:
    report: ExperimentReport
    out: Path
    files: list[Path]


def write_experiment_report(
    params: dict[str, Any], inputs: dict[str, Path], out: Path, progress: Progress | None = None
) -> ExperimentReportResult:
    """Read the runs, build the report and write report.md / report.json / report.html and the figures."""
    from .experiment_figures import preview_grid, ratio_curve_png
    from .experiment_html import html_report
    from .experiment_tables import markdown_report

    progress = progress or NullProgress()
    paths = {k: v for k, v in inputs.items() if k.startswith("run")}
    runs = {k: read_metrics(p / "metrics.json") for k, p in paths.items()}
    measures = {}
    for row in params["rows"]:
        for kind, name in (("quality", "quality.json"), ("filter", "filter.json")):
            if row.get(kind) in inputs:
                measures[row[kind]] = json.loads((inputs[row[kind]] / name).read_text())
    rep = summarize(params, runs, paths, measures)
    if "stats" in inputs:
        rep.dataset = dataset_counts(inputs["stats"] / "stats.json", rep.classes)
    out = prepare_output(out, overwrite=True)
    figures: dict[str, bytes] = {}
    with progress.task("report figures", total=2) as bar:
        if rep.ratio_curves():
            figures["ratio_curve.png"] = ratio_curve_png(rep)
        bar.advance()
        if params.get("preview", 0) > 0:
            figures["training_data.png"] = preview_grid(rep, params["preview"], params["label_space"])
        bar.advance()
    from cityscapes_tools.io import atomic_write_bytes

    for name, data in figures.items():
        atomic_write_bytes(out / name, data)
    atomic_write_text(out / "report.md", markdown_report(rep, list(figures)))
    atomic_write_text(out / "report.json", json.dumps({**rep.to_dict(), "figures": list(figures)}, indent=2) + "\n")
    atomic_write_text(out / "report.html", html_report(rep, figures))
    files = [out / "report.md", out / "report.json", out / "report.html", *(out / f for f in figures)]
    mark_finished(out, {"command": "experiment report"})
    return ExperimentReportResult(rep, out, files)
