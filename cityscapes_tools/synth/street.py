"""The street layout of one scene: camera, road and side strips, facades, walls, fences, far backdrop.

A street runs straight ahead (possibly bending). Seen from the road edge outwards, each side has
an optional rail corridor, an optional grass verge, a sidewalk, an optional terrain strip and then
either a building line (facades of varied heights with gaps) or open ground. Ground strips are
drawn as polygons over depth slices of the ground plane; vertical structures as projected planes
and boxes, far to near.

Example:
    >>> import numpy as np
    >>> from cityscapes_tools.synth.geometry import Canvas
    >>> rng = np.random.default_rng(1)
    >>> st = plan_street(rng, 64, 128, {"terrain": True, "train_rail": False, "junction": False})
    >>> cv = Canvas(st.cam, fill=23)
    >>> draw_ground(cv, st)
    >>> bool((cv.inst == 7).any())
    True
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .geometry import Camera, Canvas

__all__ = ["Side", "Street", "plan_street", "draw_ground", "draw_backdrop", "Z_FAR"]

ROAD, SIDEWALK, RAIL, BUILDING, WALL, FENCE, VEG, TERRAIN = 7, 8, 10, 11, 12, 13, 21, 22
Z_FAR = 1000.0  # depth where ground strips end: within a pixel of the horizon


@dataclass
class Side:
    """One side of the street; distances are |X| in metres from the camera's centre line."""

    sign: float  # -1 left, +1 right
    edge: float  # road edge
    strips: list[tuple[int, float, float]] = field(default_factory=list)  # (label, inner, outer)
    sidewalk: tuple[float, float] | None = None
    verge: tuple[float, float] | None = None
    rail: tuple[float, float] | None = None
    facade: float | None = None  # building line; None: an open side
    outer: int = SIDEWALK  # ground beyond the last strip, out to the horizon
    park: bool = False  # a parking lane along this road edge

    def x(self, dist: float) -> float:
        """Signed X of a point ``dist`` metres from the centre line on this side."""
        return self.sign * dist


@dataclass
class Street:
    cam: Camera
    lane_w: float
    lanes: list[float]  # X of the centre of each driving lane
    sides: tuple[Side, Side]
    junction: tuple[float, float] | None  # depth range of a crossing street
    z_end: float  # where the building lines end


def _sample_camera(rng: np.random.Generator, height: int, width: int) -> Camera:
    # Cityscapes: f ~ 1.1 * width, camera ~1.2 m up, horizon a little above mid-height.
    curve = 0.0 if rng.random() < 0.55 else float(rng.uniform(-1.0, 1.0)) * 0.0012
    return Camera(
        height=height,
        width=width,
        horizon=float(height * rng.uniform(0.36, 0.47)),
        cx=float(width * rng.uniform(0.44, 0.56)),
        f=float(width * rng.uniform(1.0, 1.2)),
        cam_h=float(rng.uniform(1.15, 1.5)),
        curve=curve,
    )


