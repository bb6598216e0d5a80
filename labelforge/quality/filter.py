"""``labelforge filter``: drop the rendered pixels a segmenter trained on real photos cannot read as their class.

FreeMask (Yang et al., NeurIPS 2023) shows synthetic segmentation data helps once its noisy pixels
are filtered out, and filters them this way: a segmenter trained on the real data gives each class's
mean per-pixel cross-entropy on the real training photos (:mod:`labelforge.quality.classloss`); in a
rendered sample, a pixel whose loss exceeds ``factor`` (1.25, FreeMask's tolerance margin) times its
class's mean is marked ignore, so training no longer learns from it.

Ignore is written as a label id whose train id is the ignore index (255): the lowest such id of
the label space (Cityscapes ``unlabeled`` = 0, VOC ``void``), so the shard stays a map of label ids
that train-eval maps through ``id_to_train_id`` to 255 and leaves out of its loss, exactly as it
does with the dataset's own unlabeled pixels. The instance map gets the same id there (a stuff id:
no instance). Pixels that were already ignored, and classes the real photos lack (no mean to
compare with), are never dropped. The photos, keys, indexes and shard layout are the input's.

The output is a new shard dir written through :class:`~labelforge.shards.ShardWriter` (atomic
shards, manifest, ``_SUCCESS``, ``--resume`` shard by shard); the input is only read. Its config is
the input's (``classes``, compose's ``root``/``split``, ``render``: what train-eval's report and
leakage check read) plus a ``filter`` record: the judge (run, checkpoint sha256, epoch, its
training data), the factor, the class thresholds and the ignore id. Every sample's provenance gains
its dropped pixels; the manifest header ``filter_dropped`` and ``filter.json`` hold the totals.

Example:
    >>> from labelforge.quality.filter import FilterConfig, run_filter  # doctest: +SKIP
    >>> res = run_filter(FilterConfig(shards="out/render", segmenter="runs/base", out="out/filtered"))  # doctest: +SKIP
    >>> res.dropped / res.pixels  # doctest: +SKIP
    0.21
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._lock import output_lock
from ..errors import InputError, LabelforgeError
from ..labelspace import ClassDef, LabelSpace
from ..outputs import atomic_write_text, check_output
from ..progress import NullProgress, Progress, ProgressTask

__all__ = ["FILTER_SCHEMA", "FilterConfig", "FilterResult", "run_filter", "drop_mask", "ignore_class"]

FILTER_SCHEMA = "labelforge.filter/1"
DEFAULT_FACTOR = 1.25  # FreeMask's tolerance margin
REAL_SPLIT = "train"  # the class means come from the judge's own training photos, as in FreeMask
LOSS = (
    "per-pixel cross-entropy of the segmenter's class scores (photo resized bilinearly to its input size, "
    "scores upsampled bilinearly to the label map's size; labels not resized)"
)


@dataclass(frozen=True)
class FilterConfig:
    shards: str  # image shard dir (render's or copy-paste compose's output)
    segmenter: str  # finished train-eval run trained on real photos only
    out: str
    factor: float = DEFAULT_FACTOR
    max_real: int | None = None  # class means from the first N training photos (None: all)
    batch_size: int = 8
    device: str = "auto"
    cache_dir: str | None = None  # class-loss cache (None: $LABELFORGE_CACHE or ~/.cache/labelforge)
    preview: int = 6  # samples in preview.png (0: none)

    def __post_init__(self) -> None:
        if not (isinstance(self.factor, (int, float)) and math.isfinite(self.factor) and self.factor > 0):
            raise LabelforgeError(f"filter: factor must be a positive number, got {self.factor!r}")
        if self.batch_size < 1:
            raise LabelforgeError("filter: batch size must be at least 1")
        if self.max_real is not None and self.max_real < 1:
            raise LabelforgeError("filter: max-real must be at least 1")
        if self.preview < 0:
            raise LabelforgeError("filter: preview must be 0 or more")


@dataclass(frozen=True)
class FilterResult:
    out: Path
    samples: int
    filtered: int  # samples filtered by this call (0 when a resume found every shard finished)
    classes: dict[str, dict[str, Any]]  # per class present in the input: pixels, dropped, share, mean_loss, threshold
    pixels: int  # evaluated-class pixels of the input
    dropped: int
    class_loss_cached: bool
    unjudged: list[str]  # classes present in the renders but absent from the real photos: kept whole
    preview: Path | None
    seconds: float


def ignore_class(ls: LabelSpace) -> ClassDef:
    """The label id dropped pixels get: the lowest id whose train id is the ignore index."""
    ignored = sorted((c for c in ls.classes if c.train_id == ls.ignore_index and 0 <= c.id < 256), key=lambda c: c.id)
    if not ignored:
        raise LabelforgeError(
            f"label space {ls.name!r} has no ignored class (train id {ls.ignore_index}) to mark dropped pixels with"
        )
    return ignored[0]


def drop_mask(loss: np.ndarray, train_ids: np.ndarray, thresholds: np.ndarray, ignore_index: int = 255) -> np.ndarray:
    """Pixels whose loss exceeds their class's threshold; ignored pixels and classes with an infinite
    threshold (unjudged) never. ``thresholds`` is (K,), indexed by train id."""
    lut = np.full(256, np.inf)
    lut[: len(thresholds)] = thresholds
    lut[ignore_index] = np.inf
    return loss > lut[train_ids]


@dataclass(frozen=True)
class _Inputs:
    ss: Any  # ShardSet
    seg: Any  # Segmenter
    ds: Any  # the judge's dataset
    real: list[Any]  # its training samples the class means come from
    drop: ClassDef
    checkpoint_sha256: str


def _open_inputs(cfg: FilterConfig, device: Any) -> _Inputs:
    """Everything the filter reads, checked before the output folder is created."""
    from ..dataset import open_dataset
    from ..seg.train import CHECKPOINT
    from ..shards import ShardSet
    from ..shards.manifest import file_sha256
    from .segmenter import load_segmenter

    ss = ShardSet(cfg.shards)
    if not ss.has_image:
        raise InputError(ss.path, "shard dir holds label maps only; filter rendered shards (render's output)")
    if len(ss) == 0:
        raise InputError(ss.path, "shard dir holds no samples")
    src, out = ss.path.resolve(), Path(cfg.out).resolve()
    if out == src or src in out.parents:
        raise InputError(cfg.out, f"output lies in the input shard dir {ss.path}; the input must stay untouched")
    seg = load_segmenter(cfg.segmenter, device)
    if seg.supp:
        raise InputError(
            seg.run,
            f"segmenter was trained with supplementary shards ({', '.join(seg.supp)}); the filter's judge must be "
            "trained on real photos only (a baseline train-eval run)",
        )
    if ss.label_space.fingerprint != seg.label_space.fingerprint:
        raise InputError(
            ss.path, f"shards use label space {ss.label_space.name!r}, the segmenter {seg.label_space.name!r}"
        )
    try:
        drop = ignore_class(ss.label_space)
    except LabelforgeError as exc:
        raise InputError(ss.path, str(exc)) from None
    ds = open_dataset(seg.root, seg.label_space, seg.layout)
    real = ds.samples(REAL_SPLIT, require_images=True)
    if not real:
        raise InputError(seg.root, f"split {REAL_SPLIT!r} of the segmenter's dataset has no photos")
    real = real[: cfg.max_real] if cfg.max_real else real
    return _Inputs(ss, seg, ds, real, drop, file_sha256(seg.run / CHECKPOINT))


def _provenance(cfg: FilterConfig, inp: _Inputs, table: Any, thresholds: np.ndarray) -> dict[str, Any]:
    """The shard config's ``filter`` record: what judged the pixels and by which rule (the resume check compares it)."""
    seg = inp.seg
    info: dict[str, Any] = {
        "method": "freemask",
        "factor": float(cfg.factor),
        "loss": LOSS,
        "segmenter": str(seg.run.resolve()),
        "segmenter_checkpoint_sha256": inp.checkpoint_sha256,
        "segmenter_epoch": seg.epoch,
        "segmenter_data": {"root": str(seg.root), "split": REAL_SPLIT},
        "class_loss": {"fingerprint": table.meta["fingerprint"], "split": REAL_SPLIT, "samples": table.samples},
        "thresholds": {n: (None if math.isinf(t) else float(t)) for n, t in zip(table.names, thresholds, strict=True)},
        "ignore": {"id": inp.drop.id, "name": inp.drop.name},
        "input": str(inp.ss.path.resolve()),
    }
    if "filter" in inp.ss.config:  # filtered twice: keep the first record
        info["previous"] = inp.ss.config["filter"]
    return info


