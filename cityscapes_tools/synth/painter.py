"""Painter: turn ANY Cityscapes label map (+ instance map) into a plausible photo.

The painter never sees a scene description. It works from the maps alone, class region by class
region and instance by instance, so it can also paint composed maps it never laid out - which is
what makes it an *oracle renderer*: the image a perfect label-to-image generator would produce.

What it derives from the maps:

* a horizon (top of the road / ground) and a vanishing column, hence a ground-plane depth per row,
  used for lane dashes, paving joints and sleeper spacing;
* for upright surfaces (building, wall, fence) a per-column scale from the lowest pixel of the
  region (pixels per metre ~ distance below the horizon), used to size windows, panels and bars
  in perspective;
* per instance (vehicles, people) a bounding box, used to place windows, lights, wheels, clothes.

Colours deliberately overlap between confusable classes (building / wall / fence draw from one
palette, car / truck / bus / train / motorcycle from another, vegetation and terrain overlap), and
every image gets its own exposure, tint and noise, so texture and shape - not colour - tell classes
apart. All work is vectorised over class crops; Python loops only run over instances and blobs.

Example:
    >>> import numpy as np
    >>> lab = np.full((32, 64), 23, np.uint8); lab[16:] = 7  # sky over road
    >>> img = paint(lab, None, seed=0)
    >>> img.shape, img.dtype
    ((32, 64, 3), dtype('uint8'))
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from ..instances import encode_instance

__all__ = ["paint", "PaintContext"]

GROUND_IDS = (6, 7, 8, 9, 10, 22)  # ground, road, sidewalk, parking, rail track, terrain
VEHICLE_IDS = (26, 27, 28, 29, 30, 31, 32, 33)
CAM_H = 1.3  # assumed camera height (metres) when turning rows into ground depths


class PaintContext:
    """Shared state of one painting: maps, the float image, geometry estimates and noise helpers."""

    def __init__(self, label: np.ndarray, instance: np.ndarray, rng: np.random.Generator) -> None:
        self.label, self.inst, self.rng = label, instance, rng
        self.H, self.W = label.shape
        self.img = np.zeros((self.H, self.W, 3), np.float32)  # linear-ish 0..255 RGB
        self.f = 1.1 * self.W  # Cityscapes-like focal length
        ground = np.isin(label, GROUND_IDS)
        rows = np.flatnonzero(ground.any(axis=1))
        if rows.size:
            self.horizon = float(rows[0]) - 0.5
            top = ground[rows[0] : rows[0] + 3]
            self.cx = float(np.nonzero(top)[1].mean())
        else:
            self.horizon, self.cx = 0.45 * self.H, 0.5 * self.W

    # -- noise ----------------------------------------------------------------------------------
    def noise(self, h: int, w: int, cell: float, octaves: int = 1) -> np.ndarray:
        """Smooth value noise (h, w) float32 in about [-1, 1], features about ``cell`` pixels wide."""
        out = np.zeros((h, w), np.float32)
        amp, total = 1.0, 0.0
        for _ in range(octaves):
            gh, gw = max(int(h / cell) + 2, 2), max(int(w / cell) + 2, 2)
            grid = self.rng.uniform(-1.0, 1.0, (gh, gw)).astype(np.float32)
            out += amp * cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
            total += amp
            amp, cell = amp * 0.5, max(cell / 2.0, 1.0)
        return out / total

    def grain(self, h: int, w: int) -> np.ndarray:
        """Per-pixel white noise (h, w) float32, unit variance."""
        return self.rng.standard_normal((h, w), dtype=np.float32)

    # -- geometry from the maps ------------------------------------------------------------------
    def ground_depth(self, y0: int, h: int) -> np.ndarray:
        """Ground depth in metres of rows y0..y0+h-1 (rows at or above the horizon: very far)."""
        dy = np.arange(y0, y0 + h, dtype=np.float32) - self.horizon
        return self.f * CAM_H / np.maximum(dy, 0.05)

    def ground_lateral(self, y0: int, x0: int, h: int, w: int) -> np.ndarray:
        """Lateral ground position X in metres of each pixel of the crop: (h, w)."""
        Z = self.ground_depth(y0, h)[:, None]
        return (np.arange(x0, x0 + w, dtype=np.float32)[None, :] - self.cx) * Z / self.f

    def column_frame(self, mask: np.ndarray, y0: int, x0: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Metric frame of an upright surface given its crop ``mask`` at (y0, x0).

        Returns ``u`` (w,) metres along the surface, ``v`` (h, w) metres above the region's lowest
        pixel in each column, and ``ppm`` (w,) pixels per metre = (bottom - horizon) / CAM_H.
        """
        h, w = mask.shape
        has = mask.any(axis=0)
        bottom = np.where(has, h - 1 - np.argmax(mask[::-1], axis=0), h - 1).astype(np.float32) + y0
        k = max(self.W // 40, 1) | 1  # odd window; a running median ignores bottoms hidden by cars
        if w > k:
            padded = np.pad(bottom, k // 2, mode="edge")
            bottom = np.median(np.lib.stride_tricks.sliding_window_view(padded, k), axis=1).astype(np.float32)
        ppm = np.clip((bottom - self.horizon) / CAM_H, 2.0, 0.5 * self.H)  # (w,)
        Z = self.f / ppm
        u = Z + (np.arange(x0, x0 + w, dtype=np.float32) - self.cx) / ppm
        v = (bottom[None, :] - np.arange(y0, y0 + h, dtype=np.float32)[:, None]) / ppm[None, :]
        return u, v, ppm

    def put(self, sl: tuple[slice, slice], mask: np.ndarray, rgb: np.ndarray) -> None:
        """Write ``rgb`` (h, w, 3) into the image crop ``sl`` where ``mask``."""
        self.img[sl][mask] = rgb[mask]


def bbox(mask: np.ndarray) -> tuple[slice, slice] | None:
    """Bounding-box slices of a boolean mask, or None when it is empty."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return None
    return slice(int(rows[0]), int(rows[-1]) + 1), slice(int(cols[0]), int(cols[-1]) + 1)


def pick(rng: np.random.Generator, palette: np.ndarray, jitter: float = 12.0) -> np.ndarray:
    """A palette colour with a little per-draw variation, as float32 (3,).

    Mostly brightness (``jitter`` as a share of 100) and a little hue, so colours stay natural.
    """
    base = palette[int(rng.integers(0, len(palette)))]
    gain = 1.0 + rng.normal(0.0, jitter / 100.0)
    return np.clip(base * gain + rng.normal(0.0, jitter / 3.0, 3), 0, 255).astype(np.float32)


def shade(base: np.ndarray, factor: np.ndarray) -> np.ndarray:
    """(3,) colour times an (h, w) brightness field -> (h, w, 3)."""
    return factor[..., None] * base[None, None, :]


def _global_light(ctx: PaintContext) -> np.ndarray:
    rng, img = ctx.rng, ctx.img
    h = ctx.H
    # Exposure, white balance and a soft vertical falloff differ per image, like different days.
    gain = float(rng.uniform(0.72, 1.18))
    tint = rng.uniform(0.92, 1.08, 3).astype(np.float32)
    ramp = 1.0 + float(rng.uniform(-0.12, 0.08)) * (np.arange(h, dtype=np.float32) / h - 0.5)
    img *= (gain * ramp)[:, None, None] * tint[None, None, :]
    yy, xx = np.ogrid[:h, : ctx.W]
    r2 = ((xx - ctx.W / 2) / (ctx.W / 2)) ** 2 + ((yy - h / 2) / (h / 2)) ** 2
    img *= (1.0 - 0.12 * float(rng.uniform(0.3, 1.0)) * r2).astype(np.float32)[..., None]  # vignetting
    out = cv2.GaussianBlur(img, (0, 0), float(rng.uniform(0.5, 0.9)))  # lens softness: no razor edges
    out += ctx.grain(h, ctx.W)[..., None] * float(rng.uniform(2.0, 5.0))
    out += ctx.rng.standard_normal(out.shape, dtype=np.float32) * 1.5  # colour noise
    gamma = float(rng.uniform(0.9, 1.1))
    lut = np.round(255.0 * (np.arange(256) / 255.0) ** gamma).astype(np.uint8)
    return cv2.LUT(np.clip(out + 0.5, 0, 255).astype(np.uint8), lut)


def _contact_shadows(ctx: PaintContext) -> None:
    # Darken the ground just under vehicles and people: objects then sit on the road.
    things = ctx.inst >= 24000
    if not things.any():
        return
    k = max(ctx.H // 60, 1)
    below = np.zeros_like(things)
    below[k:] = things[:-k]
    below[2 * k :] |= things[: -2 * k]
    ground = np.isin(ctx.label, GROUND_IDS)
    ctx.img[below & ground & ~things] *= 0.55


def paint(label: np.ndarray, instance: np.ndarray | None, seed: int) -> np.ndarray:
    """Paint a photo (H, W, 3) uint8 RGB for a labelIds map and an optional instanceIds map.

    ``instance`` follows the Cityscapes convention; when it is None, every connected region of a
    thing class is treated as one instance. The same inputs and ``seed`` give the same bytes.
    """
    from .surfaces import STUFF_PAINTERS, paint_generic
    from .things import THING_PAINTERS

    label = np.asarray(label)
    if label.ndim != 2:
        raise ValueError(f"label must be (H, W), got shape {label.shape}")
    label = label.astype(np.uint8, copy=False)
    if instance is None:
        instance = _instances_from_components(label)
    elif instance.shape != label.shape:
        raise ValueError(f"instance shape {instance.shape} differs from label shape {label.shape}")
    ctx = PaintContext(label, instance.astype(np.int32, copy=False), np.random.default_rng(seed))
    painters: dict[int, Callable[[PaintContext, int, np.ndarray, tuple[slice, slice]], None]] = {
        **STUFF_PAINTERS,
        **THING_PAINTERS,
    }
    for cls in np.flatnonzero(np.bincount(label.ravel(), minlength=256)):
        mask_full = label == cls
        sl = bbox(mask_full)
        if sl is None:
            continue
        painters.get(int(cls), paint_generic)(ctx, int(cls), mask_full[sl], sl)
    _contact_shadows(ctx)
    return _global_light(ctx)


def _instances_from_components(label: np.ndarray) -> np.ndarray:
    inst = label.astype(np.int32)
    for cls in VEHICLE_IDS + (24, 25):
        mask = (label == cls).astype(np.uint8)
        if mask.any():
            n, comp = cv2.connectedComponents(mask, connectivity=8)
            inst[mask > 0] = encode_instance(cls, comp[mask > 0] - 1)
    return inst
