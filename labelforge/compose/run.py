"""``labelforge compose``: plan a run, compose samples in parallel, write them into shards, preview.

Workers (a fork pool) compose samples in index order; the main process is the only writer. Sample
``i`` depends only on ``(seed, i)`` and the dataset, so the shards are byte-identical whatever
``workers`` is and however often the run was interrupted and resumed.

Example:
    >>> from labelforge.compose import ComposeConfig, run_compose  # doctest: +SKIP
    >>> cfg = ComposeConfig(root="data/mini", out="out/wall", method="overlay", classes=("wall",), count=100)
    >>> run_compose(cfg).samples  # doctest: +SKIP
    100
"""

from __future__ import annotations

import time
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._lock import output_lock
from ..dataset import DatasetSource, SamplePaths, open_dataset
from ..errors import InputError, LabelforgeError
from ..labelspace import LabelSpace
from ..outputs import atomic_write_text, check_output
from ..progress import NullProgress, Progress
from ..shards.encode import EncodedSample, encode_sample
from ._pool import imap_ordered
from .methods import ComposeMethod, Donors, Fallbacks, Selection, create_method
from .placement import ClassGroups, PlacementRules
from .sample import ComposeContext, compose_sample
from .segments import load_segment_index, usable_samples
from .targets import recommended_classes

__all__ = [
    "ComposeConfig",
    "ComposePlan",
    "ComposeResult",
    "plan_compose",
    "run_compose",
    "write_preview",
    "supplement_count",
]

PREVIEW = "preview.png"
SKIPPED = "skipped.txt"  # --skip-bad: one "file<TAB>problem" line per map left out


@dataclass(frozen=True)
class ComposeConfig:
    """Everything ``labelforge compose`` was asked to do (options map onto fields one to one)."""

    root: Path
    out: Path
    method: str = "overlay"
    classes: tuple[str, ...] = ()
    classes_auto: bool = False  # take recommendation.classes from ``stats``
    stats: Path | None = None
    target: str = "uniform"  # reconstruct: uniform | inverse | path to a stats.json
    count: int | None = None
    ratio: float | None = None  # share of composed maps in the final training set
    split: str = "train"
    seed: int = 0
    workers: int = 1
    shift: float = 0.0
    flip: bool = False
    protect: tuple[str, ...] = ()
    min_area: int = 100
    min_contact: float = 0.8
    min_visible: float = 0.5
    retries: int = 10
    per_map: int = 6
    base: str = "derived"  # reconstruct: derived | drawn
    copy_paste: bool = False
    samples_per_shard: int = 64
    preview: int = 0
    cache_dir: Path | None = None
    label_space: str = "auto"
    layout: str = "auto"
    overwrite: bool = False
    resume: bool = False
    skip_bad: bool = False  # leave out (and list) maps that fail to read instead of stopping


@dataclass(frozen=True)
class ComposeResult:
    out: Path
    samples: int  # planned (and, on return, present)
    written: int  # written by this call
    skipped: int  # pastes skipped by this call (no plausible placement)
    fallbacks: (
        int  # samples (of all planned) whose base fell back: reconstruct's drawn ones, their map holding no base pixel
    )
    classes: list[str]
    shards: int
    segments: int
    index_cached: bool
    seconds: float
    preview: Path | None = None
    notes: list[str] = field(default_factory=list)
    bad: list[tuple[str, str]] = field(default_factory=list)  # (file, problem) of the maps --skip-bad left out


@dataclass(frozen=True)
class ComposePlan:
    """What :func:`plan_compose` fixed before anything is written."""

    ctx: ComposeContext
    total: int  # samples
    shard_config: dict[str, Any]  # the config stored in the shards
    cached: bool  # the segment index came from the cache
    fallbacks: Fallbacks | None = None  # None: the method never falls back
    bad: tuple[tuple[str, str], ...] = ()  # --skip-bad: (file, problem) of the maps left out

    def manifest_header(self) -> dict[str, Any]:
        """Facts about the run beside its config in manifest.json (not in the shard files)."""
        fb = self.fallbacks
        return {} if fb is None else {"base_fallbacks": {"maps": fb.maps, "samples": fb.samples}}


