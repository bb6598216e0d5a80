"""Camera model and drawing canvas shared by the scene sampler.

World coordinates are metres: ``X`` to the right, ``Y`` up from the ground, ``Z`` forward from a
camera mounted ``cam_h`` above the road, looking along the road. A point projects to

    x = cx + f * (X + lateral(Z)) / Z            y = horizon + f * (cam_h - Y) / Z

so a ground point lower in the image is nearer and everything there is drawn larger (``f / Z``
pixels per metre). ``lateral(Z)`` (about ``curve * Z**2``, see :meth:`Camera.lateral`) bends the
whole world sideways with distance, which turns a straight street into a gentle bend without
changing anything else.

The canvas holds one int32 map in the Cityscapes instanceIds convention (plain label id for
stuff, ``id * 1000 + k`` for things); the label map is derived from it at the end, so every
primitive is drawn once.

Example:
    >>> import numpy as np
    >>> cam = Camera(height=64, width=128, horizon=28.0, cx=64.0, f=140.0, cam_h=1.3)
    >>> round(float(cam.ground_row(10.0)), 2)
    46.2
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..instances import decode_instance, encode_instance, is_instance

__all__ = ["Camera", "Canvas", "THING_IDS"]

# Cityscapes classes with hasInstances=True (person .. bicycle).
THING_IDS: frozenset[int] = frozenset({24, 25, 26, 27, 28, 29, 30, 31, 32, 33})

_SHIFT = 3  # fractional bits of cv2 drawing coordinates: 1/8 px precision for small far objects
_SCALE = 1 << _SHIFT
_CURVE_END = 60.0  # metres; see Camera.lateral


@dataclass(frozen=True)
class Camera:
    """A pinhole camera over a flat ground plane (see the module docstring for the projection)."""

    height: int
    width: int
    horizon: float
    cx: float
    f: float
    cam_h: float
    curve: float = 0.0

    def lateral(self, Z: np.ndarray) -> np.ndarray:
        """Sideways shift of the street at depth ``Z``: a parabola that continues as its tangent.

        Beyond ``_CURVE_END`` metres a pure parabola would swing the far street across the whole
        horizon; the tangent keeps a bend looking like a bend.
        """
        Zc = np.minimum(Z, _CURVE_END)
        return self.curve * (Zc * Zc + 2.0 * _CURVE_END * (Z - Zc))

    def project(self, X: np.ndarray, Y: np.ndarray, Z: np.ndarray) -> np.ndarray:
        """(N,) world coordinates -> (N, 2) image coordinates (x, y) in pixels."""
        X, Y, Z = (np.asarray(v, dtype=np.float64) for v in (X, Y, Z))
        x = self.cx + self.f * (X + self.lateral(Z)) / Z
        y = self.horizon + self.f * (self.cam_h - Y) / Z
        return np.stack(np.broadcast_arrays(x, y), axis=-1)

    def ground_row(self, Z: float | np.ndarray) -> float | np.ndarray:
        """Image row of the ground at depth ``Z``."""
        return self.horizon + self.f * self.cam_h / np.asarray(Z, dtype=np.float64)

    def depth_of_row(self, y: float) -> float:
        """Depth of the ground seen at image row ``y`` (rows above the horizon have none)."""
        return float(self.f * self.cam_h / max(y - self.horizon, 1e-3))

    def min_visible_depth(self, X: float, margin_px: float = 0.0) -> float:
        """Smallest depth at which a ground point at lateral offset ``X`` is inside the image."""
        half = (self.cx if X < 0 else self.width - self.cx) - margin_px
        z_side = self.f * abs(X) / max(half, 1.0)
        z_bottom = self.f * self.cam_h / max(self.height - self.horizon - margin_px, 1.0)
        return max(z_side, z_bottom, 1.0)

    def scale(self, Z: float) -> float:
        """Pixels per metre at depth ``Z``."""
        return self.f / Z


class Canvas:
    """An instanceIds-convention int32 map plus per-class instance counters, with fill primitives."""

    def __init__(self, cam: Camera, fill: int) -> None:
        self.cam = cam
        self.inst = np.full((cam.height, cam.width), fill, dtype=np.int32)
        self._next: dict[int, int] = {}

    def new_id(self, cls: int) -> int:
        """The value to draw for a new object of class ``cls``: a fresh instance id for things."""
        if cls not in THING_IDS:
            return cls
        k = self._next.get(cls, 0)
        self._next[cls] = k + 1
        return encode_instance(cls, k)

    @staticmethod
    def _fixed(pts: np.ndarray) -> np.ndarray:
        # Clip to a generous box so far-off vertices cannot overflow cv2's fixed-point maths.
        pts = np.clip(np.asarray(pts, dtype=np.float64), -2e7, 2e7)
        return np.round(pts * _SCALE).astype(np.int32)

    def poly(self, pts: np.ndarray, value: int) -> None:
        """Fill the polygon with vertices ``pts`` (N, 2) (x, y) pixels."""
        cv2.fillPoly(self.inst, [self._fixed(pts)], int(value), cv2.LINE_8, _SHIFT)

    def hull(self, pts: np.ndarray, value: int) -> None:
        """Fill the convex hull of ``pts`` (N, 2): the silhouette of a projected solid."""
        fixed = self._fixed(pts)
        cv2.fillConvexPoly(self.inst, cv2.convexHull(fixed), int(value), cv2.LINE_8, _SHIFT)

    def solid(self, X: np.ndarray, Y: np.ndarray, Z: np.ndarray, value: int) -> None:
        """Fill the silhouette of the convex solid with world vertices (X, Y, Z)."""
        self.hull(self.cam.project(X, Y, Z), value)

    def box(self, x0: float, x1: float, y0: float, y1: float, z0: float, z1: float, value: int) -> None:
        """Fill the silhouette of an axis-aligned world box."""
        X = np.array([x0, x1, x0, x1, x0, x1, x0, x1])
        Y = np.array([y0, y0, y1, y1, y0, y0, y1, y1])
        Z = np.array([z0, z0, z0, z0, z1, z1, z1, z1])
        self.solid(X, Y, Z, value)

    def ellipse(self, cx: float, cy: float, ax: float, ay: float, value: int, angle: float = 0.0) -> None:
        """Fill an ellipse centred at (cx, cy) px with half-axes (ax, ay) px (at least half a pixel)."""
        center = (int(round(cx * _SCALE)), int(round(cy * _SCALE)))
        axes = (max(int(round(ax * _SCALE)), _SCALE // 2), max(int(round(ay * _SCALE)), _SCALE // 2))
        cv2.ellipse(self.inst, center, axes, angle, 0, 360, int(value), -1, cv2.LINE_8, _SHIFT)

    def ring(self, cx: float, cy: float, r: float, width: float, value: int) -> None:
        """Draw a circle outline (a wheel) of radius ``r`` and stroke ``width`` px."""
        center = (int(round(cx * _SCALE)), int(round(cy * _SCALE)))
        radius = max(int(round(r * _SCALE)), 1)
        cv2.circle(self.inst, center, radius, int(value), max(int(round(width)), 1), cv2.LINE_8, _SHIFT)

    def line(self, p0: tuple[float, float], p1: tuple[float, float], width: float, value: int) -> None:
        """Draw a straight stroke ``width`` px wide (at least 1 px)."""
        a = (int(round(p0[0] * _SCALE)), int(round(p0[1] * _SCALE)))
        b = (int(round(p1[0] * _SCALE)), int(round(p1[1] * _SCALE)))
        cv2.line(self.inst, a, b, int(value), max(int(round(width)), 1), cv2.LINE_8, _SHIFT)

    def finish(self) -> tuple[np.ndarray, np.ndarray]:
        """(label uint8, instance int32) with instance numbers made contiguous per class.

        Fully hidden objects leave gaps in ``k``; renumbering keeps ``k = 0..n-1`` over the visible
        instances of each class, in drawing order.
        """
        # Lookup tables over the (small) id range instead of np.unique's sort of every pixel.
        top = int(self.inst.max())
        ids = np.flatnonzero(np.bincount(self.inst.ravel(), minlength=top + 1))
        cls, _ = decode_instance(ids)
        new = ids.copy()
        things = is_instance(ids)
        if things.any():
            # ids are sorted, so each class's instances are contiguous; rank them within the class.
            tcls = cls[things]
            first = np.searchsorted(tcls, tcls, side="left")
            new[things] = encode_instance(tcls, np.arange(tcls.size) - first)
        lut_inst = np.zeros(top + 1, np.int32)
        lut_inst[ids] = new
        lut_label = np.zeros(top + 1, np.uint8)
        lut_label[ids] = cls
        return lut_label[self.inst], lut_inst[self.inst]
