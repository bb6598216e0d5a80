"""Painters of the thing classes, instance by instance: vehicles, two-wheelers, people.

Every instance gets its own colours and brightness. Car, truck, bus, train and motorcycle draw
from one shared palette, so they differ by structure only: a car has a glass cabin on top; a truck
a plain ribbed cargo box; a bus a long window band with pillars and a destination display; a train
a window band, doors and a livery stripe. The bottom of every vehicle is dark (wheels, shadow).

Example:
    >>> import numpy as np
    >>> from cityscapes_tools.synth.painter import paint
    >>> lab = np.full((32, 64), 7, np.uint8); lab[8:24, 8:40] = 28  # a bus on the road
    >>> inst = lab.astype(np.int32); inst[lab == 28] = 28000
    >>> paint(lab, inst, seed=1).shape
    (32, 64, 3)
"""

from __future__ import annotations

import numpy as np

from .painter import PaintContext, bbox, pick

__all__ = ["THING_PAINTERS", "VEHICLE_PALETTE"]

_f32 = np.float32
# Shared by every vehicle class: white, silver, black, greys, red, blues, yellow, green, beige, maroon.
VEHICLE_PALETTE = np.array(
    [(225, 225, 222), (170, 172, 176), (30, 30, 34), (70, 72, 78), (160, 30, 30), (40, 60, 130), (25, 35, 70),
     (210, 180, 40), (40, 90, 60), (190, 180, 160), (120, 20, 25), (200, 200, 190)], _f32)  # fmt: skip
CLOTHES = np.array(
    [(25, 25, 30), (45, 50, 70), (60, 80, 120), (110, 110, 115), (150, 140, 120), (170, 40, 40), (200, 200, 195),
     (80, 60, 45), (40, 70, 50), (120, 60, 110)], _f32)  # fmt: skip
SKIN = np.array([(225, 190, 160), (190, 150, 120), (140, 100, 75), (95, 65, 50)], _f32)
HAIR = np.array([(30, 25, 20), (80, 55, 35), (150, 120, 80), (120, 120, 120)], _f32)
_GLASS = np.array([(40, 50, 60), (70, 85, 100), (25, 28, 32)], _f32)
_DARK = np.array([22, 22, 24], _f32)


def _frac(a: np.ndarray) -> np.ndarray:
    return a - np.floor(a)


