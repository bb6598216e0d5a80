"""Scene sampler of the procedural mini-Cityscapes: a random street scene as label + instance maps.

The scene is seen from a car-mounted camera: sky, a street in perspective (see ``street.py``),
then the objects standing on it - cars, trucks, buses, trams/trains, people, riders, bicycles,
motorcycles, poles with signs and lights, trees, street furniture - drawn far to near so that near
objects hide far ones, and sometimes the ego vehicle's bonnet at the bottom.

Which optional elements a scene has is drawn first, with probabilities tuned so that the share of
images containing each class follows :data:`TARGET_SHARES`, a long tail shaped like Cityscapes.

Example:
    >>> import numpy as np
    >>> label, inst = sample_scene(np.random.default_rng(0), 128, 256)
    >>> label.dtype, inst.dtype, label.shape
    (dtype('uint8'), dtype('int32'), (128, 256))
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np

from . import objects as ob
from .geometry import Camera, Canvas
from .street import Side, Street, draw_backdrop, draw_ground, plan_street

__all__ = ["TARGET_SHARES", "sample_scene"]

# Share of images that contain each evaluation class (any pixel), as the sampler aims for them.
# Shaped like Cityscapes' long tail: the frequent classes in nearly every image, the rare classes
# (wall, fence, truck, bus, train, motorcycle, rider) in a small share. Mirrored in
# docs/mini-cityscapes.md; tests/test_synth.py measures the real shares against this table.
# fmt: off
TARGET_SHARES: dict[str, float] = {
    "road": 0.99, "sidewalk": 0.97, "building": 0.99, "vegetation": 0.95, "sky": 0.98, "car": 0.95, "pole": 0.97,
    "traffic sign": 0.80, "person": 0.60, "terrain": 0.50, "traffic light": 0.45, "bicycle": 0.40,
    "fence": 0.20, "rider": 0.15, "wall": 0.12, "truck": 0.08, "motorcycle": 0.07, "bus": 0.06, "train": 0.03,
}
# Probability that a scene plans each optional element. Planned objects can still end up hidden or
# off-screen, and some classes come from several elements, so these differ a little from the
# targets; tuned by measuring (see tests/test_synth.py::test_appearance_shares_follow_targets).
_SPAWN: dict[str, float] = {
    "car": 0.97, "sign": 0.83, "light": 0.49, "person": 0.65, "terrain": 0.52, "bicycle": 0.42,
    "rider": 0.175, "fence": 0.23, "wall": 0.135, "truck": 0.07, "bus": 0.055, "motorcycle": 0.095, "train": 0.032,
    "trees": 0.80, "hedge": 0.25, "junction": 0.30, "ego": 0.55, "static": 0.50,
}
# fmt: on

SKY, EGO = 23, 1


def _logu(rng: np.random.Generator, lo: float, hi: float) -> float:
    # Log-uniform depth: as many objects per doubling of distance, like a real street.
    if hi <= lo:
        return lo
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


class _Placer:
    """Collects objects with ground footprints that do not overlap; draws them far to near."""

    def __init__(self, rng: np.random.Generator, st: Street, cv: Canvas) -> None:
        self.rng, self.st, self.cv, self.cam = rng, st, cv, st.cam
        self.items: list[tuple[float, int, Callable[[], None]]] = []
        self.taken: list[tuple[float, float, float, float]] = []

    def visible_from(self, X: float, lo: float = 3.0) -> float:
        return max(lo, self.cam.min_visible_depth(X, margin_px=2.0))

    def put(self, fn: Callable[..., None], X: float, Z: float, hx: float, hz: float, **kw: object) -> bool:
        x0, x1, z0, z1 = X - hx, X + hx, Z - hz, Z + hz
        if z0 < 1.5 or any(x0 < b[1] and x1 > b[0] and z0 < b[3] and z1 > b[2] for b in self.taken):
            return False
        self.taken.append((x0, x1, z0, z1))
        # Sort key: distance to the footprint centre, a good painter's order for upright objects.
        self.items.append(
            (float(np.hypot(X, Z)), len(self.items), functools.partial(fn, self.cv, self.rng, X, Z, **kw))
        )
        return True

    def scatter(
        self,
        fn: Callable[..., None],
        xs: Callable[[], float],
        zlo: float,
        zhi: float,
        hx: float,
        hz: float,
        tries: int = 10,
        **kw: object,
    ) -> bool:
        """Put one object at a random visible depth in [zlo, zhi]; False when no free spot was found."""
        for _ in range(tries):
            X = xs()
            lo = max(zlo, self.visible_from(X) + hz)
            if lo < zhi and self.put(fn, X, _logu(self.rng, lo, zhi), hx, hz, **kw):
                return True
        return False

    def draw(self) -> None:
        for _, _, fn in sorted(self.items, key=lambda t: (-t[0], t[1])):
            fn()


def _road_x(st: Street, rng: np.random.Generator) -> float:
    return float(rng.uniform(-st.sides[0].edge + 0.5, st.sides[1].edge - 0.5))


def _walk_x(sd: Side, rng: np.random.Generator) -> float:
    a, b = sd.sidewalk if sd.sidewalk is not None else (sd.edge + 0.3, sd.edge + 1.5)
    return sd.x(float(rng.uniform(a + 0.3, max(a + 0.35, b - 0.3))))


def _place_vehicles(pl: _Placer, plan: dict[str, bool]) -> None:
    st, rng = pl.st, pl.rng
    lanes = st.lanes
    if plan["train"]:
        n_cars = int(rng.integers(2, 5))
        half = (n_cars * 12.0 + (n_cars - 1) * 0.7) / 2
        sd = st.sides[0] if st.sides[0].rail else st.sides[1]
        X = sd.x(sum(sd.rail) / 2) if sd.rail else lanes[0]  # on its rail corridor, or a tram in the street
        pl.scatter(ob.draw_train, lambda: X, half + 4.0, half + 45.0, 1.6, half, tries=20)
    for flag, fn, hz in (("truck", ob.draw_truck, 5.0), ("bus", ob.draw_bus, 6.0)):
        if plan[flag]:
            parked = [sd.x(sd.edge - 1.2) for sd in st.sides if sd.park]
            pool = lanes + parked
            pl.scatter(fn, lambda p=pool: float(rng.choice(p)), hz + 5.0, 60.0, 1.3, hz, tries=20)
    if not plan["car"]:
        return
    for sd in st.sides:  # rows of parked cars
        if sd.park and rng.random() < 0.85:
            X = sd.x(sd.edge - 1.1)
            z = pl.visible_from(X, 3.0) * float(rng.uniform(0.9, 2.0))
            for _ in range(int(rng.integers(1, 9))):
                z += 2.4
                pl.put(ob.draw_car, X + float(rng.normal(0, 0.1)), z, 1.0, 2.4)
                z += 2.4 + float(rng.uniform(0.3, 4.0))
    for _ in range(int(rng.integers(0, 6))):
        pl.scatter(ob.draw_car, lambda: float(rng.choice(lanes)) + float(rng.normal(0, 0.2)), 7.0, 90.0, 1.0, 2.4)
    if st.junction is not None:
        zc = sum(st.junction) / 2
        for _ in range(int(rng.integers(0, 3))):
            X, Z = float(rng.uniform(-25.0, 25.0)), zc + float(rng.choice([-1.8, 1.8]))
            pl.put(ob.draw_car, X, Z, 2.4, 1.0, along_z=False)
    if not any(t[2].func is ob.draw_car for t in pl.items):  # every planned car scene shows one
        pl.scatter(ob.draw_car, lambda: float(rng.choice(lanes)), 7.0, 40.0, 1.0, 2.4, tries=30)


def _place_people(pl: _Placer, plan: dict[str, bool]) -> None:
    st, rng = pl.st, pl.rng
    walks = [sd for sd in st.sides if sd.sidewalk is not None] or list(st.sides)
    if plan["rider"]:
        motor = plan["motorcycle"] and rng.random() < 0.5
        plan["motorcycle"] = plan["motorcycle"] and not motor  # no parked one needed as well
        right = st.sides[1]
        for _ in range(int(rng.integers(1, 3))):
            u = rng.random()
            if u < 0.6:  # riding ahead along the right road edge: seen from behind
                lane_x = right.edge - (2.3 if right.park else 0.0) - float(rng.uniform(0.6, 1.4))
                pl.scatter(ob.draw_rider, lambda x=lane_x: x, 6.0, 45.0, 0.4, 1.0, motor=motor, side_view=False)
            elif u < 0.8 and st.junction is not None:  # crossing the junction: side view
                pl.put(
                    ob.draw_rider,
                    float(rng.uniform(-12, 12)),
                    float(rng.uniform(*st.junction)),
                    1.0,
                    0.4,
                    motor=motor,
                    side_view=True,
                )
            else:
                sd = walks[int(rng.integers(0, len(walks)))]
                pl.scatter(
                    ob.draw_rider, lambda s=sd: _walk_x(s, rng), 5.0, 40.0, 0.4, 1.0, motor=motor, side_view=False
                )
    if plan["person"]:
        for _ in range(int(rng.integers(1, 9))):
            if rng.random() < 0.15:
                ok = pl.scatter(ob.draw_person, lambda: _road_x(st, rng), 6.0, 40.0, 0.3, 0.3)
            else:
                sd = walks[int(rng.integers(0, len(walks)))]
                ok = pl.scatter(ob.draw_person, lambda s=sd: _walk_x(s, rng), 4.0, 60.0, 0.3, 0.3)
            if ok and rng.random() < 0.3:  # a companion walking beside
                X, Z = pl.taken[-1][0] + 0.3, pl.taken[-1][2] + 0.3
                pl.put(ob.draw_person, X + float(rng.choice([-0.65, 0.65])), Z + float(rng.normal(0, 0.3)), 0.3, 0.3)
    if plan["bicycle"]:  # a rack of parked bicycles, side on to the camera
        sd = walks[int(rng.integers(0, len(walks)))]
        X = _walk_x(sd, rng)
        z = _logu(rng, pl.visible_from(X, 4.0) + 0.5, 35.0)
        for i in range(int(rng.integers(1, 5))):
            pl.put(ob.draw_bicycle, X, z + 0.7 * i, 0.9, 0.3, side_view=True, facing=float(rng.choice([-1, 1])))
    if plan["motorcycle"]:  # parked in the parking lane, or on the sidewalk
        sd = st.sides[int(rng.integers(0, 2))]
        dist = sd.edge - 1.0 if sd.park else (sd.sidewalk[0] + 1.0 if sd.sidewalk else sd.edge + 0.8)
        pl.scatter(
            ob.draw_motorcycle,
            lambda: sd.x(dist),
            5.0,
            35.0,
            1.0,
            0.4,
            tries=20,
            side_view=bool(rng.random() < 0.6),
            facing=float(rng.choice([-1, 1])),
        )


def _place_furniture(pl: _Placer, plan: dict[str, bool]) -> None:
    st, rng = pl.st, pl.rng

    def kerb_x(sd: Side) -> float:
        if sd.sidewalk is not None:
            return sd.x(sd.sidewalk[0] + 0.35)
        return sd.x(sd.edge + 0.3)

    n_poles = int(rng.integers(2, 9))
    for i in range(n_poles):
        sd = st.sides[int(rng.integers(0, 2))]
        sign = plan["sign"] and (i == 0 or rng.random() < 0.35)
        light = plan["light"] and (i == 1 or rng.random() < 0.15)
        zhi = 45.0 if (sign or light) else 70.0
        pl.scatter(
            ob.draw_pole,
            lambda s=sd: kerb_x(s),
            4.0,
            zhi,
            0.2,
            0.2,
            height=float(rng.uniform(3.0, 9.0)),
            sign=sign,
            light=light,
            arm_dir=-sd.sign,
        )
    if st.junction is not None and plan["light"]:
        for sd in st.sides:
            pl.put(
                ob.draw_pole,
                kerb_x(sd),
                st.junction[0] - 1.5,
                0.2,
                0.2,
                height=float(rng.uniform(5.0, 7.5)),
                sign=False,
                light=True,
                arm_dir=-sd.sign,
            )
    if plan["trees"]:
        for _ in range(int(rng.integers(1, 10))):
            sd = st.sides[int(rng.integers(0, 2))]
            if sd.verge is not None:
                dist = sum(sd.verge) / 2
            elif sd.sidewalk is not None:
                dist = sd.sidewalk[1] - 0.8 if sd.sidewalk[1] - sd.sidewalk[0] > 2.5 else sd.sidewalk[0] + 0.6
            else:
                dist = (sd.strips[-1][2] if sd.strips else sd.edge) + 2.0
            pl.scatter(
                ob.draw_tree, lambda d=dist, s=sd: s.x(d), 5.0, 80.0, 0.5, 0.5, height=float(rng.uniform(5.0, 13.0))
            )
    if plan["static"]:
        for _ in range(int(rng.integers(1, 4))):
            sd = st.sides[int(rng.integers(0, 2))]
            pl.scatter(ob.draw_static, lambda s=sd: _walk_x(s, rng), 4.0, 40.0, 0.4, 0.4)


def _ego_vehicle(cam: Camera, inst: np.ndarray, rng: np.random.Generator) -> None:
    # The bonnet: a flat arc rising to a few percent of the height at the centre, like Cityscapes.
    h, w = inst.shape
    depth = h * float(rng.uniform(0.04, 0.09))
    xs = np.arange(w, dtype=np.float64)
    top = h - depth * np.clip(1.0 - ((xs - cam.cx) / (0.8 * w)) ** 2, 0.0, None)  # (W,)
    inst[np.arange(h)[:, None] >= top[None, :]] = EGO


def sample_scene(rng: np.random.Generator, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Lay out one random street scene.

    Returns ``(label, instance)``: (H, W) uint8 Cityscapes labelIds and (H, W) int32 instanceIds
    (``id * 1000 + k`` on thing classes with ``k`` counting from 0 per class, the plain label id
    elsewhere). Everything random comes from ``rng``, so the same generator state gives the same scene.
    """
    plan = {k: bool(rng.random() < p) for k, p in _SPAWN.items()}
    plan["train_rail"] = plan["train"] and bool(rng.random() < 0.5)
    st = plan_street(rng, height, width, plan)
    cv = Canvas(st.cam, fill=SKY)
    draw_ground(cv, st)
    draw_backdrop(cv, rng, st, plan)
    pl = _Placer(rng, st, cv)
    _place_vehicles(pl, plan)
    _place_people(pl, plan)
    _place_furniture(pl, plan)
    pl.draw()
    if plan["ego"]:
        _ego_vehicle(st.cam, cv.inst, rng)
    return cv.finish()
