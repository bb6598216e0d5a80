"""What ``labelforge stats SOURCE...`` counts: dataset roots (one source per split) and shard dirs.

A path holding ``manifest.json`` is a shard dir: its class counts come from the manifest, no sample
is decoded. Any other path is a dataset root of one of the layouts (:mod:`labelforge.layouts`): its
label maps are listed per split and counted by :mod:`labelforge.stats.count`.

With label space ``auto`` every source must agree: a dataset root gives its own (see
:func:`labelforge.dataset.resolve_label_space`), a shard dir the one its manifest records.

Example:
    >>> from labelforge.stats.sources import resolve_sources  # doctest: +SKIP
    >>> [s.name for s in resolve_sources(["data/mini", "out/wall"], ("train",), ls)]  # doctest: +SKIP
    ['mini:train', 'wall']
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cityscapes_tools.errors import DatasetFormatError

from ..dataset import open_dataset, resolve_label_space
from ..errors import InputError
from ..labelspace import LabelSpace, get_label_space
from ..layouts import Layout, resolve_layout
from .count import NBINS, Counts, MapJob

__all__ = ["Source", "resolve_sources", "resolve_stats_label_space", "shard_counts", "is_shard_dir"]


@dataclass(frozen=True)
class Source:
    """One column of the statistics: a split of a dataset root, or a shard dir."""

    name: str  # unique display name: "<root name>:<split>" or "<shard dir name>"
    kind: str  # "dataset" | "shards"
    path: Path
    split: str | None = None
    jobs: tuple[MapJob, ...] = ()  # dataset maps to count (empty for shards)
    method: str | None = None  # shards: the compose/render method that wrote them


def is_shard_dir(path: Path) -> bool:
    return (path / "manifest.json").is_file()


def _base_name(path: Path) -> str:
    return path.name or path.resolve().name or str(path)


def _check_path(p: Path) -> None:
    if not p.exists():
        raise InputError(p, "source does not exist")
    if not p.is_dir():
        raise InputError(p, "source is not a directory (expected a dataset root or a shard dir)")


def _layout_of(p: Path, layout: str | Layout) -> Layout:
    if layout not in ("auto", ""):
        return resolve_layout(p, layout)
    try:
        return resolve_layout(p, layout)
    except DatasetFormatError:
        raise InputError(
            p,
            "neither a dataset root (no gtFine/ folder) nor a shard dir (no manifest.json); other layouts "
            "look for ann_dir/ (folders), SegmentationClass/ (voc), annotations/training/ (ade20k)",
        ) from None


def resolve_stats_label_space(
    paths: Sequence[str | Path], label_space: str | LabelSpace, layout: str | Layout = "auto"
) -> LabelSpace:
    """The label space of a stats run: as given, or for ``auto`` the first source's (each must agree)."""
    if isinstance(label_space, LabelSpace):
        return label_space
    if label_space not in ("auto", ""):
        return get_label_space(label_space)
    found: LabelSpace | None = None
    for p in map(Path, paths):
        _check_path(p)
        if is_shard_dir(p):
            from ..shards import ShardSet

            ls = ShardSet(p, verify=False).label_space  # the header alone; counts verify
        else:
            ls = resolve_label_space(p, _layout_of(p, layout), "auto")
        if found is not None and ls.fingerprint != found.fingerprint:
            raise InputError(
                p, f"has label space {ls.name!r}, the sources before it {found.name!r}; pass --label-space"
            )
        found = found or ls
    if found is None:
        raise InputError(Path("."), "no source given")
    return found


def resolve_sources(
    paths: Sequence[str | Path],
    splits: Sequence[str],
    label_space: LabelSpace,
    *,
    instances: bool = True,
    layout: str | Layout = "auto",
) -> list[Source]:
    """Check every path and list what it holds, before anything is counted (so bad input fails fast)."""
    out: list[Source] = []
    for p in map(Path, paths):
        _check_path(p)
        if is_shard_dir(p):
            method = _open_shards(p, label_space).method
            out.append(Source(name=_base_name(p), kind="shards", path=p, method=method))
            continue
        ds = open_dataset(p, label_space, _layout_of(p, layout))
        masks = None if ds.masks.plain else ds.masks  # Cityscapes labelIds: counted as stored, fastest
        for split in splits:
            samples = ds.samples(split)  # raises naming a missing or empty split
            jobs = tuple(MapJob(s.label, s.instance if instances else None, masks) for s in samples)
            out.append(Source(name=f"{_base_name(p)}:{split}", kind="dataset", path=p, split=split, jobs=jobs))
    return _unique_names(out)


def _unique_names(sources: list[Source]) -> list[Source]:
    seen: dict[str, int] = {}
    out = []
    for s in sources:
        n = seen.get(s.name, 0) + 1
        seen[s.name] = n
        out.append(s if n == 1 else Source(f"{s.name}#{n}", s.kind, s.path, s.split, s.jobs, s.method))
    return out


def _open_shards(path: Path, label_space: LabelSpace):  # -> ShardSet
    from ..shards import ShardSet  # deferred: the shards package is not needed for dataset roots

    ss = ShardSet(path)
    if ss.label_space.fingerprint != label_space.fingerprint:
        raise InputError(
            path / "manifest.json",
            f"shards use label space {ss.label_space.name!r} ({ss.label_space.fingerprint}), which differs "
            f"from {label_space.name!r} ({label_space.fingerprint}); pass the matching --label-space",
        )
    return ss


def shard_counts(source: Source, label_space: LabelSpace) -> Counts:
    """Class counts of a shard dir, summed from its manifest (no sample is decoded)."""
    ss = _open_shards(source.path, label_space)
    n = label_space.num_ids

    def padded(a: np.ndarray, what: str) -> np.ndarray:
        if a.shape != (n,) or (a < 0).any():
            raise InputError(source.path / "manifest.json", f"{what} must be {n} non-negative counts")
        out = np.zeros(NBINS, np.int64)
        out[:n] = a
        return out

    images = len(ss)
    try:
        counts = Counts(
            images=images,
            pixels=images * ss.height * ss.width,
            pixel_counts=padded(ss.pixel_counts(), "pixel_counts"),
            image_counts=padded(ss.image_counts(), "image_counts"),
            instance_counts=padded(ss.instance_counts(), "instance_counts"),
        )
    except (KeyError, TypeError, ValueError):  # a hand-edited or foreign manifest
        raise InputError(
            source.path / "manifest.json", f"malformed per-shard class counts (each must list {n} counts)"
        ) from None
    if counts.pixel_counts.sum() != counts.pixels or (counts.image_counts > images).any():
        raise InputError(source.path / "manifest.json", "class counts disagree with the sample count and size")
    return counts
