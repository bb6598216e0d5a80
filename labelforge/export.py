"""``labelforge export``: a shard dir written out as a Cityscapes-layout dataset any framework can read.

Each sample becomes ``gtFine/{split}/{city}/{key}_gtFine_labelIds.png``, ``..._instanceIds.png``,
``..._color.png`` and, when the shards carry photos, ``leftImg8bit/{split}/{city}/{key}_leftImg8bit.png``.
The shard checksums are verified first; ``_SUCCESS`` is written last; ``resume`` skips samples whose
files are all present (every file is written atomically, so a present file is a whole file).

Example:
    >>> from labelforge.export import ExportConfig, export_shards  # doctest: +SKIP
    >>> export_shards(ExportConfig(shards="out/wall", out="data/wall-cs")).samples  # doctest: +SKIP
    100
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from cityscapes_tools.layout import KEY_RE, sample_paths
from cityscapes_tools.writer import write_sample

from .errors import InputError
from .outputs import mark_finished, prepare_output
from .progress import NullProgress, Progress

__all__ = ["ExportConfig", "ExportResult", "export_shards"]


@dataclass(frozen=True)
class ExportConfig:
    shards: Path
    out: Path
    split: str = "train"
    overwrite: bool = False
    resume: bool = False
    verify: bool = True


@dataclass(frozen=True)
class ExportResult:
    out: Path
    samples: int
    written: int  # by this call (the rest were already there)
    with_images: bool


def _done(out: Path, split: str, key: str, with_image: bool) -> bool:
    p = sample_paths(out, split, key)
    files = [p.label, p.instance, p.color] + ([p.image] if with_image else [])
    return all(f is not None and f.is_file() for f in files)


def export_shards(cfg: ExportConfig, progress: Progress | None = None) -> ExportResult:
    """Write every sample of ``cfg.shards`` into ``cfg.out`` in the Cityscapes layout."""
    from .shards import ShardSet

    progress = progress or NullProgress()
    ss = ShardSet(cfg.shards)
    if re.fullmatch(r"[a-z][a-z0-9_-]*", cfg.split) is None:
        raise InputError(cfg.out, f"split name {cfg.split!r} must be lowercase letters, digits, '_' or '-'")
    if cfg.verify:
        ss.verify()
    out = prepare_output(cfg.out, overwrite=cfg.overwrite, resume=cfg.resume)
    written = 0
    with progress.task("exporting", total=len(ss)) as bar:
        for j in range(len(ss.shards)):
            for s in ss.iter_shard(j):
                key = s["key"]
                if KEY_RE.match(key) is None:
                    raise InputError(ss.path / ss.shards[j]["file"], f"sample key {key!r} is not a Cityscapes key")
                if not (cfg.resume and _done(out, cfg.split, key, ss.has_image)):
                    inst = s["instance"]
                    if inst.min() < 0 or inst.max() > 65535:
                        raise InputError(ss.path / ss.shards[j]["file"], f"{key}: instance ids exceed 16 bits")
                    write_sample(out, cfg.split, key, label=s["label"], instance=inst, image=s["image"])
                    written += 1
                bar.advance(1)
    ss.close()
    mark_finished(
        out,
        {
            "samples": len(ss),
            "split": cfg.split,
            "source": str(cfg.shards),
            "method": ss.method,
            "images": ss.has_image,
        },
    )
    return ExportResult(out=out, samples=len(ss), written=written, with_images=ss.has_image)
