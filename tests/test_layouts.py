"""Layouts, mask codecs and label-space files on hand-built datasets; each bad dataset is one line naming the file."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from _layouts import FOLDERS, train_id_space, write_label_space
from typer.testing import CliRunner

from cityscapes_tools import io as csio
from cityscapes_tools.errors import DatasetFormatError
from cityscapes_tools.writer import write_sample
from labelforge.cli.app import app
from labelforge.dataset import open_dataset, read_pair
from labelforge.errors import InputError, LabelforgeError
from labelforge.evaluate import _key_of
from labelforge.labelspace import ClassDef, LabelSpace, get_label_space
from labelforge.layouts import detect_layout, parse_layout
from labelforge.layouts.masks import MaskCodec, palette_png, read_mask_values

runner = CliRunner()
LABEL = np.array([[0, 0, 1, 1], [2, 2, 255, 255], [0, 1, 2, 255]], np.uint8)  # 3x4, VOC-style values


def _voc(root: Path, ls: LabelSpace | None = None, keys=("a", "b"), photo_size=(3, 4)) -> Path:
    writer = parse_layout("voc").writer(root, ls or get_label_space("voc"))
    for k in keys:
        ids = (ls or get_label_space("voc")).value_to_id[LABEL]
        writer.write("train", k, label=ids, instance=None, image=np.full((*photo_size, 3), 90, np.uint8))
    writer.finish()
    return root


def _error_line(args: list) -> str:
    res = runner.invoke(app, [str(a) for a in args])
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert lines[-1].startswith("error: ")
    return lines[-1]


def test_cityscapes_label_space_keeps_its_fingerprint() -> None:
    # shards and stats.json record it: adding optional fields must not change the JSON of existing spaces
    assert get_label_space("cityscapes").fingerprint == "6a72f0be7e853e51"
    assert "value" not in get_label_space("cityscapes").to_json()


def test_voc_masks_are_read_as_palette_indices_and_255_as_void(tmp_path: Path) -> None:
    root = _voc(tmp_path / "VOC2012")
    png = (root / "SegmentationClass" / "a.png").read_bytes()
    assert png[25] == 3  # a palette PNG, as VOC ships them
    assert cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED).shape == (3, 4, 3)  # cv2: colours
    assert np.array_equal(read_mask_values(root / "SegmentationClass" / "a.png"), LABEL)  # we: the indices
    ds = open_dataset(root)
    assert (ds.layout.name, ds.label_space.name) == ("voc", "voc")
    s = ds.samples("train")[0]
    image, ids = read_pair(s)
    assert ids.tolist() == [[0, 0, 1, 1], [2, 2, 21, 21], [0, 1, 2, 21]] and image.shape == (3, 4, 3)
    assert ds.label_space.id_to_train_id[ids].tolist()[1] == [2, 2, 255, 255]
    assert (root / "ImageSets" / "Segmentation" / "train.txt").read_text() == "a\nb\n"


def test_palette_png_round_trip_and_low_bit_depths(tmp_path: Path) -> None:
    pal = np.zeros((256, 3), np.uint8)
    pal[1] = (10, 20, 30)
    grey = csio.encode_png(LABEL)
    p = tmp_path / "m.png"
    p.write_bytes(palette_png(grey, pal))
    assert np.array_equal(read_mask_values(p), LABEL)
    small = np.array([[0, 1], [1, 0]], np.uint8)
    for depth in (1, 2, 4):  # cv2 writes 1-bit for bool-like maps only through PIL; build a grey PNG by hand
        p2 = tmp_path / f"g{depth}.png"
        p2.write_bytes(_grey_png(small, depth))
        assert np.array_equal(read_mask_values(p2), small), depth


def _grey_png(arr: np.ndarray, depth: int) -> bytes:
    import struct
    import zlib

    h, w = arr.shape
    rows = b""
    for row in arr:
        bits = "".join(format(int(v), f"0{depth}b") for v in row)
        bits += "0" * (-len(bits) % 8)
        rows += b"\0" + int(bits, 2).to_bytes(len(bits) // 8, "big")

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", w, h, depth, 0, 0, 0, 0)
    return csio.PNG_MAGIC + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def test_detection_and_layout_text(tmp_path: Path) -> None:
    voc = _voc(tmp_path / "v")
    assert detect_layout(voc).name == "voc"
    (voc / "gtFine").mkdir()
    with pytest.raises(DatasetFormatError, match="looks like several layouts: cityscapes.*voc.*pass --layout"):
        detect_layout(voc)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetFormatError, match="not a dataset root.*cityscapes: gtFine/"):
        detect_layout(tmp_path / "empty")
    assert parse_layout(FOLDERS).spec() == FOLDERS and parse_layout("ade20k").spec() == "ade20k"
    with pytest.raises(LabelforgeError, match="unknown layout 'coco'; valid: auto, cityscapes, folders, voc, ade20k"):
        parse_layout("coco")
    with pytest.raises(LabelforgeError, match="layout option 'img=.jpg' not understood for voc"):
        parse_layout("voc:img=.jpg")


def _folders(root: Path, names=("x", "y")) -> Path:
    """mmsegmentation's custom layout: JPEG photos, grey PNG masks with VOC-style values."""
    for n in names:
        csio.write_png(root / "ann_dir" / "train" / f"{n}.png", LABEL)
        path = root / "img_dir" / "train" / f"{n}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(csio.encode_jpeg(np.zeros((3, 4, 3), np.uint8)))
    return root


