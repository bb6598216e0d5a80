"""Where a donor segment goes on a base map, and painting it there in depth order.

Rules that keep a composed scene plausible (docs/compose.md):

* A segment keeps its donor position by default (a fixed camera keeps perspective consistent).
  Optional horizontal shift (up to ``shift`` x width) and in-place mirror flip keep its rows, and so
  its apparent scale. Segments cut by the left or right image border are neither shifted nor flipped:
  their cut edge must stay on the border.
* Standing classes (``LabelSpace.standing``) need at least ``min_contact`` of their lowest pixels to
  rest on ground classes (``LabelSpace.ground``) of the base map; a segment whose bottom edge lies on
  the image's bottom border rests out of view and passes, and so do lowest pixels that lie just above
  a nearer base object (the object stands behind it, on hidden ground).
* Depth: an object whose bottom edge is lower in the image is nearer. Base-map instances nearer than a
  pasted segment occlude it; pasted segments are painted farther first, so nearer ones cover them.
* Protected classes of the base map are never painted over. At least ``min_visible`` of a segment must
  remain visible after occlusion and protection, or the placement fails.
* A failed placement is retried with another segment (and shift); after ``retries`` tries the class is
  skipped for that map and counted.

Example:
    >>> import numpy as np
    >>> from labelforge.compose.placement import bottom_profile
    >>> bottom_profile(np.array([[1, 0], [1, 1]], bool))
    (array([0, 1]), array([1, 1]))
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import numpy as np

from cityscapes_tools.instances import decode_instance, encode_instance, is_instance

from ..labelspace import LabelSpace

__all__ = [
    "ALWAYS_PROTECTED",
    "PlacementRules",
    "ClassGroups",
    "Scene",
    "Placement",
    "bottom_profile",
    "contact_fraction",
    "try_place",
    "paste_all",
]

# Regions where nothing can plausibly appear (the car's bonnet, the camera's dead border).
ALWAYS_PROTECTED = ("ego vehicle", "rectification border", "out of roi")


@dataclass(frozen=True)
class PlacementRules:
    """Placement knobs; the defaults keep the donor position."""

    shift: float = 0.0  # max horizontal shift as a share of the width; 0 keeps the position
    flip: bool = False  # mirror segments in place with probability 1/2
    min_contact: float = 0.8  # share of a standing segment's lowest pixels that must rest on ground
    min_visible: float = 0.5  # share of a segment that must stay visible after occlusion/protection
    retries: int = 10  # tries per pasted class before it is skipped


@dataclass(frozen=True)
class ClassGroups:
    """(256,) boolean lookup tables over label ids, built once from a label space."""

    ground: np.ndarray
    standing: np.ndarray
    protect: np.ndarray
    thing: np.ndarray

    @classmethod
    def build(cls, ls: LabelSpace, protect: tuple[str, ...] = ()) -> ClassGroups:
        def lut(names: tuple[str, ...] | list[str]) -> np.ndarray:
            t = np.zeros(256, bool)
            t[ls.ids(list(names))] = True
            return t

        always = tuple(n for n in ALWAYS_PROTECTED if any(c.name == n for c in ls.classes))
        thing = np.zeros(256, bool)
        thing[list(ls.instance_ids)] = True
        return cls(lut(ls.ground), lut(ls.standing), lut(tuple(protect) + always), thing)


def bottom_profile(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(columns that hold mask pixels, the lowest mask row in each of them)."""
    cols = np.flatnonzero(mask.any(axis=0))
    h = mask.shape[0]
    last = h - 1 - np.argmax(mask[::-1, cols], axis=0)
    return cols, last


def contact_fraction(
    mask: np.ndarray,
    x0: int,
    y0: int,
    label: np.ndarray,
    ground: np.ndarray,
    hidden: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
) -> float:
    """Share of the columns of ``mask`` (placed at x0, y0 on ``label``) whose pixel just below the
    lowest mask pixel is ground. Columns ending on the image's bottom row rest out of view and count;
    so do probes that ``hidden(ys, xs)`` says lie behind a nearer object (the ground there is hidden)."""
    cols, last = bottom_profile(mask)
    if cols.size == 0:
        return 0.0
    ys, xs = y0 + last + 1, x0 + cols
    inside = ys < label.shape[0]
    ys, xs = ys[inside], xs[inside]
    ok = ground[label[ys, xs]]
    if hidden is not None and not ok.all():
        ok |= hidden(ys, xs)
    return (int(ok.sum()) + int((~inside).sum())) / cols.size


