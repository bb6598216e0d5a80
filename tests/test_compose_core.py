"""The numeric core of compose on hand-built maps: segments, placement rules, depth, bases, targets."""

from __future__ import annotations

import numpy as np
import pytest
from _compose_data import BUILDING, CAR, EGO, PERSON, ROAD, SKY, WALL, W, put, street

from labelforge.compose.base import derived_base, drawn_base
from labelforge.compose.placement import (
    ClassGroups,
    PlacementRules,
    Scene,
    contact_fraction,
    paste_all,
    try_place,
)
from labelforge.compose.run import supplement_count
from labelforge.compose.segments import BORDER_BOTTOM, BORDER_LEFT, BORDER_RIGHT, extract_segments, unpack_mask
from labelforge.compose.targets import target_weights
from labelforge.errors import LabelforgeError


@pytest.fixture(scope="module")
def groups(label_space):
    return ClassGroups.build(label_space)


def box(h: int, w: int) -> np.ndarray:
    return np.ones((h, w), bool)


# -- segments --------------------------------------------------------------------------------------
def test_extract_segments_instances_components_and_crowds(label_space):
    lab, inst = street()
    put(lab, inst, CAR, slice(13, 17), slice(20, 28), 26000)
    put(lab, inst, CAR, slice(13, 15), slice(0, 4))  # a crowd: car pixels without an instance id
    put(lab, inst, WALL, slice(8, 12), slice(5, 8))
    put(lab, inst, WALL, slice(8, 12), slice(10, 12))  # second wall component
    put(lab, inst, EGO, slice(18, 20), slice(0, 40))  # not evaluated: never indexed
    segs = extract_segments(lab, inst, label_space, min_area=8)
    got = sorted(zip(segs.class_id.tolist(), segs.bbox.tolist(), segs.area.tolist(), segs.crowd.tolist(), strict=True))
    # road is split by the car into one component; the sky and building each one; wall two
    assert (CAR, [20, 13, 28, 17], 32, False) in got
    assert (CAR, [0, 13, 4, 15], 8, True) in got
    assert (WALL, [5, 8, 8, 12], 12, False) in got
    assert (WALL, [10, 8, 12, 12], 8, False) in got
    assert (SKY, [0, 0, 40, 8], 320, False) in got
    assert not any(c == EGO for c, *_ in got)
    j = got.index((CAR, [0, 13, 4, 15], 8, True))
    k = [i for i in range(len(segs.class_id)) if segs.bbox[i].tolist() == [0, 13, 4, 15]][0]
    assert segs.border[k] == BORDER_LEFT and j >= 0
    assert segs.src_instance[segs.class_id == CAR].max() == 26000
    # the road (rows 12-17, the ego vehicle below) touches the left and right borders, not the bottom;
    # presence lists every id in the map, evaluated or not
    (road,) = np.flatnonzero(segs.class_id == ROAD)
    assert segs.border[road] == BORDER_LEFT | BORDER_RIGHT and segs.area[road] == 6 * 40 - 32 - 8
    assert not segs.border[road] & BORDER_BOTTOM
    assert segs.presence[EGO] and segs.presence[CAR] and not segs.presence[PERSON]
    # min_area filters: with 9 the crowd, the small wall and the building between the walls (8 px each) go
    small = extract_segments(lab, inst, label_space, min_area=9)
    assert len(small.class_id) == len(segs.class_id) - 3
    assert sorted(small.area.tolist()) == sorted(a for a in segs.area.tolist() if a != 8)


def test_extract_segment_mask_round_trip(label_space):
    lab, inst = street()
    lab[9, 3], lab[10, 4], lab[11, 3] = WALL, WALL, WALL  # one 8-connected diagonal zigzag
    segs = extract_segments(lab, inst, label_space, min_area=3)
    (j,) = np.flatnonzero(segs.class_id == WALL)
    x0, y0, x1, y1 = segs.bbox[j].tolist()
    assert (x0, y0, x1, y1) == (3, 9, 5, 12)
    mask = unpack_mask(segs.bits[j], 3, 2)
    assert mask.tolist() == [[True, False], [False, True], [True, False]]