def test_bad_datasets_give_one_line_naming_the_file(tmp_path: Path) -> None:
    ls_file = write_label_space(train_id_space(), tmp_path / "ls.yaml")
    lsarg = ["--label-space", ls_file]

    root = _folders(tmp_path / "photo_no_mask")
    (root / "img_dir" / "train" / "z.jpg").write_bytes(csio.encode_jpeg(np.zeros((3, 4, 3), np.uint8)))
    assert _error_line(["check", root, *lsarg]).endswith("img_dir/train/z.jpg: photo has no mask ann_dir/train/z.png")

    root = _folders(tmp_path / "mask_no_photo")
    csio.write_png(root / "ann_dir" / "train" / "z.png", LABEL)
    assert "ann_dir/train/z.png: mask has no photo img_dir/train/z" in _error_line(["check", root, *lsarg])

    root = _folders(tmp_path / "sizes")
    csio.write_png(root / "ann_dir" / "train" / "y.png", LABEL[:2])
    assert "img_dir/train/y.jpg: photo is 4x3 but its label map is 4x2" in _error_line(["check", root, *lsarg])

    root = _folders(tmp_path / "value")
    bad = LABEL.copy()
    bad[0, 0] = 40
    csio.write_png(root / "ann_dir" / "train" / "y.png", bad)
    line = _error_line(["stats", root, *lsarg, "-j", "1"])
    assert "ann_dir/train/y.png: mask value 40 is not in label space 'cs-trainids'" in line
    assert "(values it knows: 0..18, 255)" in line

    root = _voc(tmp_path / "palette")
    pal = np.zeros((256, 3), np.uint8)
    pal[30] = (1, 2, 3)
    odd = LABEL.copy()
    odd[2, 3] = 30
    (root / "SegmentationClass" / "b.png").write_bytes(palette_png(csio.encode_png(odd), pal))
    assert "SegmentationClass/b.png: palette index 30 (colour 1, 2, 3) is not in label space 'voc'" in _error_line(
        ["check", root]
    )

    root = _voc(tmp_path / "split")
    (root / "ImageSets" / "Segmentation" / "val.txt").write_text("a\n\nghost\n")
    line = _error_line(["check", root, "--split", "val"])
    assert line.endswith(
        "ImageSets/Segmentation/val.txt: line 3 names ghost, which has no mask SegmentationClass/ghost.png"
    )
    (root / "JPEGImages" / "b.jpg").unlink()
    assert "train.txt: line 2 names b, which has no photo JPEGImages/b.jpg" in _error_line(["check", root])

    root = _folders(tmp_path / "rgb")
    csio.write_png(root / "ann_dir" / "train" / "y.png", np.zeros((3, 4, 3), np.uint8), rgb=True)
    assert "ann_dir/train/y.png: mask is an RGB PNG" in _error_line(["check", root, *lsarg])


