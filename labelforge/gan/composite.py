"""Composite renders (``render --composite``): the base map's real photo everywhere but the pasted objects.

An overlay or multi map is a real map of the dataset (its *base*, named in each sample's provenance)
with a few segments pasted on. Rendering the whole map asks the generator to redraw a scene that
already has a photo; a composite keeps that photo and takes only the pasted regions from the render,
so only the new objects are synthesized.

The pasted region of a sample is where its composed label or instance map differs from the base
map's (a segment pasted onto the same class and instance changes nothing to draw). It is widened by
``dilate`` pixels, taken from the render in full, and blended over a band of ``feather`` more pixels
with a weight falling linearly to 0, all at the output resolution. Every pixel farther than
``dilate + feather`` (Euclidean distance) from a pasted pixel is the base photo's, exactly.

Example:
    >>> import numpy as np
    >>> pasted = np.zeros((1, 7), bool); pasted[0, 3] = True
    >>> composite_alpha(pasted, dilate=1, feather=2).round(2).tolist()
    [[0.33, 0.67, 1.0, 1.0, 1.0, 0.67, 0.33]]
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from ..dataset import DatasetSource, Sample, open_dataset
from ..errors import InputError, LabelforgeError
from ..shards import ShardSet
from .data import resize_image, resize_label

__all__ = ["COMPOSITE_METHODS", "CompositeSource", "composite_alpha", "open_composite_source"]

# Methods whose maps are a dataset map plus pasted segments: the others keep no real photo to composite
# onto (reconstruct's bases are derived or drawn) or paste nothing (identity).
COMPOSITE_METHODS = ("overlay", "multi")


def composite_alpha(pasted: np.ndarray, dilate: int, feather: int) -> np.ndarray:
    """(H, W) bool pasted pixels -> (H, W) float32 weight of the render: 1 within ``dilate`` px of a pasted
    pixel, falling linearly over ``feather`` more, 0 beyond (the base photo's pixels, untouched)."""
    if not pasted.any():
        return np.zeros(pasted.shape, np.float32)
    # Distance of every pixel to the nearest pasted one (exact Euclidean).
    dist = cv2.distanceTransform((~pasted).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    alpha = 1.0 - (dist - dilate) / (feather + 1)
    return np.clip(alpha, 0.0, 1.0).astype(np.float32)


@dataclass(frozen=True)
class CompositeSource:
    """The dataset the shards were composed from, and each base map's files: picklable, so loader
    workers read the base photos themselves."""

    dataset: DatasetSource
    samples: dict[str, Sample]  # base key -> its files
    dilate: int
    feather: int

    def record(self) -> dict[str, Any]:
        """What the output config says about the composite."""
        return {"root": str(self.dataset.root), "dilate": self.dilate, "feather": self.feather}

    def base(
        self, key: str, label: np.ndarray, instance: np.ndarray, size: tuple[int, int]
    ) -> tuple[np.ndarray, np.ndarray]:
        """(photo, alpha) at ``size`` for a composed ``label``/``instance`` pair (at the shards' resolution)
        whose base map is ``key``."""
        s = self.samples[key]
        base_label = self.dataset.read_label(s)
        base_inst = self.dataset.read_instance(s)
        if base_inst is None:  # compose's own fall-back for datasets without instance maps
            base_inst = base_label.astype(np.int32)
        pasted = (label != base_label) | (instance != base_inst)
        pasted = resize_label(pasted.view(np.uint8), size).astype(bool)
        photo = self.dataset.read_image(s)
        assert photo is not None  # checked by open_composite_source
        return resize_image(photo, size), composite_alpha(pasted, self.dilate, self.feather)


def _base_keys(ss: ShardSet) -> list[tuple[str, str | None, str | None]]:
    """(sample key, base key, base kind) of every sample, from the provenance compose recorded."""
    out = []
    for j, entry in enumerate(ss.shards):
        rows = ss.read_rows(j, 0, int(entry["count"]), ("key", "provenance"))
        for key, prov in zip(rows["key"], rows["provenance"], strict=True):
            p = json.loads(prov) if prov else {}
            out.append((str(key), p.get("base"), p.get("base_kind")))
    return out


def open_composite_source(ss: ShardSet, dilate: int, feather: int) -> CompositeSource:
    """Check that ``ss`` can be composited and find every base photo; one-line errors, nothing written."""
    if ss.method not in COMPOSITE_METHODS:
        raise LabelforgeError(
            f"--composite keeps the base map's photo around pasted objects, so it needs overlay or multi maps;"
            f" {ss.path} holds {ss.method!r} maps"
        )
    root, split = ss.config.get("root"), ss.config.get("split")
    if not root or not split:
        raise InputError(ss.path, "--composite: the shards record no dataset root and split to take base photos from")
    try:
        ds = open_dataset(root, ss.label_space, str(ss.config.get("layout") or "auto"))
        by_key = {s.key: s for s in ds.samples(split)}
    except (InputError, OSError) as exc:
        raise InputError(root, f"--composite: cannot open the dataset the shards were composed from ({exc})") from None
    samples: dict[str, Sample] = {}
    for key, base, kind in _base_keys(ss):
        if base is None or kind != "map":
            raise InputError(ss.path, f"--composite: sample {key!r} records no base map of the dataset")
        s = by_key.get(base)
        if s is None or s.image is None:
            what = "is not in" if s is None else "has no photo in"
            raise InputError(root, f"--composite: base map {base!r} of sample {key!r} {what} split {split!r}")
        samples[base] = s
    return CompositeSource(ds, samples, dilate, feather)
