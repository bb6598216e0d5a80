"""Hand-built Cityscapes-layout datasets for the compose and export tests (20x40 street scenes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cityscapes_tools.writer import write_sample

H, W = 20, 40
ROAD, SIDEWALK, BUILDING, WALL, FENCE, POLE, VEGETATION, SKY, PERSON, CAR, EGO = 7, 8, 11, 12, 13, 17, 21, 23, 24, 26, 1


def street() -> tuple[np.ndarray, np.ndarray]:
    """Sky rows 0-7, building rows 8-11, road rows 12-19; instance map = plain ids."""
    lab = np.full((H, W), ROAD, np.uint8)
    lab[:8] = SKY
    lab[8:12] = BUILDING
    return lab, lab.astype(np.int32)


def put(lab: np.ndarray, inst: np.ndarray, cls: int, rows: slice, cols: slice, instance_id: int | None = None) -> None:
    lab[rows, cols] = cls
    inst[rows, cols] = cls if instance_id is None else instance_id


def photo_of(lab: np.ndarray, seed: int) -> np.ndarray:
    """A distinct photo per map: noise plus the label id, so pasted pixels are traceable."""
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 200, (*lab.shape, 3), dtype=np.uint8)
    img[..., 0] = lab
    return img


def write_maps(root: Path, maps: dict[str, tuple[np.ndarray, np.ndarray]], photos: bool = False) -> Path:
    for j, (key, (lab, inst)) in enumerate(sorted(maps.items())):
        write_sample(root, "train", key, label=lab, instance=inst, image=photo_of(lab, j) if photos else None)
    return root


def overlay_maps() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """A: wall (rows 8-11, cols 5-14), grounded car 26000, floating person 24000. B: two cars, no wall/person."""
    a_lab, a_inst = street()
    put(a_lab, a_inst, WALL, slice(8, 12), slice(5, 15))
    put(a_lab, a_inst, CAR, slice(13, 17), slice(20, 28), 26000)
    put(a_lab, a_inst, PERSON, slice(3, 7), slice(30, 33), 24000)
    b_lab, b_inst = street()
    put(b_lab, b_inst, CAR, slice(14, 18), slice(2, 10), 26000)
    put(b_lab, b_inst, CAR, slice(14, 18), slice(30, 38), 26001)
    return {"town_000000_000000": (a_lab, a_inst), "town_000000_000001": (b_lab, b_inst)}


def make_overlay_dataset(root: Path, photos: bool = False) -> Path:
    return write_maps(root, overlay_maps(), photos=photos)