def supplement_count(ratio: float, originals: int) -> int:
    """Composed maps N making up share ``ratio`` of originals + N: ``N = R / (1 - R) * originals``, rounded."""
    if not 0.0 < ratio < 1.0:
        raise LabelforgeError(f"--ratio must lie strictly between 0 and 1, got {ratio}")
    return int(round(ratio / (1.0 - ratio) * originals))


def _class_names(cfg: ComposeConfig, ls: LabelSpace) -> list[str]:
    if cfg.classes_auto:
        if cfg.stats is None:
            raise LabelforgeError("--classes auto needs --stats STATS_JSON (written by labelforge stats)")
        names = recommended_classes(cfg.stats, ls)
    else:
        names = []
        for n in cfg.classes:
            try:
                names.append(ls.get(n).name)
            except LabelforgeError:
                raise LabelforgeError(f"unknown class {n!r}; valid: {', '.join(ls.class_names)}") from None
    evaluated = {c.name for c in ls.eval_classes}
    for n in names:
        if n not in evaluated:
            raise LabelforgeError(
                f"class {n!r} is not evaluated, so it cannot be targeted; valid: {', '.join(ls.class_names)}"
            )
    return list(dict.fromkeys(names))  # unique, order kept


def _validate(cfg: ComposeConfig, ls: LabelSpace, method: ComposeMethod, names: list[str]) -> None:
    if cfg.count is not None and cfg.ratio is not None:
        raise LabelforgeError("give --count or --ratio, not both")
    if cfg.count is not None and cfg.count < 1:
        raise LabelforgeError(f"--count must be at least 1, got {cfg.count}")
    if cfg.ratio is not None:
        supplement_count(cfg.ratio, 1)  # range check
    method.check(ls, names)
    if cfg.copy_paste and not method.photos:
        raise LabelforgeError(f"--copy-paste needs the base map's photo; {method.name} bases have none")
    for name, share in (("--shift", cfg.shift), ("--min-contact", cfg.min_contact), ("--min-visible", cfg.min_visible)):
        if not 0.0 <= share <= 1.0:
            raise LabelforgeError(f"{name} is a share in 0..1, got {share}")
    if cfg.preview < 0:
        raise LabelforgeError(f"--preview is a number of samples, got {cfg.preview}")
    for n in cfg.protect:
        ls.get(n)
    if cfg.samples_per_shard < 1 or cfg.min_area < 1 or cfg.retries < 1:
        raise LabelforgeError("--samples-per-shard, --min-area and --retries must be at least 1")


def _donors(
    cfg: ComposeConfig, ds: DatasetSource, progress: Progress
) -> tuple[list[SamplePaths], Donors, bool, list[tuple[str, str]]]:
    """The split's maps, their segment index (from the cache when the dataset is unchanged) and, with
    ``skip_bad``, the maps left out."""
    samples = ds.samples(cfg.split, require_images=cfg.copy_paste)
    if cfg.copy_paste and any(s.image is None for s in samples):
        raise InputError(ds.root, "--copy-paste needs photos for every map")
    bad: list[tuple[str, str]] = []
    if cfg.skip_bad:
        samples, bad = usable_samples(ds, samples, photos=cfg.copy_paste, workers=cfg.workers)
    index, cached = load_segment_index(
        ds, cfg.split, min_area=cfg.min_area, cache_dir=cfg.cache_dir, workers=cfg.workers, progress=progress,
        samples=samples,
    )  # fmt: skip
    where = f"split {cfg.split!r} of {cfg.root}"
    return samples, Donors(index, ds.label_space, Path(cfg.root), where, cfg.min_area), cached, bad


