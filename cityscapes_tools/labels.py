"""The Cityscapes label table and the lookups built from it.

The table is data, exactly as published in cityscapesScripts (``helpers/labels.py``): 34 label ids
plus the license plate (-1). Evaluation uses the 19 classes whose ``train_id`` is not 255.

Example:
    >>> from cityscapes_tools.labels import NAME_TO_LABEL, ID_TO_TRAIN_ID
    >>> NAME_TO_LABEL["wall"].id, int(ID_TO_TRAIN_ID[12])
    (12, 3)
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = [
    "IGNORE_INDEX",
    "Label",
    "LABELS",
    "ID_TO_LABEL",
    "NAME_TO_LABEL",
    "TRAIN_ID_TO_LABEL",
    "EVAL_LABELS",
    "NUM_IDS",
    "NUM_TRAIN_IDS",
    "ID_TO_TRAIN_ID",
    "TRAIN_ID_TO_ID",
    "ID_PALETTE",
    "TRAIN_ID_PALETTE",
    "ids_to_train_ids",
    "train_ids_to_ids",
    "colorize",
]

IGNORE_INDEX = 255


class Label(NamedTuple):
    name: str
    id: int
    train_id: int
    category: str
    category_id: int
    has_instances: bool
    ignore_in_eval: bool
    color: tuple[int, int, int]


# fmt: off
LABELS: tuple[Label, ...] = (
    #     name                    id  trainId category        catId  hasInst ignore  color
    Label("unlabeled",             0, 255, "void",         0, False, True,  (0, 0, 0)),
    Label("ego vehicle",           1, 255, "void",         0, False, True,  (0, 0, 0)),
    Label("rectification border",  2, 255, "void",         0, False, True,  (0, 0, 0)),
    Label("out of roi",            3, 255, "void",         0, False, True,  (0, 0, 0)),
    Label("static",                4, 255, "void",         0, False, True,  (0, 0, 0)),
    Label("dynamic",               5, 255, "void",         0, False, True,  (111, 74, 0)),
    Label("ground",                6, 255, "void",         0, False, True,  (81, 0, 81)),
    Label("road",                  7,   0, "flat",         1, False, False, (128, 64, 128)),
    Label("sidewalk",              8,   1, "flat",         1, False, False, (244, 35, 232)),
    Label("parking",               9, 255, "flat",         1, False, True,  (250, 170, 160)),
    Label("rail track",           10, 255, "flat",         1, False, True,  (230, 150, 140)),
    Label("building",             11,   2, "construction", 2, False, False, (70, 70, 70)),
    Label("wall",                 12,   3, "construction", 2, False, False, (102, 102, 156)),
    Label("fence",                13,   4, "construction", 2, False, False, (190, 153, 153)),
    Label("guard rail",           14, 255, "construction", 2, False, True,  (180, 165, 180)),
    Label("bridge",               15, 255, "construction", 2, False, True,  (150, 100, 100)),
    Label("tunnel",               16, 255, "construction", 2, False, True,  (150, 120, 90)),
    Label("pole",                 17,   5, "object",       3, False, False, (153, 153, 153)),
    Label("polegroup",            18, 255, "object",       3, False, True,  (153, 153, 153)),
    Label("traffic light",        19,   6, "object",       3, False, False, (250, 170, 30)),
    Label("traffic sign",         20,   7, "object",       3, False, False, (220, 220, 0)),
    Label("vegetation",           21,   8, "nature",       4, False, False, (107, 142, 35)),
    Label("terrain",              22,   9, "nature",       4, False, False, (152, 251, 152)),
    Label("sky",                  23,  10, "sky",          5, False, False, (70, 130, 180)),
    Label("person",               24,  11, "human",        6, True,  False, (220, 20, 60)),
    Label("rider",                25,  12, "human",        6, True,  False, (255, 0, 0)),
    Label("car",                  26,  13, "vehicle",      7, True,  False, (0, 0, 142)),
    Label("truck",                27,  14, "vehicle",      7, True,  False, (0, 0, 70)),
    Label("bus",                  28,  15, "vehicle",      7, True,  False, (0, 60, 100)),
    Label("caravan",              29, 255, "vehicle",      7, True,  True,  (0, 0, 90)),
    Label("trailer",              30, 255, "vehicle",      7, True,  True,  (0, 0, 110)),
    Label("train",                31,  16, "vehicle",      7, True,  False, (0, 80, 100)),
    Label("motorcycle",           32,  17, "vehicle",      7, True,  False, (0, 0, 230)),
    Label("bicycle",              33,  18, "vehicle",      7, True,  False, (119, 11, 32)),
    Label("license plate",        -1,  -1, "vehicle",      7, False, True,  (0, 0, 142)),
)
# fmt: on

ID_TO_LABEL: dict[int, Label] = {lab.id: lab for lab in LABELS}
NAME_TO_LABEL: dict[str, Label] = {lab.name: lab for lab in LABELS}
# Several ids share train id 255 (and -1); only the 19 evaluation classes map back uniquely.
EVAL_LABELS: tuple[Label, ...] = tuple(
    sorted((lab for lab in LABELS if 0 <= lab.train_id < IGNORE_INDEX), key=lambda lab: lab.train_id)
)
TRAIN_ID_TO_LABEL: dict[int, Label] = {lab.train_id: lab for lab in EVAL_LABELS}
NUM_IDS = 34  # valid labelIds in a gtFine_labelIds.png are 0..33
NUM_TRAIN_IDS = len(EVAL_LABELS)  # 19


def _build_id_to_train_id() -> np.ndarray:
    # A 256-entry table so that ``lut[label_map]`` works for any uint8 map; unknown ids -> ignore.
    lut = np.full(256, IGNORE_INDEX, dtype=np.uint8)
    for lab in LABELS:
        if lab.id >= 0 and 0 <= lab.train_id < IGNORE_INDEX:
            lut[lab.id] = lab.train_id
    return lut


def _build_train_id_to_id() -> np.ndarray:
    lut = np.zeros(256, dtype=np.uint8)  # ignore (255) and unknown train ids -> 0 "unlabeled"
    for lab in EVAL_LABELS:
        lut[lab.train_id] = lab.id
    return lut


def _build_palette(key: str) -> np.ndarray:
    pal = np.zeros((256, 3), dtype=np.uint8)
    for lab in LABELS:
        idx = lab.id if key == "id" else lab.train_id
        if 0 <= idx < 256 and (key == "id" or idx < IGNORE_INDEX):
            pal[idx] = lab.color
    return pal


ID_TO_TRAIN_ID: np.ndarray = _build_id_to_train_id()
TRAIN_ID_TO_ID: np.ndarray = _build_train_id_to_id()
ID_PALETTE: np.ndarray = _build_palette("id")  # (256, 3) RGB, indexed by labelId
TRAIN_ID_PALETTE: np.ndarray = _build_palette("train_id")  # (256, 3) RGB, indexed by trainId; 255 -> black


def ids_to_train_ids(label_ids: np.ndarray) -> np.ndarray:
    """Map a labelIds array (any shape, uint8) to trainIds, ignored ids becoming 255."""
    return ID_TO_TRAIN_ID[label_ids]


def train_ids_to_ids(train_ids: np.ndarray) -> np.ndarray:
    """Map a trainIds array back to labelIds (255 -> 0 "unlabeled")."""
    return TRAIN_ID_TO_ID[train_ids]


def colorize(label_ids: np.ndarray) -> np.ndarray:
    """RGB colour image (H, W, 3) uint8 of a labelIds map, with the official palette."""
    return ID_PALETTE[label_ids]
