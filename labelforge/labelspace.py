"""Label spaces: the class table of a dataset, as labelforge sees it.

A label space names every label id a map may hold, which of them are evaluated (their train ids;
255 means ignored), which are instance ("thing") classes, their colours, and three groups that
composition needs: the ``ground`` classes objects may stand on, the ``standing`` classes that must
touch the ground, and the ``base`` classes (sky, road, building) a reconstructed map starts from.

Ids are what labelforge works with: 0..254, compact, the width of the generator's one-hot input. A
class whose mask files store another value (Pascal VOC's 255 "void") says so with ``value``; readers
map values to ids on the way in and exports map them back. Cityscapes and Pascal VOC are built in;
another dataset plugs in with a JSON or YAML file of the shape ``LabelSpace.to_dict`` gives
(docs/datasets.md; ``labelforge labelspace init ROOT`` drafts one).

Example:
    >>> from labelforge.labelspace import get_label_space
    >>> ls = get_label_space("cityscapes")
    >>> ls.num_classes, ls.get("wall").train_id, ls.num_ids
    (19, 3, 34)
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError, LabelforgeError

__all__ = [
    "ClassDef",
    "LabelSpace",
    "get_label_space",
    "read_label_space_file",
    "cityscapes_label_space",
    "voc_label_space",
    "voc_colormap",
    "LABEL_SPACES",
]


@dataclass(frozen=True)
class ClassDef:
    name: str
    id: int
    train_id: int  # 255: not evaluated
    has_instances: bool
    color: tuple[int, int, int]
    category: str = ""
    value: int | None = None  # the value mask files store for this class, when it is not ``id``

    @property
    def stored(self) -> int:
        """The value that stands for this class in the dataset's mask files."""
        return self.id if self.value is None else self.value


