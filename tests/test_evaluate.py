"""``labelforge evaluate`` on hand-built tiny datasets with exact expected scores."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from cityscapes_tools.io import write_png
from cityscapes_tools.writer import write_sample
from labelforge.cli.app import app
from labelforge.errors import LabelforgeError
from labelforge.evaluate import EvaluateConfig, detect_format, evaluate_predictions
from labelforge.labelspace import get_label_space

runner = CliRunner()
LUT = get_label_space("cityscapes").id_to_train_id

# labelIds: 0 unlabeled (ignored), 7 road, 8 sidewalk, 11 building, 21 vegetation, 23 sky, 26 car
KEY_A, KEY_B = "aachen_000000_000019", "bochum_000000_000001"
GT_A = np.array([[23, 23, 23, 23], [11, 11, 23, 23], [7, 7, 26, 0], [7, 7, 8, 8]], np.uint8)
PRED_A = np.array([[23, 23, 23, 11], [11, 11, 11, 23], [7, 7, 26, 26], [7, 8, 8, 0]], np.uint8)
GT_B = np.array([[21, 21], [26, 26]], np.uint8)  # another size; predicted perfectly
# Sample A alone (15 valid pixels, 11 right):
#   road 3/(4+3-3) = 3/4, sidewalk 1/(2+2-1) = 1/3 (one pixel predicted void), building 2/(2+4-2) = 1/2,
#   sky 4/(6+4-4) = 2/3, car 1/1 (the car predicted on the ignored pixel does not count).
MIOU_A = (3 / 4 + 1 / 3 + 1 / 2 + 2 / 3 + 1) / 5
# A and B: vegetation 1, car 3/3, others as in A.
MIOU_AB = (3 / 4 + 1 / 3 + 1 / 2 + 2 / 3 + 1 + 1) / 6


@pytest.fixture
def tiny(tmp_path):
    root = tmp_path / "data"
    write_sample(root, "val", KEY_A, label=GT_A)
    write_sample(root, "val", KEY_B, label=GT_B)
    preds = tmp_path / "preds"
    # labelforge-style names, nested by city
    write_png(preds / "labelids" / "aachen" / f"{KEY_A}_pred_labelIds.png", PRED_A)
    write_png(preds / "labelids" / "bochum" / f"{KEY_B}_pred_labelIds.png", GT_B)
    # cityscapesScripts-style trainIds, flat, one with a colour image beside it that must be skipped
    write_png(preds / "trainids" / f"{KEY_A}.png", LUT[PRED_A])
    write_png(preds / "trainids" / f"{KEY_B}_leftImg8bit.png", LUT[GT_B])
    write_png(preds / "trainids" / f"{KEY_B}_color.png", np.zeros((2, 2, 3), np.uint8), rgb=True)
    return root, preds, tmp_path


def _invoke(*args):
    return runner.invoke(app, ["evaluate", *map(str, args)])


def _error_line(res) -> str:
    """The one error line (the progress bar may be drawn above it on stderr)."""
    lines = [ln for ln in res.output.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, res.output
    return lines[0]


@pytest.mark.parametrize("form, expected_format", [("labelids", "labelIds"), ("trainids", "trainIds")])
def test_scores_both_formats_exactly(tiny, form, expected_format):
    root, preds, tmp = tiny
    out = tmp / f"eval-{form}"
    res = _invoke(preds / form, root, "--out", out, "-j", "2")
    assert res.exit_code == 0, res.output
    m = json.loads((out / "metrics.json").read_text())
    assert m["schema"] == "labelforge.metrics/1" and m["source"] == "evaluate"
    assert m["format"] == expected_format and m["num_samples"] == 2 and m["missing"] == []
    assert m["miou"] == pytest.approx(MIOU_AB, abs=1e-12)
    assert m["pixel_accuracy"] == pytest.approx(15 / 19, abs=1e-12)
    iou = m["per_class_iou"]
    assert iou["road"] == 0.75 and iou["building"] == 0.5 and iou["car"] == 1.0 and iou["vegetation"] == 1.0
    assert iou["sidewalk"] == pytest.approx(1 / 3) and iou["sky"] == pytest.approx(2 / 3)
    assert iou["wall"] is None and iou["train"] is None
    assert m["void_predictions"][1] == 1  # the sidewalk pixel predicted as "unlabeled"
    assert (out / "_SUCCESS").exists()
    assert "mIoU" in res.output and f"{100 * MIOU_AB:.2f}" in res.output


def test_missing_prediction_is_one_line_and_writes_nothing(tiny):
    root, preds, tmp = tiny
    (preds / "labelids" / "bochum" / f"{KEY_B}_pred_labelIds.png").unlink()
    out = tmp / "eval"
    res = _invoke(preds / "labelids", root, "--out", out)
    assert res.exit_code == 2
    err = _error_line(res)
    assert KEY_B in err and "--allow-missing" in err
    assert not out.exists()
    res = _invoke(preds / "labelids", root, "--out", out, "--allow-missing")
    assert res.exit_code == 0, res.output
    m = json.loads((out / "metrics.json").read_text())
    assert m["missing"] == [KEY_B] and m["num_samples"] == 1
    assert m["miou"] == pytest.approx(MIOU_A, abs=1e-12)


def test_size_mismatch_names_the_file(tiny):
    root, preds, tmp = tiny
    bad = preds / "labelids" / "aachen" / f"{KEY_A}_pred_labelIds.png"
    write_png(bad, np.zeros((4, 5), np.uint8))
    out = tmp / "eval"
    res = _invoke(preds / "labelids", root, "--out", out)
    assert res.exit_code == 2
    err = _error_line(res)
    assert str(bad) in err and "5x4" in err
    assert not out.exists()


def test_rgb_prediction_and_refused_overwrite(tiny):
    root, preds, tmp = tiny
    out = tmp / "eval"
    assert _invoke(preds / "labelids", root, "--out", out).exit_code == 0
    res = _invoke(preds / "labelids", root, "--out", out)
    assert res.exit_code == 2 and "--overwrite" in _error_line(res)
    write_png(preds / "labelids" / "aachen" / f"{KEY_A}_pred_labelIds.png", np.zeros((4, 4, 3), np.uint8), rgb=True)
    res = _invoke(preds / "labelids", root, "--out", out, "--overwrite")
    assert res.exit_code == 2 and "single-channel" in _error_line(res)


def test_explicit_format_overrides_detection(tiny):
    root, preds, tmp = tiny
    # Train ids read as label ids name other classes (0 and 2 are void ids, 10 is ground), so the score differs.
    res = evaluate_predictions(EvaluateConfig(pred_dir=preds / "trainids", root=root, out=tmp / "e", format="labelIds"))
    assert res.format == "labelIds"
    assert res.summary["miou"] != pytest.approx(MIOU_AB)
    with pytest.raises(LabelforgeError):
        EvaluateConfig(pred_dir=preds, root=root, out=tmp / "x", format="colors")


def test_detect_format_rule():
    def seen(*values):
        a = np.zeros(256, bool)
        a[list(values)] = True
        return a

    assert detect_format(seen(7, 23, 26), 19, 34) == "labelIds"
    assert detect_format(seen(0, 10, 18, 255), 19, 34) == "trainIds"
    assert detect_format(seen(0, 7, 11), 19, 34) == "trainIds"  # ambiguous values: trainIds (override with --format)
    with pytest.raises(LabelforgeError, match="--format"):
        detect_format(seen(7, 23, 255), 19, 34)
    with pytest.raises(LabelforgeError, match="40"):
        detect_format(seen(0, 40), 19, 34)


def test_no_matching_file(tiny):
    root, _, tmp = tiny
    empty = tmp / "nothing"
    write_png(empty / "unrelated.png", np.zeros((2, 2), np.uint8))
    res = _invoke(empty, root, "--out", tmp / "eval")
    assert res.exit_code == 2 and "no prediction PNG" in _error_line(res)


def test_perfect_prediction_of_real_samples_scores_one(cityscapes_samples, tmp_path):
    # The ground-truth folder itself as predictions: instanceIds files are skipped, labelIds are chosen.
    res = evaluate_predictions(
        EvaluateConfig(
            pred_dir=cityscapes_samples / "gtFine" / "train",
            root=cityscapes_samples,
            out=tmp_path / "eval",
            split="train",
            workers=2,
        )
    )
    assert res.format == "labelIds" and res.num_scored == 8
    assert res.summary["miou"] == 1.0 and res.summary["pixel_accuracy"] == 1.0
    present = [v for v in res.summary["per_class_iou"].values() if v is not None]
    assert len(present) >= 10 and all(v == 1.0 for v in present)
