"""Painters of the stuff classes: ground, constructions, nature, sky, poles, signs, lights, void.

Each painter takes ``(ctx, cls, mask, sl)``: the :class:`~.painter.PaintContext`, the label id,
the class mask cropped to its bounding box, and that box as slices of the image. Building, wall
and fence share one colour palette and differ only in structure (window grid / smooth panels /
lattice), which is the point: a segmenter has to read texture and shape.

Example:
    >>> import numpy as np
    >>> from cityscapes_tools.synth.painter import paint
    >>> lab = np.full((48, 96), 11, np.uint8); lab[24:, :48] = 12  # building beside a wall
    >>> paint(lab, None, seed=3).shape
    (48, 96, 3)
"""

from __future__ import annotations

import cv2
import numpy as np

from .painter import PaintContext, pick, shade

__all__ = ["STUFF_PAINTERS", "paint_generic", "CONSTRUCTION"]

_f32 = np.float32
# One palette for building, wall and fence: plaster, concrete, brick, sandstone, dark cladding.
CONSTRUCTION = np.array(
    [(196, 182, 160), (170, 168, 162), (120, 118, 115), (148, 84, 64), (214, 208, 196), (192, 165, 112),
     (128, 112, 96), (160, 150, 140), (95, 92, 98), (176, 128, 96)], _f32)  # fmt: skip
GREENS = np.array([(60, 85, 35), (80, 105, 45), (45, 70, 35), (100, 120, 60), (70, 95, 55), (90, 100, 50)], _f32)
TERRAIN = np.array([(110, 130, 70), (130, 135, 80), (95, 120, 60), (140, 125, 85), (100, 115, 65)], _f32)
PAVING = np.array([(150, 148, 144), (170, 160, 145), (130, 128, 126), (160, 120, 110), (185, 180, 170)], _f32)
GLASS = np.array([(45, 55, 65), (70, 80, 90), (30, 35, 40), (95, 110, 125), (60, 60, 55)], _f32)


def _frac(a: np.ndarray) -> np.ndarray:
    return a - np.floor(a)


def paint_building(ctx: PaintContext, cls: int, mask: np.ndarray, sl: tuple[slice, slice]) -> None:
    """Facades split into buildings along the street, each with its colour, floors and window grid."""
    rng, (h, w) = ctx.rng, mask.shape
    u, v, ppm = ctx.column_frame(mask, sl[0].start, sl[1].start)
    key = u + 500.0 * (np.arange(sl[1].start, sl[1].stop) < ctx.cx)  # left and right facades apart
    edges = key.min() + np.cumsum(rng.uniform(6.0, 30.0, 64))
    b = np.minimum(np.searchsorted(edges, key), 63)  # (w,) building index of each column
    n = 64
    colour = np.stack([pick(rng, CONSTRUCTION, 14) for _ in range(n)])  # (n, 3)
    glass = np.stack([pick(rng, GLASS, 8) for _ in range(n)])
    floor_h, spacing = rng.uniform(2.8, 3.6, n)[b], rng.uniform(1.8, 3.4, n)[b]
    win_w, win_h = rng.uniform(0.35, 0.6, n)[b], rng.uniform(0.4, 0.6, n)[b]
    windows_on, shop = rng.random(n)[b] < 0.92, rng.random(n)[b] < 0.4
    fy = v / floor_h[None, :]  # (h, w) floors above the ground
    fu = u / spacing  # (w,) window columns along the facade
    win = (_frac(fy) > 0.3) & (_frac(fy) < 0.3 + win_h) & (_frac(fu)[None, :] < win_w[None, :])
    win &= windows_on[None, :] & ~(shop[None, :] & (fy < 1.0))  # shops replace ground-floor windows
    shopfront = shop[None, :] & (v > 0.3) & (v < 2.6) & (_frac(u / 4.0)[None, :] < 0.75)
    cornice = _frac(fy) < 0.05
    tex = 1.0 + 0.05 * ctx.grain(h, w) + 0.08 * ctx.noise(h, w, 24, 2)
    tex *= 1.0 - 0.1 * np.clip(1.0 - v / 3.0, 0, 1)  # weathered ground floor
    rgb = colour[b][None, :, :] * tex[..., None]
    rgb[cornice] *= 1.12
    g = glass[b][None, :, :] * (0.8 + 0.25 * ctx.noise(h, w, 6))[..., None]
    rgb = np.where((win | shopfront)[..., None], g, rgb)
    ctx.put(sl, mask, rgb)