def _frame(m: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Relative coordinates in the instance box (ry, rx in [0, 1]) and per-row relative extent."""
    h, w = m.shape
    ry = np.broadcast_to(((np.arange(h, dtype=_f32) + 0.5) / h)[:, None], (h, w))
    rx = np.broadcast_to(((np.arange(w, dtype=_f32) + 0.5) / w)[None, :], (h, w))
    has = m.any(axis=1)
    left = np.where(has, np.argmax(m, axis=1), 0).astype(_f32)
    right = np.where(has, w - np.argmax(m[:, ::-1], axis=1), w).astype(_f32)
    x = np.arange(w, dtype=_f32)[None, :]
    across = (x - left[:, None]) / np.maximum(right - left, 1.0)[:, None]  # 0..1 within each row's run
    return ry, rx, across, right - left


def _vehicle(ctx: PaintContext, cls: int, m: np.ndarray) -> np.ndarray:
    """RGB (h, w, 3) of one vehicle instance from its mask ``m`` (its bounding box)."""
    rng, (h, w) = ctx.rng, m.shape
    ry, rx, across, _ = _frame(m)
    side = w > 1.6 * h  # side-on (crossing, parked across) rather than seen from behind
    body = pick(rng, VEHICLE_PALETTE, 10) * float(rng.uniform(0.85, 1.15))
    glass = pick(rng, _GLASS, 6)
    shade = 1.1 - 0.25 * ry + 0.04 * ctx.grain(h, w) + 0.05 * ctx.noise(h, w, max(w / 4, 2))
    rgb = body[None, None] * shade[..., None]
    g_shade = (0.8 + 0.5 * (1 - ry) * rx)[..., None]  # sky reflected in the glass
    win = np.zeros((h, w), bool)
    if cls == 26:  # car: glass cabin on top, lights and plate at the back
        win = (ry > 0.08) & (ry < 0.42) & (across > 0.1) & (across < 0.9)
        if side:
            win &= np.abs(rx - 0.5) > 0.02  # door pillar
        else:
            lamp = (ry > 0.5) & (ry < 0.6) & ((rx < 0.18) | (rx > 0.82))
            rgb[lamp] = (200, 30, 30) if rng.random() < 0.6 else (230, 225, 200)
            rgb[(ry > 0.62) & (ry < 0.7) & (np.abs(rx - 0.5) < 0.11)] = (225, 225, 220)
        bottom = 0.82
    elif cls == 27:  # truck: ribbed cargo box, small cab window on the side, rear doors
        ribs = _frac(rx * rng.uniform(10, 18)) < 0.12
        rgb[ribs & (ry < 0.75)] *= 0.85
        if side:
            cab_left = rng.random() < 0.5
            win = (ry > 0.12) & (ry < 0.35) & ((rx < 0.15) if cab_left else (rx > 0.85))
        else:
            rgb[(np.abs(rx - 0.5) < 0.01) & (ry < 0.78)] *= 0.6
        bottom = 0.78
    elif cls in (28, 29, 30):  # bus (caravan, trailer): long window band with pillars
        win = (ry > 0.12) & (ry < 0.5) & (across > 0.04) & (across < 0.96)
        if side:
            win &= _frac(rx * rng.uniform(6, 9)) > 0.1
        display = (ry > 0.03) & (ry < 0.09) & (np.abs(rx - 0.5) < 0.3)
        rgb[display] = (40, 30, 20)
        rgb[display & (_frac(rx * 40) < 0.5)] = (250, 150, 40)
        if rng.random() < 0.4:  # advertising panel
            rgb[(ry > 0.56) & (ry < 0.8) & (np.abs(rx - 0.5) < 0.3)] = pick(rng, VEHICLE_PALETTE, 40)
        bottom = 0.88
    elif cls == 31:  # train: window band, doors, livery stripe, bogies
        if side:
            win = (ry > 0.2) & (ry < 0.48) & (_frac(rx * rng.uniform(9, 14)) > 0.12)
            doors = (_frac(rx * rng.uniform(3, 5) + rng.random()) < 0.06) & (ry > 0.2) & (ry < 0.88)
            rgb[doors] *= 0.7
        else:  # the driver's windscreen
            win = (ry > 0.15) & (ry < 0.45) & (across > 0.1) & (across < 0.9)
        rgb[(ry > 0.58) & (ry < 0.65)] = pick(rng, VEHICLE_PALETTE, 20)
        rgb[ry < 0.05] = (90, 90, 92)
        bottom = 0.87
    elif cls == 32:  # motorcycle: dark machine, coloured tank
        rgb = np.where(((ry > 0.15) & (ry < 0.45))[..., None], rgb, _DARK * (1 + 0.2 * ctx.grain(h, w))[..., None])
        bottom = 1.1
    else:  # bicycle: thin dark or coloured frame strokes
        rgb = rgb * 0.6
        bottom = 1.1
    rgb = np.where(win[..., None], glass[None, None] * g_shade, rgb)
    dark = ry > bottom
    rgb[dark] = _DARK * (0.7 + 0.3 * float(rng.random()))
    return rgb


def _human(ctx: PaintContext, cls: int, m: np.ndarray) -> np.ndarray:
    """RGB (h, w, 3) of one person / rider: head (skin, hair or helmet), top, trousers, shoes."""
    rng, (h, w) = ctx.rng, m.shape
    ry = np.broadcast_to(((np.arange(h, dtype=_f32) + 0.5) / h)[:, None], (h, w))
    head_end = 0.13 if cls == 24 else 0.2
    top, legs = pick(rng, CLOTHES, 12), pick(rng, CLOTHES, 12)
    skin, hair = pick(rng, SKIN, 8), pick(rng, HAIR, 8)
    helmet = cls == 25 and rng.random() < 0.7
    rgb = np.empty((h, w, 3), _f32)
    rgb[:] = legs
    rgb[ry < 0.55] = top
    rgb[ry < head_end] = skin
    rgb[ry < head_end * 0.45] = pick(rng, VEHICLE_PALETTE, 10) if helmet else hair
    if helmet:
        rgb[ry < head_end * 0.7] = rgb[0, 0]
    if cls == 24:
        rgb[ry > 0.95] = _DARK
    tex = float(rng.uniform(0.8, 1.15)) * (1.0 + 0.06 * ctx.grain(h, w) + 0.08 * ctx.noise(h, w, max(w / 3, 2)))
    return rgb * tex[..., None]


def paint_instances(ctx: PaintContext, cls: int, mask: np.ndarray, sl: tuple[slice, slice]) -> None:
    """Paint every instance of thing class ``cls`` inside the class crop, in id order."""
    inst = ctx.inst[sl]
    rgb = np.zeros((*mask.shape, 3), _f32)
    ids = np.unique(inst[mask])
    fn = _human if cls in (24, 25) else _vehicle
    for i in ids:
        m = (inst == i) & mask
        box = bbox(m)
        if box is None:
            continue
        part = fn(ctx, cls, m[box])
        rgb[box][m[box]] = part[m[box]]
    ctx.put(sl, mask, rgb)


THING_PAINTERS = {cls: paint_instances for cls in (24, 25, 26, 27, 28, 29, 30, 31, 32, 33)}
