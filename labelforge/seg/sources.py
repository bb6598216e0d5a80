"""The inputs of a train-eval run, checked before anything is written.

A dataset root must have a ``train`` split with photos and a ``val`` split with photos; every
``--supp`` dir must be a finished shard dir with images (rendered or copy-paste output, not label
maps alone) in the run's label space. Each problem is one line naming the path.

Example:
    >>> from labelforge.seg.sources import check_inputs  # doctest: +SKIP
    >>> inputs = check_inputs(cfg)  # doctest: +SKIP
    >>> len(inputs.train), len(inputs.val), [len(s) for s in inputs.shards]  # doctest: +SKIP
    (30, 10, [60])
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..dataset import SamplePaths, open_dataset
from ..errors import InputError
from ..labelspace import LabelSpace
from ..shards import ShardSet
from .presets import TrainEvalConfig

__all__ = ["RunInputs", "check_inputs", "open_supplementary"]


@dataclass(frozen=True)
class RunInputs:
    label_space: LabelSpace
    train: list[SamplePaths]
    val: list[SamplePaths]
    shards: list[ShardSet]

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
                }
                for ss in self.shards
            ],
        }

    def augmented_classes(self) -> list[str]:
        """Sorted union of the classes the shard dirs were composed to add (their config's ``classes``)."""
        names: set[str] = set()
        for ss in self.shards:
            names.update(str(c) for c in ss.config.get("classes", []) or [])
        return sorted(names)


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
    val = ds.samples("val", require_images=True)
    shards = [open_supplementary(p, ls) for p in cfg.supp]
    if cfg.backbone_weights is not None and not Path(cfg.backbone_weights).is_file():
        raise InputError(cfg.backbone_weights, "backbone weights file not found")
    return RunInputs(label_space=ls, train=train, val=val, shards=shards)
