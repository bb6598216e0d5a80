"""Composing one sample: identity, overlay, multi and reconstruct, with or without copy-paste photos.

Sample ``i`` draws everything (base map, classes, donors, shifts, flips) from
``np.random.default_rng([seed, i])`` and reads only the read-only :class:`ComposeContext`, so it is the
same in any worker process and after any interruption.

Example:
    >>> from labelforge.compose.methods import compose_sample, sample_key  # doctest: +SKIP
    >>> s = compose_sample(ctx, 0); s.key, s.provenance["pasted"][0]["class"]  # doctest: +SKIP
    ('lfoverlay_000000_000000', 'wall')
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..dataset import DatasetSource, SamplePaths
from ..labelspace import LabelSpace
from .base import derivable, derived_base, drawn_base
from .placement import ClassGroups, Placement, PlacementRules, Scene, paste_all, try_place
from .segments import BORDER_LEFT, BORDER_RIGHT, SegmentIndex

__all__ = ["METHODS", "ComposeContext", "ComposedSample", "compose_sample", "drawn_fallbacks", "sample_key"]

METHODS = ("overlay", "multi", "reconstruct", "identity")
BORDER_LR = BORDER_LEFT | BORDER_RIGHT


def sample_key(method: str, i: int, copy_paste: bool = False) -> str:
    """A valid Cityscapes key for composed sample ``i``: ``lf{method}[cp]_{seq:06}_{frame:06}``."""
    city = f"lf{method}{'cp' if copy_paste else ''}"
    return f"{city}_{i // 1_000_000:06d}_{i % 1_000_000:06d}"


class _LRU:
    """A small per-process cache of decoded maps (few distinct bases serve many samples)."""

    def __init__(self, size: int) -> None:
        self.size, self.data = size, OrderedDict[Any, Any]()

    def get(self, key: Any, make: Callable[[], Any]) -> Any:
        if key in self.data:
            self.data.move_to_end(key)
            return self.data[key]
        value = self.data[key] = make()
        if len(self.data) > self.size:
            self.data.popitem(last=False)
        return value


@dataclass
class ComposeContext:
    """Everything a sample needs, built once in the main process and inherited by forked workers."""

    ds: DatasetSource
    samples: list[SamplePaths]  # in the order of index.keys
    index: SegmentIndex
    method: str
    class_ids: tuple[int, ...]  # overlay / multi: the pasted classes; reconstruct: those it may paste
    bases: np.ndarray  # map indices a base is drawn from
    seed: int
    groups: ClassGroups
    rules: PlacementRules = field(default_factory=PlacementRules)
    weights: np.ndarray | None = None  # reconstruct: paste probability per class_ids entry
    per_map: int = 6  # reconstruct: classes pasted per map
    base_kind: str = "derived"  # reconstruct: derived | drawn
    copy_paste: bool = False
    cache_size: int = 8
    derivable: np.ndarray | None = field(init=False, repr=False)  # reconstruct: maps holding a base pixel
    _maps: _LRU = field(init=False, repr=False)
    _photos: _LRU = field(init=False, repr=False)
    _derived: _LRU = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._maps, self._photos, self._derived = _LRU(self.cache_size), _LRU(self.cache_size), _LRU(self.cache_size)
        self.derivable = derivable(self.index.presence, self.label_space) if self.method == "reconstruct" else None

    @property
    def label_space(self) -> LabelSpace:
        return self.ds.label_space

    def read_map(self, m: int) -> tuple[np.ndarray, np.ndarray]:
        """(label, instance) of map ``m``; instance falls back to the label ids when the dataset has none."""

        def load() -> tuple[np.ndarray, np.ndarray]:
            s = self.samples[m]
            label = self.ds.read_label(s)
            inst = self.ds.read_instance(s)
            return label, (label.astype(np.int32) if inst is None else inst)

        return self._maps.get(m, load)

    def read_photo(self, m: int) -> np.ndarray:
        photo = self._photos.get(m, lambda: self.ds.read_image(self.samples[m]))
        assert photo is not None  # copy-paste is refused up front for datasets without photos
        return photo

    def reconstruct_base(self, m: int) -> np.ndarray:
        return self._derived.get(m, lambda: derived_base(self.read_map(m)[0], self.label_space))


@dataclass
class ComposedSample:
    key: str
    label: np.ndarray  # (H, W) uint8
    instance: np.ndarray  # (H, W) int32
    image: np.ndarray | None  # (H, W, 3) uint8 with copy-paste
    provenance: dict[str, Any]
    base_label: np.ndarray  # what the pastes went onto (for previews)
    pasted: np.ndarray  # (H, W) bool, pixels painted by pastes (for previews)


def _choose_reconstruct_classes(ctx: ComposeContext, rng: np.random.Generator) -> list[int]:
    w = ctx.weights
    assert w is not None
    k = min(ctx.per_map, int((w > 0).sum()))
    picks = rng.choice(len(ctx.class_ids), size=k, replace=False, p=w / w.sum())
    return [ctx.class_ids[j] for j in picks.tolist()]


def _place_class(
    ctx: ComposeContext, c: int, base_map: int | None, scene: Scene, rng: np.random.Generator, order: int
) -> Placement | None:
    idx = ctx.index
    cands = idx.by_class(c)
    if base_map is not None:
        others = cands[idx.donor[cands] != base_map]
        cands = others if others.size else cands  # a map's own segments only when nothing else exists
    for _ in range(max(ctx.rules.retries, 1)):
        s = int(cands[rng.integers(cands.size)])
        x0, y0, x1, y1 = (int(v) for v in idx.bbox[s])
        p = try_place(
            idx.mask(s),
            (x0, y0, x1, y1),
            bool(idx.border[s] & BORDER_LR),
            c,
            s,
            scene,
            ctx.groups,
            ctx.rules,
            rng,
            order,
        )
        if p is not None:
            return p
    return None


def _base_map(ctx: ComposeContext, rng: np.random.Generator) -> int:
    """The first draw of every sample: its base map (reconstruct draws it even for a drawn base)."""
    return int(ctx.bases[rng.integers(len(ctx.bases))])


def drawn_fallbacks(ctx: ComposeContext, total: int) -> int:
    """How many of samples ``0..total-1`` fall back to a drawn base: a derived reconstruct whose base
    map holds no sky, road or building pixel (:func:`~labelforge.compose.base.derivable`)."""
    if ctx.method != "reconstruct" or ctx.base_kind != "derived":
        return 0
    assert ctx.derivable is not None
    if ctx.derivable[ctx.bases].all():
        return 0
    return sum(not ctx.derivable[_base_map(ctx, np.random.default_rng([ctx.seed, i]))] for i in range(total))


def compose_sample(ctx: ComposeContext, i: int) -> ComposedSample:
    """Compose sample ``i`` (see the module docstring for what it may depend on)."""
    rng = np.random.default_rng([ctx.seed, i])
    idx, ls = ctx.index, ctx.label_space
    base_kind = "map"
    base_map: int | None = _base_map(ctx, rng)
    image = None
    fallback_from = None
    if ctx.method == "reconstruct":
        assert base_map is not None and ctx.derivable is not None
        if ctx.base_kind == "derived" and not ctx.derivable[base_map]:
            fallback_from = idx.keys[base_map]  # nothing to derive from: draw a base instead (same rng)
        if ctx.base_kind == "drawn" or fallback_from is not None:
            base_kind, base_map = "drawn", None
            label = drawn_base(idx.height, idx.width, ls, rng)
        else:
            base_kind = "derived"
            label = ctx.reconstruct_base(base_map)
        instance = label.astype(np.int32)
        classes = _choose_reconstruct_classes(ctx, rng)
    else:
        assert base_map is not None
        label, instance = ctx.read_map(base_map)
        if ctx.copy_paste:
            image = ctx.read_photo(base_map)
        classes = [] if ctx.method == "identity" else list(ctx.class_ids)

    scene = Scene.from_base(label, instance, image)
    placements: list[Placement] = []
    skipped = 0
    for order, c in enumerate(classes):
        p = _place_class(ctx, c, base_map, scene, rng, order)
        if p is None:
            skipped += 1
        else:
            placements.append(p)
    values, pasted_info, photos = [], [], []
    for p in placements:
        fresh = bool(ctx.groups.thing[p.class_id]) and not bool(idx.crowd[p.seg])
        values.append(scene.fresh_instance(p.class_id) if fresh else p.class_id)
        donor = int(idx.donor[p.seg])
        x0, y0, x1, y1 = (int(v) for v in idx.bbox[p.seg])
        if ctx.copy_paste:
            crop = ctx.read_photo(donor)[y0:y1, x0:x1]
            photos.append(crop[:, ::-1] if p.flip else crop)
        pasted_info.append(
            {
                "class": ls.get(p.class_id).name,
                "donor": idx.keys[donor],
                "bbox": [x0, y0, x1, y1],
                "offset": [p.dx, 0],
                "flip": p.flip,
                "instance_id": values[-1] if fresh else None,
            }
        )
    paste_all(scene, placements, values, photos if ctx.copy_paste else None)

    pasted = np.zeros(scene.label.shape, bool)
    for p in placements:
        h, w = p.mask.shape
        pasted[p.y0 : p.y0 + h, p.x0 : p.x0 + w] |= p.visible
    provenance = {
        "base": idx.keys[base_map] if base_map is not None else None,
        "base_kind": base_kind,
        "method": ctx.method,
        "copy_paste": ctx.copy_paste,
        "pasted": pasted_info,
        "skipped": skipped,
    }
    if fallback_from is not None:
        provenance["fallback_from"] = fallback_from
    return ComposedSample(
        key=sample_key(ctx.method, i, ctx.copy_paste),
        label=scene.label,
        instance=scene.instance,
        image=scene.image,
        provenance=provenance,
        base_label=label,
        pasted=pasted,
    )
