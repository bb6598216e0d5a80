"""``labelforge export``: a shard dir written out as a dataset root, in the layout of the dataset it came from.

By default the layout is the source dataset's (compose records it in the shard config for every layout
but Cityscapes), so composed or rendered samples drop back into the user's own tooling:

* cityscapes: ``gtFine/{split}/{city}/{key}_gtFine_labelIds.png``, ``..._instanceIds.png``,
  ``..._color.png`` and, with photos, ``leftImg8bit/{split}/{city}/{key}_leftImg8bit.png``;
* voc: ``SegmentationClass/{key}.png`` (palette PNG), ``JPEGImages/{key}.jpg``, and the key appended
  to ``ImageSets/Segmentation/{split}.txt``;
* ade20k / folders: ``annotations|ann_dir/{split}/{key}.png`` and ``images|img_dir/{split}/{key}.jpg|png``.

Masks store the label space's values (``ClassDef.value``), not its ids. Instance maps exist only in
the Cityscapes layout; JPEG photos are written at quality 95. The shard checksums are verified first;
``_SUCCESS`` is written last; ``resume`` skips samples whose files are all present (every file is
written atomically, so a present file is a whole file).

Example:
    >>> from labelforge.export import ExportConfig, export_shards  # doctest: +SKIP
    >>> export_shards(ExportConfig(shards="out/wall", out="data/wall-cs")).samples  # doctest: +SKIP
    100
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ._lock import output_lock
from .errors import InputError
from .layouts import parse_layout
from .outputs import mark_finished, prepare_output
from .progress import NullProgress, Progress

__all__ = ["ExportConfig", "ExportResult", "export_shards"]


@dataclass(frozen=True)
class ExportConfig:
    shards: Path
    out: Path
    split: str = "train"
    layout: str = "auto"  # auto: the layout of the dataset the shards were composed from
    overwrite: bool = False
    resume: bool = False
    verify: bool = True


@dataclass(frozen=True)
class ExportResult:
    out: Path
    samples: int
    written: int  # by this call (the rest were already there)
    with_images: bool
    layout: str = "cityscapes"


def export_shards(cfg: ExportConfig, progress: Progress | None = None) -> ExportResult:
    """Write every sample of ``cfg.shards`` into ``cfg.out`` in the dataset's (or the given) layout."""
    with output_lock(cfg.out, "export"):
        return _export(cfg, progress)


def _export(cfg: ExportConfig, progress: Progress | None) -> ExportResult:
    from .shards import ShardSet

    progress = progress or NullProgress()
    ss = ShardSet(cfg.shards, verify=cfg.verify)
    if re.fullmatch(r"[a-z][a-z0-9_-]*", cfg.split) is None:
        raise InputError(cfg.out, f"split name {cfg.split!r} must be lowercase letters, digits, '_' or '-'")
    spec = cfg.layout if cfg.layout not in ("auto", "") else str(ss.config.get("layout") or "cityscapes")
    layout = parse_layout(spec)
    out = prepare_output(cfg.out, overwrite=cfg.overwrite, resume=cfg.resume)
    writer = layout.writer(out, ss.label_space)
    written = 0
    with progress.task("exporting", total=len(ss)) as bar:
        for j in range(len(ss.shards)):
            for s in ss.iter_shard(j):
                if not (cfg.resume and writer.done(cfg.split, s["key"], ss.has_image)):
                    try:
                        writer.write(cfg.split, s["key"], label=s["label"], instance=s["instance"], image=s["image"])
                    except InputError as exc:  # a key or id the layout cannot store: name the shard file
                        raise InputError(ss.path / ss.shards[j]["file"], exc.problem) from None
                    written += 1
                bar.advance(1)
    writer.finish()
    ss.close()
    mark_finished(
        out,
        {
            "samples": len(ss),
            "split": cfg.split,
            "source": str(cfg.shards),
            "method": ss.method,
            "images": ss.has_image,
            **({"layout": layout.spec()} if layout.name != "cityscapes" else {}),
        },
    )
    return ExportResult(out=out, samples=len(ss), written=written, with_images=ss.has_image, layout=layout.spec())
