"""Label spaces: the class table of a dataset, as labelforge sees it.

A label space names every label id a map may hold, which of them are evaluated (their train ids),
which are instance ("thing") classes, their colours, and three groups that composition needs: the
``ground`` classes objects may stand on, the ``standing`` classes that must touch the ground, and the
``base`` classes (sky, road, building) a reconstructed map starts from. Cityscapes is built in;
another dataset plugs in with a JSON file of the same shape (``LabelSpace.to_dict``).

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

__all__ = ["ClassDef", "LabelSpace", "get_label_space", "cityscapes_label_space", "LABEL_SPACES"]


@dataclass(frozen=True)
class ClassDef:
    name: str
    id: int
    train_id: int  # 255: not evaluated
    has_instances: bool
    color: tuple[int, int, int]
    category: str = ""


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
        ids = [c.id for c in self.classes]
        if len(set(ids)) != len(ids) or min(ids) < 0 or max(ids) > 254:
            raise LabelforgeError(f"label space {self.name!r}: ids must be unique and within 0..254")
        for group in (self.ground, self.standing, self.base):
            for n in group:
                if n not in by_name:
                    raise LabelforgeError(f"label space {self.name!r}: unknown class {n!r} in a class group")
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

    # -- serialisation ---------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ignore_index": self.ignore_index,
            "ground": list(self.ground),
            "standing": list(self.standing),
            "base": list(self.base),
            "classes": [{**asdict(c), "color": list(c.color)} for c in self.classes],
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
        except (KeyError, TypeError, ValueError) as exc:
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


LABEL_SPACES = {"cityscapes": cityscapes_label_space}


def get_label_space(name_or_path: str | Path = "cityscapes") -> LabelSpace:
    """A built-in label space by name, or one described by a JSON file."""
    key = str(name_or_path)
    if key in LABEL_SPACES:
        return LABEL_SPACES[key]()
    path = Path(key)
    if path.suffix == ".json" or path.exists():
        try:
            return LabelSpace.from_dict(json.loads(path.read_text()))
        except FileNotFoundError:
            raise InputError(path, "label space file not found") from None
        except (json.JSONDecodeError, LabelforgeError) as exc:
            raise InputError(path, f"not a valid label space: {exc}") from None
    raise LabelforgeError(f"unknown label space {key!r}; built in: {', '.join(LABEL_SPACES)} (or a JSON file)")