@dataclass(frozen=True)
class LabelSpace:
    name: str
    classes: tuple[ClassDef, ...]
    ignore_index: int = 255
    ground: tuple[str, ...] = ()
    standing: tuple[str, ...] = ()
    base: tuple[str, ...] = ()
    _by_name: dict[str, ClassDef] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_name = {c.name: c for c in self.classes}
        if len(by_name) != len(self.classes):
            raise LabelforgeError(f"label space {self.name!r}: duplicate class names")
        if not self.classes:
            raise LabelforgeError(f"label space {self.name!r}: no classes")
        ids = [c.id for c in self.classes]
        if len(set(ids)) != len(ids) or min(ids) < 0 or max(ids) > 254:
            raise LabelforgeError(f"label space {self.name!r}: ids must be unique and within 0..254")
        stored = [c.stored for c in self.classes]
        if len(set(stored)) != len(stored) or min(stored) < 0 or max(stored) > 255:
            raise LabelforgeError(f"label space {self.name!r}: stored values must be unique and within 0..255")
        for c in self.classes:
            if c.train_id != self.ignore_index and not 0 <= c.train_id < self.ignore_index:
                raise LabelforgeError(
                    f"label space {self.name!r}: class {c.name!r} has train id {c.train_id}; "
                    f"use 0..{self.ignore_index - 1}, or {self.ignore_index} for an ignored class"
                )
        train_ids = [c.train_id for c in self.classes if c.train_id != self.ignore_index]
        if sorted(train_ids) != list(range(len(train_ids))):
            raise LabelforgeError(f"label space {self.name!r}: train ids must number the evaluated classes 0..N-1")
        for gname, group in (("ground", self.ground), ("standing", self.standing), ("base", self.base)):
            for n in group:
                if n not in by_name:
                    raise LabelforgeError(f"label space {self.name!r}: unknown class {n!r} in the {gname} group")
        object.__setattr__(self, "_by_name", by_name)

    # -- lookups ---------------------------------------------------------------------------------
    @cached_property  # asked once per sample by shard writers and generator inputs
    def num_ids(self) -> int:
        """Label ids lie in ``0..num_ids-1`` (the one-hot width of the generator input)."""
        return max(c.id for c in self.classes) + 1

    @cached_property
    def eval_classes(self) -> tuple[ClassDef, ...]:
        return tuple(sorted((c for c in self.classes if c.train_id != self.ignore_index), key=lambda c: c.train_id))

    @property
    def num_classes(self) -> int:
        """Number of evaluated classes (train ids ``0..num_classes-1``)."""
        return len(self.eval_classes)

    @property
    def class_names(self) -> list[str]:
        """Names of the evaluated classes in train-id order."""
        return [c.name for c in self.eval_classes]

    def get(self, key: str | int) -> ClassDef:
        """A class by name (case-insensitive) or label id; unknown keys list the valid names."""
        if isinstance(key, int) or (isinstance(key, str) and key.isdigit()):
            for c in self.classes:
                if c.id == int(key):
                    return c
        else:
            c = self._by_name.get(key) or self._by_name.get(key.lower().replace("_", " "))
            if c is not None:
                return c
        valid = ", ".join(c.name for c in self.classes)
        raise LabelforgeError(f"unknown class {key!r} in label space {self.name!r}; valid: {valid}")

    def ids(self, names: tuple[str, ...] | list[str]) -> list[int]:
        return [self.get(n).id for n in names]

    @cached_property
    def id_to_train_id(self) -> np.ndarray:
        """(256,) uint8 lookup table: label id -> train id, anything else -> ignore_index."""
        lut = np.full(256, self.ignore_index, dtype=np.uint8)
        for c in self.eval_classes:
            lut[c.id] = c.train_id
        return lut

    @cached_property
    def train_id_to_id(self) -> np.ndarray:
        lut = np.zeros(256, dtype=np.uint8)
        for c in self.eval_classes:
            lut[c.train_id] = c.id
        return lut

    @cached_property
    def palette(self) -> np.ndarray:
        """(256, 3) uint8 RGB, indexed by label id."""
        pal = np.zeros((256, 3), dtype=np.uint8)
        for c in self.classes:
            pal[c.id] = c.color
        return pal

    @cached_property
    def instance_ids(self) -> frozenset[int]:
        return frozenset(c.id for c in self.classes if c.has_instances)

    @cached_property
    def value_to_id(self) -> np.ndarray:
        """(256,) uint8: stored mask value -> label id; 255 marks a value no class stores."""
        lut = np.full(256, 255, dtype=np.uint8)
        for c in self.classes:
            lut[c.stored] = c.id
        return lut

    @cached_property
    def id_to_value(self) -> np.ndarray:
        """(256,) uint8: label id -> the value mask files store (what an export writes)."""
        lut = np.zeros(256, dtype=np.uint8)
        for c in self.classes:
            lut[c.id] = c.stored
        return lut

    @property
    def stores_ids(self) -> bool:
        """True when every class stores its own id (no mapping on reading or writing)."""
        return all(c.value is None or c.value == c.id for c in self.classes)

    # -- serialisation ---------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ignore_index": self.ignore_index,
            "ground": list(self.ground),
            "standing": list(self.standing),
            "base": list(self.base),
            "classes": [_class_dict(c) for c in self.classes],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LabelSpace:
        try:
            classes = tuple(
                ClassDef(
                    name=str(c["name"]),
                    id=int(c["id"]),
                    train_id=int(c["train_id"]),
                    has_instances=bool(c["has_instances"]),
                    color=tuple(int(v) for v in c["color"]),  # type: ignore[arg-type]
                    category=str(c.get("category", "")),
                    value=None if c.get("value") is None else int(c["value"]),
                )
                for c in d["classes"]
            )
            return cls(
                name=str(d["name"]),
                classes=classes,
                ignore_index=int(d.get("ignore_index", 255)),
                ground=tuple(d.get("ground", ())),
                standing=tuple(d.get("standing", ())),
                base=tuple(d.get("base", ())),
            )
        except KeyError as exc:
            raise LabelforgeError(f"a class or the space lacks the {exc.args[0]!r} field") from None
        except (TypeError, ValueError, AttributeError) as exc:
            raise LabelforgeError(f"malformed label space description: {exc!r}") from None

    def to_json(self) -> str:
        return self._json

    @cached_property
    def _json(self) -> str:  # every shard a writer finishes stores it
        return json.dumps(self.to_dict(), sort_keys=True)

    @cached_property
    def fingerprint(self) -> str:
        """Short hash of the table; two label spaces are compatible when fingerprints match."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:16]


def _class_dict(c: ClassDef) -> dict[str, Any]:
    d = {**asdict(c), "color": list(c.color)}
    if c.value is None:  # absent unless set, so older label spaces keep their JSON and fingerprint
        del d["value"]
    return d


def cityscapes_label_space() -> LabelSpace:
    from cityscapes_tools.labels import LABELS

    classes = tuple(
        ClassDef(
            name=lab.name,
            id=lab.id,
            train_id=lab.train_id if 0 <= lab.train_id < 255 else 255,
            has_instances=lab.has_instances,
            color=lab.color,
            category=lab.category,
        )
        for lab in LABELS
        if lab.id >= 0  # the license plate (-1) never appears in a labelIds map
    )
    return LabelSpace(
        name="cityscapes",
        classes=classes,
        ground=("road", "sidewalk", "parking", "terrain", "ground", "rail track"),
        standing=("person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle", "pole"),
        base=("sky", "road", "building"),
    )


VOC_CLASSES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)  # fmt: skip


def voc_colormap(n: int = 256) -> np.ndarray:
    """(n, 3) uint8: Pascal VOC's palette (the bits of the index spread over R, G and B)."""
    idx = np.arange(n)
    cmap = np.zeros((n, 3), np.int64)
    for shift in range(8):
        for ch in range(3):
            cmap[:, ch] |= ((idx >> (3 * shift + ch)) & 1) << (7 - shift)
    return cmap.astype(np.uint8)


