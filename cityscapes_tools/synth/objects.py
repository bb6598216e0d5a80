"""Drawing of the objects that stand on the ground: vehicles, people, two-wheelers, poles, trees.

Every function draws one object standing at world ground point (X, Z) onto a :class:`Canvas`, at
the scale ``f / Z`` of that depth. Vehicles are unions of projected 3D boxes (true perspective,
oriented along the street or across it); people, two-wheelers and pole fixtures are drawn in the
image plane from shapes given in metres, which is accurate enough for narrow upright objects.

Example:
    >>> import numpy as np
    >>> from cityscapes_tools.synth.geometry import Camera, Canvas
    >>> cv = Canvas(Camera(64, 128, 28.0, 64.0, 140.0, 1.3), fill=7)
    >>> draw_car(cv, np.random.default_rng(0), X=0.0, Z=12.0, along_z=True)
    >>> int((cv.inst == 26000).sum()) > 50
    True
"""

from __future__ import annotations

import numpy as np

from .geometry import Canvas

__all__ = [
    "draw_car",
    "draw_truck",
    "draw_bus",
    "draw_train",
    "draw_person",
    "draw_rider",
    "draw_bicycle",
    "draw_motorcycle",
    "draw_pole",
    "draw_tree",
    "draw_static",
]

# Label ids used here (cityscapes_tools.labels).
POLE, LIGHT, SIGN, VEG, STATIC = 17, 19, 20, 21, 4
PERSON, RIDER, CAR, TRUCK, BUS, TRAIN, MOTO, BIKE = 24, 25, 26, 27, 28, 31, 32, 33


class _Local:
    """Maps object-local metres (u right/forward, v up) to pixels at one ground point."""

    def __init__(self, cv: Canvas, X: float, Z: float, facing: float = 1.0) -> None:
        ((self.x0, self.y0),) = cv.cam.project([X], [0.0], [Z])
        self.s = cv.cam.scale(Z)
        self.facing = facing

    def pt(self, u: float, v: float) -> tuple[float, float]:
        return self.x0 + self.facing * u * self.s, self.y0 - v * self.s

    def pts(self, uv: list[tuple[float, float]]) -> np.ndarray:
        a = np.asarray(uv, dtype=np.float64)  # (N, 2) metres
        return np.stack([self.x0 + self.facing * a[:, 0] * self.s, self.y0 - a[:, 1] * self.s], axis=1)

    def px(self, metres: float) -> float:
        return metres * self.s


def _part(cv: Canvas, X: float, Z: float, along_z: bool, lo: tuple, wi: tuple, ys: tuple, value: int) -> None:
    # A box given in vehicle coordinates: lo = (l0, l1) along its length, wi = (w0, w1) across.
    if along_z:
        cv.box(X + wi[0], X + wi[1], ys[0], ys[1], Z + lo[0], Z + lo[1], value)
    else:
        cv.box(X + lo[0], X + lo[1], ys[0], ys[1], Z + wi[0], Z + wi[1], value)


def _frustum(cv: Canvas, X: float, Z: float, along_z: bool, bottom: tuple, top: tuple, ys: tuple, value: int) -> None:
    # bottom/top = (l0, l1, w0, w1) rectangles at heights ys[0] and ys[1]: a tapered cabin.
    pts = []
    for (l0, l1, w0, w1), y in ((bottom, ys[0]), (top, ys[1])):
        for lv in (l0, l1):
            for wv in (w0, w1):
                pts.append((X + wv, y, Z + lv) if along_z else (X + lv, y, Z + wv))
    a = np.asarray(pts)  # (8, 3)
    cv.solid(a[:, 0], a[:, 1], a[:, 2], value)


def _wheels(cv: Canvas, X: float, Z: float, along_z: bool, axles: list[float], half_w: float, r: float, v: int) -> None:
    for a in axles:
        for side in (-1.0, 1.0):
            w0, w1 = sorted((side * (half_w - 0.28), side * half_w))
            _part(cv, X, Z, along_z, (a - r * 0.9, a + r * 0.9), (w0, w1), (0.0, 2 * r), v)


