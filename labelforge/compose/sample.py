"""Composing one sample: its method gives the base and the classes; placing and painting are common.

Sample ``i`` draws everything (base map, classes, donors, shifts, flips) from
``np.random.default_rng([seed, i])`` and reads only the read-only :class:`ComposeContext`, so it is the
same in any worker process and after any interruption.

Example:
    >>> from labelforge.compose.sample import compose_sample, sample_key  # doctest: +SKIP
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
from .base import derived_base
from .methods import Base, ComposeMethod
from .placement import ClassGroups, Placement, PlacementRules, Scene, paste_all, try_place
from .segments import BORDER_LEFT, BORDER_RIGHT, SegmentIndex

__all__ = ["ComposeContext", "ComposedSample", "compose_sample", "sample_key"]

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
    method: ComposeMethod
    class_ids: tuple[int, ...]  # the classes a sample may paste
    bases: np.ndarray  # map indices a base is drawn from
    seed: int
    groups: ClassGroups
    rules: PlacementRules = field(default_factory=PlacementRules)
    weights: np.ndarray | None = None  # paste probability per class_ids entry (reconstruct)
    copy_paste: bool = False
    cache_size: int = 8
    _maps: _LRU = field(init=False, repr=False)
    _photos: _LRU = field(init=False, repr=False)
    _derived: _LRU = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._maps, self._photos, self._derived = _LRU(self.cache_size), _LRU(self.cache_size), _LRU(self.cache_size)

    @property
    def label_space(self) -> LabelSpace:
        return self.ds.label_space

    def rng(self, i: int) -> np.random.Generator:
        """Sample ``i``'s generator: everything it draws comes from here."""
        return np.random.default_rng([self.seed, i])

    def draw_base_map(self, rng: np.random.Generator) -> int:
        """A sample's first draw, whatever the method: the map its base comes from."""
        return int(self.bases[rng.integers(len(self.bases))])

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

    def derived_base(self, m: int) -> np.ndarray:
        """Map ``m`` with every pixel outside sky, road and building replaced (:func:`~.base.derived_base`)."""
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


def _paste_record(ctx: ComposeContext, p: Placement, instance_id: int | None) -> dict[str, Any]:
    """One entry of the provenance's ``pasted`` list."""
    x0, y0, x1, y1 = (int(v) for v in ctx.index.bbox[p.seg])
    return {
        "class": ctx.label_space.get(p.class_id).name,
        "donor": ctx.index.keys[int(ctx.index.donor[p.seg])],
        "bbox": [x0, y0, x1, y1],
        "offset": [p.dx, 0],
        "flip": p.flip,
        "instance_id": instance_id,
    }


def _donor_photo(ctx: ComposeContext, p: Placement) -> np.ndarray:
    """The donor photo's pixels under ``p``'s bounding box, mirrored as the segment is."""
    x0, y0, x1, y1 = (int(v) for v in ctx.index.bbox[p.seg])
    crop = ctx.read_photo(int(ctx.index.donor[p.seg]))[y0:y1, x0:x1]
    return crop[:, ::-1] if p.flip else crop


def compose_sample(ctx: ComposeContext, i: int) -> ComposedSample:
    """Compose sample ``i`` (see the module docstring for what it may depend on)."""
    rng = ctx.rng(i)
    base: Base = ctx.method.make_base(ctx, ctx.draw_base_map(rng), rng)
    classes = ctx.method.classes(ctx, rng)

    scene = Scene.from_base(base.label, base.instance, base.image)
    placements: list[Placement] = []
    for order, c in enumerate(classes):
        p = _place_class(ctx, c, base.map, scene, rng, order)
        if p is not None:
            placements.append(p)
    values, pasted_info = [], []
    for p in placements:
        fresh = bool(ctx.groups.thing[p.class_id]) and not bool(ctx.index.crowd[p.seg])
        values.append(scene.fresh_instance(p.class_id) if fresh else p.class_id)
        pasted_info.append(_paste_record(ctx, p, values[-1] if fresh else None))
    paste_all(scene, placements, values, [_donor_photo(ctx, p) for p in placements] if ctx.copy_paste else None)

    pasted = np.zeros(scene.label.shape, bool)
    for p in placements:
        h, w = p.mask.shape
        pasted[p.y0 : p.y0 + h, p.x0 : p.x0 + w] |= p.visible
    provenance = {
        "base": ctx.index.keys[base.map] if base.map is not None else None,
        "base_kind": base.kind,
        "method": ctx.method.name,
        "copy_paste": ctx.copy_paste,
        "pasted": pasted_info,
        "skipped": len(classes) - len(placements),
    }
    if base.fallback_from is not None:
        provenance["fallback_from"] = ctx.index.keys[base.fallback_from]
    return ComposedSample(
        key=sample_key(ctx.method.name, i, ctx.copy_paste),
        label=scene.label,
        instance=scene.instance,
        image=scene.image,
        provenance=provenance,
        base_label=base.label,
        pasted=pasted,
    )