# -- placement ---------------------------------------------------------------------------------------
def test_contact_fraction_probes_below_lowest_pixels(groups):
    lab, _ = street()  # road from row 12
    m = box(3, 4)
    assert contact_fraction(m, 10, 9, lab, groups.ground) == 1.0  # bottom row 11, probe row 12: road
    assert contact_fraction(m, 10, 5, lab, groups.ground) == 0.0  # probe row 8: building
    assert contact_fraction(m, 10, 17, lab, groups.ground) == 1.0  # ends on the bottom border: out of view
    lab[12, 10:12] = BUILDING
    assert contact_fraction(m, 10, 9, lab, groups.ground) == 0.5


def test_standing_object_needs_ground(groups):
    lab, inst = street()
    scene = Scene.from_base(lab, inst)
    rng = np.random.default_rng(0)
    rules = PlacementRules()
    floating = try_place(box(4, 3), (30, 3, 33, 7), False, PERSON, 0, scene, groups, rules, rng)
    grounded = try_place(box(4, 3), (30, 8, 33, 12), False, PERSON, 0, scene, groups, rules, rng)
    assert floating is None
    assert grounded is not None and grounded.visible.all()
    # a wall is not a standing class: no contact rule
    assert try_place(box(4, 3), (30, 3, 33, 7), False, WALL, 0, scene, groups, rules, rng) is not None


def test_depth_order_nearer_paste_occludes_farther(groups):
    lab, inst = street()
    far = (box(6, 3), (14, 10, 17, 16))  # person, bottom edge row 15
    near = (box(6, 10), (10, 12, 20, 18))  # car, bottom edge row 17: nearer
    results = []
    for order in ((PERSON, CAR), (CAR, PERSON)):
        scene = Scene.from_base(lab, inst)
        rng = np.random.default_rng(0)
        ps = []
        for j, c in enumerate(order):
            m, bb = far if c == PERSON else near
            ps.append(try_place(m, bb, False, c, j, scene, groups, PlacementRules(), rng, order=j))
        paste_all(scene, ps, [scene.fresh_instance(p.class_id) for p in ps])
        results.append(scene)
    for scene in results:
        assert (scene.label[12:18, 10:20] == CAR).all()  # the overlap (rows 12-15, cols 14-16) is car
        assert (scene.label[10:12, 14:17] == PERSON).all()  # the person's top shows above the car
    assert (results[0].label == results[1].label).all()


def test_base_instance_nearer_occludes_pasted_segment(groups):
    lab, inst = street()
    put(lab, inst, CAR, slice(12, 18), slice(10, 20), 26000)  # base car, bottom row 17
    scene = Scene.from_base(lab, inst)
    rng = np.random.default_rng(0)
    person = box(6, 3)
    # behind the car: only rows 10-11 (6 of 18 px) stay visible: below min_visible 0.5 ...
    assert try_place(person, (14, 10, 17, 16), False, PERSON, 0, scene, groups, PlacementRules(), rng) is None
    # ... accepted at 0.3, and only the visible part is painted
    p = try_place(person, (14, 10, 17, 16), False, PERSON, 0, scene, groups, PlacementRules(min_visible=0.3), rng)
    assert p is not None and int(p.visible.sum()) == 6
    paste_all(scene, [p], [scene.fresh_instance(PERSON)])
    assert (scene.label[10:12, 14:17] == PERSON).all() and (scene.label[12:18, 10:20] == CAR).all()
    # in front of the car (bottom row 19): it covers the car
    q = try_place(person, (14, 14, 17, 20), False, PERSON, 1, scene, groups, PlacementRules(), rng)
    assert q is not None and q.visible.all()


def test_protect_and_always_protected(label_space):
    lab, inst = street()
    lab[18:] = EGO
    inst[18:] = EGO
    groups = ClassGroups.build(label_space, ("building",))
    scene = Scene.from_base(lab, inst)
    rng = np.random.default_rng(0)
    wall = box(6, 10)  # rows 6-11: 2 sky rows + 4 building rows
    assert try_place(wall, (5, 6, 15, 12), False, WALL, 0, scene, groups, PlacementRules(), rng) is None
    p = try_place(wall, (5, 6, 15, 12), False, WALL, 0, scene, groups, PlacementRules(min_visible=0.3), rng)
    assert p is not None
    paste_all(scene, [p], [WALL])
    assert (scene.label[6:8, 5:15] == WALL).all() and (scene.label[8:12, 5:15] == BUILDING).all()
    # the ego vehicle is protected without being asked
    q = try_place(box(4, 10), (5, 16, 15, 20), False, WALL, 1, scene, groups, PlacementRules(), rng)
    assert q is not None and int(q.visible.sum()) == 20