def draw_car(cv: Canvas, rng: np.random.Generator, X: float, Z: float, along_z: bool = True) -> None:
    """A car centred at (X, Z): wheels, body and a tapered cabin (saloon, hatchback or van-like)."""
    v = cv.new_id(CAR)
    L, W, H = rng.uniform(3.8, 4.9), rng.uniform(1.7, 1.95), rng.uniform(1.38, 1.75)
    hw = W / 2
    belt = H * rng.uniform(0.52, 0.62)
    _wheels(cv, X, Z, along_z, [-L / 2 + 0.8, L / 2 - 0.85], hw, 0.32, v)
    _part(cv, X, Z, along_z, (-L / 2, L / 2), (-hw, hw), (0.3, belt), v)
    back = -L / 2 + rng.uniform(0.05, 0.25) * L  # hatchbacks have the cabin reach the back
    front = L / 2 - rng.uniform(0.28, 0.4) * L
    _frustum(
        cv,
        X,
        Z,
        along_z,
        (back, front, -hw + 0.05, hw - 0.05),
        (back + 0.35, front - 0.5, -hw + 0.2, hw - 0.2),
        (belt, H),
        v,
    )


def draw_truck(cv: Canvas, rng: np.random.Generator, X: float, Z: float, along_z: bool = True) -> None:
    """A lorry: chassis, cab at one end and a tall cargo box, big wheels."""
    v = cv.new_id(TRUCK)
    L, hw, H = rng.uniform(6.5, 10.0), rng.uniform(1.15, 1.27), rng.uniform(3.0, 3.9)
    cab = rng.uniform(1.9, 2.4)
    sgn = 1.0 if rng.random() < 0.5 else -1.0  # which end the cab is at
    _wheels(cv, X, Z, along_z, [sgn * (L / 2 - 1.2), -sgn * (L / 2 - 1.5), -sgn * (L / 2 - 2.8)], hw, 0.5, v)
    _part(cv, X, Z, along_z, (-L / 2, L / 2), (-hw + 0.1, hw - 0.1), (0.5, 1.1), v)
    c0, c1 = sorted((sgn * L / 2, sgn * (L / 2 - cab)))
    _frustum(
        cv,
        X,
        Z,
        along_z,
        (c0, c1, -hw, hw),
        (c0 + 0.2 * (sgn < 0), c1 - 0.3 * (sgn > 0), -hw + 0.1, hw - 0.1),
        (0.7, rng.uniform(2.6, 3.0)),
        v,
    )
    b0, b1 = sorted((sgn * (L / 2 - cab - 0.2), -sgn * L / 2))
    _part(cv, X, Z, along_z, (b0, b1), (-hw, hw), (1.0, H), v)


def draw_bus(cv: Canvas, rng: np.random.Generator, X: float, Z: float, along_z: bool = True) -> None:
    """A city bus: one long tall box with rounded-off top edge, wheels showing below."""
    v = cv.new_id(BUS)
    L, hw, H = rng.uniform(10.5, 12.5), 1.27, rng.uniform(2.95, 3.3)
    _wheels(cv, X, Z, along_z, [-L / 2 + 2.6, L / 2 - 2.3], hw, 0.5, v)
    _part(cv, X, Z, along_z, (-L / 2, L / 2), (-hw, hw), (0.35, H - 0.25), v)
    _frustum(
        cv, X, Z, along_z, (-L / 2, L / 2, -hw, hw), (-L / 2 + 0.3, L / 2 - 0.3, -hw + 0.2, hw - 0.2), (H - 0.25, H), v
    )


