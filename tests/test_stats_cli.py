"""``labelforge stats`` through the real CLI: table, outputs, --iou forms, shards, and every bad input."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from test_stats import LAB1, LAB2, make_root, write_shards
from typer.testing import CliRunner

from cityscapes_tools.io import write_png
from cityscapes_tools.writer import write_sample
from labelforge.cli.app import app

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, ["stats", *map(str, args)], env={"COLUMNS": "200"})


@pytest.fixture
def root(tmp_path):
    return make_root(tmp_path / "ds")


def test_table_and_outputs(root, tmp_path):
    out = tmp_path / "out"
    res = invoke(root, "--split", "train", "--split", "val", "--rare-threshold", "0.6", "-j", "1", "--out", out)
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    rows = [ln for ln in lines if ln.startswith("│")]
    names = [r.split("│")[1].strip() for r in rows]
    assert names[:3] == ["road", "wall", "car"]  # appearance 100% first (ties by id), then 50%
    assert names[3:5] == ["sidewalk", "person"] and len(names) == 19
    assert "rare augment" in next(r for r in rows if "sidewalk" in r)
    assert "--class sidewalk --class person" in res.stdout
    assert "ds:train (dataset): 2 images" in res.stdout and "ds:val (dataset): 1 images" in res.stdout
    assert sorted(p.name for p in out.iterdir()) == ["_SUCCESS", "stats.csv", "stats.json", "stats.png"]
    doc = json.loads((out / "stats.json").read_text())
    assert doc["schema"] == "labelforge.stats/1" and doc["class_set"] == "eval"
    assert doc["recommendation"]["classes"] == ["sidewalk", "person"] and doc["recommendation"]["ids"] == [8, 24]
    assert doc["thresholds"] == {"rare_appearance": 0.6, "weak_iou": None, "weak_rule": None}
    assert [s["name"] for s in doc["sources"]] == ["ds:train", "ds:val"]
    road = next(c for c in doc["classes"] if c["name"] == "road")
    assert (road["id"], road["train_id"], road["sources"]["ds:train"]["pixels"]) == (7, 0, 20)
    assert road["shift"]["ds:val"]["appearance_freq"] == -1.0
    assert next(c for c in doc["classes"] if c["name"] == "sidewalk")["image_frequency"] == 0.5
    with open(out / "stats.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 19 * 2
    car = next(r for r in rows if r["class"] == "car" and r["source"] == "ds:train")
    assert (car["images"], car["pixels"], car["instances"], car["instances_per_image"]) == ("2", "5", "3", "1.5")
    assert (out / "stats.png").read_bytes()[:4] == b"\x89PNG"


def test_existing_stats_json_is_refused_unless_overwrite(root, tmp_path):
    out = tmp_path / "out"
    assert invoke(root, "-j", "1", "--no-figure", "--out", out).exit_code == 0
    before = (out / "stats.json").read_bytes()
    res = invoke(root, "-j", "1", "--out", out)
    assert res.exit_code == 2 and "stats.json: already exists; pass --overwrite" in res.stderr
    assert (out / "stats.json").read_bytes() == before and not (out / "stats.png").exists()
    res = invoke(root, "-j", "1", "--all-ids", "--out", out, "--overwrite")
    assert res.exit_code == 0 and json.loads((out / "stats.json").read_text())["class_set"] == "all"


@pytest.mark.parametrize("form", ["metrics", "json", "csv"])
def test_iou_forms(root, tmp_path, form):
    values = {"road": 0.9, "sidewalk": 0.3, "wall": 0.2, "person": 0.6, "car": 0.8}
    if form == "metrics":
        p = tmp_path / "metrics.json"
        p.write_text(json.dumps({"schema": "labelforge.metrics/1", "per_class_iou": {**values, "train": None}}))
    elif form == "json":
        p = tmp_path / "iou.json"
        p.write_text(json.dumps({k: 100 * v for k, v in values.items()}))
    else:
        p = tmp_path / "iou.csv"
        p.write_text("name,iou\n" + "".join(f"{k},{v}\n" for k, v in values.items()))
    out = tmp_path / "out"
    res = invoke(root, "--iou", p, "--rare-threshold", "0.6", "-j", "1", "--out", out)
    assert res.exit_code == 0, res.output
    assert "Pearson r = " in res.stdout and "Spearman rho = " in res.stdout and "--class sidewalk" in res.stdout
    doc = json.loads((out / "stats.json").read_text())
    assert doc["iou"]["format"] == form and doc["correlation"]["n"] == 5
    assert doc["recommendation"]["classes"] == ["sidewalk"]
    assert doc["thresholds"]["weak_iou"] == pytest.approx(0.56)
    assert next(c for c in doc["classes"] if c["name"] == "wall")["iou"] == pytest.approx(0.2)


def test_dataset_and_shards_side_by_side(root, tmp_path, label_space):
    shard_dir = write_shards(tmp_path / "composed", label_space)
    out = tmp_path / "out"
    res = invoke(root, shard_dir, "-j", "1", "--out", out)
    assert res.exit_code == 0, res.output
    assert "composed" in res.stdout and "shift" in res.stdout
    sky = next(r for r in res.stdout.splitlines() if r.startswith("│ sky "))
    assert "33.3%" in sky and "+33.3" in sky
    doc = json.loads((out / "stats.json").read_text())
    assert [(s["name"], s["kind"]) for s in doc["sources"]] == [("ds:train", "dataset"), ("composed", "shards")]


# -- bad input: one line on stderr naming the file, exit 2, nothing in --out -------------------------
def _bad(tmp_path, *args, expect):
    out = tmp_path / "out"
    res = invoke(*args, "-j", "1", "--out", out)
    assert res.exit_code == 2, res.output
    return _error_line(res, expect, out)


def _error_line(res, expect, out):
    # stderr also carries the progress bar's last state when counting had started; the error is one line
    lines = [ln for ln in res.stderr.strip().splitlines() if not ln.startswith("counting label maps")]
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert expect in lines[0], lines[0]
    assert not out.exists()
    return lines[0]


def test_missing_root(tmp_path):
    _bad(tmp_path, tmp_path / "nope", expect=f"{tmp_path / 'nope'}: source does not exist")


def test_not_a_dataset_root(tmp_path):
    (tmp_path / "empty").mkdir()
    _bad(tmp_path, tmp_path / "empty", expect="neither a dataset root (no gtFine/ folder) nor a shard dir")


def test_empty_split(tmp_path):
    (tmp_path / "ds" / "gtFine" / "train").mkdir(parents=True)
    _bad(tmp_path, tmp_path / "ds", expect="split 'train' holds no")


def test_missing_split(root, tmp_path):
    _bad(tmp_path, root, "--split", "test", expect="split 'test' not found (splits present: train, val)")


@pytest.mark.parametrize(
    ("damage", "problem"),
    [(lambda b: b[: len(b) // 2], "truncated PNG (no IEND chunk)"), (lambda b: b"garbage", "not a PNG file")],
)
def test_corrupt_png_in_a_worker_process(tmp_path, damage, problem):
    root = tmp_path / "ds"
    for i in range(6):  # enough maps for several chunks, so worker processes really run
        write_sample(root, "train", f"aa_000000_{i:06d}", label=LAB2)
    bad = root / "gtFine" / "train" / "aa" / "aa_000000_000003_gtFine_labelIds.png"
    bad.write_bytes(damage(bad.read_bytes()))
    out = tmp_path / "out"
    res = invoke(root, "-j", "2", "--out", out)
    assert res.exit_code == 2, res.output
    assert _error_line(res, problem, out) == f"error: {bad}: {problem}"


def test_label_id_outside_the_label_space(tmp_path):
    lab = LAB1.copy()
    lab[1, 1] = 99
    write_sample(tmp_path / "ds", "train", "aa_000000_000001", label=lab)
    _bad(tmp_path, tmp_path / "ds", expect="aa_000000_000001_gtFine_labelIds.png: label id 99 outside the label space")


def test_instance_map_of_another_size(tmp_path):
    root = make_root(tmp_path / "ds")
    inst = root / "gtFine" / "train" / "aa" / "aa_000000_000001_gtFine_instanceIds.png"
    write_png(inst, np.full((2, 2), 7, np.uint16))  # write_sample refuses such a pair; build it by hand
    _bad(tmp_path, root, expect=f"{inst}: instance map is 2x2 but its label map is 4x4")


def test_broken_shard_dir(tmp_path):
    d = tmp_path / "shards"
    d.mkdir()
    (d / "manifest.json").write_text("{broken")
    line = _bad(tmp_path, d, expect="manifest.json")
    assert str(d) in line


@pytest.mark.parametrize(
    ("name", "text", "problem"),
    [
        ("missing.json", None, "IoU file not found"),
        ("bad.json", "{oops", "not valid JSON"),
        ("x.csv", "road,x\n", "line 1: IoU 'x' is not a number"),
    ],
)
def test_unreadable_iou_file(root, tmp_path, name, text, problem):
    p = tmp_path / name
    if text is not None:
        p.write_text(text)
    _bad(tmp_path, root, "--iou", p, expect=f"{p}: {problem}")


def test_bad_thresholds(root, tmp_path):
    _bad(tmp_path, root, "--rare-threshold", "1.5", expect="--rare-threshold must lie in (0, 1]")
    _bad(tmp_path, root, "--weak-threshold", "40", expect="--weak-threshold must be an IoU fraction")


def test_shard_dir_alone_and_with_broken_counts(tmp_path, label_space):
    shard_dir = write_shards(tmp_path / "composed", label_space)
    res = invoke(shard_dir)
    assert res.exit_code == 0, res.output
    assert "composed (shards): 3 images, 48 px" in res.stdout and "counting" not in res.stderr
    man = json.loads((shard_dir / "manifest.json").read_text())
    man["shards"][0]["pixel_counts"] = [1, 2, 3]
    (shard_dir / "manifest.json").write_text(json.dumps(man))
    _bad(tmp_path, shard_dir, expect=f"{shard_dir / 'manifest.json'}: malformed per-shard class counts")