@dataclass
class Scene:
    """A map being composed. ``base_*`` stay as the base was; placement checks read only those."""

    label: np.ndarray  # (H, W) uint8, painted in place
    instance: np.ndarray  # (H, W) int32, painted in place
    image: np.ndarray | None  # (H, W, 3) uint8 for copy-paste, else None
    base_label: np.ndarray
    base_instance: np.ndarray
    _ids: np.ndarray | None = field(default=None, repr=False)  # sorted instance ids (>= 1000) of the base
    _bottoms: np.ndarray | None = field(default=None, repr=False)  # their lowest rows
    _next_k: dict[int, int] = field(default_factory=dict, repr=False)

    @classmethod
    def from_base(cls, label: np.ndarray, instance: np.ndarray, image: np.ndarray | None = None) -> Scene:
        return cls(
            label=label.copy(),
            instance=instance.astype(np.int32, copy=True),
            image=None if image is None else image.copy(),
            base_label=label,
            base_instance=instance,
        )

    @property
    def height(self) -> int:
        return int(self.label.shape[0])

    @property
    def width(self) -> int:
        return int(self.label.shape[1])

    def _instances(self) -> tuple[np.ndarray, np.ndarray]:
        if self._ids is None:
            flat = self.base_instance.ravel()
            idx = np.flatnonzero(is_instance(flat))[::-1]  # reversed: first hit = last (lowest) pixel
            ids, first = np.unique(flat[idx], return_index=True)
            self._ids, self._bottoms = ids, idx[first] // self.width
        assert self._bottoms is not None
        return self._ids, self._bottoms

    def nearer_at(self, ys: np.ndarray, xs: np.ndarray, bottom: int) -> np.ndarray:
        """bool per pixel (ys, xs): a base instance nearer than an object whose exclusive bottom is ``bottom``."""
        inst = self.base_instance[ys, xs]
        out = np.zeros(inst.shape, bool)
        things = is_instance(inst)
        if things.any():
            ids, bottoms = self._instances()
            out[things] = bottoms[np.searchsorted(ids, inst[things])] + 1 > bottom
        return out

    def occluders(self, y0: int, x0: int, h: int, w: int, bottom: int) -> np.ndarray:
        """(h, w) bool: base instance pixels in the box whose object is nearer (lower bottom) than ``bottom``."""
        inst = self.base_instance[y0 : y0 + h, x0 : x0 + w]
        ids, bottoms = self._instances()
        out = np.zeros((h, w), bool)
        things = is_instance(inst)
        if ids.size and things.any():
            pos = np.searchsorted(ids, inst[things])
            out[things] = bottoms[pos] + 1 > bottom
        return out

    def fresh_instance(self, class_id: int) -> int:
        """A new Cityscapes instance id ``class_id*1000+k`` unused in the base and by earlier pastes."""
        k = self._next_k.get(class_id)
        if k is None:
            ids, _ = self._instances()
            mine = ids[decode_instance(ids)[0] == class_id]  # ids holds instance ids only
            k = decode_instance(int(mine.max()))[1] + 1 if mine.size else 0
        self._next_k[class_id] = k + 1
        return encode_instance(class_id, k)


@dataclass(frozen=True)
class Placement:
    """One accepted paste: segment ``seg`` at (x0, y0) after shift ``dx`` (and flip); ``visible`` gets painted."""

    seg: int
    class_id: int
    x0: int
    y0: int
    dx: int
    flip: bool
    mask: np.ndarray  # (h, w) bool, the whole segment (flipped if flip)
    visible: np.ndarray  # (h, w) bool, mask minus occluded and protected pixels
    order: int = 0  # selection order, breaks depth ties

    @property
    def bottom(self) -> int:
        """Exclusive bottom row: larger is nearer."""
        return self.y0 + self.mask.shape[0]


def try_place(
    mask: np.ndarray,
    bbox: tuple[int, int, int, int],
    lr_border: bool,
    class_id: int,
    seg: int,
    scene: Scene,
    groups: ClassGroups,
    rules: PlacementRules,
    rng: np.random.Generator,
    order: int = 0,
) -> Placement | None:
    """Place one segment (its bbox-cropped ``mask`` and donor ``bbox``) on ``scene``, or None when a rule fails."""
    x0, y0, x1, y1 = bbox
    h, w = mask.shape
    flip, dx = False, 0
    if not lr_border:
        if rules.flip and rng.random() < 0.5:
            flip, mask = True, mask[:, ::-1]
        if rules.shift > 0:
            reach = int(round(rules.shift * scene.width))
            lo, hi = max(-reach, -x0), min(reach, scene.width - x1)
            dx = int(rng.integers(lo, hi + 1)) if hi >= lo else 0
    px = x0 + dx
    if groups.standing[class_id]:
        hidden = partial(scene.nearer_at, bottom=y1)
        if contact_fraction(mask, px, y0, scene.base_label, groups.ground, hidden) < rules.min_contact:
            return None
    region = scene.base_label[y0 : y0 + h, px : px + w]
    visible = mask & ~groups.protect[region] & ~scene.occluders(y0, px, h, w, y1)
    area = int(mask.sum())
    n_vis = int(visible.sum())
    if n_vis == 0 or n_vis < rules.min_visible * area:
        return None
    return Placement(seg, class_id, px, y0, dx, flip, mask, visible, order)


def paste_all(
    scene: Scene,
    placements: list[Placement],
    values: list[int],
    photos: list[np.ndarray | None] | None = None,
) -> None:
    """Paint ``placements`` farther first (by bottom edge, then selection order) with instance ``values``.

    ``photos`` (copy-paste) holds each segment's donor photo crop, already flipped like its mask.
    """
    order = sorted(range(len(placements)), key=lambda j: (placements[j].bottom, placements[j].order))
    for j in order:
        p = placements[j]
        h, w = p.mask.shape
        sl = (slice(p.y0, p.y0 + h), slice(p.x0, p.x0 + w))
        scene.label[sl][p.visible] = p.class_id
        scene.instance[sl][p.visible] = values[j]
        crop = photos[j] if photos is not None else None
        if scene.image is not None and crop is not None:
            scene.image[sl][p.visible] = crop[p.visible]
