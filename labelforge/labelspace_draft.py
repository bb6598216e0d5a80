"""``labelforge labelspace init``: draft a label-space file from the masks of a dataset, for the user to edit.

Every mask of the chosen splits is read once (grey values or palette indices) and counted. Each value
found becomes a class: its id is the value itself, except 255, which gets the next free id and keeps
255 as its stored ``value``. Names, colours, train ids, thing flags and groups come from the layout's
built-in label space where it knows the value (Cityscapes, Pascal VOC); otherwise names are
``class_<value>``, colours the masks' palette where they have one (else VOC's colour map), and the
layout's customary ignore value (VOC and folders: 255, ADE20K: 0) is not evaluated. Groups stay empty
unless known: commands that need one say so.

YAML output carries comments (what each field means, the pixel share of each class); JSON does not.

Example:
    >>> from labelforge.labelspace_draft import DraftConfig, draft_label_space  # doctest: +SKIP
    >>> draft_label_space(DraftConfig(root="data/ADEChallengeData2016", out="ade.yaml")).classes  # doctest: +SKIP
    151
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cityscapes_tools import io as csio

from .errors import InputError, LabelforgeError, OutputExistsError
from .labelspace import ClassDef, LabelSpace, get_label_space, voc_colormap
from .layouts import resolve_layout
from .layouts.masks import mask_palette, read_mask_values, value_histogram
from .outputs import check_writable
from .progress import NullProgress, Progress

__all__ = ["DraftConfig", "DraftResult", "draft_label_space", "render_yaml"]


@dataclass(frozen=True)
class DraftConfig:
    root: Path
    out: Path
    layout: str = "auto"
    splits: tuple[str, ...] = ()  # () = every split
    name: str | None = None  # default: the root folder's name
    workers: int = 1
    overwrite: bool = False


@dataclass(frozen=True)
class DraftResult:
    out: Path
    label_space: LabelSpace
    masks: int
    palette: bool  # colours came from the masks' palette


def _scan(samples: list, workers: int, progress: Progress) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(pixels per value, masks per value, the first palette seen) over every mask."""
    pixels, masks = np.zeros(256, np.int64), np.zeros(256, np.int64)

    def one(path: Path) -> np.ndarray:
        return value_histogram(read_mask_values(path))

    with progress.task("reading masks", total=len(samples)) as bar, ThreadPoolExecutor(max(1, workers)) as pool:
        for hist in pool.map(one, [s.label for s in samples]):
            pixels += hist
            masks += hist > 0
            bar.advance()
    palette = mask_palette(csio.read_bytes(samples[0].label)) if samples else None
    return pixels, masks, palette


def _known(default: str | None) -> dict[int, ClassDef]:
    return {c.stored: c for c in get_label_space(default).classes} if default else {}


def _classes(values: list[int], ignored: tuple[int, ...], known: dict[int, ClassDef], palette: np.ndarray | None):
    cmap = voc_colormap()
    next_id = max([v for v in values if v != 255], default=-1) + 1
    out: list[ClassDef] = []
    for v in values:
        k = known.get(v)
        cid = v if v != 255 else next_id
        if palette is not None and v < len(palette):
            color = tuple(int(c) for c in palette[v])
        else:
            color = k.color if k is not None else tuple(int(c) for c in cmap[v])
        name = k.name if k is not None else ("void" if v == 255 else f"class_{v}")
        evaluated = (k.train_id != 255) if k is not None else v not in ignored
        out.append(
            ClassDef(
                name=name,
                id=cid,
                train_id=0 if evaluated else 255,  # numbered below
                has_instances=k.has_instances if k is not None else False,
                color=color,  # type: ignore[arg-type]
                category=k.category if k is not None else "",
                value=v if v != cid else None,
            )
        )
    out.sort(key=lambda c: c.id)
    numbered, t = [], 0
    for c in out:
        if c.train_id != 255:
            c = ClassDef(c.name, c.id, t, c.has_instances, c.color, c.category, c.value)
            t += 1
        numbered.append(c)
    return tuple(numbered)


def render_yaml(ls: LabelSpace, pixels: np.ndarray, masks: np.ndarray, n_masks: int, source: str) -> str:
    """The label space as commented YAML, one class per line (JSON-quoted strings are valid YAML)."""
    total = max(int(pixels.sum()), 1)
    lines = [
        f"# Label space drafted by `labelforge labelspace init` from {source} ({n_masks} masks).",
        "# Edit names, colours and groups, then pass it with --label-space (or keep it in the dataset root",
        "# as labelspace.yaml). Fields of a class:",
        "#   id: label id labelforge uses (0..254)      value: what the mask files store, when not the id",
        "#   train_id: 0..N-1 evaluated, 255 ignored    has_instances: a thing (countable) class, else stuff",
        "# Groups (class names): ground = where objects stand; standing = objects that must touch ground;",
        "# base = sky, road, building (in that order), which compose --method reconstruct needs.",
        f"name: {json.dumps(ls.name)}",
        f"ignore_index: {ls.ignore_index}",
        "classes:",
    ]
    for c in ls.classes:
        fields = {"name": c.name, "id": c.id, "train_id": c.train_id, "has_instances": c.has_instances}
        fields["color"] = list(c.color)
        if c.category:
            fields["category"] = c.category
        if c.value is not None:
            fields["value"] = c.value
        body = ", ".join(f"{k}: {json.dumps(v)}" for k, v in fields.items())
        share = f"{100 * pixels[c.stored] / total:.3g}% of pixels, in {int(masks[c.stored])} masks"
        lines.append(f"  - {{{body}}}  # {share}")
    for group in ("ground", "standing", "base"):
        lines.append(f"{group}: {json.dumps(list(getattr(ls, group)))}")
    return "\n".join(lines) + "\n"


def draft_label_space(cfg: DraftConfig, progress: Progress | None = None) -> DraftResult:
    """Read every mask of ``cfg.root`` and write a label-space draft to ``cfg.out`` (YAML or JSON by suffix)."""
    progress = progress or NullProgress()
    out = Path(cfg.out)
    if out.suffix not in (".yaml", ".yml", ".json"):
        raise LabelforgeError(f"--out must end in .yaml, .yml or .json, got {out.name!r}")
    if out.exists() and not cfg.overwrite:
        raise OutputExistsError(out, "exists; pass --overwrite to replace it")
    check_writable(out.parent)
    root = Path(cfg.root)
    layout = resolve_layout(root, cfg.layout)
    splits = list(cfg.splits) or layout.splits(root)
    samples = [s for split in splits for s in layout.list_samples(root, split)]
    if not samples:
        raise InputError(root, "no masks to read")
    pixels, masks, palette = _scan(samples, cfg.workers, progress)
    values = np.flatnonzero(pixels).tolist()
    classes = _classes(values, layout.ignored_values, _known(layout.default_label_space), palette)
    known = get_label_space(layout.default_label_space) if layout.default_label_space else None
    groups = {}
    if known is not None:
        names = {c.name for c in classes}
        groups = {g: tuple(n for n in getattr(known, g) if n in names) for g in ("ground", "standing", "base")}
        if len(groups["base"]) != 3:
            groups["base"] = ()
    ls = LabelSpace(name=cfg.name or root.resolve().name, classes=classes, **groups)
    if out.suffix == ".json":
        text = json.dumps(ls.to_dict(), indent=2) + "\n"
    else:
        text = render_yaml(ls, pixels, masks, len(samples), f"{root} ({layout.spec()} layout)")
    csio.atomic_write_bytes(out, text.encode())
    return DraftResult(out=out, label_space=ls, masks=len(samples), palette=palette is not None)