def draw_train(cv: Canvas, rng: np.random.Generator, X: float, Z: float, along_z: bool = True) -> None:
    """A tram / train of 2-4 cars with short connectors, bogies and a pantograph on top."""
    v = cv.new_id(TRAIN)
    n = int(rng.integers(2, 5))
    car_len, hw, H = rng.uniform(9.0, 15.0), rng.uniform(1.3, 1.45), rng.uniform(3.3, 3.8)
    gap = 0.7
    total = n * car_len + (n - 1) * gap
    for i in range(n):
        l0 = -total / 2 + i * (car_len + gap)
        _wheels(cv, X, Z, along_z, [l0 + 1.8, l0 + car_len - 1.8], hw - 0.2, 0.4, v)
        _part(cv, X, Z, along_z, (l0, l0 + car_len), (-hw, hw), (0.55, H - 0.3), v)
        _frustum(
            cv,
            X,
            Z,
            along_z,
            (l0, l0 + car_len, -hw, hw),
            (l0 + 0.4, l0 + car_len - 0.4, -hw + 0.3, hw - 0.3),
            (H - 0.3, H),
            v,
        )
        if i < n - 1:
            _part(cv, X, Z, along_z, (l0 + car_len, l0 + car_len + gap), (-hw + 0.3, hw - 0.3), (0.8, H - 0.5), v)
    # Pantograph: a thin diamond of struts above the first car.
    l_p = -total / 2 + car_len * 0.5
    P = [(0.0, H, l_p - 0.8), (0.0, H + 1.1, l_p), (0.0, H, l_p + 0.8)]
    xyz = np.array([(X + w, y, Z + ll) if along_z else (X + ll, y, Z + w) for w, y, ll in P])  # (3, 3)
    p = cv.cam.project(xyz[:, 0], xyz[:, 1], xyz[:, 2])
    width = max(0.06 * cv.cam.scale(Z), 1.0)
    cv.line(tuple(p[0]), tuple(p[1]), width, v)
    cv.line(tuple(p[1]), tuple(p[2]), width, v)


def _limb(lc: _Local, a: tuple[float, float], b: tuple[float, float], w: float, value: int) -> np.ndarray:
    # A quad of width w (metres) along the segment a->b.
    d = np.subtract(b, a)
    n = np.array([-d[1], d[0]]) / (np.hypot(*d) + 1e-9) * w / 2
    quad = [tuple(np.add(a, n)), tuple(np.add(b, n)), tuple(np.subtract(b, n)), tuple(np.subtract(a, n))]
    return lc.pts(quad)


def draw_person(cv: Canvas, rng: np.random.Generator, X: float, Z: float) -> None:
    """A pedestrian: legs (walking stride or standing), torso, arms, head; seen from front/back or side."""
    v = cv.new_id(PERSON)
    lc = _Local(cv, X, Z, facing=1.0 if rng.random() < 0.5 else -1.0)
    h = rng.uniform(1.5, 1.95)
    side = rng.random() < 0.4
    stride = rng.uniform(0.0, 0.22) if side else 0.0
    hip, sh = 0.52 * h, 0.81 * h
    tw = (0.15, 0.17) if side else (0.21, 0.17)  # half-widths at shoulders and hips (metres)
    spread = 0.02 if side else 0.09
    for sgn in (-1.0, 1.0):
        cv.poly(_limb(lc, (sgn * spread, hip), (sgn * (spread + stride), 0.03), 0.14, v), v)
        cv.poly(
            _limb(
                lc,
                (sgn * (tw[0] - 0.04 if not side else 0.0), sh - 0.03),
                (sgn * (tw[0] + 0.03 if not side else stride * 1.2), hip - 0.08),
                0.1,
                v,
            ),
            v,
        )
    cv.poly(lc.pts([(-tw[0], sh), (tw[0], sh), (tw[1], hip - 0.02), (-tw[1], hip - 0.02)]), v)
    cv.ellipse(*lc.pt(0.0, 0.92 * h), lc.px(0.095), lc.px(0.12), v)
    if rng.random() < 0.25:  # a bag or a coat flap widens the outline
        cv.poly(
            lc.pts([(tw[1], hip + 0.25), (tw[1] + 0.2, hip + 0.2), (tw[1] + 0.2, hip - 0.15), (tw[1], hip - 0.1)]), v
        )