def voc_label_space() -> LabelSpace:
    """Pascal VOC 2012: background + 20 object classes, all evaluated; the border value 255 is ignored."""
    pal = voc_colormap()
    classes = tuple(
        ClassDef(name=n, id=i, train_id=i, has_instances=i > 0, color=tuple(int(v) for v in pal[i]))  # type: ignore[arg-type]
        for i, n in enumerate(VOC_CLASSES)
    )
    void = ClassDef(name="void", id=len(classes), train_id=255, has_instances=False, color=(224, 224, 192), value=255)
    return LabelSpace(name="voc", classes=(*classes, void))


LABEL_SPACES = {"cityscapes": cityscapes_label_space, "voc": voc_label_space}
LABEL_SPACE_SUFFIXES = (".json", ".yaml", ".yml")


def read_label_space_file(path: Path) -> LabelSpace:
    """A label space from a JSON or YAML file; a bad file raises one line naming it."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise InputError(path, "label space file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(path, f"cannot read label space file ({exc})") from None
    try:
        if path.suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except Exception as exc:  # json.JSONDecodeError, yaml.YAMLError: the parser's one-line reason
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(path, f"not valid {'YAML' if path.suffix != '.json' else 'JSON'}: {reason}") from None
    if not isinstance(data, dict):
        raise InputError(path, "not a valid label space: expected a mapping with 'name' and 'classes'")
    try:
        return LabelSpace.from_dict(data)
    except LabelforgeError as exc:
        raise InputError(path, f"not a valid label space: {exc}") from None


def get_label_space(name_or_path: str | Path = "cityscapes") -> LabelSpace:
    """A built-in label space by name, or one described by a JSON or YAML file."""
    key = str(name_or_path)
    if key in LABEL_SPACES:
        return LABEL_SPACES[key]()
    path = Path(key)
    if path.suffix in LABEL_SPACE_SUFFIXES or path.exists():
        return read_label_space_file(path)
    raise LabelforgeError(
        f"unknown label space {key!r}; built in: {', '.join(LABEL_SPACES)} (or a .json / .yaml label-space file)"
    )