def _shard_config(
    cfg: ComposeConfig, ls: LabelSpace, method: ComposeMethod, sel: Selection, total: int, donors: Donors
) -> dict[str, Any]:
    """The run's config as the shards store it (train-eval and report read ``classes``)."""
    own = method.shard_fields()
    return {
        "root": str(Path(cfg.root).resolve()),
        "split": cfg.split,
        "method": method.name,
        "classes": sel.names,
        "class_weights": None if sel.weights is None else [round(float(w), 6) for w in sel.weights],
        "target": own["target"],
        "count": total,
        "ratio": cfg.ratio,
        "originals": donors.n_maps,
        "shift": cfg.shift,
        "flip": cfg.flip,
        "protect": [ls.get(n).name for n in cfg.protect],
        "min_area": cfg.min_area,
        "min_contact": cfg.min_contact,
        "min_visible": cfg.min_visible,
        "retries": cfg.retries,
        "per_map": own["per_map"],
        "base": own["base"],
        "copy_paste": cfg.copy_paste,
        "segment_index": donors.index.meta.get("fingerprint"),
    }


def plan_compose(cfg: ComposeConfig, progress: Progress | None = None) -> ComposePlan:
    """Check the request, load (or build) the segment index and fix what every sample draws from.

    Raises LabelforgeError/InputError before anything is written.
    """
    progress = progress or NullProgress()
    ds = open_dataset(cfg.root, cfg.label_space, cfg.layout)  # lists no sample yet; the label space may be its own
    ls = ds.label_space
    names = _class_names(cfg, ls)
    method = create_method(cfg.method, target=cfg.target, per_map=cfg.per_map, base=cfg.base)
    _validate(cfg, ls, method, names)
    check_output(cfg.out, overwrite=cfg.overwrite, resume=cfg.resume)
    samples, donors, cached, bad = _donors(cfg, ds, progress)
    sel = method.select(donors, names)
    total = cfg.count if cfg.count is not None else supplement_count(cfg.ratio or 0.5, donors.n_maps)
    if total < 1:
        raise LabelforgeError(f"--ratio {cfg.ratio} of {donors.n_maps} maps gives no sample; raise it or use --count")
    ctx = ComposeContext(
        ds=ds,
        samples=samples,
        index=donors.index,
        method=method,
        class_ids=sel.class_ids,
        bases=sel.bases,
        seed=cfg.seed,
        groups=ClassGroups.build(ls, tuple(ls.get(n).name for n in cfg.protect)),
        rules=PlacementRules(
            shift=cfg.shift,
            flip=cfg.flip,
            min_contact=cfg.min_contact,
            min_visible=cfg.min_visible,
            retries=cfg.retries,
        ),
        weights=sel.weights,
        copy_paste=cfg.copy_paste,
    )
    config = _shard_config(cfg, ls, method, sel, total, donors)
    if ds.layout.name != "cityscapes":  # export writes the dataset's own layout back (Cityscapes: as before)
        config["layout"] = ds.layout.spec()
    return ComposePlan(ctx, total, config, cached, method.fallbacks(ctx, total), tuple(bad))


# The context of the run in progress; forked workers inherit it instead of unpickling it per task.
_CTX: ComposeContext | None = None


def _work(i: int) -> tuple[str, EncodedSample, dict[str, Any]]:
    """Compose sample ``i`` and encode it for its shard (compression and counting run in the worker)."""
    assert _CTX is not None
    s = compose_sample(_CTX, i)
    enc = encode_sample(s.label, s.instance, s.image, num_ids=_CTX.label_space.num_ids)
    return s.key, enc, s.provenance


def run_compose(cfg: ComposeConfig, progress: Progress | None = None) -> ComposeResult:
    """Compose ``cfg``'s samples into a shard dir at ``cfg.out`` (resuming or overwriting as asked)."""
    with output_lock(cfg.out, "compose"):
        return _run_compose(cfg, progress)