def draw_bicycle(
    cv: Canvas, rng: np.random.Generator, X: float, Z: float, side_view: bool, facing: float = 1.0
) -> None:
    """A bicycle: two thin wheels and a frame of strokes (side view) or a narrow wheel + bar (rear view)."""
    v = cv.new_id(BIKE)
    lc = _Local(cv, X, Z, facing)
    stroke = max(lc.px(0.045), 1.0)
    if side_view:
        r = 0.34
        for u in (-0.53, 0.53):
            cv.ring(*lc.pt(u, r), lc.px(r), stroke, v)
        hub_r, bb, seat, head, hub_f = (-0.53, r), (0.0, 0.3), (-0.13, 0.88), (0.4, 0.85), (0.53, r)
        for a, b in ((hub_r, bb), (bb, seat), (seat, head), (head, bb), (hub_r, seat), (head, hub_f)):
            cv.line(lc.pt(*a), lc.pt(*b), stroke, v)
        cv.line(lc.pt(-0.24, 0.92), lc.pt(-0.02, 0.92), stroke * 1.5, v)
        cv.line(lc.pt(0.38, 1.02), lc.pt(0.44, 0.85), stroke, v)
    else:
        cv.ellipse(*lc.pt(0.0, 0.34), max(lc.px(0.025), 0.5), lc.px(0.34), v)
        cv.line(lc.pt(0.0, 0.34), lc.pt(0.0, 1.0), stroke, v)
        cv.line(lc.pt(-0.28, 1.0), lc.pt(0.28, 1.0), stroke, v)


def draw_motorcycle(
    cv: Canvas, rng: np.random.Generator, X: float, Z: float, side_view: bool, facing: float = 1.0
) -> None:
    """A motorcycle: solid wheels and a body blob (side view), or a narrow upright body (rear view)."""
    v = cv.new_id(MOTO)
    lc = _Local(cv, X, Z, facing)
    if side_view:
        for u in (-0.7, 0.72):
            cv.ellipse(*lc.pt(u, 0.32), lc.px(0.32), lc.px(0.32), v)
        cv.poly(lc.pts([(-0.75, 0.5), (-0.3, 0.8), (0.35, 0.95), (0.62, 0.6), (0.2, 0.3), (-0.45, 0.35)]), v)
        cv.line(lc.pt(0.5, 0.8), lc.pt(0.6, 1.12), max(lc.px(0.06), 1.0), v)
    else:
        cv.ellipse(*lc.pt(0.0, 0.3), max(lc.px(0.08), 0.5), lc.px(0.3), v)
        cv.ellipse(*lc.pt(0.0, 0.68), lc.px(0.28), lc.px(0.3), v)
        cv.line(lc.pt(-0.42, 1.05), lc.pt(0.42, 1.05), max(lc.px(0.06), 1.0), v)


def draw_rider(cv: Canvas, rng: np.random.Generator, X: float, Z: float, motor: bool, side_view: bool) -> None:
    """A rider on a bicycle or motorcycle: the vehicle first (its own instance), then the seated person."""
    facing = 1.0 if rng.random() < 0.5 else -1.0
    if motor:
        draw_motorcycle(cv, rng, X, Z, side_view, facing)
    else:
        draw_bicycle(cv, rng, X, Z, side_view, facing)
    v = cv.new_id(RIDER)
    lc = _Local(cv, X, Z, facing)
    seat = 0.85 if motor else 0.92
    if side_view:
        hip, shoulder, head = (-0.15, seat), (0.12, seat + 0.58), (0.17, seat + 0.78)
        cv.poly(_limb(lc, hip, shoulder, 0.34, v), v)
        cv.poly(_limb(lc, hip, (0.25, seat - 0.05), 0.15, v), v)
        cv.poly(_limb(lc, (0.25, seat - 0.05), (0.1, 0.3), 0.12, v), v)
        cv.poly(_limb(lc, shoulder, (0.42, 1.02), 0.09, v), v)
    else:
        head = (0.0, seat + 0.8)
        cv.poly(lc.pts([(-0.2, seat + 0.6), (0.2, seat + 0.6), (0.16, seat - 0.05), (-0.16, seat - 0.05)]), v)
        for sgn in (-1.0, 1.0):
            cv.poly(_limb(lc, (sgn * 0.12, seat), (sgn * 0.14, 0.3), 0.13, v), v)
            cv.poly(_limb(lc, (sgn * 0.18, seat + 0.55), (sgn * 0.3, 1.02), 0.09, v), v)
    cv.ellipse(*lc.pt(*head), lc.px(0.11), lc.px(0.13), v)


