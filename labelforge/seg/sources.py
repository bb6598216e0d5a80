"""The inputs of a train-eval run, checked before anything is written.

A dataset root must have a ``train`` split with photos and a ``val`` split with photos; every
``--supp`` dir must be a finished shard dir with images (rendered or copy-paste output, not label
maps alone) in the run's label space. Each problem is one line naming the path.

At native input size (``size=None``) supplementary samples are brought to the originals' size,
read from the PNG headers of the train split: a generator renders at its own resolution (512x1024
for ``512p``) while the originals stay at theirs (1024x2048), and objects must appear at one scale.
Originals of several sizes leave no single scale to bring them to, so that mix is refused.

Evaluation-split leakage is refused too: a shard dir whose label maps (and, for copy-paste, donor
photos) were composed from the split this run evaluates on, or whose photos were rendered by a
generator trained on it, of the same dataset root, would score the model on data it trained on.
The check reads what compose and render record in the shard config (``root``/``split``, and
``render.generator_data``); ``allow_eval_leak`` lets such a dir through and metrics.json says so.

Example:
    >>> from labelforge.seg.sources import check_inputs  # doctest: +SKIP
    >>> inputs = check_inputs(cfg)  # doctest: +SKIP
    >>> len(inputs.train), len(inputs.val), [len(s) for s in inputs.shards]  # doctest: +SKIP
    (30, 10, [60])
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..check import validate_samples
from ..dataset import SamplePaths, open_dataset
from ..errors import InputError
from ..labelspace import LabelSpace
from ..shards import ShardSet
from .data import PairTransform, TrainData
from .presets import TrainEvalConfig

__all__ = [
    "EVAL_SPLIT",
    "DataSource",
    "RunInputs",
    "check_inputs",
    "eval_leak",
    "open_supplementary",
    "native_size",
    "png_size",
    "shard_sources",
]

EVAL_SPLIT = "val"  # the split train-eval scores on
_GENERATOR = "generator training pairs"


@dataclass(frozen=True)
class RunInputs:
    label_space: LabelSpace
    train: list[SamplePaths]
    val: list[SamplePaths]
    shards: list[ShardSet]
    supp_size: tuple[int, int] | None = None  # (H, W) supplementary samples are resized to; None: as stored
    leaks: tuple[tuple[str, str], ...] = ()  # (shard dir, why) let through by allow_eval_leak

    def train_data(self, transform: PairTransform) -> TrainData:
        """The training set of the run: originals, then every shard dir (brought to ``supp_size``)."""
        return TrainData(self.train, self.shards, self.label_space, transform, supp_size=self.supp_size)

    def data_summary(self) -> dict[str, Any]:
        """The ``data`` section of metrics.json (the measured supplementary share is added by training)."""
        return {
            "originals": len(self.train),
            "val": len(self.val),
            "supplementary": [
                {
                    "path": str(ss.path),
                    "count": len(ss),
                    "method": ss.method,
                    "classes": list(ss.config.get("classes", [])),
                    "size": [ss.height, ss.width],
                    "sources": [vars(src) for src in shard_sources(ss)],
                }
                for ss in self.shards
            ],
            "supp_resized_to": None if self.supp_size is None else list(self.supp_size),
            "eval_leaks": [{"path": path, "reason": why} for path, why in self.leaks],
        }

    def augmented_classes(self) -> list[str]:
        """Sorted union of the classes the shard dirs were composed to add (their config's ``classes``)."""
        names: set[str] = set()
        for ss in self.shards:
            names.update(str(c) for c in ss.config.get("classes", []) or [])
        return sorted(names)


@dataclass(frozen=True)
class DataSource:
    """Dataset data a shard dir was made from: ``what`` (label maps, donor photos, generator training
    pairs), the dataset ``root`` and ``split``; None where the shard config does not record it."""

    what: str
    root: str | None
    split: str | None


def shard_sources(ss: ShardSet) -> list[DataSource]:
    """The dataset data behind a shard dir, as compose and render recorded it in its config."""
    cfg = ss.config
    out = []
    if "split" in cfg:  # compose: base maps and segments (and, with --copy-paste, their photos)
        what = "label maps and donor photos" if cfg.get("copy_paste") else "label maps"
        out.append(DataSource(what, cfg.get("root"), cfg.get("split")))
    render = cfg.get("render") or {}
    if render.get("renderer", "oracle") != "oracle":  # a trained generator saw photo/label pairs
        data = render.get("generator_data") or {}
        out.append(DataSource(_GENERATOR, data.get("root"), data.get("split")))
    return out


def _same_root(a: str | Path, b: str | Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them is gone: compare the paths
        return Path(a).resolve() == Path(b).resolve()


def eval_leak(ss: ShardSet, root: str | Path, split: str = EVAL_SPLIT) -> str | None:
    """Why ``ss`` holds data of ``split`` of ``root`` (the evaluation data), or None when it does not."""
    for src in shard_sources(ss):
        if src.what == _GENERATOR and src.split is None:
            return (
                "its photos were rendered by a generator whose training split is not recorded "
                "(an older render); render it again"
            )
        if src.split != split:
            continue
        if src.root is None:
            where = f"split {split!r} of an unrecorded dataset root"
        elif _same_root(src.root, root):
            where = f"split {split!r} of {src.root}"
        else:
            continue  # another dataset's val split is no leak into this one's
        if src.what == _GENERATOR:
            return f"its photos were rendered by a generator trained on {where}, the split this run evaluates on"
        return f"its {src.what} come from {where}, the split this run evaluates on"
    return None


def open_supplementary(path: str | Path, ls: LabelSpace) -> ShardSet:
    """Open one ``--supp`` dir; reject label-only shards and shards of another label space."""
    ss = ShardSet(path)
    if not ss.has_image:
        raise InputError(
            ss.path, "shard dir holds label maps only (no images); render it first with `labelforge render`"
        )
    if ss.label_space.fingerprint != ls.fingerprint:
        raise InputError(
            ss.path,
            f"shards use label space {ss.label_space.name!r} (fingerprint {ss.label_space.fingerprint}), "
            f"the run uses {ls.name!r} ({ls.fingerprint})",
        )
    if len(ss) == 0:
        raise InputError(ss.path, "shard dir holds no samples")
    return ss


def check_inputs(cfg: TrainEvalConfig) -> RunInputs:
    """Open and check everything the run reads; raises a one-line error on the first problem."""
    ds = open_dataset(cfg.root, cfg.label_space, cfg.layout)
    ls = ds.label_space
    train = ds.samples("train", require_images=True)
    val = ds.samples(EVAL_SPLIT, require_images=True)
    shards = [open_supplementary(p, ls) for p in cfg.supp]
    leaks = []
    for ss in shards:
        why = eval_leak(ss, cfg.root)
        if why is not None and not cfg.allow_eval_leak:
            raise InputError(ss.path, f"evaluation-split leakage: {why} (--allow-eval-leak trains on it anyway)")
        if why is not None:
            leaks.append((str(ss.path), why))
    if cfg.backbone_weights is not None and not Path(cfg.backbone_weights).is_file():
        raise InputError(cfg.backbone_weights, "backbone weights file not found")
    # Every file decoded and checked (cheap checks first) before the run dir exists: one found mid-run costs the run.
    validate_samples(train + val, workers=cfg.workers, remember=True)
    # With --size every image is resized to it anyway; at native size the shards follow the originals.
    supp_size = native_size(cfg.root, train) if shards and cfg.size is None else None
    return RunInputs(label_space=ls, train=train, val=val, shards=shards, supp_size=supp_size, leaks=tuple(leaks))


def png_size(path: str | Path) -> tuple[int, int]:
    """(H, W) of a PNG file from its header alone (a few bytes, no decoding)."""
    with open(path, "rb") as fh:
        head = fh.read(24)
    if len(head) < 24 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        raise InputError(path, "not a PNG file")
    return int.from_bytes(head[20:24], "big"), int.from_bytes(head[16:20], "big")


def native_size(root: str | Path, train: list[SamplePaths]) -> tuple[int, int]:
    """The one (H, W) of the train photos; refuses originals of several sizes (no single scale to match).

    Read from the masks' PNG headers: a photo is its mask's size (checked when read), and may be a JPEG.
    """
    sizes: dict[tuple[int, int], Path] = {}
    for s in train:
        sizes.setdefault(png_size(s.label), s.label)
    if len(sizes) > 1:
        (a, pa), (b, pb) = list(sizes.items())[:2]
        raise InputError(
            root,
            f"train photos differ in size ({pa.name} is {a[1]}x{a[0]}, {pb.name} is {b[1]}x{b[0]}), so supplementary "
            "samples have no one native scale to match; give --size HxW",
        )
    return next(iter(sizes))