def _run_compose(cfg: ComposeConfig, progress: Progress | None) -> ComposeResult:
    from ..shards import ShardWriter

    global _CTX
    progress = progress or NullProgress()
    t0 = time.perf_counter()
    plan = plan_compose(cfg, progress)
    ctx, total, shard_config = plan.ctx, plan.total, plan.shard_config
    fallbacks = plan.fallbacks.samples if plan.fallbacks else 0
    if fallbacks:
        assert plan.fallbacks is not None
        progress.log(
            f"{len(plan.fallbacks.maps)} map(s) hold no {', '.join(ctx.label_space.base)} pixel: "
            f"{fallbacks} of {total} samples use a drawn base instead"
        )
    idx = ctx.index
    written = skipped = 0
    with ShardWriter(
        cfg.out,
        label_space=ctx.label_space,
        method=cfg.method,
        config=shard_config,
        seed=cfg.seed,
        total=total,
        height=idx.height,
        width=idx.width,
        samples_per_shard=cfg.samples_per_shard,
        with_image=cfg.copy_paste,
        resume=cfg.resume,
        overwrite=cfg.overwrite,
        header=plan.manifest_header(),
    ) as writer:
        if plan.bad:  # beside the shards, before them: a resumed run rewrites the same list
            atomic_write_text(Path(cfg.out) / SKIPPED, "".join(f"{p}\t{why}\n" for p, why in plan.bad))
        todo = writer.pending()
        if todo and todo[0] > 0:
            progress.log(f"resuming at sample {todo[0]} of {total}")
        _CTX = ctx
        try:
            results = imap_ordered(_work, todo, workers=max(cfg.workers, 1), chunksize=2)
            with progress.task(f"composing ({cfg.method})", total=len(todo)) as bar, closing(results):
                for i, (key, enc, prov) in zip(todo, results, strict=False):
                    writer.write(i, key=key, encoded=enc, provenance=prov)
                    written += 1
                    skipped += int(prov["skipped"])
                    bar.advance(1, skipped=skipped)
        finally:
            _CTX = None
        n_shards = writer.num_shards
    preview = write_preview(ctx, Path(cfg.out) / PREVIEW, min(cfg.preview, total)) if cfg.preview > 0 else None
    return ComposeResult(
        out=Path(cfg.out),
        samples=total,
        written=written,
        skipped=skipped,
        fallbacks=fallbacks,
        classes=list(shard_config["classes"]),
        shards=n_shards,
        segments=len(idx),
        index_cached=plan.cached,
        seconds=time.perf_counter() - t0,
        preview=preview,
        bad=list(plan.bad),
    )


def write_preview(ctx: ComposeContext, path: Path, k: int) -> Path:
    """A PNG grid of the first ``k`` samples: base map | composed map with pasted regions outlined (| photo)."""
    import cv2

    from ..preview import outline, save_grid

    pal = ctx.label_space.palette
    h, w = ctx.index.height, ctx.index.width
    cw = min(w, 512)
    ch = max(1, round(h * cw / w))

    def small(img: np.ndarray) -> np.ndarray:
        # Outline after downscaling, so the outline stays one visible pixel wide.
        return cv2.resize(img, (cw, ch), interpolation=cv2.INTER_NEAREST) if (h, w) != (ch, cw) else img

    rows, captions = [], []
    for i in range(k):
        s = compose_sample(ctx, i)
        mask = small(s.pasted.astype(np.uint8)) > 0
        row = [small(pal[s.base_label]), outline(small(pal[s.label]), mask)]
        pasted = ", ".join(p["class"] for p in s.provenance["pasted"])
        cap = [f"base {s.provenance['base'] or s.provenance['base_kind']}", f"+ {pasted}" if pasted else "unchanged"]
        if s.image is not None:
            row.append(outline(small(s.image), mask))
            cap.append("copy-paste photo")
        rows.append(row)
        captions.append(cap)
    return save_grid(path, rows, captions)