def test_fresh_instance_ids_skip_existing(groups):
    lab, inst = street()
    put(lab, inst, CAR, slice(14, 18), slice(2, 10), 26000)
    put(lab, inst, CAR, slice(14, 18), slice(30, 38), 26004)
    scene = Scene.from_base(lab, inst)
    assert [scene.fresh_instance(CAR), scene.fresh_instance(CAR), scene.fresh_instance(PERSON)] == [26005, 26006, 24000]


def test_shift_keeps_rows_and_bounds_flip_mirrors(groups):
    lab, inst = street()
    scene = Scene.from_base(lab, inst)
    mask = np.zeros((2, 4), bool)
    mask[0, 0] = mask[1, :] = True
    rules = PlacementRules(shift=0.5, flip=True)
    seen_dx, seen_flip = set(), set()
    for seed in range(40):
        p = try_place(mask, (30, 8, 34, 10), False, WALL, 0, scene, groups, rules, np.random.default_rng(seed))
        assert p is not None and p.y0 == 8 and p.x0 >= 0 and p.x0 + 4 <= W
        assert p.x0 == 30 + p.dx
        assert (p.mask == (mask[:, ::-1] if p.flip else mask)).all()
        seen_dx.add(p.dx)
        seen_flip.add(p.flip)
    assert len(seen_dx) > 5 and seen_flip == {True, False} and max(seen_dx) <= 6
    # a segment cut by the left/right border is neither shifted nor flipped
    for seed in range(10):
        p = try_place(mask, (0, 8, 4, 10), True, WALL, 0, scene, groups, rules, np.random.default_rng(seed))
        assert p is not None and p.dx == 0 and not p.flip


# -- bases -------------------------------------------------------------------------------------------
def test_derived_base_fills_from_nearest_base_pixel(label_space):
    lab, inst = street()
    put(lab, inst, CAR, slice(13, 17), slice(20, 28), 26000)  # inside the road
    put(lab, inst, WALL, slice(9, 11), slice(5, 15))  # inside the building band (rows 8-11)
    put(lab, inst, PERSON, slice(2, 5), slice(30, 33), 24000)  # inside the sky
    lab[18:] = EGO  # below the road
    out = derived_base(lab, label_space)
    expected, _ = street()
    assert (out == expected).all()
    # a wall filling the band's height takes building near its ends and sky/road above/below its middle
    lab, _ = street()
    lab[8:12, 5:15] = WALL
    out = derived_base(lab, label_space)
    assert set(np.unique(out[8:12, 5:15]).tolist()) == {SKY, BUILDING, ROAD}
    with pytest.raises(LabelforgeError):
        derived_base(np.full((4, 4), CAR, np.uint8), label_space)


def test_drawn_base_holds_the_three_classes(label_space):
    out = drawn_base(64, 128, label_space, np.random.default_rng(3))
    assert set(np.unique(out).tolist()) == {SKY, BUILDING, ROAD}
    assert (out[-1, 64] == ROAD) and (out[0] == SKY).any()


# -- amounts and targets ----------------------------------------------------------------------------
def test_ratio_arithmetic():
    assert supplement_count(0.5, 8) == 8
    assert supplement_count(0.2, 8) == 2
    assert supplement_count(0.75, 8) == 24
    assert supplement_count(0.3, 2975) == 1275
    for bad in (0.0, 1.0, -0.1):
        with pytest.raises(LabelforgeError):
            supplement_count(bad, 8)


def test_target_weights():
    freq = np.array([0.9, 0.5, 0.1])
    assert np.allclose(target_weights("uniform", freq, n_maps=10), [0.0, 0.4 / 1.2, 0.8 / 1.2])
    inv = target_weights("inverse", np.array([0.5, 0.0]), n_maps=4)  # unseen class floored at 1/n_maps
    assert np.allclose(inv, [2 / 6, 4 / 6])
    goal = np.array([0.9, 0.9, 0.2])
    assert np.allclose(target_weights("s.json", freq, n_maps=10, goal=goal), [0.0, 0.4 / 0.5, 0.1 / 0.5])
    assert np.allclose(target_weights("uniform", np.array([0.3, 0.3]), n_maps=10), [0.5, 0.5])