def draw_pole(
    cv: Canvas, rng: np.random.Generator, X: float, Z: float, *, height: float, sign: bool, light: bool, arm_dir: float
) -> None:
    """A pole, optionally with a traffic sign and/or a traffic light (on the pole or on an arm over the road)."""
    lc = _Local(cv, X, Z)
    width = max(lc.px(rng.uniform(0.1, 0.22)), 1.0)
    cv.line(lc.pt(0.0, 0.0), lc.pt(0.0, height), width, POLE)
    if light:
        on_arm = height > 5.0 and rng.random() < 0.5
        if on_arm:
            reach = rng.uniform(2.0, 4.5) * arm_dir
            y_arm = height - 0.3
            cv.line(lc.pt(0.0, y_arm), lc.pt(reach, y_arm), width * 0.8, POLE)
            u, top = reach, y_arm - 0.05
        else:
            u, top = arm_dir * 0.25, rng.uniform(2.9, min(height, 4.2))
        cv.poly(lc.pts([(u - 0.17, top), (u + 0.17, top), (u + 0.17, top - 0.95), (u - 0.17, top - 0.95)]), LIGHT)
    if sign:
        size = rng.uniform(0.55, 0.9)
        cy = rng.uniform(2.0, 2.6) + size / 2
        u = -arm_dir * (size / 2 + 0.05) if rng.random() < 0.4 else 0.0
        kind = rng.integers(0, 4)
        cxp, cyp = lc.pt(u, cy)
        if kind == 0:
            cv.ellipse(cxp, cyp, lc.px(size / 2), lc.px(size / 2), SIGN)
        elif kind == 1:  # triangle, point up or down
            t = 1.0 if rng.random() < 0.7 else -1.0
            cv.poly(
                lc.pts(
                    [
                        (u - size / 2, cy - t * size * 0.43),
                        (u + size / 2, cy - t * size * 0.43),
                        (u, cy + t * size * 0.43),
                    ]
                ),
                SIGN,
            )
        elif kind == 2:  # square / diamond
            d = size / 2
            cv.poly(
                lc.pts([(u, cy + d), (u + d, cy), (u, cy - d), (u - d, cy)])
                if rng.random() < 0.4
                else lc.pts([(u - d, cy + d), (u + d, cy + d), (u + d, cy - d), (u - d, cy - d)]),
                SIGN,
            )
        else:  # wide direction sign on two-thirds of the pole height
            w_, h_ = size * rng.uniform(1.4, 2.4), size * 0.8
            cv.poly(lc.pts([(u - w_ / 2, cy + h_), (u + w_ / 2, cy + h_), (u + w_ / 2, cy), (u - w_ / 2, cy)]), SIGN)


def draw_tree(cv: Canvas, rng: np.random.Generator, X: float, Z: float, height: float) -> None:
    """A street tree: trunk and a canopy of overlapping ellipses (all vegetation, as in Cityscapes)."""
    lc = _Local(cv, X, Z)
    crown_y = height * rng.uniform(0.55, 0.7)
    cv.line(lc.pt(0.0, 0.0), lc.pt(0.0, crown_y), max(lc.px(rng.uniform(0.15, 0.3)), 1.0), VEG)
    r = height * rng.uniform(0.22, 0.35)
    for _ in range(int(rng.integers(4, 9))):
        du, dv = rng.normal(0.0, r * 0.45), rng.normal(0.0, r * 0.35)
        cv.ellipse(*lc.pt(du, crown_y + dv), lc.px(r * rng.uniform(0.5, 0.9)), lc.px(r * rng.uniform(0.45, 0.8)), VEG)


def draw_static(cv: Canvas, rng: np.random.Generator, X: float, Z: float) -> None:
    """Street furniture labelled 'static' (void in evaluation): a bin, a bollard or an electrical box."""
    lc = _Local(cv, X, Z)
    kind = rng.integers(0, 3)
    if kind == 0:
        cv.poly(lc.pts([(-0.3, 0.0), (0.3, 0.0), (0.33, 1.0), (-0.33, 1.0)]), STATIC)
    elif kind == 1:
        cv.line(lc.pt(0.0, 0.0), lc.pt(0.0, 0.9), max(lc.px(0.15), 1.0), STATIC)
    else:
        cv.poly(lc.pts([(-0.5, 0.0), (0.5, 0.0), (0.5, 1.3), (-0.5, 1.3)]), STATIC)