def plan_street(rng: np.random.Generator, height: int, width: int, plan: dict[str, bool]) -> Street:
    """Sample the street layout. ``plan`` says whether the scene has terrain, a rail corridor, a junction."""
    cam = _sample_camera(rng, height, width)
    lw = float(rng.uniform(3.0, 3.6))
    n_left, n_right = int(rng.choice([0, 1, 1, 2, 3])), int(rng.choice([0, 0, 1, 2]))
    park = (bool(rng.random() < 0.55), bool(rng.random() < 0.55))
    edges = (lw / 2 + n_left * lw + 2.3 * park[0], lw / 2 + n_right * lw + 2.3 * park[1])
    rail_side = int(rng.choice([0, 1])) if plan["train_rail"] else -1
    # Where the terrain goes: a verge by the road, a strip behind the sidewalk, or a whole open side.
    terrain_kind = int(rng.integers(0, 3)) if plan["terrain"] else -1
    terrain_side = int(rng.integers(0, 2))
    sides = []
    for i, sign in enumerate((-1.0, 1.0)):
        sd = Side(sign=sign, edge=edges[i], park=park[i])
        x = sd.edge
        if rail_side == i:
            w = float(rng.uniform(4.5, 6.0))
            sd.strips.append((RAIL, x, x + w))
            sd.rail, x = (x, x + w), x + w
        if terrain_kind == 0 and (terrain_side == i or rng.random() < 0.3):
            w = float(rng.uniform(1.0, 3.5))
            sd.strips.append((TERRAIN, x, x + w))
            sd.verge, x = (x, x + w), x + w
        if rng.random() < 0.95:
            w = float(rng.uniform(1.8, 5.0))
            sd.strips.append((SIDEWALK, x, x + w))
            sd.sidewalk, x = (x, x + w), x + w
        if terrain_kind == 1 and (terrain_side == i or rng.random() < 0.3):
            w = float(rng.uniform(1.0, 5.0))
            sd.strips.append((TERRAIN, x, x + w))
            x = x + w
        open_side = terrain_kind == 2 and terrain_side == i
        sd.outer = TERRAIN if open_side else SIDEWALK
        if not open_side and rng.random() < 0.95:
            sd.facade = x + float(rng.uniform(0.0, 1.5))
        sides.append(sd)
    junction = None
    if plan["junction"]:
        z0 = float(rng.uniform(18.0, 45.0))
        junction = (z0, z0 + float(rng.uniform(8.0, 14.0)))
    lanes = [k * lw for k in range(-n_left, n_right + 1)]
    return Street(cam, lw, lanes, (sides[0], sides[1]), junction, z_end=float(rng.uniform(45.0, 220.0)))


def _outer_x(cam: Camera, zs: np.ndarray) -> np.ndarray:
    # |X| that lies safely beyond both image borders at each depth (bounded coordinates for cv2).
    return 2.0 * cam.width * zs / cam.f + np.abs(cam.lateral(zs)) + 5.0


def _ground_band(cv: Canvas, sign: float, inner: np.ndarray | float, outer: np.ndarray, zs: np.ndarray, v: int) -> None:
    # One polygon: the inner edge near -> far, then the outer edge far -> near.
    inner = np.broadcast_to(np.asarray(inner, dtype=np.float64), zs.shape)
    X = sign * np.concatenate([inner, outer[::-1]])
    Z = np.concatenate([zs, zs[::-1]])
    cv.poly(cv.cam.project(X, np.zeros_like(X), Z), v)


def draw_ground(cv: Canvas, st: Street) -> None:
    """Road, side strips, open ground and the crossing street of a junction."""
    cam = st.cam
    z_near = 0.7 * cam.f * cam.cam_h / max(cam.height - cam.horizon, 1.0)
    zs = np.geomspace(z_near, Z_FAR, 48)
    far = _outer_x(cam, zs)
    for sd in st.sides:
        last = sd.strips[-1][2] if sd.strips else sd.edge
        _ground_band(cv, sd.sign, last, far, zs, sd.outer)
        for v, a, b in sd.strips:
            _ground_band(cv, sd.sign, a, np.full_like(zs, b), zs, v)
    left, right = st.sides
    X = np.concatenate([np.full_like(zs, -left.edge), np.full_like(zs, right.edge)[::-1]])
    Z = np.concatenate([zs, zs[::-1]])
    cv.poly(cam.project(X, np.zeros_like(X), Z), ROAD)
    if st.junction is not None:
        zj = np.linspace(*st.junction, 6)
        _ground_band(cv, -1.0, 0.0, _outer_x(cam, zj), zj, ROAD)
        _ground_band(cv, 1.0, 0.0, _outer_x(cam, zj), zj, ROAD)


def _plane(cv: Canvas, X: float, z0: float, z1: float, y0: float, y1: float, v: int) -> None:
    # A vertical plane along the street (facade, wall face): curved edges follow the bend.
    zs = np.geomspace(z0, z1, 6)
    Xs = np.full(12, X)
    Y = np.concatenate([np.full(6, y0), np.full(6, y1)])
    cv.poly(cv.cam.project(Xs, Y, np.concatenate([zs, zs[::-1]])), v)


