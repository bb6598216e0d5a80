"""Confusion matrix, IoU, mIoU and accuracy against hand-computed values; metrics.json round trip."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from labelforge.errors import InputError
from labelforge.seg.metrics import (
    METRICS_SCHEMA,
    ConfusionMatrix,
    metrics_summary,
    read_metrics,
    write_metrics,
)

# 3 classes; 255 is ignored. Counted by hand below.
GT = np.array(
    [
        [0, 0, 1, 1],
        [0, 2, 2, 255],
        [1, 1, 255, 2],
    ],
    dtype=np.uint8,
)
PRED = np.array(
    [
        [0, 1, 1, 1],
        [0, 2, 1, 0],
        [1, 255, 2, 2],
    ],
    dtype=np.uint8,
)
# rows gt, cols pred. The 255 prediction on a class-1 pixel is a miss of class 1 (void column).
EXPECTED = [[2, 1, 0], [0, 3, 0], [0, 1, 2]]
EXPECTED_VOID = [0, 1, 0]
# IoU = tp / (gt + pred - tp): class 0: 2/(3+2-2), class 1: 3/(4+5-3), class 2: 2/(3+2-2)
EXPECTED_IOU = [2 / 3, 1 / 2, 2 / 3]


def _cm(gt=GT, pred=PRED, n=3) -> ConfusionMatrix:
    cm = ConfusionMatrix(n)
    cm.update(gt, pred)
    return cm


def test_matrix_iou_and_accuracies_by_hand():
    cm = _cm()
    assert cm.matrix.tolist() == EXPECTED
    assert cm.void.tolist() == EXPECTED_VOID
    assert cm.matrix.dtype == np.int64
    np.testing.assert_allclose(cm.iou(), EXPECTED_IOU, rtol=0, atol=1e-12)
    assert cm.miou() == pytest.approx(11 / 18, abs=1e-12)
    assert cm.pixel_accuracy() == pytest.approx(7 / 10, abs=1e-12)  # 10 valid pixels, 7 on the diagonal
    np.testing.assert_allclose(cm.accuracy(), [2 / 3, 3 / 4, 2 / 3], atol=1e-12)


def test_ignored_pixels_do_not_count_even_when_predicted():
    gt = GT.copy()
    pred = PRED.copy()
    pred[1, 3] = 2  # a prediction on an ignored pixel: changes nothing
    assert _cm(gt, pred).matrix.tolist() == EXPECTED
    gt[0, 0] = 255  # ignoring one more pixel removes exactly its count
    assert _cm(gt, pred).matrix.tolist() == [[1, 1, 0], [0, 3, 0], [0, 1, 2]]


def test_class_absent_from_both_is_nan_and_left_out_of_miou():
    cm = _cm(n=4)  # class 3 never appears in gt nor pred
    iou = cm.iou()
    assert math.isnan(iou[3])
    assert cm.miou() == pytest.approx(11 / 18, abs=1e-12)
    s = metrics_summary(cm, ["a", "b", "c", "d"])
    assert s["per_class_iou"]["d"] is None
    assert s["per_class_accuracy"]["d"] is None
    assert s["miou"] == pytest.approx(11 / 18, abs=1e-12)


def test_class_absent_from_gt_is_left_out_of_miou_even_when_predicted():
    # One val split (class 2 absent from its ground truth), two models: the class set mIoU averages
    # comes from the ground truth, so it is the same for both, whatever they predict.
    gt = np.array([0, 0, 0, 1, 1])
    a = _cm(gt, np.array([0, 0, 2, 1, 1]), n=3)  # predicts the absent class once
    b = _cm(gt, np.array([0, 0, 0, 1, 0]), n=3)  # never does
    assert math.isnan(a.iou()[2]) and math.isnan(b.iou()[2])
    assert a.iou()[:2].tolist() == [2 / 3, 1.0]  # the false positive still costs road its pixel
    assert a.miou() == pytest.approx((2 / 3 + 1) / 2) and b.miou() == pytest.approx((3 / 4 + 1 / 2) / 2)
    sa, sb = metrics_summary(a, ["road", "wall", "pole"]), metrics_summary(b, ["road", "wall", "pole"])
    assert sa["miou_classes"] == sb["miou_classes"] == ["road", "wall"]
    assert sa["per_class_iou"]["pole"] is None
    assert math.isnan(a.accuracy()[2])


def test_summary_values():
    s = metrics_summary(_cm(), ["road", "wall", "pole"])
    assert s["classes"] == ["road", "wall", "pole"]
    assert s["per_class_iou"] == pytest.approx({"road": 2 / 3, "wall": 0.5, "pole": 2 / 3})
    assert s["miou"] == pytest.approx(11 / 18)
    assert s["miou_classes"] == ["road", "wall", "pole"]
    assert s["pixel_accuracy"] == pytest.approx(0.7)
    assert s["mean_accuracy"] == pytest.approx(25 / 36)
    assert s["num_pixels"] == 10
    assert s["confusion_matrix"] == EXPECTED
    assert s["void_predictions"] == EXPECTED_VOID
    with pytest.raises(ValueError):
        metrics_summary(_cm(), ["road"])


def test_empty_matrix_gives_none_not_nan():
    s = metrics_summary(ConfusionMatrix(2), ["a", "b"])
    assert s["miou"] is None and s["pixel_accuracy"] is None and s["mean_accuracy"] is None


def test_torch_input_equals_numpy_input():
    torch = pytest.importorskip("torch")
    ref = _cm()
    cm = ConfusionMatrix(3)
    # a batch of two (B, H, W) in two updates, int64 predictions and uint8 ground truth
    cm.update(torch.from_numpy(GT[None]), torch.from_numpy(PRED[None].astype(np.int64)))
    cm.update(torch.from_numpy(GT[None]), torch.from_numpy(PRED[None].astype(np.int64)))
    assert cm.matrix.tolist() == (2 * ref.matrix).tolist()
    assert cm.void.tolist() == (2 * ref.void).tolist()
    np.testing.assert_allclose(cm.iou(), ref.iou())
    cm.update(GT, PRED)  # numpy after torch adds onto the same counts
    assert cm.matrix.tolist() == (3 * ref.matrix).tolist()


def test_device_path_equals_numpy():
    # The on-device path (used for CUDA tensors) run on CPU tensors, so it is checked on every machine.
    torch = pytest.importorskip("torch")
    cm = ConfusionMatrix(3)
    cm._update_torch(torch.from_numpy(GT), torch.from_numpy(PRED).long())
    assert cm._device_counts is not None  # counted as a tensor, not yet copied to the host
    cm._update_torch(torch.from_numpy(GT), torch.from_numpy(PRED).long())
    assert cm.matrix.tolist() == (2 * np.array(EXPECTED)).tolist()
    assert cm.void.tolist() == (2 * np.array(EXPECTED_VOID)).tolist()


@pytest.mark.gpu
def test_cuda_input_equals_numpy_input():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    cm = ConfusionMatrix(3)
    cm.update(torch.from_numpy(GT).cuda(), torch.from_numpy(PRED).cuda())
    cm.update(torch.from_numpy(GT).cuda(), torch.from_numpy(PRED).cuda())
    assert cm.matrix.tolist() == (2 * np.array(EXPECTED)).tolist()
    np.testing.assert_allclose(cm.iou(), _cm().iou())


def test_merge_reset_and_from_matrix():
    a, b = _cm(), _cm(np.array([2, 2]), np.array([2, 0]))
    a.merge(b)
    assert a.matrix.tolist() == [[2, 1, 0], [0, 3, 0], [1, 1, 3]]
    c = ConfusionMatrix.from_matrix(a.matrix, a.void)
    np.testing.assert_array_equal(c.iou(), a.iou())
    with pytest.raises(ValueError):
        a.merge(ConfusionMatrix(4))
    a.reset()
    assert a.matrix.sum() == 0 and a.void.sum() == 0


def test_bad_inputs():
    cm = ConfusionMatrix(3)
    with pytest.raises(ValueError):
        cm.update(np.zeros((2, 2), np.uint8), np.zeros((2, 3), np.uint8))
    with pytest.raises(TypeError):
        cm.update(np.zeros(2, np.uint8), np.zeros(2, np.float32))


def test_all_reduce_is_a_no_op_alone_and_a_sum_in_a_one_rank_group(tmp_path):
    cm = _cm()
    cm.all_reduce()
    assert cm.matrix.tolist() == EXPECTED
    torch = pytest.importorskip("torch")
    import torch.distributed as dist

    if not dist.is_available():
        pytest.skip("torch.distributed unavailable")
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        cm._update_torch(torch.from_numpy(GT), torch.from_numpy(PRED))  # pending on-device counts are included
        cm.all_reduce()
        assert cm.matrix.tolist() == (2 * np.array(EXPECTED)).tolist()
    finally:
        dist.destroy_process_group()


def test_write_and_read_metrics(tmp_path):
    path = tmp_path / "metrics.json"
    s = metrics_summary(_cm(n=4), ["a", "b", "c", "d"])
    write_metrics(path, s, source="test", extra_value=np.float32(0.5))
    raw = json.loads(path.read_text())
    assert raw["schema"] == METRICS_SCHEMA and raw["source"] == "test" and raw["extra_value"] == 0.5
    assert "NaN" not in path.read_text()
    back = read_metrics(path)
    assert back["per_class_iou"]["d"] is None
    assert back["miou"] == pytest.approx(11 / 18)


@pytest.mark.parametrize(
    "content, problem",
    [
        (None, "not found"),
        ("{not json", "not valid JSON"),
        ('{"schema": "other/1", "per_class_iou": {}}', "schema 'other/1'"),
        ('{"schema": "labelforge.metrics/1", "per_class_iou": {"a": "x"}}', "per_class_iou"),
        ("[1, 2]", "not a labelforge metrics file"),
    ],
)
def test_read_metrics_rejects_bad_files(tmp_path, content, problem):
    path = tmp_path / "metrics.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(InputError) as err:
        read_metrics(path)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(str(path)) and problem in msg