def _filter_batch(
    rows: dict[str, Any], inp: _Inputs, thr: np.ndarray, names: dict[int, str]
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(labels, instances, provenance JSON) of one batch with its dropped pixels marked ignore."""
    import torch

    from .classloss import pixel_loss

    ls = inp.ss.label_space
    labels, instances = rows["label"], rows["instance"]
    train_ids = ls.id_to_train_id[labels]
    logits = inp.seg.logits(rows["image"], labels.shape[1:])
    loss = pixel_loss(logits, torch.from_numpy(train_ids).to(logits.device), ls.ignore_index).cpu().numpy()
    drop = drop_mask(loss, train_ids, thr, ls.ignore_index)
    new_labels = np.where(drop, np.uint8(inp.drop.id), labels).astype(np.uint8)
    new_instances = np.where(drop, np.int32(inp.drop.id), instances).astype(np.int32)
    provs = []
    for k, prov in enumerate(rows["provenance"]):
        per_id = np.bincount(labels[k][drop[k]], minlength=ls.num_ids)
        p = json.loads(prov)
        p["filter"] = {
            "dropped": int(per_id.sum()),
            "classes": {names[i]: int(per_id[i]) for i in np.flatnonzero(per_id)},
        }
        provs.append(json.dumps(p, sort_keys=True))
    return new_labels, new_instances, provs


def _filter_samples(inp: _Inputs, thr: np.ndarray, writer: Any, batch_size: int, task: ProgressTask) -> int:
    """Filter every sample of the shards the writer still needs; batches never straddle a shard, so a
    resumed run forms the batches of an uninterrupted one."""
    ss = inp.ss
    todo = set(writer.pending())
    names = {c.id: c.name for c in ss.label_space.classes}
    done = 0
    for j, entry in enumerate(ss.shards):
        first, count = int(entry["first_index"]), int(entry["count"])
        if first not in todo:
            continue
        for start in range(0, count, batch_size):
            stop = min(start + batch_size, count)
            rows = ss.read_rows(j, start, stop)
            labels, instances, provs = _filter_batch(rows, inp, thr, names)
            for k in range(stop - start):
                enc = writer.encode(labels[k], instances[k], rows["image"][k])
                writer.write(int(rows["index"][k]), key=rows["key"][k], provenance=provs[k], encoded=enc)
            done += stop - start
            task.advance(stop - start)
    return done


def _class_counts(inp: _Inputs, table: Any, thr: np.ndarray, out_counts: np.ndarray) -> dict[str, dict[str, Any]]:
    """Per evaluated class present in the input: its pixels there, how many the filter dropped, the rule.

    Read from the two manifests (pixels per label id before and after), so a resumed run counts the
    shards an earlier call wrote too.
    """
    ls = inp.ss.label_space
    before = inp.ss.pixel_counts()
    gained = int(out_counts[inp.drop.id] - before[inp.drop.id])
    out: dict[str, dict[str, Any]] = {}
    mean = table.mean
    for c in ls.eval_classes:
        if before[c.id] == 0:
            continue
        dropped = int(before[c.id] - out_counts[c.id])
        t = c.train_id
        out[c.name] = {
            "pixels": int(before[c.id]),
            "dropped": dropped,
            "share": dropped / int(before[c.id]),
            "mean_loss": None if np.isnan(mean[t]) else float(mean[t]),
            "threshold": None if math.isinf(thr[t]) else float(thr[t]),
        }
    if sum(v["dropped"] for v in out.values()) != gained:  # every dropped pixel went to the ignore id
        raise LabelforgeError(f"{inp.ss.path}: dropped pixel counts do not add up ({gained} marked ignore)")
    return out


def run_filter(
    cfg: FilterConfig, *, resume: bool = False, overwrite: bool = False, progress: Progress | None = None
) -> FilterResult:
    """Filter the rendered samples of ``cfg.shards`` into ``cfg.out`` (docs/filter.md)."""
    with output_lock(cfg.out, "filter"):
        return _run_filter(cfg, resume, overwrite, progress)


def _run_filter(cfg: FilterConfig, resume: bool, overwrite: bool, progress: Progress | None) -> FilterResult:
    import torch

    from .._runtime import resolve_device
    from ..compose.segments import default_cache_dir
    from ..shards import ShardWriter
    from .classloss import load_or_measure

    t0 = time.perf_counter()
    progress = progress or NullProgress()
    check_output(cfg.out, overwrite=overwrite, resume=resume)
    inp = _open_inputs(cfg, resolve_device(cfg.device))
    ss = inp.ss
    cache = Path(cfg.cache_dir) if cfg.cache_dir else default_cache_dir()
    table, cached = load_or_measure(
        inp.seg, inp.ds, REAL_SPLIT, inp.real, checkpoint_sha256=inp.checkpoint_sha256, cache_dir=cache,
        batch_size=cfg.batch_size, progress=progress,
    )  # fmt: skip
    thr = table.thresholds(cfg.factor)
    writer = ShardWriter(
        cfg.out,
        label_space=ss.label_space,
        method=ss.method,
        config={**ss.config, "filter": _provenance(cfg, inp, table, thr)},
        seed=ss.seed,
        total=len(ss),
        height=ss.height,
        width=ss.width,
        samples_per_shard=int(ss.manifest["samples_per_shard"]),
        with_image=True,
        deflate_images=ss.images_deflated(),
        resume=resume,
        overwrite=overwrite,
    )
    out = Path(cfg.out)
    preview = None
    with writer, progress.task("filter", total=len(writer.pending())) as task, torch.inference_mode():
        filtered = _filter_samples(inp, thr, writer, cfg.batch_size, task)
        writer.collect()
        classes = _class_counts(inp, table, thr, writer.pixel_counts())
        unjudged = [n for n, v in classes.items() if v["threshold"] is None]
        pixels, dropped = sum(v["pixels"] for v in classes.values()), sum(v["dropped"] for v in classes.values())
        doc = {
            "schema": FILTER_SCHEMA,
            "shards": str(ss.path.resolve()),
            "samples": len(ss),
            "total": {"pixels": pixels, "dropped": dropped, "share": dropped / pixels if pixels else 0.0},
            "classes": classes,
            "unjudged": unjudged,
            "filter": writer.config["filter"],
            "class_loss": {**table.to_dict(), "cached": cached},
            "config": asdict(cfg),
            "torch_version": torch.__version__,
        }
        atomic_write_text(out / "filter.json", json.dumps(doc, indent=2, allow_nan=False) + "\n")
        writer.update_header({"filter_dropped": {n: v["dropped"] for n, v in classes.items()}})
        if cfg.preview:
            preview = _write_preview(ss, out, cfg.preview, inp.drop.id)
    ss.close()
    return FilterResult(
        out, len(ss), filtered, classes, pixels, dropped, cached, unjudged, preview, time.perf_counter() - t0
    )


DROPPED_COLOUR = (255, 255, 255)  # white: no Cityscapes class is near it (magenta is close to sidewalk)


def _write_preview(ss: Any, out: Path, k: int, drop_id: int) -> Path:
    """Rows of: rendered photo, its label map, the filtered map with the dropped pixels in white."""
    from ..preview import save_grid
    from ..shards import ShardSet

    res = ShardSet(out, require_complete=False, verify=False)  # just written
    pal = ss.label_space.palette
    rows, caps = [], []
    for i in range(min(k, len(res))):
        before, after = ss[i], res[i]
        marked = pal[after["label"]].copy()
        marked[(after["label"] == drop_id) & (before["label"] != drop_id)] = DROPPED_COLOUR
        rows.append([after["image"], pal[before["label"]], marked])
        caps.append(["rendered", "label", "filtered (dropped: white)"] if i == 0 else ["", "", ""])
    res.close()
    return save_grid(out / "preview.png", rows, caps, cell_width=min(max(ss.width, 256), 512))
