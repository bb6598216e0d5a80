"""stats.json, stats.csv and stats.png: built completely in memory, then written atomically.

``write_outputs`` renders every file before it touches the output folder, so an error (a bad value,
a figure that cannot be drawn) leaves nothing behind; each file then appears atomically and
``_SUCCESS`` last.

Example:
    >>> from labelforge.stats.output import write_outputs  # doctest: +SKIP
    >>> write_outputs(result, "out/stats", overwrite=False)  # doctest: +SKIP
    ['stats.json', 'stats.csv', 'stats.png']
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cityscapes_tools.io import atomic_write_bytes

from .. import __version__, outputs
from ..errors import OutputExistsError
from ..outputs import mark_finished, prepare_output

if TYPE_CHECKING:
    from .result import ClassSource, StatsResult

__all__ = [
    "STATS_JSON",
    "STATS_CSV",
    "STATS_PNG",
    "CSV_COLUMNS",
    "stats_dict",
    "stats_csv",
    "check_output",
    "write_outputs",
]

STATS_JSON, STATS_CSV, STATS_PNG = "stats.json", "stats.csv", "stats.png"
SKIPPED = "skipped.txt"  # --skip-bad: one "file<TAB>problem" line per map left out
CSV_COLUMNS = (
    "class", "id", "train_id", "source", "kind", "split", "images", "appearance_freq", "pixels", "pixel_freq",
    "mean_area_px", "instances", "instances_per_image", "appearance_shift", "iou", "rare", "weak", "recommended",
)  # fmt: skip


def _num(x: float | None) -> float | None:
    # JSON has no NaN/inf; a missing number is null.
    return None if x is None or not math.isfinite(x) else float(x)


def _class_source_dict(cs: ClassSource) -> dict[str, Any]:
    return {
        "images": cs.images,
        "appearance_freq": _num(cs.appearance_freq),
        "pixels": cs.pixels,
        "pixel_freq": _num(cs.pixel_freq),
        "mean_area_px": _num(cs.mean_area_px),
        "mean_area_frac": _num(cs.mean_area_frac),
        "instances": cs.instances,
        "instances_per_image": _num(cs.instances_per_image),
        "instances_when_present": _num(cs.instances_when_present),
    }


def stats_dict(res: StatsResult) -> dict[str, Any]:
    """The stats.json document."""
    ls = res.label_space
    corr = res.correlation
    return {
        "schema": "labelforge.stats/1",
        "labelforge_version": __version__,
        "label_space": {"name": ls.name, "fingerprint": ls.fingerprint, "num_ids": ls.num_ids},
        "class_set": "all" if res.all_ids else "eval",
        "pixel_freq_of": "all pixels" if res.all_ids else "labelled pixels (ids of evaluated classes)",
        "reference": res.reference,
        "sources": [
            {
                "name": s.name,
                "kind": s.source.kind,
                "path": str(s.source.path),
                "split": s.source.split,
                "method": s.source.method,
                "images": s.counts.images,
                "pixels": s.counts.pixels,
                "labelled_pixels": s.labelled_pixels,
                "ignored_pixels": s.ignored_pixels,
                "has_instances": s.has_instances,
            }
            for s in res.sources
        ],
        "thresholds": {
            "rare_appearance": res.thresholds.rare_appearance,
            "weak_iou": _num(res.thresholds.weak_iou),
            "weak_rule": res.thresholds.weak_rule,
        },
        "iou": None
        if res.iou is None
        else {
            "file": str(res.iou.path),
            "format": res.iou.format,
            "scale": res.iou.scale,
            "mean_iou": _num(res.mean_iou),
        },
        "correlation": None
        if corr is None
        else {"x": corr.x, "y": corr.y, "n": corr.n, "pearson": _num(corr.pearson), "spearman": _num(corr.spearman)},
        "recommendation": {
            "classes": list(res.recommendation.classes),
            "ids": [ls.get(n).id for n in res.recommendation.classes],
            "rule": res.recommendation.rule,
            "args": res.recommendation.args,
        },
        "classes": [
            {
                "name": c.cls.name,
                "id": c.cls.id,
                "train_id": c.cls.train_id if c.evaluated else None,
                "evaluated": c.evaluated,
                "has_instances": c.cls.has_instances,
                # the reference's appearance frequency, under the key compose --target reads
                "image_frequency": _num(c.sources[res.reference].appearance_freq),
                "iou": _num(c.iou),
                "rare": c.rare,
                "weak": c.weak,
                "recommended": c.recommended,
                "sources": {name: _class_source_dict(cs) for name, cs in c.sources.items()},
                "shift": {name: {k: _num(v) for k, v in d.items()} for name, d in c.shift.items()},
            }
            for c in res.classes
        ],
    }


def _cell(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return f"{v:.6g}"
    return v


def stats_csv(res: StatsResult) -> str:
    """One row per class and source (long format), classes in label-id order."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for c in res.classes:
        for s in res.sources:
            cs = c.sources[s.name]
            shift = c.shift.get(s.name, {}).get("appearance_freq")
            row = (
                c.cls.name, c.cls.id, c.cls.train_id if c.evaluated else None, s.name, s.source.kind, s.source.split,
                cs.images, cs.appearance_freq, cs.pixels, cs.pixel_freq, cs.mean_area_px, cs.instances,
                cs.instances_per_image, shift, c.iou, c.rare, c.weak, c.recommended,
            )  # fmt: skip
            w.writerow([_cell(v) for v in row])
    return buf.getvalue()


def check_output(out: str | Path, overwrite: bool) -> None:
    """Refuse early (before any counting) an output folder that already holds results."""
    out = Path(out)
    if not overwrite and (out / STATS_JSON).exists():
        raise OutputExistsError(out / STATS_JSON, "already exists; pass --overwrite to replace it")
    outputs.check_output(out, overwrite=overwrite, resumable=False)


def write_outputs(res: StatsResult, out: str | Path, *, overwrite: bool = False, figure: bool = True) -> list[str]:
    """Write stats.json, stats.csv (and stats.png) into ``out``; returns the file names written."""
    check_output(out, overwrite)
    doc = stats_dict(res)
    if res.skipped:  # absent otherwise: stats.json of a clean run stays as it was
        doc["skipped"] = [{"file": path, "problem": problem} for path, problem in res.skipped]
    files: dict[str, bytes] = {
        STATS_JSON: (json.dumps(doc, indent=2, allow_nan=False) + "\n").encode(),
        STATS_CSV: stats_csv(res).encode(),
    }
    if res.skipped:
        files[SKIPPED] = "".join(f"{path}\t{problem}\n" for path, problem in res.skipped).encode()
    if figure:
        from .figure import render_figure  # matplotlib is imported only here

        files[STATS_PNG] = render_figure(res)
    folder = prepare_output(out, overwrite=overwrite)
    for name, data in files.items():
        atomic_write_bytes(folder / name, data)
    mark_finished(folder, {"command": "stats", "files": list(files)})
    return list(files)
