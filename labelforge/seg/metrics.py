"""Segmentation metrics from one confusion matrix over a whole split (the official Cityscapes way).

Pixels whose ground truth is ``ignore_index`` (or any value outside ``0..C-1``) are skipped. A
prediction outside ``0..C-1`` on a valid pixel (e.g. a labelIds prediction of a void class, mapped
to 255) is kept in a separate "void" column: it is a miss (false negative) for the ground-truth
class and a false positive for no class, as in cityscapesScripts.

Definitions, with ``tp_c`` the diagonal, ``gt_c`` the valid pixels of class c (row sum, void
column included) and ``pred_c`` the valid pixels predicted as c (column sum):

* IoU_c = tp_c / (gt_c + pred_c - tp_c) for the classes present in the ground truth (gt_c > 0);
  NaN for a class absent from it, whether predicted or not.
* mIoU = mean of IoU_c over the classes present in the ground truth. The class set is thereby a
  property of the evaluation split alone: every model scored on one split averages the same
  classes, so runs (and seeds) compare. cityscapesScripts differs only on a split that lacks a
  class: it counts a class absent from the ground truth but predicted as IoU 0, which makes the
  averaged set depend on the predictions. Such false positives still lower the IoU of the classes
  whose pixels they took. On a split holding every class (the full Cityscapes val) both agree.
* pixel accuracy = sum(tp) / sum(gt); mean accuracy = mean of tp_c / gt_c over classes with gt_c > 0.

Inputs may be numpy arrays or torch tensors on any device; torch is never imported here at module
level. A tensor on an accelerator is counted on its own device (one ``bincount``) and copied to the
host only when a result is asked for; a CPU tensor is counted through numpy (zero-copy, faster).

Example:
    >>> import numpy as np
    >>> cm = ConfusionMatrix(2)
    >>> cm.update(np.array([0, 0, 1, 255]), np.array([0, 1, 1, 0]))
    >>> cm.matrix.tolist(), cm.iou().round(3).tolist()
    ([[1, 1], [0, 1]], [0.5, 0.5])
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..outputs import atomic_write_text

__all__ = ["METRICS_SCHEMA", "ConfusionMatrix", "metrics_summary", "write_metrics", "read_metrics", "to_jsonable"]

METRICS_SCHEMA = "labelforge.metrics/1"


def _is_torch(x: Any) -> bool:
    return type(x).__module__.startswith("torch") and hasattr(x, "detach")


class ConfusionMatrix:
    """Pixel counts ``(C, C)``: rows are ground truth, columns predictions; plus a void-prediction column.

    Example:
        >>> cm = ConfusionMatrix(19)
        >>> # for gt, pred in loader: cm.update(gt, logits.argmax(1))
        >>> cm.all_reduce()  # no-op outside torch.distributed
    """

    def __init__(self, num_classes: int, ignore_index: int = 255) -> None:
        if num_classes < 1:
            raise ValueError(f"num_classes must be positive, got {num_classes}")
        self.num_classes = int(num_classes)
        self.ignore_index = int(ignore_index)
        # (C, C+1): the last column counts valid pixels predicted outside 0..C-1.
        self._counts = np.zeros((self.num_classes, self.num_classes + 1), dtype=np.int64)
        self._device_counts: Any = None  # torch int64 (C*(C+1),) on the device of the last torch update

    @classmethod
    def from_matrix(cls, matrix: Any, void: Any = None, ignore_index: int = 255) -> ConfusionMatrix:
        """Rebuild from a ``(C, C)`` matrix (e.g. metrics.json's) and optional ``(C,)`` void counts."""
        m = np.asarray(matrix, dtype=np.int64)
        if m.ndim != 2 or m.shape[0] != m.shape[1]:
            raise ValueError(f"confusion matrix must be square, got shape {m.shape}")
        cm = cls(m.shape[0], ignore_index)
        cm._counts[:, :-1] = m
        if void is not None:
            cm._counts[:, -1] = np.asarray(void, dtype=np.int64)
        return cm

    # -- accumulation ------------------------------------------------------------------------------
    def update(self, gt: Any, pred: Any) -> None:
        """Add one batch (any shape, same for both); gt pixels equal to ``ignore_index`` are skipped."""
        if _is_torch(gt) or _is_torch(pred):
            on_cpu = all(not _is_torch(x) or x.device.type == "cpu" for x in (gt, pred))
            if not on_cpu:
                self._update_torch(gt, pred)
                return
            # CPU tensors share memory with numpy, whose bincount is several times faster than torch's.
            gt, pred = (x.detach().numpy() if _is_torch(x) else x for x in (gt, pred))
        gt, pred = np.asarray(gt), np.asarray(pred)
        if gt.shape != pred.shape:
            raise ValueError(f"ground truth shape {gt.shape} differs from prediction shape {pred.shape}")
        if not (np.issubdtype(gt.dtype, np.integer) and np.issubdtype(pred.dtype, np.integer)):
            raise TypeError(f"labels must be integer arrays, got {gt.dtype} and {pred.dtype}")
        n = self.num_classes
        gt, pred = gt.ravel(), pred.ravel()
        valid = (gt >= 0) & (gt < n) & (gt != self.ignore_index)
        g = gt[valid].astype(np.int64)
        p = pred[valid].astype(np.int64)
        p[(p < 0) | (p >= n)] = n  # void prediction column
        self._counts += np.bincount(g * (n + 1) + p, minlength=n * (n + 1)).reshape(n, n + 1)

    def _update_torch(self, gt: Any, pred: Any) -> None:
        import torch

        gt, pred = torch.as_tensor(gt), torch.as_tensor(pred)
        if gt.shape != pred.shape:
            raise ValueError(f"ground truth shape {tuple(gt.shape)} differs from prediction shape {tuple(pred.shape)}")
        if gt.is_floating_point() or pred.is_floating_point():
            raise TypeError(f"labels must be integer tensors, got {gt.dtype} and {pred.dtype}")
        pred = pred.to(gt.device)
        n = self.num_classes
        gt, pred = gt.reshape(-1).long(), pred.reshape(-1).long()
        valid = (gt >= 0) & (gt < n) & (gt != self.ignore_index)
        p = torch.where((pred >= 0) & (pred < n), pred, torch.full_like(pred, n))
        counts = torch.bincount(gt[valid] * (n + 1) + p[valid], minlength=n * (n + 1))
        if self._device_counts is not None and self._device_counts.device != counts.device:
            self._fold()  # a batch on another device: bring the old counts home first
        self._device_counts = counts if self._device_counts is None else self._device_counts + counts

    def _fold(self) -> None:
        """Move the on-device accumulator into the host counts (one device->host copy)."""
        if self._device_counts is not None:
            self._counts += self._device_counts.cpu().numpy().reshape(self.num_classes, self.num_classes + 1)
            self._device_counts = None

    def merge(self, other: ConfusionMatrix) -> None:
        """Add another matrix's counts (e.g. from another worker)."""
        if other.num_classes != self.num_classes:
            raise ValueError(f"cannot merge {other.num_classes} classes into {self.num_classes}")
        self._counts += other.counts

    def reset(self) -> None:
        self._counts[:] = 0
        self._device_counts = None

    def all_reduce(self) -> None:
        """Sum the counts over all torch.distributed ranks (no-op when not initialised)."""
        torch = sys.modules.get("torch")  # distributed cannot be running if torch was never imported
        if torch is None or not torch.distributed.is_available() or not torch.distributed.is_initialized():
            return
        dist = torch.distributed
        if self._device_counts is not None:
            device = self._device_counts.device
        elif dist.get_backend() == "nccl":
            device = torch.device("cuda", torch.cuda.current_device())
        else:
            device = torch.device("cpu")
        t = torch.from_numpy(self.counts.copy()).to(device)
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        self._device_counts = None
        self._counts = t.cpu().numpy().astype(np.int64)

    # -- results -----------------------------------------------------------------------------------
    @property
    def counts(self) -> np.ndarray:
        """(C, C+1) int64: the matrix plus the void-prediction column."""
        self._fold()
        return self._counts

    @property
    def matrix(self) -> np.ndarray:
        """(C, C) int64, rows ground truth, columns prediction."""
        return self.counts[:, :-1].copy()

    @property
    def void(self) -> np.ndarray:
        """(C,) int64: valid pixels of each ground-truth class predicted outside ``0..C-1``."""
        return self.counts[:, -1].copy()

    def _totals(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        c = self.counts
        tp = np.diagonal(c).astype(np.float64)
        gt = c.sum(axis=1).astype(np.float64)
        pred = c[:, :-1].sum(axis=0).astype(np.float64)
        return tp, gt, pred

    def iou(self) -> np.ndarray:
        """(C,) float64 IoU per class; NaN for classes absent from the ground truth (predicted or not)."""
        tp, gt, pred = self._totals()
        union = gt + pred - tp
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(gt > 0, tp / np.maximum(union, 1), np.nan)

    def present(self) -> np.ndarray:
        """(C,) bool: classes with ground-truth pixels, the set mIoU averages."""
        _, gt, _ = self._totals()
        return gt > 0

    def accuracy(self) -> np.ndarray:
        """(C,) float64 recall per class (tp / gt pixels); NaN for classes absent from the ground truth."""
        tp, gt, _ = self._totals()
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(gt > 0, tp / np.maximum(gt, 1), np.nan)

    def miou(self) -> float:
        """Mean IoU over the classes present in the ground truth; NaN when there is none."""
        iou = self.iou()
        return float(np.nanmean(iou)) if np.isfinite(iou).any() else math.nan

    def pixel_accuracy(self) -> float:
        tp, gt, _ = self._totals()
        total = gt.sum()
        return float(tp.sum() / total) if total > 0 else math.nan


def _num(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def metrics_summary(cm: ConfusionMatrix, class_names: list[str]) -> dict[str, Any]:
    """The JSON-ready metrics of ``cm``; NaN values (absent classes) become None.

    Keys: ``classes``, ``per_class_iou`` {name: IoU or None}, ``miou``, ``miou_classes`` (the classes
    present in the ground truth, which ``miou`` averages), ``pixel_accuracy``,
    ``mean_accuracy``, ``per_class_accuracy``, ``num_pixels`` (valid ground-truth pixels),
    ``confusion_matrix`` [[int]] (C, C) and ``void_predictions`` [int] (C,).
    """
    if len(class_names) != cm.num_classes:
        raise ValueError(f"{len(class_names)} class names for a {cm.num_classes}-class confusion matrix")
    iou, acc = cm.iou(), cm.accuracy()
    return {
        "classes": list(class_names),
        "per_class_iou": {name: _num(v) for name, v in zip(class_names, iou.tolist(), strict=True)},
        "miou": _num(cm.miou()),
        "miou_classes": [name for name, p in zip(class_names, cm.present().tolist(), strict=True) if p],
        "pixel_accuracy": _num(cm.pixel_accuracy()),
        "mean_accuracy": _num(float(np.nanmean(acc))) if np.isfinite(acc).any() else None,
        "per_class_accuracy": {name: _num(v) for name, v in zip(class_names, acc.tolist(), strict=True)},
        "num_pixels": int(cm.counts.sum()),
        "confusion_matrix": cm.matrix.tolist(),
        "void_predictions": cm.void.tolist(),
    }


def to_jsonable(obj: Any) -> Any:
    """Plain JSON types: numpy scalars/arrays unwrapped, NaN/inf -> None, paths -> str."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return to_jsonable(obj.item())
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_metrics(path: str | Path, summary: dict[str, Any], **extra: Any) -> None:
    """Write ``{"schema": METRICS_SCHEMA, **summary, **extra}`` atomically as strict JSON."""
    obj = to_jsonable({"schema": METRICS_SCHEMA, **summary, **extra})
    atomic_write_text(path, json.dumps(obj, indent=2, allow_nan=False) + "\n")


def read_metrics(path: str | Path) -> dict[str, Any]:
    """Read and check a metrics.json; raises InputError (one line naming the file) when it is not one."""
    path = Path(path)
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(path, "metrics file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(path, f"cannot read metrics file ({exc})") from None
    except json.JSONDecodeError as exc:
        raise InputError(path, f"not valid JSON (line {exc.lineno}: {exc.msg})") from None
    if not isinstance(obj, dict):
        raise InputError(path, "not a labelforge metrics file (top level is not an object)")
    schema = obj.get("schema")
    if schema != METRICS_SCHEMA:
        raise InputError(path, f"not a labelforge metrics file (schema {schema!r}, expected {METRICS_SCHEMA!r})")
    iou = obj.get("per_class_iou")
    if not isinstance(iou, dict) or not all(v is None or isinstance(v, (int, float)) for v in iou.values()):
        raise InputError(path, "metrics file lacks a valid 'per_class_iou' object of numbers")
    if not (obj.get("miou") is None or isinstance(obj.get("miou"), (int, float))):
        raise InputError(path, "metrics file has a non-numeric 'miou'")
    return obj
