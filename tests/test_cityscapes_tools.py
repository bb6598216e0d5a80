"""The Cityscapes layer: the label table against the official values, the layout reader on the real
samples, the writer round trip, and every validation error as one line naming the file (exit 2)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from cityscapes_tools import io as csio
from cityscapes_tools.errors import DatasetFormatError
from cityscapes_tools.instances import decode_instance, encode_instance, is_instance
from cityscapes_tools.labels import (
    EVAL_LABELS,
    ID_TO_TRAIN_ID,
    LABELS,
    NAME_TO_LABEL,
    TRAIN_ID_PALETTE,
    colorize,
    train_ids_to_ids,
)
from cityscapes_tools.layout import list_samples, list_splits, validate_sample
from cityscapes_tools.writer import write_sample
from labelforge.cli.app import app

# The official table (cityscapesScripts helpers/labels.py), typed out independently of the package:
# id: (name, trainId, categoryId, hasInstances, ignoreInEval, color)
OFFICIAL = {
    0: ("unlabeled", 255, 0, False, True, (0, 0, 0)),
    1: ("ego vehicle", 255, 0, False, True, (0, 0, 0)),
    2: ("rectification border", 255, 0, False, True, (0, 0, 0)),
    3: ("out of roi", 255, 0, False, True, (0, 0, 0)),
    4: ("static", 255, 0, False, True, (0, 0, 0)),
    5: ("dynamic", 255, 0, False, True, (111, 74, 0)),
    6: ("ground", 255, 0, False, True, (81, 0, 81)),
    7: ("road", 0, 1, False, False, (128, 64, 128)),
    8: ("sidewalk", 1, 1, False, False, (244, 35, 232)),
    9: ("parking", 255, 1, False, True, (250, 170, 160)),
    10: ("rail track", 255, 1, False, True, (230, 150, 140)),
    11: ("building", 2, 2, False, False, (70, 70, 70)),
    12: ("wall", 3, 2, False, False, (102, 102, 156)),
    13: ("fence", 4, 2, False, False, (190, 153, 153)),
    14: ("guard rail", 255, 2, False, True, (180, 165, 180)),
    15: ("bridge", 255, 2, False, True, (150, 100, 100)),
    16: ("tunnel", 255, 2, False, True, (150, 120, 90)),
    17: ("pole", 5, 3, False, False, (153, 153, 153)),
    18: ("polegroup", 255, 3, False, True, (153, 153, 153)),
    19: ("traffic light", 6, 3, False, False, (250, 170, 30)),
    20: ("traffic sign", 7, 3, False, False, (220, 220, 0)),
    21: ("vegetation", 8, 4, False, False, (107, 142, 35)),
    22: ("terrain", 9, 4, False, False, (152, 251, 152)),
    23: ("sky", 10, 5, False, False, (70, 130, 180)),
    24: ("person", 11, 6, True, False, (220, 20, 60)),
    25: ("rider", 12, 6, True, False, (255, 0, 0)),
    26: ("car", 13, 7, True, False, (0, 0, 142)),
    27: ("truck", 14, 7, True, False, (0, 0, 70)),
    28: ("bus", 15, 7, True, False, (0, 60, 100)),
    29: ("caravan", 255, 7, True, True, (0, 0, 90)),
    30: ("trailer", 255, 7, True, True, (0, 0, 110)),
    31: ("train", 16, 7, True, False, (0, 80, 100)),
    32: ("motorcycle", 17, 7, True, False, (0, 0, 230)),
    33: ("bicycle", 18, 7, True, False, (119, 11, 32)),
    -1: ("license plate", -1, 7, False, True, (0, 0, 142)),
}

runner = CliRunner()


def test_label_table_matches_the_official_values():
    assert len(LABELS) == 35
    got = {
        lab.id: (lab.name, lab.train_id, lab.category_id, lab.has_instances, lab.ignore_in_eval, lab.color)
        for lab in LABELS
    }
    assert got == OFFICIAL
    assert [lab.name for lab in EVAL_LABELS][:5] == ["road", "sidewalk", "building", "wall", "fence"]
    assert len(EVAL_LABELS) == 19 and NAME_TO_LABEL["license plate"].category == "vehicle"


def test_lookup_tables():
    ids = np.arange(34, dtype=np.uint8)
    train = ID_TO_TRAIN_ID[ids]
    assert train.tolist() == [OFFICIAL[i][1] for i in range(34)]
    assert ID_TO_TRAIN_ID[200] == 255  # unknown ids are ignored, not crashed on
    assert train_ids_to_ids(np.array([0, 3, 18, 255], np.uint8)).tolist() == [7, 12, 33, 0]
    assert colorize(np.array([[12]], np.uint8)).tolist() == [[[102, 102, 156]]]
    assert TRAIN_ID_PALETTE[255].tolist() == [0, 0, 0] and TRAIN_ID_PALETTE[16].tolist() == [0, 80, 100]


def test_instance_id_encoding():
    assert encode_instance(26, 0) == 26000 and encode_instance(24, 999) == 24999
    assert decode_instance(26003) == (26, 3) and decode_instance(7) == (7, -1) and decode_instance(999) == (999, -1)
    k = np.array([0, 1, 2], np.int32)
    assert encode_instance(np.array([26, 26, 33], np.int32), k).tolist() == [26000, 26001, 33002]
    stored = np.array([[0, 7, 999], [1000, 26001, 33999]], np.uint16)  # as an instanceIds PNG reads
    label_id, k = decode_instance(stored)
    assert label_id.tolist() == [[0, 7, 999], [1, 26, 33]] and k.tolist() == [[-1, -1, -1], [0, 1, 999]]
    assert is_instance(stored).tolist() == [[False, False, False], [True, True, True]]
    ids = np.array([5, 24000, 26017], np.int32)
    assert decode_instance(ids)[0].dtype == np.int32
    assert (encode_instance(*decode_instance(ids[1:])) == ids[1:]).all()  # round trip on instance ids


def test_reads_the_real_samples(cityscapes_samples):
    assert list_splits(cityscapes_samples) == ["train"]
    samples = list_samples(cityscapes_samples, "train")
    assert len(samples) == 8 and samples[0].key == "aachen_000000_000019" and samples[0].city == "aachen"
    for s in samples:
        validate_sample(s)
    label = csio.read_label(samples[0].label)
    inst = csio.read_instance(samples[0].instance)
    photo = csio.read_image(samples[0].image)
    assert label.dtype == np.uint8 and label.shape == (1024, 2048)
    assert inst.dtype == np.int32 and photo.shape == (1024, 2048, 3)
    cars = inst[label == 26]
    assert (cars >= 26000).any() and set(decode_instance(np.unique(cars[is_instance(cars)]))[0].tolist()) == {26}


def _tiny(root, key="demo_000000_000001", split="train", photo=True):
    lab = np.full((4, 6), 7, np.uint8)
    lab[:2] = 23
    lab[3, :2] = 26
    inst = lab.astype(np.int32)
    inst[3, :2] = 26000
    img = np.zeros((4, 6, 3), np.uint8) if photo else None
    return write_sample(root, split, key, label=lab, instance=inst, image=img)


def test_writer_round_trip(tmp_path):
    p = _tiny(tmp_path)
    s = list_samples(tmp_path, "train")[0]
    assert s == p
    validate_sample(s)
    assert csio.read_png(p.color).shape == (4, 6, 3)
    assert csio.read_png(p.instance).dtype == np.uint16
    assert csio.read_instance(p.instance)[3, 0] == 26000


def test_label_only_dataset_is_valid(tmp_path):
    _tiny(tmp_path, photo=False)
    assert list_samples(tmp_path, "train")[0].image is None


def _corrupt(kind, root):
    p = _tiny(root)
    _tiny(root, key="demo_000000_000002")
    if kind == "missing label":
        p.label.unlink()
        return p.image, "photo has no label map"
    if kind == "missing photo":
        p.image.unlink()
        return p.label, "label map has no photo"
    if kind == "missing instance":
        p.instance.unlink()
        return p.label, "label map has no instance map"
    if kind == "truncated":
        p.label.write_bytes(p.label.read_bytes()[:40])
        return p.label, "truncated PNG"
    if kind == "not png":
        p.label.write_bytes(b"hello world, not an image at all")
        return p.label, "not a PNG file"
    if kind == "16-bit label":
        csio.write_png(p.label, np.full((4, 6), 7, np.uint16))
        return p.label, "label map must be 8-bit"
    if kind == "rgb label":
        csio.write_png(p.label, np.full((4, 6, 3), 7, np.uint8))
        return p.label, "label map must have 1 channel"
    if kind == "bad id":
        csio.write_png(p.label, np.full((4, 6), 40, np.uint8))
        return p.label, "label id 40 outside the label table"
    if kind == "grey photo":
        csio.write_png(p.image, np.zeros((4, 6), np.uint8))
        return p.image, "photo must have 3 channels"
    if kind == "size mismatch":
        csio.write_png(p.image, np.zeros((5, 6, 3), np.uint8))
        return p.image, "photo is 6x5 but its label map is 6x4"
    if kind == "instance disagrees":
        inst = csio.read_instance(p.instance)
        inst[0, 0] = 24001
        csio.write_png(p.instance, inst.astype(np.uint16))
        return p.instance, "instance id 24001 at (x=0, y=0) disagrees with label id 23"
    raise AssertionError(kind)


KINDS = [
    "missing label",
    "missing photo",
    "missing instance",
    "truncated",
    "not png",
    "16-bit label",
    "rgb label",
    "bad id",
    "grey photo",
    "size mismatch",
    "instance disagrees",
]


@pytest.mark.parametrize("kind", KINDS)
def test_each_validation_error_names_the_file(tmp_path, kind):
    path, problem = _corrupt(kind, tmp_path)
    with pytest.raises(DatasetFormatError) as err:
        for s in list_samples(tmp_path, "train"):
            validate_sample(s)
    assert str(err.value) == f"{path}: {problem}" or str(err.value).startswith(f"{path}: {problem}")


@pytest.mark.parametrize("kind", ["truncated", "missing photo", "bad id", "instance disagrees"])
def test_check_command_reports_one_line_and_exit_2(tmp_path, kind):
    path, problem = _corrupt(kind, tmp_path)
    res = runner.invoke(app, ["check", str(tmp_path), "--workers", "1"])
    assert res.exit_code == 2
    last = res.output.strip().splitlines()[-1]
    assert last.startswith("error: ") and str(path) in last and problem in last


def test_check_command_on_missing_root_and_split(tmp_path):
    res = runner.invoke(app, ["check", str(tmp_path / "absent")])
    assert res.exit_code == 2 and "dataset root does not exist" in res.output
    _tiny(tmp_path)
    res = runner.invoke(app, ["check", str(tmp_path), "--split", "val"])
    assert res.exit_code == 2 and "split 'val' not found (splits present: train)" in res.output


def test_check_command_accepts_the_real_samples(cityscapes_samples, tmp_path):
    res = runner.invoke(app, ["check", str(cityscapes_samples), "--workers", "2"])
    assert res.exit_code == 0, res.output
    assert "train: 8 samples (photos, instances)" in res.output
    # a copy whose one photo is missing is refused, naming that label map
    root = tmp_path / "cs"
    shutil.copytree(cityscapes_samples, root)
    victim = next((root / "leftImg8bit").rglob("*_leftImg8bit.png"))
    victim.unlink()
    res = runner.invoke(app, ["check", str(root), "--shallow"])
    assert res.exit_code == 2 and "label map has no photo" in res.output
