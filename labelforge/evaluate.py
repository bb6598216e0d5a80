"""Score a folder of prediction PNGs against a dataset split's ground truth (``labelforge evaluate``).

Any model's predictions can be scored, labelforge's or another framework's:

* Files: every ``*.png`` under the prediction folder, at any depth. A file belongs to the sample
  whose key starts its name, followed by the end of the name or a character that cannot continue
  the key (``{key}_pred_labelIds.png``, ``{key}_leftImg8bit.png``, ``{key}.png`` ...; for a
  Cityscapes key ``{city}_{seq:06}_{frame:06}`` anything but a digit). The longest such key wins.
  Several files for one key (e.g. a labelIds and a colour PNG) are narrowed by name: ``*color*`` and
  ``*instanceIds*`` files are skipped, then a name with ``labelIds`` / ``trainIds`` in it is
  preferred according to the format.
* Values: single-channel 8-bit (16-bit accepted when every value is below 256). ``labelIds``
  predictions are mapped to train ids with the label space's table (void ids count as a miss of the
  ground-truth class); ``trainIds`` predictions are used as they are (255 or any value outside
  ``0..C-1`` is a miss).
* Format ``auto``: when every scored file's name says ``labelIds`` (as train-eval's
  ``*_pred_labelIds.png`` do) or every one says ``trainIds``, the names decide. Otherwise, over all
  the prediction pixels, a value in ``C..num_ids-1`` (Cityscapes: 19..33) means labelIds; else
  values within ``0..C-1`` and 255 mean trainIds. A mix of both kinds, or any other value, is an
  error: pass the format explicitly.

Each file is decoded once into a joint histogram of (ground-truth label id, raw predicted value);
the label space and the format decide afterwards, on its 256 x 256 cells, how ids become classes.

Example:
    >>> from labelforge.evaluate import EvaluateConfig, evaluate_predictions  # doctest: +SKIP
    >>> res = evaluate_predictions(EvaluateConfig(pred_dir="preds", root="data/mini", out="eval"))  # doctest: +SKIP
    >>> round(res.summary["miou"], 4)  # doctest: +SKIP
    0.6123
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cityscapes_tools.io import PNG_MAGIC, decode_png, read_bytes

from .dataset import DatasetSource, SamplePaths, open_dataset
from .errors import InputError, LabelforgeError
from .layouts.masks import read_mask_values
from .outputs import check_output, mark_finished, prepare_output
from .progress import NullProgress, Progress
from .seg.metrics import ConfusionMatrix, metrics_summary, write_metrics

__all__ = [
    "FORMATS",
    "EvaluateConfig",
    "EvaluateResult",
    "find_predictions",
    "detect_format",
    "evaluate_predictions",
]

FORMATS = ("auto", "labelIds", "trainIds")
_SKIP_NAMES = ("color", "instanceids")


@dataclass(frozen=True)
class EvaluateConfig:
    """What ``labelforge evaluate`` was asked; saved in metrics.json under ``config``."""

    pred_dir: Path
    root: Path
    out: Path
    split: str = "val"
    format: str = "auto"
    allow_missing: bool = False
    workers: int = 1
    label_space: str = "auto"
    layout: str = "auto"
    overwrite: bool = False

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise LabelforgeError(f"unknown prediction format {self.format!r}; valid: {', '.join(FORMATS)}")
        for name in ("pred_dir", "root", "out"):
            object.__setattr__(self, name, Path(getattr(self, name)))


@dataclass
class EvaluateResult:
    summary: dict[str, Any]
    metrics_path: Path
    format: str
    num_scored: int
    missing: list[str] = field(default_factory=list)
    unmatched: int = 0  # prediction PNGs whose name names no sample of the split


def _choose(paths: list[Path], fmt: str) -> Path | None:
    """One prediction file among several for the same key, or None when the choice is ambiguous."""
    left = [p for p in paths if not any(s in p.name.lower() for s in _SKIP_NAMES)] or paths
    if len(left) == 1:
        return left[0]
    order = ("trainids", "labelids") if fmt == "trainIds" else ("labelids", "trainids")
    for tag in order:
        tagged = [p for p in left if tag in p.name.lower()]
        if len(tagged) == 1:
            return tagged[0]
    return None


def _key_of(name: str, keys: set[str]) -> str | None:
    """The longest key of ``keys`` that starts ``name`` and is not continued there by the next character
    (a digit after a key ending in a digit, a letter or digit after one ending in a letter)."""
    best = None
    for end in range(1, len(name) + 1):
        if name[:end] not in keys:
            continue
        nxt, last = name[end : end + 1], name[end - 1]
        if nxt and (nxt.isdigit() or (nxt.isalpha() and not last.isdigit())):
            continue
        best = name[:end]
    return best


def _format_from_names(paths: list[Path]) -> str | None:
    names = [p.name.lower() for p in paths]
    for tag, fmt in (("labelids", "labelIds"), ("trainids", "trainIds")):
        if names and all(tag in n for n in names):
            return fmt
    return None


def find_predictions(pred_dir: Path, keys: list[str], fmt: str = "auto") -> tuple[dict[str, Path], int]:
    """Map sample keys to prediction files under ``pred_dir``; also return the count of unmatched PNGs."""
    if not pred_dir.is_dir():
        raise InputError(pred_dir, "prediction folder not found")
    wanted = set(keys)
    by_key: dict[str, list[Path]] = {}
    unmatched = 0
    for p in sorted(pred_dir.rglob("*.png")):
        key = _key_of(p.name, wanted)
        if key is None:
            unmatched += 1
            continue
        by_key.setdefault(key, []).append(p)
    found: dict[str, Path] = {}
    for key, paths in by_key.items():
        chosen = _choose(paths, fmt)
        if chosen is None:
            names = ", ".join(str(p.relative_to(pred_dir)) for p in paths[:3])
            raise InputError(pred_dir, f"several prediction files for {key}: {names}; keep one per sample")
        found[key] = chosen
    return found, unmatched


def detect_format(present: np.ndarray, num_classes: int, num_ids: int, ignore_index: int = 255) -> str:
    """``labelIds`` or ``trainIds`` from a (256,) bool array of the values seen in the predictions."""
    values = np.flatnonzero(present)
    label_only = [int(v) for v in values if num_classes <= v < num_ids and v != ignore_index]
    train_ok = all(v < num_classes or v == ignore_index for v in values)
    if label_only and present[ignore_index] and ignore_index >= num_ids:
        raise LabelforgeError(
            f"predictions hold both label ids ({label_only[0]}) and {ignore_index}; pass --format explicitly"
        )
    if label_only:
        bad = [int(v) for v in values if v >= num_ids]
        if bad:
            raise LabelforgeError(f"prediction value {bad[0]} is not a label id (0..{num_ids - 1}); pass --format")
        return "labelIds"
    if train_ok:
        return "trainIds"
    bad = [int(v) for v in values if v >= num_classes and v != ignore_index]
    raise LabelforgeError(f"prediction value {bad[0]} is neither a label id nor a train id; pass --format")


def _read_prediction(path: Path) -> np.ndarray:
    data = read_bytes(path)
    if data.startswith(PNG_MAGIC) and len(data) > 25 and data[25] == 3:  # palette PNG: its indices
        return read_mask_values(path)
    arr = decode_png(data, path)
    if arr.ndim != 2:
        raise InputError(path, f"prediction must be a single-channel label map, found {arr.shape[2]} channels")
    if arr.dtype != np.uint8:
        if arr.max() > 255:
            raise InputError(path, f"prediction value {int(arr.max())} does not fit a label id (8-bit expected)")
        arr = arr.astype(np.uint8)
    return arr


def _score_one(ds: DatasetSource, sample: SamplePaths, pred_path: Path) -> np.ndarray:
    """(256 * 256,) counts of (ground-truth label id, raw predicted value) pairs over all pixels."""
    gt = ds.read_label(sample)
    pred = _read_prediction(pred_path)
    if pred.shape != gt.shape:
        raise InputError(
            pred_path,
            f"prediction is {pred.shape[1]}x{pred.shape[0]} "
            f"but ground truth {sample.key} is {gt.shape[1]}x{gt.shape[0]}",
        )
    # One pass, no masking: ignored ground truth and the label-id -> train-id mapping are applied
    # to the 256 rows afterwards, which is much cheaper than per pixel.
    return np.bincount(((gt.astype(np.uint16) << 8) | pred).ravel(), minlength=256 * 256)


def _to_confusion(joint: np.ndarray, fmt: str, lut: np.ndarray, num_classes: int, ignore_index: int) -> ConfusionMatrix:
    """Fold the (256, 256) joint counts (gt label id x raw predicted value) into a (C, C) matrix and void counts."""
    n = num_classes
    rows = np.zeros((n, 256), dtype=np.int64)  # (C, 256): gt train id x raw predicted value
    for gt_id in range(256):
        if lut[gt_id] < n:
            rows[lut[gt_id]] += joint[gt_id]
    pred_class = lut if fmt == "labelIds" else np.arange(256)
    matrix = np.zeros((n, n), dtype=np.int64)
    void = np.zeros(n, dtype=np.int64)
    for v in range(256):
        c = int(pred_class[v])
        if c < n:
            matrix[:, c] += rows[:, v]
        else:
            void += rows[:, v]
    return ConfusionMatrix.from_matrix(matrix, void, ignore_index=ignore_index)


def evaluate_predictions(cfg: EvaluateConfig, progress: Progress | None = None) -> EvaluateResult:
    """Score ``cfg.pred_dir`` against ``cfg.root``'s ``cfg.split`` and write ``cfg.out/metrics.json``."""
    progress = progress or NullProgress()
    check_output(cfg.out, overwrite=cfg.overwrite, resumable=False)
    ds = open_dataset(cfg.root, cfg.label_space, cfg.layout)
    ls = ds.label_space
    samples = ds.samples(cfg.split)
    found, unmatched = find_predictions(cfg.pred_dir, [s.key for s in samples], cfg.format)
    missing = [s.key for s in samples if s.key not in found]
    if not found:
        raise InputError(cfg.pred_dir, f"no prediction PNG is named after a sample of split {cfg.split!r}")
    if missing and not cfg.allow_missing:
        raise InputError(
            cfg.pred_dir,
            f"no prediction for {len(missing)} of {len(samples)} samples, first: {missing[0]} "
            "(pass --allow-missing to score the others)",
        )
    todo = [s for s in samples if s.key in found]

    joint = np.zeros(256 * 256, dtype=np.int64)
    with progress.task("evaluate", total=len(todo)) as bar, ThreadPoolExecutor(max(1, cfg.workers)) as pool:
        # Threads suffice: PNG decoding and bincount release the GIL. map() keeps sample order.
        for counts in pool.map(lambda s: _score_one(ds, s, found[s.key]), todo):
            joint += counts
            bar.advance()
    joint = joint.reshape(256, 256)  # (gt label id, raw predicted value)

    seen = joint.sum(axis=0) > 0  # every predicted value, on ignored pixels too
    fmt = cfg.format
    if fmt == "auto":
        fmt = _format_from_names([found[s.key] for s in todo]) or detect_format(
            seen, ls.num_classes, ls.num_ids, ls.ignore_index
        )
    cm = _to_confusion(joint, fmt, ls.id_to_train_id, ls.num_classes, ls.ignore_index)
    summary = metrics_summary(cm, ls.class_names)

    out = prepare_output(cfg.out, overwrite=cfg.overwrite)
    path = out / "metrics.json"
    write_metrics(
        path,
        summary,
        source="evaluate",
        pred_dir=str(cfg.pred_dir),
        root=str(cfg.root),
        split=cfg.split,
        format=fmt,
        num_samples=len(todo),
        missing=missing,
        unmatched_files=unmatched,
        label_space=ls.name,
        label_space_fingerprint=ls.fingerprint,
        augmented_classes=[],
        config={k: str(v) if isinstance(v, Path) else v for k, v in asdict(cfg).items()},
    )
    mark_finished(out, {"command": "evaluate", "metrics": "metrics.json"})
    return EvaluateResult(summary, path, fmt, len(todo), missing, unmatched)