def _far_backdrop(cv: Canvas, rng: np.random.Generator, st: Street) -> None:
    # Buildings and tree lines across the end of the street, low enough to leave sky above them.
    cam = st.cam
    Z = float(rng.uniform(110.0, 250.0))
    lat = float(cam.lateral(np.array(Z)))
    x = -cam.cx * Z / cam.f - lat - 10.0
    x_end = (cam.width - cam.cx) * Z / cam.f - lat + 10.0
    while x < x_end:
        w = float(rng.uniform(8.0, 40.0))
        if rng.random() < 0.7:
            cv.box(x, x + w, 0.0, float(rng.uniform(4.0, 20.0)), Z, Z + 10.0, BUILDING)
        else:
            for t in np.arange(x, x + w, 6.0):
                r, h = float(rng.uniform(3.0, 6.0)), float(rng.uniform(6.0, 15.0))
                ((px, py),) = cam.project([t], [h - r], [Z])
                s = cam.scale(Z)
                cv.ellipse(px, py, r * s * 1.3, r * s, VEG)
                cv.poly(cam.project([t - r, t + r, t + r, t - r], [0, 0, h - r, h - r], [Z] * 4), VEG)
        x += w


def _in_junction(st: Street, z0: float, z1: float) -> bool:
    return st.junction is not None and z0 < st.junction[1] and z1 > st.junction[0]


def draw_backdrop(cv: Canvas, rng: np.random.Generator, st: Street, plan: dict[str, bool]) -> dict[str, bool]:
    """Far backdrop, facades, hedges, walls and fences. Returns which of these it drew."""
    drew = {"hedge": False, "wall": False, "fence": False}
    _far_backdrop(cv, rng, st)
    cam = st.cam
    for sd in st.sides:
        if sd.facade is None:
            continue
        z = max(1.0, 0.6 * cam.min_visible_depth(sd.x(sd.facade)))
        segs = []
        while z < st.z_end:
            L = float(rng.uniform(8.0, 35.0))
            if z > 12.0 and rng.random() < 0.12:  # a gap between buildings
                z += float(rng.uniform(4.0, 15.0))
                continue
            back = float(rng.uniform(0.0, 2.0)) if rng.random() < 0.3 else 0.0
            if not _in_junction(st, z, z + L):
                segs.append((sd.x(sd.facade + back), z, z + L, float(rng.uniform(6.0, 26.0))))
            z += L
        for X, z0, z1, h in reversed(segs):  # far to near
            _plane(cv, X, z0, z1, 0.0, h, BUILDING)
    # Hedges, walls and fences along the back of the sidewalk (or on the verge), far to near.
    pieces: list[tuple[float, float, float, float, float, int]] = []
    for kind, label, hrange in (("hedge", VEG, (0.7, 1.8)), ("wall", WALL, (0.6, 3.2)), ("fence", FENCE, (0.9, 2.3))):
        if not plan[kind]:
            continue
        for _ in range(int(rng.integers(1, 3))):
            sd = st.sides[int(rng.integers(0, 2))]
            on_verge = kind == "fence" and rng.random() < 0.35
            if on_verge or sd.sidewalk is None:
                dist = sd.edge + 0.25
            elif sd.facade is not None:
                dist = sd.facade - (0.6 if kind == "hedge" else 0.2)
            else:
                dist = sd.sidewalk[1] + 0.3
            X = sd.x(dist)
            z0 = max(1.5, 0.75 * cam.min_visible_depth(X)) * float(rng.uniform(1.0, 2.5))
            z1 = z0 + float(rng.uniform(6.0, 35.0))
            if _in_junction(st, z0, z1):
                z1 = min(z1, st.junction[0])  # type: ignore[index]
            if z1 - z0 < 2.0:
                continue
            pieces.append((abs(X), X, z0, z1, float(rng.uniform(*hrange)), label))
            drew[kind] = True
    for _, X, z0, z1, h, label in sorted(pieces, key=lambda p: -p[0]):  # outermost first: nearer ones occlude
        _plane(cv, X, z0, z1, 0.0, h, label)
    return drew