def paint_wall(ctx: PaintContext, cls: int, mask: np.ndarray, sl: tuple[slice, slice]) -> None:
    """Concrete or stone panels: smooth, stained, with joints and a lighter coping, no windows."""
    rng, (h, w) = ctx.rng, mask.shape
    u, v, ppm = ctx.column_frame(mask, sl[0].start, sl[1].start)
    base = pick(rng, CONSTRUCTION, 14)
    tex = 1.0 + 0.12 * ctx.noise(h, w, max(w / 6, 4), 2) + 0.03 * ctx.grain(h, w)
    pw, ph = rng.uniform(1.0, 3.0), rng.uniform(0.4, 1.2)
    stagger = (np.floor(v / ph) % 2) * 0.5 * rng.integers(0, 2)
    joints = (_frac(u[None, :] / pw + stagger) < 0.04) | (_frac(v / ph) < 0.05)
    tex = np.where(joints, tex * 0.82, tex)
    top = np.argmax(mask, axis=0)  # first row of the wall in each column
    rows = np.arange(h)[:, None]
    tex = np.where((rows >= top[None, :]) & (rows < top[None, :] + max(h // 20, 1)), tex * 1.15, tex)
    rgb = shade(base, tex)
    if rng.random() < 0.15:  # graffiti: saturated blobs on the lower part
        blob = (ctx.noise(h, w, max(h / 6, 3)) > 0.45) & (v < 1.8)
        rgb[blob] = pick(rng, np.array([(200, 40, 60), (40, 90, 200), (240, 200, 40)], _f32), 30)
    ctx.put(sl, mask, rgb)


def paint_fence(ctx: PaintContext, cls: int, mask: np.ndarray, sl: tuple[slice, slice]) -> None:
    """A lattice: chain-link mesh, railing bars or wooden planks, with the dim background in the gaps."""
    rng, (h, w) = ctx.rng, mask.shape
    u, v, ppm = ctx.column_frame(mask, sl[0].start, sl[1].start)
    base = pick(rng, np.concatenate([CONSTRUCTION, np.array([(60, 90, 60), (40, 40, 42)], _f32)]), 12)
    # What shows through the gaps: a dim, blurred mix of greenery and shadow.
    gap = (
        pick(rng, np.array([(60, 68, 55), (80, 80, 76), (45, 50, 42)], _f32), 10)
        * (0.75 + 0.25 * ctx.noise(h, w, 8))[..., None]
    )
    kind = int(rng.integers(0, 3))
    # Pixels per metre along the surface (foreshortened on side-on planes); bars never finer than 4 px.
    ppm_u = 1.0 / np.maximum(np.abs(np.gradient(u)) if w > 1 else 1.0 / ppm, 1e-3)
    period = np.maximum([0.12, 0.18, 0.2][kind], 4.0 / np.minimum(ppm_u, ppm))[None, :]
    if kind == 0:  # diamond mesh
        solid = (_frac((u[None, :] + v) / period) < 0.3) | (_frac((u[None, :] - v) / period) < 0.3)
    elif kind == 1:  # vertical bars
        solid = _frac(u[None, :] / period) < 0.35
    else:  # planks with thin gaps
        solid = _frac(u[None, :] / period) < 0.85
    top = np.argmax(mask, axis=0)
    rows = np.arange(h)[:, None]
    rails = (rows < top[None, :] + max(h // 16, 1)) | (_frac(v / 1.0) < 0.06)
    solid = (solid | rails).astype(_f32)
    rgb = shade(base, 1.0 + 0.06 * ctx.grain(h, w)) * solid[..., None] + gap * (1.0 - solid[..., None])
    ctx.put(sl, mask, rgb)


def paint_vegetation(ctx: PaintContext, cls: int, mask: np.ndarray, sl: tuple[slice, slice]) -> None:
    """Leaf noise: fine clumps with dark gaps, hue drifting between greens, lit from above."""
    rng, (h, w) = ctx.rng, mask.shape
    a, b = pick(rng, GREENS, 10), pick(rng, GREENS, 10)
    fine, coarse = ctx.noise(h, w, 2.5, 2), ctx.noise(h, w, 14, 2)
    mix = np.clip(0.5 + 0.8 * coarse, 0, 1)[..., None]
    bright = 0.85 + 0.35 * fine + 0.1 * ctx.grain(h, w)
    bright = np.where(fine < -0.35, bright * 0.45, bright)  # holes between leaf clumps
    rgb = (a[None, None] * mix + b[None, None] * (1 - mix)) * bright[..., None]
    # Trunks and branches: vegetation too narrow to survive a horizontal opening is bark, not leaves.
    k = max(ctx.W // 30, 3)
    m8 = mask.astype(np.uint8)
    thin = (m8 > 0) & (cv2.morphologyEx(m8, cv2.MORPH_OPEN, np.ones((1, k), np.uint8)) == 0)
    bark = pick(rng, np.array([(85, 70, 55), (70, 65, 60), (100, 90, 75)], _f32), 8)
    rgb[thin] = bark * (0.85 + 0.1 * ctx.grain(h, w)[thin])[:, None]
    ctx.put(sl, mask, rgb)


def paint_terrain(ctx: PaintContext, cls: int, mask: np.ndarray, sl: tuple[slice, slice]) -> None:
    """Grass and soil: low-contrast streaky texture with brown patches."""
    rng, (h, w) = ctx.rng, mask.shape
    base = pick(rng, TERRAIN, 12)
    streak = cv2.resize(ctx.noise(max(h // 1, 2), max(w // 6, 2), 1.5), (w, h), interpolation=cv2.INTER_LINEAR)
    bright = 0.9 + 0.1 * streak + 0.05 * ctx.grain(h, w)
    rgb = shade(base, bright)
    dirt = np.clip(ctx.noise(h, w, max(w / 5, 4)) * 2.0 - 0.9, 0, 1)[..., None]
    rgb = rgb * (1 - dirt) + pick(rng, np.array([(120, 100, 75), (135, 120, 95)], _f32)) * dirt
    ctx.put(sl, mask, rgb)


def paint_road(ctx: PaintContext, cls: int, mask: np.ndarray, sl: tuple[slice, slice]) -> None:
    """Asphalt with patches, lane lines (dashed, in depth) and sometimes a zebra crossing."""
    rng, (h, w) = ctx.rng, mask.shape
    g = float(rng.uniform(60, 115))
    base = np.array([g, g, g], _f32) + rng.normal(0, 3, 3).astype(_f32)
    tex = 1.0 + 0.07 * ctx.noise(h, w, max(w / 8, 4), 3) + 0.05 * ctx.grain(h, w)
    rgb = shade(base, tex)
    Z = ctx.ground_depth(sl[0].start, h)[:, None]  # (h, 1)
    X = ctx.ground_lateral(sl[0].start, sl[1].start, h, w)
    ppm = ctx.f / Z
    half_w = np.maximum(0.07, 0.45 / ppm)  # line half-width in metres, at least ~1 px
    lane = rng.uniform(3.0, 3.6)
    off = rng.uniform(-0.4, 0.4) + lane / 2
    k = np.round((X - off) / lane)
    near_line = (np.abs(X - off - k * lane) < half_w) & (np.abs(k) <= 3)
    dashed = np.where(k == 0, rng.random() < 0.5, True)  # the first line is sometimes solid
    paint_line = near_line & (~dashed | (_frac(Z / 9.0) < 0.38)) & (Z < 120)
    if rng.random() < 0.2:  # zebra crossing
        z0 = rng.uniform(8.0, 25.0)
        paint_line |= (np.abs(Z - z0 - 2.0) < 2.0) & (_frac(X / 1.0) < 0.5)  # 4 m deep
    white = np.array([215, 215, 208], _f32) * float(rng.uniform(0.75, 1.0))
    rgb[paint_line] = white * (0.9 + 0.1 * rng.random())
    ctx.put(sl, mask, rgb)


def paint_sidewalk(ctx: PaintContext, cls: int, mask: np.ndarray, sl: tuple[slice, slice]) -> None:
    """Paving stones in ground perspective, with a lighter kerb along the road."""
    rng, (h, w) = ctx.rng, mask.shape
    base = pick(rng, PAVING, 10) * (0.8 if cls == 6 else 1.0)
    Z = ctx.ground_depth(sl[0].start, h)[:, None]
    X = ctx.ground_lateral(sl[0].start, sl[1].start, h, w)
    tile = rng.uniform(0.3, 0.7)
    ppm = ctx.f / Z
    grout = ((_frac(Z / tile) < 0.07) | (_frac(X / tile) < 0.07)) & (ppm * tile > 4.0)
    tex = 1.0 + 0.05 * ctx.grain(h, w) + 0.06 * ctx.noise(h, w, max(w / 10, 4), 2)
    tex = np.where(grout, tex * 0.8, tex)
    rgb = shade(base, tex)
    road = (ctx.label[sl] == 7).astype(np.uint8)
    if road.any():
        kerb = cv2.dilate(road, np.ones((3, 3), np.uint8), iterations=max(ctx.H // 128, 1)) > 0
        rgb[kerb] = rgb[kerb] * 1.18
    ctx.put(sl, mask, rgb)


def paint_rail(ctx: PaintContext, cls: int, mask: np.ndarray, sl: tuple[slice, slice]) -> None:
    """Gravel bed, sleepers every 0.6 m in depth, two rails either side of the track's centre."""
    rng, (h, w) = ctx.rng, mask.shape
    base = pick(rng, np.array([(110, 100, 90), (95, 90, 85)], _f32))
    Z = ctx.ground_depth(sl[0].start, h)[:, None]
    X = ctx.ground_lateral(sl[0].start, sl[1].start, h, w)
    cnt = np.maximum(mask.sum(axis=1, keepdims=True), 1)
    xc = (X * mask).sum(axis=1, keepdims=True) / cnt  # (h, 1) centre of the track per row
    tex = 1.0 + 0.15 * ctx.grain(h, w)
    tex = np.where(_frac(Z / 0.6) < 0.4, tex * 0.7, tex)
    rails = np.abs(np.abs(X - xc) - 0.72) < np.maximum(0.05, 0.4 * Z / ctx.f)
    rgb = shade(base, tex)
    rgb[rails] = np.array([170, 165, 160], _f32)
    ctx.put(sl, mask, rgb)


def paint_sky(ctx: PaintContext, cls: int, mask: np.ndarray, sl: tuple[slice, slice]) -> None:
    """A vertical gradient (clear or overcast) with soft clouds."""
    rng, (h, w) = ctx.rng, mask.shape
    t = np.clip((np.arange(sl[0].start, sl[0].stop, dtype=_f32) / max(ctx.horizon, 1.0)), 0, 1)[:, None, None]
    if rng.random() < 0.5:
        top, bottom = np.array([70, 120, 190], _f32), np.array([175, 200, 225], _f32)
    else:
        g = rng.uniform(185, 235)
        top, bottom = np.array([g - 15, g - 8, g], _f32), np.array([g, g, g + 5], _f32)
    rgb = top * (1 - t) + bottom * t + rng.normal(0, 6, 3).astype(_f32)
    cloud = np.clip(ctx.noise(h, w, max(w / 6, 4), 3), 0, 1)[..., None]
    rgb = rgb * (1 - cloud) + 235.0 * cloud
    ctx.put(sl, mask, np.broadcast_to(rgb, (h, w, 3)).astype(_f32))


def paint_pole(ctx: PaintContext, cls: int, mask: np.ndarray, sl: tuple[slice, slice]) -> None:
    """Metal or painted poles, highlighted on their left edge and shaded on the right."""
    rng, (h, w) = ctx.rng, mask.shape
    base = pick(rng, np.array([(150, 150, 150), (110, 112, 115), (60, 80, 65), (45, 45, 48)], _f32), 10)
    left = np.zeros_like(mask)
    left[:, 1:] = mask[:, 1:] & ~mask[:, :-1]
    right = np.zeros_like(mask)
    right[:, :-1] = mask[:, :-1] & ~mask[:, 1:]
    tex = 1.0 + 0.05 * ctx.grain(h, w) + 0.25 * left - 0.25 * right
    ctx.put(sl, mask, shade(base, tex))


def _blobs(mask: np.ndarray) -> list[tuple[np.ndarray, tuple[slice, slice]]]:
    n, comp, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    out = []
    for i in range(1, n):
        x, y, w, h = (int(v) for v in stats[i, :4])
        out.append((comp[y : y + h, x : x + w] == i, (slice(y, y + h), slice(x, x + w))))
    return out


def paint_sign(ctx: PaintContext, cls: int, mask: np.ndarray, sl: tuple[slice, slice]) -> None:
    """Each sign blob: a rim, a face colour (red/white, blue, yellow, white, or a grey back), a symbol."""
    rng = ctx.rng
    faces = [((200, 30, 30), (235, 235, 230)), ((30, 70, 170), (30, 70, 170)), ((20, 20, 20), (230, 190, 30)),
             ((235, 235, 235), (235, 235, 235)), ((120, 120, 120), (140, 140, 140))]  # fmt: skip
    rgb = np.zeros((*mask.shape, 3), _f32)
    for m, (ys, xs) in _blobs(mask):
        rim_c, face_c = (np.array(c, _f32) for c in faces[int(rng.integers(0, len(faces)))])
        inner = cv2.erode(m.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
        part = np.where(inner[..., None], face_c, rim_c) * float(rng.uniform(0.8, 1.1))
        hh, ww = m.shape
        if min(hh, ww) >= 6:
            yy, xx = np.ogrid[:hh, :ww]
            sym = ((yy - hh / 2) / (hh * 0.2)) ** 2 + ((xx - ww / 2) / (ww * 0.2)) ** 2 < 1.0
            part[sym & inner] = np.array([25, 25, 25], _f32) if face_c.sum() > 400 else np.array([230] * 3, _f32)
        rgb[ys, xs][m] = part[m]
    ctx.put(sl, mask, rgb)


def paint_light(ctx: PaintContext, cls: int, mask: np.ndarray, sl: tuple[slice, slice]) -> None:
    """Each light blob: a dark housing with three lamps, one of them lit."""
    rng = ctx.rng
    lit_colours = [(255, 60, 40), (255, 190, 40), (60, 255, 140)]
    rgb = np.zeros((*mask.shape, 3), _f32)
    for m, (ys, xs) in _blobs(mask):
        hh, ww = m.shape
        part = np.full((hh, ww, 3), float(rng.uniform(25, 55)), _f32)
        on = int(rng.integers(0, 3))
        vertical = hh >= ww
        yy, xx = np.ogrid[:hh, :ww]
        for i in range(3):
            cy, cx = ((i + 0.5) * hh / 3, ww / 2) if vertical else (hh / 2, (i + 0.5) * ww / 3)
            r = 0.32 * (ww if vertical else hh)
            lamp = (yy - cy) ** 2 + (xx - cx) ** 2 <= max(r, 0.6) ** 2
            part[lamp] = lit_colours[i] if i == on else (55, 55, 45)
        rgb[ys, xs][m] = part[m]
    ctx.put(sl, mask, rgb)


def paint_ego(ctx: PaintContext, cls: int, mask: np.ndarray, sl: tuple[slice, slice]) -> None:
    """The ego vehicle's bonnet: dark paint reflecting a bright band near its edge."""
    rng, (h, w) = ctx.rng, mask.shape
    base = pick(rng, np.array([(40, 40, 45), (20, 25, 40), (70, 70, 75)], _f32))
    top = np.argmax(mask, axis=0)
    rows = np.arange(h)[:, None] - top[None, :]
    tex = 1.0 + 0.8 * np.exp(-rows / max(h / 8, 1.0)) + 0.03 * ctx.grain(h, w)
    ctx.put(sl, mask, shade(base, tex))


_VOID_COLOURS = {0: (15, 15, 18), 2: (0, 0, 0), 3: (10, 10, 10), 4: (110, 105, 95), 5: (95, 85, 70)}


def paint_generic(ctx: PaintContext, cls: int, mask: np.ndarray, sl: tuple[slice, slice]) -> None:
    """Any other class: a per-image colour (known void colours, else hashed from the id) with noise."""
    rng, (h, w) = ctx.rng, mask.shape
    known = _VOID_COLOURS.get(cls)
    hashed = ((cls * 67) % 200 + 30, (cls * 131) % 200 + 30, (cls * 29) % 200 + 30)
    base = np.array(known if known else hashed, _f32)
    base = np.clip(base + rng.normal(0, 12, 3), 0, 255).astype(_f32)
    tex = 1.0 + 0.12 * ctx.noise(h, w, 6) + 0.06 * ctx.grain(h, w)
    ctx.put(sl, mask, shade(base, tex))


STUFF_PAINTERS = {
    1: paint_ego, 6: paint_sidewalk, 7: paint_road, 8: paint_sidewalk, 9: paint_sidewalk, 10: paint_rail,
    11: paint_building, 12: paint_wall, 13: paint_fence, 14: paint_fence, 15: paint_wall, 16: paint_wall,
    17: paint_pole, 18: paint_pole, 19: paint_light, 20: paint_sign, 21: paint_vegetation, 22: paint_terrain,
    23: paint_sky,
}  # fmt: skip
