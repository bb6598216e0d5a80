"""labelforge.stats core: exact counts on hand-built maps, real-sample agreement, correlation, IoU files, shards."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cityscapes_tools.errors import DatasetFormatError
from cityscapes_tools.writer import write_sample
from labelforge.errors import InputError
from labelforge.stats import (
    StatsConfig,
    compute_stats,
    count_instances,
    count_label,
    decide,
    load_iou,
    pearson,
    rankdata,
    spearman,
)
from labelforge.stats.count import MapJob, count_jobs

# -- hand-built dataset --------------------------------------------------------------------------
# train: two 4x4 maps; val: one 4x4 map. Ids: 0 unlabeled, 7 road, 8 sidewalk, 12 wall, 24 person, 26 car.
LAB1 = np.array([[7, 7, 7, 7], [7, 7, 8, 8], [26, 26, 0, 12], [24, 24, 26, 26]], np.uint8)
INST1 = LAB1.astype(np.int32)
INST1[2, 0:2] = 26001
INST1[3, 2:4] = 26002
INST1[3, 0:2] = 24001
LAB2 = np.full((4, 4), 7, np.uint8)
LAB2[0, 0] = 12
LAB2[3, 3] = 26
INST2 = LAB2.astype(np.int32)
INST2[3, 3] = 26000  # k = 0 is a valid instance (id*1000 + 0)
LAB3 = np.full((4, 4), 23, np.uint8)  # val: all sky
LAB3[0, 0] = 5  # dynamic (void)


def make_root(root, instances=True):
    write_sample(root, "train", "aa_000000_000001", label=LAB1, instance=INST1 if instances else None)
    write_sample(root, "train", "aa_000000_000002", label=LAB2, instance=INST2 if instances else None)
    write_sample(root, "val", "bb_000000_000001", label=LAB3, instance=LAB3.astype(np.int32) if instances else None)
    return root


@pytest.fixture
def root(tmp_path):
    return make_root(tmp_path / "ds")


def by_name(res, source):
    return {c.cls.name: c.sources[source] for c in res.classes}


def test_count_label_and_instances_exact():
    pix = count_label(LAB1, "x.png")
    assert pix.shape == (256,) and pix.dtype == np.int64
    assert {int(i): int(pix[i]) for i in np.flatnonzero(pix)} == {0: 1, 7: 6, 8: 2, 12: 1, 24: 2, 26: 4}
    inst = count_instances(INST1.astype(np.uint16), "i.png")
    assert {int(i): int(inst[i]) for i in np.flatnonzero(inst)} == {24: 1, 26: 2}
    assert count_instances(INST2.astype(np.uint16), "i.png")[26] == 1
    assert not count_instances(LAB1, "i.png").any()  # an 8-bit instance map holds no instance ids


def test_count_label_rejects_ids_outside_the_label_space():
    valid = np.zeros(256, bool)
    valid[:34] = True
    bad = LAB1.copy()
    bad[0, 0] = 40
    with pytest.raises(DatasetFormatError, match=r"x\.png: label id 40 outside the label space \(valid ids: 0\.\.33\)"):
        count_label(bad, "x.png", valid)


def test_dataset_counts_exact(root):
    res = compute_stats(StatsConfig(sources=(root,), splits=("train", "val"), workers=1))
    assert [s.name for s in res.sources] == ["ds:train", "ds:val"] and res.reference == "ds:train"
    train = res.sources[0]
    assert (train.counts.images, train.counts.pixels, train.ignored_pixels, train.labelled_pixels) == (2, 32, 1, 31)
    t = by_name(res, "ds:train")
    assert len(t) == 19
    assert (t["road"].images, t["road"].pixels, t["road"].appearance_freq) == (2, 20, 1.0)
    assert t["road"].pixel_freq == pytest.approx(20 / 31)
    assert (t["sidewalk"].appearance_freq, t["sidewalk"].pixels, t["sidewalk"].mean_area_px) == (0.5, 2, 2.0)
    assert t["sidewalk"].mean_area_frac == pytest.approx(2 / 16)
    assert (t["wall"].appearance_freq, t["wall"].mean_area_px) == (1.0, 1.0)
    assert (t["car"].pixels, t["car"].instances, t["car"].instances_per_image) == (5, 3, 1.5)
    assert (t["person"].instances, t["person"].instances_when_present) == (1, 1.0)
    assert t["road"].instances is None  # not an instance class
    assert (t["sky"].images, t["sky"].appearance_freq, t["sky"].mean_area_px) == (0, 0.0, None)
    v = by_name(res, "ds:val")
    assert (v["sky"].appearance_freq, v["sky"].pixel_freq, res.sources[1].ignored_pixels) == (1.0, 1.0, 1)
    # shift of the val split against the reference (train)
    sky = next(c for c in res.classes if c.cls.name == "sky")
    assert sky.shift["ds:val"]["appearance_freq"] == 1.0
    assert sky.shift["ds:val"]["pixel_freq"] == pytest.approx(1.0)


def test_all_ids_reports_void_classes_and_all_pixels(root):
    res = compute_stats(StatsConfig(sources=(root,), all_ids=True, workers=1))
    t = by_name(res, "ds:train")
    assert len(t) == 34
    assert (t["unlabeled"].appearance_freq, t["unlabeled"].pixel_freq) == (0.5, 1 / 32)
    assert t["road"].pixel_freq == 20 / 32
    unl = next(c for c in res.classes if c.cls.name == "unlabeled")
    assert unl.rare is False and unl.evaluated is False and unl.recommended is False  # 0.5 >= 0.25


def test_without_instance_maps_instances_are_unknown(tmp_path):
    res = compute_stats(StatsConfig(sources=(make_root(tmp_path / "ds", instances=False),), workers=1))
    assert by_name(res, "ds:train")["car"].instances is None and not res.sources[0].has_instances
    res2 = compute_stats(StatsConfig(sources=(make_root(tmp_path / "d2"),), instances=False, workers=1))
    assert by_name(res2, "d2:train")["car"].instances is None


def test_worker_processes_agree_with_in_process_counting(root):
    jobs = [
        MapJob(p, p.with_name(p.name.replace("labelIds", "instanceIds"))) for p in sorted(root.rglob("*labelIds.png"))
    ]
    one = count_jobs([jobs[:2], jobs[2:]], workers=1)
    two = count_jobs([jobs[:2], jobs[2:]], workers=2)
    for a, b in zip(one, two, strict=True):
        assert (a.images, a.pixels) == (b.images, b.pixels)
        assert (a.pixel_counts == b.pixel_counts).all() and (a.instance_counts == b.instance_counts).all()


def test_worker_error_reaches_the_caller_as_one_line(root):
    bad = root / "gtFine" / "train" / "aa" / "aa_000000_000002_gtFine_labelIds.png"
    bad.write_bytes(bad.read_bytes()[:-20])  # truncated
    jobs = [MapJob(p) for p in sorted(root.rglob("*labelIds.png"))]
    with pytest.raises(DatasetFormatError, match="aa_000000_000002_gtFine_labelIds.png: truncated PNG"):
        count_jobs([jobs], workers=2)


def test_agreement_with_plain_numpy_on_real_cityscapes(cityscapes_samples, label_space):
    import cv2

    res = compute_stats(StatsConfig(sources=(cityscapes_samples,), all_ids=True, workers=1))
    got = by_name(res, res.reference)
    labels = sorted((cityscapes_samples / "gtFine" / "train").rglob("*_gtFine_labelIds.png"))
    pixels = np.zeros(34, np.int64)
    images = np.zeros(34, np.int64)
    instances = np.zeros(34, np.int64)
    for p in labels:
        lab = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
        ids, n = np.unique(lab, return_counts=True)
        pixels[ids] += n
        images[ids] += 1
        inst = cv2.imread(str(p).replace("labelIds", "instanceIds"), cv2.IMREAD_UNCHANGED)
        for iid in np.unique(inst[inst >= 1000]):
            instances[iid // 1000] += 1
    for c in label_space.classes:
        g = got[c.name]
        assert (g.pixels, g.images) == (pixels[c.id], images[c.id]), c.name
        assert g.appearance_freq == images[c.id] / len(labels)
        if c.has_instances:
            assert g.instances == instances[c.id], c.name
    assert res.sources[0].counts.pixels == len(labels) * 1024 * 2048


def test_agreement_with_plain_numpy_on_synthetic_scenes(tmp_path, label_space):
    scene = pytest.importorskip("cityscapes_tools.synth.scene")
    rng = np.random.default_rng(3)
    maps = [scene.sample_scene(rng, 64, 128) for _ in range(12)]
    for i, (lab, inst) in enumerate(maps):
        write_sample(tmp_path / "mini", "train", f"mini_000000_{i:06d}", label=lab, instance=inst, color=False)
    res = compute_stats(StatsConfig(sources=(tmp_path / "mini",), workers=2))
    got = by_name(res, "mini:train")
    for c in label_space.eval_classes:
        present = [int((lab == c.id).sum()) for lab, _ in maps]
        assert got[c.name].pixels == sum(present), c.name
        assert got[c.name].appearance_freq == sum(n > 0 for n in present) / 12, c.name
        if c.has_instances:
            n_inst = sum(len({int(v) for v in np.unique(inst) if v >= 1000 and v // 1000 == c.id}) for _, inst in maps)
            assert got[c.name].instances == n_inst, c.name
    labelled = sum(int(np.isin(lab, [c.id for c in label_space.eval_classes]).sum()) for lab, _ in maps)
    assert res.sources[0].labelled_pixels == labelled


# -- correlation ---------------------------------------------------------------------------------
def test_correlation_on_a_known_example():
    x = [0.1, 0.5, 0.5, 0.9, 0.3, 0.7]
    y = [0.2, 0.6, 0.4, 0.95, 0.2, 0.8]
    stats = pytest.importorskip("scipy.stats")  # a cross-check only
    assert pearson(x, y) == pytest.approx(stats.pearsonr(x, y)[0], abs=1e-12)
    assert spearman(x, y) == pytest.approx(stats.spearmanr(x, y)[0], abs=1e-12)
    assert rankdata(x).tolist() == stats.rankdata(x).tolist() == [1.0, 3.5, 3.5, 6.0, 2.0, 5.0]
    assert pearson([1, 2, 3], [3, 5, 7]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [10, 9, 1, 0]) == pytest.approx(-1.0)
    assert pearson([1, 1, 1], [1, 2, 3]) is None and pearson([1], [2]) is None


def test_decide_rare_weak_and_recommendation():
    appearance = {"wall": 0.1, "fence": 0.2, "road": 1.0, "train": 0.05, "bus": 0.0}
    iou = {"wall": 0.3, "fence": 0.5, "road": 0.9, "train": 0.8, "bus": 0.1}
    d = decide(appearance, iou, candidates=list(appearance))
    assert d.thresholds.weak_iou == pytest.approx(0.52) and d.thresholds.weak_rule == "below mean IoU"
    assert d.rare == {"wall": True, "fence": True, "road": False, "train": True, "bus": True}
    assert d.weak == {"wall": True, "fence": True, "road": False, "train": False, "bus": True}
    assert d.recommendation.classes == ("wall", "fence")  # bus never appears: nothing to paste
    assert d.recommendation.args == "--class wall --class fence"
    d2 = decide(appearance, None, candidates=list(appearance), rare_threshold=0.15, max_classes=1)
    assert d2.recommendation.classes == ("train",) and d2.weak["wall"] is None
    d3 = decide(appearance, iou, candidates=list(appearance), weak_threshold=0.85)
    assert d3.recommendation.classes == ("wall", "fence", "train")
    assert decide({"traffic light": 0.1}, None, candidates=["traffic light"]).recommendation.args == (
        "--class 'traffic light'"
    )


# -- IoU files -----------------------------------------------------------------------------------
def test_iou_metrics_json(tmp_path, label_space):
    p = tmp_path / "metrics.json"
    p.write_text(
        json.dumps({"schema": "labelforge.metrics/1", "miou": 0.5, "per_class_iou": {"road": 0.9, "train": None}})
    )
    t = load_iou(p, label_space)
    assert (t.format, t.scale, t.values) == ("metrics", "fraction", {"road": 0.9, "train": None})


def test_iou_plain_json_in_percent(tmp_path, label_space):
    p = tmp_path / "iou.json"
    p.write_text(json.dumps({"road": 97.5, "Traffic_Light": 40, "wall": 0.5}))
    t = load_iou(p, label_space)
    assert (t.format, t.scale) == ("json", "percent")
    assert t.values == pytest.approx({"road": 0.975, "traffic light": 0.4, "wall": 0.005})


@pytest.mark.parametrize(
    "text",
    ["class,iou\nroad,0.9\ntraffic light,0.25\ntrain,\n", "road,90\ntraffic light,25\ntrain,nan\n"],
)
def test_iou_csv_with_and_without_header(tmp_path, label_space, text):
    p = tmp_path / "iou.csv"
    p.write_text(text)
    t = load_iou(p, label_space)
    assert t.format == "csv"
    assert t.values == pytest.approx({"road": 0.9, "traffic light": 0.25, "train": None})


@pytest.mark.parametrize(
    ("name", "text", "problem"),
    [
        ("a.json", "{not json", "not valid JSON"),
        ("a.json", '{"nonsense-class": 0.5}', "unknown class 'nonsense-class'"),
        ("a.json", '{"schema": "labelforge.metrics/9", "per_class_iou": {}}', "unsupported schema"),
        ("a.json", '{"road": "high"}', "is not a number"),
        ("a.json", '{"road": 250}', "above 100"),
        ("a.csv", "road,0.5\nwall,abc\n", "line 2: IoU 'abc' is not a number"),
        ("a.csv", "", "no class IoU values"),
        ("a.csv", "road,0.5\nroad,0.6\n", "listed twice"),
    ],
)
def test_iou_bad_files_name_the_file(tmp_path, label_space, name, text, problem):
    p = tmp_path / name
    p.write_text(text)
    with pytest.raises(InputError, match=problem) as err:
        load_iou(p, label_space)
    assert str(err.value).startswith(str(p) + ": ")


def test_iou_correlation_and_flags_in_the_result(root, tmp_path):
    p = tmp_path / "iou.json"
    # train appearance: road 1, sidewalk .5, wall 1, person .5, car 1; the rest 0
    p.write_text(json.dumps({"road": 0.9, "sidewalk": 0.3, "wall": 0.2, "person": 0.6, "car": 0.8, "sky": None}))
    res = compute_stats(StatsConfig(sources=(root,), iou=p, rare_threshold=0.6, workers=1))
    assert res.correlation.n == 5
    xs, ys = [1.0, 0.5, 1.0, 0.5, 1.0], [0.9, 0.3, 0.2, 0.6, 0.8]
    assert res.correlation.pearson == pytest.approx(pearson(xs, ys))
    assert res.correlation.spearman == pytest.approx(spearman(xs, ys))
    assert res.mean_iou == pytest.approx(0.56)
    assert res.recommendation.classes == ("sidewalk",)  # rare (0.5 < 0.6) and weak (0.3 < 0.56); person is not weak
    flags = {c.cls.name: (c.rare, c.weak) for c in res.classes}
    assert flags["person"] == (True, False) and flags["sky"] == (True, None) and flags["wall"] == (False, True)


# -- shards --------------------------------------------------------------------------------------
def write_shards(path, label_space):
    shards = pytest.importorskip("labelforge.shards")
    maps = [(LAB1, INST1), (LAB2, INST2), (LAB3, LAB3.astype(np.int32))]
    with shards.ShardWriter(
        path, label_space=label_space, method="overlay", config={}, seed=0, total=3, height=4, width=4,
        samples_per_shard=2,
    ) as w:  # fmt: skip
        for i in range(w.start_index, 3):
            w.write(i, key=f"sh_000000_{i:06d}", label=maps[i][0], instance=maps[i][1], provenance={})
    return path


def test_shard_dir_counts_from_the_manifest(root, tmp_path, label_space, monkeypatch):
    shard_dir = write_shards(tmp_path / "wall", label_space)
    from labelforge.shards import ShardSet

    def no_decoding(*a, **k):
        raise AssertionError("stats must not decode shard samples")

    monkeypatch.setattr(ShardSet, "__getitem__", no_decoding)
    monkeypatch.setattr(ShardSet, "iter_shard", no_decoding)
    res = compute_stats(StatsConfig(sources=(shard_dir, root), workers=1))
    assert [s.name for s in res.sources] == ["wall", "ds:train"]
    assert res.reference == "ds:train"  # the dataset is the reference even when named second
    sh = res.sources[0]
    assert (sh.counts.images, sh.counts.pixels, sh.ignored_pixels, sh.source.method) == (3, 48, 2, "overlay")
    s = by_name(res, "wall")
    assert (s["car"].instances, s["sky"].appearance_freq, s["road"].pixels) == (3, 1 / 3, 20)
    sky = next(c for c in res.classes if c.cls.name == "sky")
    assert sky.shift["wall"]["appearance_freq"] == pytest.approx(1 / 3)


def test_shard_dir_with_another_label_space_is_refused(tmp_path, label_space):
    from labelforge.labelspace import LabelSpace

    d = label_space.to_dict()
    d["name"] = "other"
    shard_dir = write_shards(tmp_path / "sh", LabelSpace.from_dict(d))
    with pytest.raises(InputError, match="differs from 'cityscapes'"):
        compute_stats(StatsConfig(sources=(shard_dir,), label_space="cityscapes", workers=1))
    # label space auto: a shard dir alone is counted in its own label space
    assert compute_stats(StatsConfig(sources=(shard_dir,), workers=1)).label_space.name == "other"
