"""Small VOC-, ADE20K- and folders-layout datasets made from a mini-Cityscapes (no downloads).

Each converted dataset keeps the 19 evaluated Cityscapes classes under their names, stored as VOC and
mmsegmentation do (train ids, 255 ignored) or as ADE20K does (train id + 1, 0 = other), so statistics
can be compared class by class with the Cityscapes source.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cityscapes_tools.io import read_image, read_label
from cityscapes_tools.layout import list_samples
from labelforge.labelspace import ClassDef, LabelSpace, get_label_space
from labelforge.layouts import parse_layout

CS = get_label_space("cityscapes")
FOLDERS = "folders:img=_leftImg8bit.png,ann=_gtFine_labelTrainIds.png"


def train_id_space(name: str = "cs-trainids") -> LabelSpace:
    """Cityscapes' 19 classes with ids = train ids, and 255 stored for everything ignored (VOC, folders)."""
    classes = [ClassDef(c.name, c.train_id, c.train_id, c.has_instances, c.color, c.category) for c in CS.eval_classes]
    classes.append(ClassDef("void", 19, 255, False, (224, 224, 192), value=255))
    names = {c.name for c in classes}
    return LabelSpace(
        name=name,
        classes=tuple(classes),
        ground=tuple(n for n in CS.ground if n in names),
        standing=tuple(n for n in CS.standing if n in names),
        base=CS.base,
    )


def zero_other_space(name: str = "cs-ade") -> LabelSpace:
    """ADE20K's convention: 0 = other (ignored), the classes from 1; no groups (reconstruct refuses)."""
    classes = [ClassDef("other", 0, 255, False, (0, 0, 0))]
    classes += [ClassDef(c.name, c.train_id + 1, c.train_id, c.has_instances, c.color) for c in CS.eval_classes]
    return LabelSpace(name=name, classes=tuple(classes))


def convert(src: Path, dst: Path, spec: str, ls: LabelSpace, splits: tuple[str, ...] = ("train", "val")) -> Path:
    """Write every sample of the Cityscapes root ``src`` into ``dst`` in layout ``spec`` and label space ``ls``."""
    ignored = next(c.id for c in ls.classes if c.train_id == ls.ignore_index)
    lut = np.full(256, ignored, np.uint8)
    for c in CS.eval_classes:
        lut[c.id] = ls.get(c.name).id
    writer = parse_layout(spec).writer(dst, ls)
    for split in splits:
        for s in list_samples(src, split, require_images=True):
            writer.write(split, s.key, label=lut[read_label(s.label)], instance=None, image=read_image(s.image))
    writer.finish()
    return dst


def write_label_space(ls: LabelSpace, path: Path) -> Path:
    """The label space as a file: JSON, or YAML (the same dict) by suffix."""
    import json

    import yaml

    d = ls.to_dict()
    path.write_text(yaml.safe_dump(d) if path.suffix in (".yaml", ".yml") else json.dumps(d, indent=1))
    return path
