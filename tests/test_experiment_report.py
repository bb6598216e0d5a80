"""The experiment report's numbers on hand-built runs: one class set for every mIoU, rare mIoU, Welch, tables."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

from labelforge.report.experiment import summarize, write_experiment_report
from labelforge.report.experiment_tables import class_table, summary_table
from labelforge.report.welch import welch_test

CLASSES = ["road", "wall", "bus"]


def _metrics(road: float, wall: float, bus: float | None) -> dict:
    """A run on a val split holding road and wall but no bus; ``bus`` is 0.0 when the run predicted some."""
    cm = [[90, 10, 0 if bus is None else 5], [5, 20, 0], [0, 0, 0]]
    return {
        "schema": "labelforge.metrics/1",
        "classes": CLASSES,
        "per_class_iou": {"road": road, "wall": wall, "bus": bus},
        "miou": statistics.fmean([v for v in (road, wall, bus) if v is not None]),  # the per-run mean: mixes sets
        "confusion_matrix": cm,
        "void_predictions": [0, 0, 0],
        "config": {},
    }


RUNS = {
    "run0": _metrics(0.90, 0.10, None),
    "run1": _metrics(0.92, 0.14, 0.0),  # predicted a bus somewhere: IoU 0 for a class absent from val
    "run2": _metrics(0.91, 0.40, None),
    "run3": _metrics(0.93, 0.46, 0.0),
    "run4": _metrics(0.90, 0.50, None),
}
PARAMS = {
    "title": "t",
    "classes": ["wall", "bus"],
    "baseline": "baseline",
    "label_space": "cityscapes",
    "preview": 0,
    "rows": [
        {"name": "baseline", "kind": "baseline", "ratio": None, "schedule": None,
         "runs": [{"seed": 0, "input": "run0"}, {"seed": 1, "input": "run1"}]},
        {"name": "oracle", "kind": "oracle", "ratio": 0.3, "schedule": "mixed",
         "runs": [{"seed": 0, "input": "run2"}, {"seed": 1, "input": "run3"}, {"seed": 2, "input": "run4"}]},
    ],
}  # fmt: skip


def test_every_run_averages_over_the_classes_present_in_val() -> None:
    rep = summarize(PARAMS, RUNS, {k: Path(k) for k in RUNS})
    assert rep.class_set == ["road", "wall"]  # bus is in no val ground truth, whatever the runs predicted
    base, oracle = rep.rows
    assert base.miou.values == pytest.approx([0.50, 0.53])  # not 0.50 and (0.92 + 0.14 + 0) / 3
    assert oracle.miou.values == pytest.approx([0.655, 0.695, 0.70])
    assert base.rare.values == pytest.approx([0.10, 0.14]) and oracle.rare.values == pytest.approx([0.40, 0.46, 0.50])
    assert "bus" in rep.notes[0] and list(oracle.per_class) == ["wall"]
    ref = welch_test(oracle.rare.values, base.rare.values)
    assert oracle.rare.delta == pytest.approx(statistics.fmean([0.40, 0.46, 0.50]) - 0.12)
    assert (oracle.rare.t, oracle.rare.df, oracle.rare.p) == (ref.t, ref.df, ref.p)
    assert oracle.rare.exceeds_spread is (ref.p < 0.05)
    assert base.miou.delta is None and base.miou.exceeds_spread is None


def test_tables_mark_changes_beyond_the_seed_spread() -> None:
    doc = summarize(PARAMS, RUNS, {k: Path(k) for k in RUNS}).to_dict()
    header, rows = summary_table(doc)
    assert header == ["condition", "seeds", "mIoU", "Δ", "p", "rare mIoU", "Δ rare", "p rare"]
    assert [str(c) for c in rows[0]] == ["baseline", "2", "51.50 ± 2.12", "", "", "12.00 ± 2.83", "", ""]
    label, seeds, miou, delta, p, rare, d_rare, p_rare = rows[1]
    assert (label, seeds, rare, d_rare) == ("oracle r0.3", "3", "45.33 ± 5.03", "+33.33")
    assert d_rare.strong and d_rare.sign == 1  # p < 0.05
    _, crow = class_table(doc)
    assert [str(c) for c in crow[0]] == ["wall", "12.00 ± 2.83", "45.33 ± 5.03 (+33.33)"]


def test_written_report_has_markdown_json_and_a_self_contained_page(tmp_path: Path) -> None:
    inputs = {}
    for name, m in RUNS.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "metrics.json").write_text(json.dumps(m))
        inputs[name] = tmp_path / name
    params = {**PARAMS, "rows": [*PARAMS["rows"], {**PARAMS["rows"][1], "ratio": 0.6}]}
    res = write_experiment_report(params, inputs, tmp_path / "report")
    names = sorted(p.name for p in res.files)
    assert names == ["ratio_curve.png", "report.html", "report.json", "report.md"]
    doc = json.loads((tmp_path / "report" / "report.json").read_text())
    assert doc["ratio_curves"] == {"oracle": ["oracle r0.3", "oracle r0.6"]}
    page = (tmp_path / "report" / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 1 and "<table>" in page


def test_quality_of_the_training_shards_stands_beside_each_condition(tmp_path: Path) -> None:
    from labelforge.report.experiment_tables import quality_table

    inputs = {}
    for name, m in RUNS.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "metrics.json").write_text(json.dumps(m))
        inputs[name] = tmp_path / name
    quality = {
        "samples": 12,
        "consistency": {"miou": 0.3, "augmented_miou": 0.125, "rest_miou": 0.5, "augmented_classes": ["wall"]},
        "feature_distance": {"value": 21.5, "kind": "segmenter_fd", "label": "segmenter features; not FID"},
    }
    filt = {"filter": {"factor": 1.25}, "total": {"pixels": 800, "dropped": 100, "share": 0.125},
            "classes": {"wall": {"share": 0.5}, "road": {"share": 0.0}}}  # fmt: skip
    for name, doc, file in (("q", quality, "quality.json"), ("f", filt, "filter.json")):
        (tmp_path / name).mkdir()
        (tmp_path / name / file).write_text(json.dumps(doc))
        inputs[name] = tmp_path / name
    rows = [PARAMS["rows"][0], {**PARAMS["rows"][1], "name": "filter", "kind": "filter", "quality": "q", "filter": "f"}]
    params = {**PARAMS, "rows": rows, "judge": {"condition": "baseline", "seed": 0}}
    write_experiment_report(params, inputs, tmp_path / "report")
    doc = json.loads((tmp_path / "report" / "report.json").read_text())
    assert doc["rows"][0]["quality"] is None and doc["rows"][1]["quality"]["augmented_miou"] == 0.125
    assert doc["rows"][1]["filter"] == {"factor": 1.25, "pixels": 800, "dropped": 100, "share": 0.125,
                                        "classes": {"wall": 0.5, "road": 0.0}}  # fmt: skip
    header, cells = quality_table(doc)
    assert header[1:4] == ["consistency augmented", "consistency other", "feature distance"]
    assert cells == [["filter r0.3", "12.50", "50.00", "21.50", "12.50% (x1.25)"]]  # baseline: no shards, no line
    md = (tmp_path / "report" / "report.md").read_text()
    assert "## Render quality of the training shards" in md and "| filter r0.3 | 12.50 | 50.00 | 21.50 |" in md
    assert "the baseline run of seed 0" in md and "not FID" in md
    page = (tmp_path / "report" / "report.html").read_text()
    assert "Render quality of the training shards" in page and "<td>12.50% (x1.25)</td>" in page


def test_quality_legend_warns_when_the_judge_cannot_see_the_augmented_classes() -> None:
    from labelforge.report.experiment_tables import quality_legend

    def doc(judge_wall_iou: float) -> dict:
        base = {"label": "baseline", "per_class": {"wall": {"values": [judge_wall_iou, 0.5]}, "bus": {"values": []}}}
        return {"rows": [base], "baseline": "baseline", "classes": ["wall", "bus"], "judge": {"seed": 0}}

    blind = quality_legend(doc(0.0))
    assert "finds the augmented classes in the val photos at IoU wall 0.00" in blind and "cannot tell" in blind
    assert "cannot tell" not in quality_legend(doc(0.10))  # a judge that sees wall at 10 IoU can grade it
