"""``labelforge report`` from known metrics files: exact deltas, highlights, seed groups, ratio sweeps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from labelforge.cli.app import app
from labelforge.report import build_report, load_runs
from labelforge.seg.metrics import write_metrics

runner = CliRunner()
CLASSES = ["road", "wall", "pole"]


def make_run(folder: Path, iou: list[float | None], miou: float, augmented=(), **config) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    summary = {
        "classes": CLASSES,
        "per_class_iou": dict(zip(CLASSES, iou, strict=True)),
        "miou": miou,
        "pixel_accuracy": 0.9,
    }
    cfg = {"root": "/data/cityscapes", "lr": 0.01, "out": str(folder), "seed": 0, **config} if config else None
    write_metrics(folder / "metrics.json", summary, augmented_classes=list(augmented), config=cfg)
    return folder


def _report(*args):
    return runner.invoke(app, ["report", *map(str, args)])


@pytest.fixture
def two_runs(tmp_path):
    base = make_run(tmp_path / "runs" / "base", [0.90, 0.30, 0.50], 0.56)
    ovl = make_run(tmp_path / "runs" / "overlay", [0.91, 0.42, 0.48], 0.6034, augmented=["wall"])
    return base, ovl, tmp_path


def test_tables_with_exact_deltas_and_highlights(two_runs):
    base, ovl, tmp = two_runs
    out = tmp / "rep"
    res = _report(base, ovl / "metrics.json", "--out", out, "--title", "Table 1")
    assert res.exit_code == 0, res.output
    md = (out / "report.md").read_text()
    assert md.startswith("# Table 1\n")
    assert "| base | 1 | 56.00 | baseline | 90.00 | - |" in md
    assert "| overlay | 1 | 60.34 | +4.34 | 90.00 | wall |" in md
    assert "| road | 90.00 | 91.00 (+1.00) |" in md
    assert "| wall | 30.00 | **42.00 (+12.00)** |" in md  # augmented: bold
    assert "| pole | 50.00 | 48.00 (-2.00) |" in md  # not augmented: plain
    assert "| **mIoU** | 56.00 | 60.34 (+4.34) |" in md
    rep = json.loads((out / "report.json").read_text())
    assert rep["baseline"] == "base"
    assert rep["entries"][1]["delta_miou"] == pytest.approx(0.0434)
    assert rep["entries"][1]["per_class_delta"]["wall"] == pytest.approx(0.12)
    assert (out / "per_class_iou.png").read_bytes().startswith(b"\x89PNG")
    assert not (out / "miou_vs_ratio.png").exists()  # no config, no ratio sweep
    assert (out / "_SUCCESS").exists()
    assert "60.34" in res.output and "+12.00" in res.output


def test_baseline_option_names_and_refusals(two_runs):
    base, ovl, tmp = two_runs
    out = tmp / "rep"
    args = [base, ovl, "--out", out, "--baseline", "ovl", "--name", "base", "--name", "ovl", "--no-plots"]
    res = _report(*args)
    assert res.exit_code == 0, res.output
    md = (out / "report.md").read_text()
    assert "| base | 1 | 56.00 | -4.34 |" in md and "| wall | 30.00 (-12.00) | **42.00** |" in md
    assert not (out / "per_class_iou.png").exists()
    res = _report(*args)
    assert res.exit_code == 2 and "--overwrite" in res.output
    assert _report(*args, "--overwrite").exit_code == 0
    (out / "_SUCCESS").unlink()  # an unfinished output is refused the same way (report has no --resume)
    res = _report(*args)
    assert res.exit_code == 2 and "--overwrite" in res.output and "--resume" not in res.output
    res = _report(base, ovl, "--out", tmp / "r2", "--baseline", "nope")
    assert res.exit_code == 2 and "'nope'" in res.output and "base, overlay" in res.output
    assert not (tmp / "r2").exists()


def test_bad_metrics_file_is_one_line(tmp_path):
    bad = tmp_path / "run"
    bad.mkdir()
    (bad / "metrics.json").write_text('{"schema": "something/2"}')
    res = _report(bad, "--out", tmp_path / "rep")
    assert res.exit_code == 2
    assert res.output.count("\n") == 1 and "schema 'something/2'" in res.output
    res = _report(tmp_path / "absent", "--out", tmp_path / "rep")
    assert res.exit_code == 2 and "run not found" in res.output
    assert not (tmp_path / "rep").exists()


def test_seed_runs_are_aggregated_to_mean_and_std(tmp_path):
    runs = tmp_path / "runs"
    base = make_run(runs / "base", [0.9, 0.3, 0.5], 0.5, supp=[])
    seeds = [
        # same setting, different seeds and output folders; the root moved to another machine
        make_run(runs / f"ovl-s{s}", [0.9, w, 0.5], m, ["wall"], supp=["/x/shards/overlay"], seed=s)
        for s, w, m in [(0, 0.40, 0.5), (1, 0.50, 0.6), (2, 0.60, 0.7)]
    ]
    res = _report(base, *seeds, "--out", tmp_path / "rep", "--no-plots")
    assert res.exit_code == 0, res.output
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "| ovl | 3 | 60.00 ± 10.00 | +10.00 |" in md
    assert "| wall | 30.00 | **50.00 ± 10.00 (+20.00)** |" in md
    rep = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert [e["n"] for e in rep["entries"]] == [1, 3]
    assert [r["seed"] for r in rep["entries"][1]["runs"]] == [0, 1, 2]
    # --no-aggregate lists them one by one
    res = _report(base, *seeds, "--out", tmp_path / "rep2", "--no-plots", "--no-aggregate")
    assert "| ovl-s1 | 1 | 60.00 | +10.00 |" in (tmp_path / "rep2" / "report.md").read_text()


def test_ratio_plot_only_when_runs_differ_only_in_ratio(tmp_path):
    runs = tmp_path / "runs"
    sweep = [
        make_run(
            runs / f"r{int(r * 100)}-s{s}", [0.9, 0.3 + r / 10, 0.5], m, ["wall"], supp=["sh"], supp_ratio=r, seed=s
        )
        for r, s, m in [(0.3, 0, 0.60), (0.5, 0, 0.62), (0.5, 1, 0.64), (0.7, 0, 0.61)]
    ]
    res = _report(*sweep, "--out", tmp_path / "rep")
    assert res.exit_code == 0, res.output
    assert (tmp_path / "rep" / "miou_vs_ratio.png").read_bytes().startswith(b"\x89PNG")
    rep = json.loads((tmp_path / "rep" / "report.json").read_text())
    points = rep["ratio_sweep"]
    assert [(p["ratio"], p["n"]) for p in points] == [(0.3, 1), (0.5, 2), (0.7, 1)]
    assert points[1]["miou"] == pytest.approx(0.63)
    assert "miou_vs_ratio.png" in rep["figures"]
    # one run with another learning rate: no longer a pure ratio sweep
    other = make_run(runs / "lr", [0.9, 0.3, 0.5], 0.6, supp=["sh"], supp_ratio=0.9, lr=0.02)
    res = _report(*sweep, other, "--out", tmp_path / "rep2")
    assert res.exit_code == 0, res.output
    assert not (tmp_path / "rep2" / "miou_vs_ratio.png").exists()
    assert json.loads((tmp_path / "rep2" / "report.json").read_text())["ratio_sweep"] is None


def test_colliding_folder_names_are_disambiguated(tmp_path):
    a = make_run(tmp_path / "a" / "seed0", [0.9, 0.3, None], 0.6)
    b = make_run(tmp_path / "b" / "seed0", [0.8, 0.3, 0.5], 0.5)
    runs = load_runs([a, b])
    assert [r.name for r in runs] == ["a/seed0", "b/seed0"]
    rep = build_report(runs)
    assert rep.class_delta(rep.entries[1], "road") == pytest.approx(-0.1)
    assert rep.class_delta(rep.entries[1], "pole") is None  # absent in the baseline


def _write(folder: Path, summary: dict, seed: int | None = None, **config) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    cfg = {"root": "/data/mini", "lr": 0.01, "out": str(folder), "seed": seed or 0, **config}
    write_metrics(folder / "metrics.json", summary, config=cfg, augmented_classes=[])
    return folder


def _old_rule(cm: list[list[int]]) -> dict:
    """metrics.json as labelforge wrote it before ``miou_classes``: a class absent from the ground truth
    but predicted got IoU 0 and counted in mIoU; one absent from both was left out."""
    iou = {}
    for k, c in enumerate(CLASSES):
        tp, gt, pred = cm[k][k], sum(cm[k]), sum(row[k] for row in cm)
        iou[c] = tp / (gt + pred - tp) if gt + pred - tp else None
    valid = [v for v in iou.values() if v is not None]
    return {"classes": CLASSES, "per_class_iou": iou, "miou": sum(valid) / len(valid), "pixel_accuracy": 0.8,
            "confusion_matrix": cm, "void_predictions": [0, 0, 0]}  # fmt: skip


def test_seed_mean_averages_one_class_set_from_the_ground_truth(tmp_path):
    # One val split: road 3 px, wall 2 px, no pole. Seed 0 predicted pole once (old rule: IoU 0, counted),
    # seed 1 never did (left out): their own mIoUs average different class sets.
    base = _write(tmp_path / "base", _old_rule([[2, 1, 0], [0, 2, 0], [0, 0, 0]]))
    s0 = _write(tmp_path / "ovl-s0", _old_rule([[2, 0, 1], [0, 2, 0], [0, 0, 0]]), seed=0, supp=["sh"])
    s1 = _write(tmp_path / "ovl-s1", _old_rule([[3, 0, 0], [1, 1, 0], [0, 0, 0]]), seed=1, supp=["sh"])
    assert json.loads((s0 / "metrics.json").read_text())["miou"] == pytest.approx(5 / 9)  # (2/3 + 1 + 0) / 3
    res = _report(base, s0, s1, "--out", tmp_path / "rep", "--no-plots")
    assert res.exit_code == 0, res.output
    # Over {road, wall}: seed 0 (2/3 + 1) / 2 = 83.33, seed 1 (3/4 + 1/2) / 2 = 62.50 -> 72.92 ± 14.73;
    # the baseline (2/3 + 2/3) / 2 = 66.67.
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "| ovl | 2 | 72.92 ± 14.73 | +6.25 |" in md
    assert "mIoU averages the 2 classes present in the ground truth of every run" in md
    assert "re-averaged over this set from another class set (own mIoU): ovl-s0 (55.56)." in md
    assert "Classes: road, wall." in md
    assert "| pole | n/a | n/a |" in md  # outside every run's ground truth: no IoU, though seed 0's file says 0
    rep = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert rep["miou_classes"] == ["road", "wall"] and rep["miou_classes_left_out"] == {}
    runs = rep["entries"][1]["runs"]
    assert [r["miou"] for r in runs] == pytest.approx([5 / 6, 5 / 8])
    assert [r["miou_own"] for r in runs] == pytest.approx([5 / 9, 5 / 8])
    assert "mIoU averages the 2 classes" in res.output  # the terminal table says it too


def test_runs_on_different_ground_truth_share_the_classes_of_both(tmp_path):
    from labelforge.seg.metrics import ConfusionMatrix, metrics_summary

    # Run a's val holds pole, run b's does not: the report averages road and wall for both.
    a = metrics_summary(ConfusionMatrix.from_matrix([[3, 0, 0], [0, 1, 1], [0, 0, 2]]), CLASSES)
    b = metrics_summary(ConfusionMatrix.from_matrix([[3, 1, 0], [0, 2, 0], [0, 0, 0]]), CLASSES)
    assert a["miou_classes"] == CLASSES and b["miou_classes"] == ["road", "wall"]
    ra, rb = _write(tmp_path / "a", a), _write(tmp_path / "b", b, lr=0.02)
    rep = build_report(load_runs([ra, rb]))
    assert rep.miou_classes == ["road", "wall"] and rep.left_out() == {"pole": ["b"]}
    assert rep.entries[0].miou == pytest.approx((1 + 0.5) / 2)  # a re-averaged without its pole (2/3)
    assert rep.entries[1].miou == pytest.approx(b["miou"]) == pytest.approx((3 / 4 + 2 / 3) / 2)
    assert [r.name for r in rep.re_averaged()] == ["a"]