def test_label_space_files_json_and_yaml_and_their_errors(tmp_path: Path) -> None:
    ls = train_id_space()
    for suffix in (".json", ".yaml"):
        assert get_label_space(write_label_space(ls, tmp_path / f"ls{suffix}")) == ls
    (tmp_path / "bad.yaml").write_text("name: x\nclasses: [\n")
    with pytest.raises(InputError, match=r"bad.yaml: not valid YAML"):
        get_label_space(tmp_path / "bad.yaml")
    (tmp_path / "nocls.yaml").write_text("name: x\nclasses:\n  - {name: a, id: 0, train_id: 0, color: [0, 0, 0]}\n")
    with pytest.raises(
        InputError, match="nocls.yaml: not a valid label space: a class or the space lacks the 'has_instances'"
    ):
        get_label_space(tmp_path / "nocls.yaml")
    both = (ClassDef("a", 0, 0, False, (0, 0, 0), value=7), ClassDef("b", 1, 1, False, (0, 0, 0), value=7))
    with pytest.raises(LabelforgeError, match="stored values must be unique"):
        LabelSpace("dup", both)
    gap = (ClassDef("a", 0, 0, False, (0, 0, 0)), ClassDef("b", 1, 2, False, (0, 0, 0)))
    with pytest.raises(LabelforgeError, match="train ids must number the evaluated classes 0..N-1"):
        LabelSpace("gap", gap)


def test_label_space_auto_wants_a_file_where_the_layout_has_none(tmp_path: Path) -> None:
    root = _folders(tmp_path / "f")
    line = _error_line(["check", root])
    assert "no label space for this folders dataset: pass --label-space FILE" in line
    assert "labelforge labelspace init" in line
    write_label_space(train_id_space(), root / "labelspace.yaml")
    assert open_dataset(root).label_space.name == "cs-trainids"


def test_labelspace_init_drafts_values_palette_and_ignored(tmp_path: Path) -> None:
    root = _voc(tmp_path / "v")
    res = runner.invoke(app, ["labelspace", "init", str(root), "--out", str(tmp_path / "d.yaml"), "-j", "1"])
    assert res.exit_code == 0, res.output
    draft = get_label_space(tmp_path / "d.yaml")
    assert [(c.name, c.id, c.stored, c.train_id) for c in draft.classes] == [
        ("background", 0, 0, 0), ("aeroplane", 1, 1, 1), ("bicycle", 2, 2, 2), ("void", 3, 255, 255)
    ]  # fmt: skip
    assert draft.get("aeroplane").color == (128, 0, 0)  # the masks' palette
    assert "% of pixels" in (tmp_path / "d.yaml").read_text()
    res = runner.invoke(app, ["labelspace", "init", str(root), "--out", str(tmp_path / "d.yaml")])
    assert res.exit_code == 2 and "exists; pass --overwrite" in res.output
    ade = tmp_path / "ade"
    csio.write_png(ade / "annotations" / "training" / "k.png", np.array([[0, 3, 3, 150]], np.uint8))
    res = runner.invoke(app, ["labelspace", "init", str(ade), "--out", str(tmp_path / "a.json"), "-j", "1"])
    assert res.exit_code == 0, res.output
    a = get_label_space(tmp_path / "a.json")
    assert [(c.name, c.train_id) for c in a.classes] == [("class_0", 255), ("class_3", 0), ("class_150", 1)]


def test_mask_codec_counts_values_into_ids(tmp_path: Path) -> None:
    path = tmp_path / "m.png"
    csio.write_png(path, LABEL)
    codec = MaskCodec.build(get_label_space("voc"))
    hist, shape = codec.id_histogram(path)
    assert shape == (3, 4) and hist[:3].tolist() == [3, 3, 3] and hist[21] == 3 and hist.sum() == 12
    assert MaskCodec.build(get_label_space("cityscapes")).plain and not codec.plain


def test_prediction_files_match_any_key() -> None:
    keys = {"2007_000032", "ADE_val_00000001", "aachen_000000_000019", "img1", "img"}
    assert _key_of("2007_000032.png", keys) == "2007_000032"
    assert _key_of("ADE_val_00000001_pred_labelIds.png", keys) == "ADE_val_00000001"
    assert _key_of("aachen_000000_000019leftImg8bit.png", keys) == "aachen_000000_000019"  # as before
    assert _key_of("aachen_000000_0000190.png", keys) is None
    assert _key_of("img10.png", keys) is None and _key_of("img1_x.png", keys) == "img1"
    assert _key_of("imgx.png", keys) is None


def test_a_cityscapes_root_with_a_custom_label_space_file_in_it(tmp_path: Path) -> None:
    lab = np.array([[7, 7], [26, 24]], np.uint8)
    write_sample(tmp_path / "cs", "train", "a_000000_000000", label=lab)
    assert open_dataset(tmp_path / "cs").label_space.name == "cityscapes"
    custom = LabelSpace.from_dict({**get_label_space().to_dict(), "name": "mine"})
    write_label_space(custom, tmp_path / "cs" / "labelspace.json")
    assert open_dataset(tmp_path / "cs").label_space.name == "mine"
