"""Per-class IoU from a file: train-eval's metrics.json, a plain JSON object, or a two-column CSV.

Accepted forms (class names as in the label space, case-insensitive, ``_`` for spaces allowed):

* ``{"schema": "labelforge.metrics/1", "per_class_iou": {"road": 0.97, "train": null, ...}, ...}``
* ``{"road": 0.97, "wall": 41.2, ...}``
* CSV ``name,iou`` rows, with or without a header line (one naming an ``iou`` column, and ``class`` or
  ``name``).

IoU may be a fraction (0..1) or a percentage (0..100): a file whose largest value exceeds 1 is read as
percent. ``null`` / empty / ``nan`` means "not measured" (a class absent from the evaluation set).

Example:
    >>> from labelforge.stats.iou import load_iou  # doctest: +SKIP
    >>> t = load_iou("runs/base/metrics.json", get_label_space("cityscapes"))  # doctest: +SKIP
    >>> t.values["wall"], t.scale  # doctest: +SKIP
    (0.412, 'fraction')
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError, LabelforgeError
from ..labelspace import LabelSpace

__all__ = ["METRICS_SCHEMA", "IouTable", "load_iou", "parse_iou_text"]

METRICS_SCHEMA = "labelforge.metrics/1"
_NONE_WORDS = {"", "nan", "null", "none", "n/a", "na", "-"}


@dataclass(frozen=True)
class IouTable:
    """IoU per class name (canonical names of the label space), as fractions 0..1 or None."""

    path: Path
    format: str  # "metrics" | "json" | "csv"
    scale: str  # "fraction" | "percent": how the file stated it
    values: dict[str, float | None]


def load_iou(path: str | Path, label_space: LabelSpace) -> IouTable:
    """Read and normalise an IoU file; every problem is an :class:`InputError` naming the file."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, "IoU file not found")
    if path.is_dir():
        raise InputError(path, "IoU file is a directory")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InputError(path, f"cannot read IoU file ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise InputError(path, "IoU file is not UTF-8 text") from None
    try:
        fmt, raw = parse_iou_text(text, csv_hint=path.suffix.lower() == ".csv")
        scale, values = _normalise(raw, label_space)
    except ValueError as exc:
        raise InputError(path, str(exc)) from None
    return IouTable(path=path, format=fmt, scale=scale, values=values)


def parse_iou_text(text: str, csv_hint: bool = False) -> tuple[str, list[tuple[str, float | None]]]:
    """(format, [(class name as written, IoU as written or None)]); ValueError says what is wrong."""
    if not csv_hint and text.lstrip().startswith(("{", "[")):
        return _parse_json(text)
    return "csv", _parse_csv(text)


def _number(value: Any, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{where}: IoU {value!r} is not a number")
    return None if math.isnan(value) else float(value)


def _parse_json(text: str) -> tuple[str, list[tuple[str, float | None]]]:
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(obj, dict):
        raise ValueError("expected a JSON object of class name -> IoU")
    fmt = "json"
    schema = obj.get("schema")
    if schema is not None or "per_class_iou" in obj:
        if schema is not None and schema != METRICS_SCHEMA:
            raise ValueError(f"unsupported schema {schema!r} (expected {METRICS_SCHEMA!r})")
        obj, fmt = obj.get("per_class_iou"), "metrics"
        if not isinstance(obj, dict):
            raise ValueError("metrics file has no 'per_class_iou' object")
    return fmt, [(str(k), _number(v, f"class {k!r}")) for k, v in obj.items()]


def _parse_csv(text: str) -> list[tuple[str, float | None]]:
    rows = [
        (n, r)
        for n, r in enumerate(csv.reader(io.StringIO(text)), start=1)
        if r and any(c.strip() for c in r) and not r[0].lstrip().startswith("#")
    ]
    if not rows:
        return []
    name_col, iou_col = 0, 1
    first = [c.strip().lower() for c in rows[0][1]]
    if "iou" in first:  # a header line names its columns; anything else is data
        name_col = next((i for i, c in enumerate(first) if c in ("class", "name", "class_name")), 0)
        iou_col = next((i for i, c in enumerate(first) if c == "iou"), 1)
        rows = rows[1:]
    out = []
    for lineno, row in rows:
        if len(row) <= max(name_col, iou_col):
            raise ValueError(f"line {lineno}: expected 'name,iou', found {','.join(row)!r}")
        cell = row[iou_col].strip()
        if cell.lower() in _NONE_WORDS:
            out.append((row[name_col].strip(), None))
        elif _is_number(cell):
            out.append((row[name_col].strip(), _number(float(cell), f"line {lineno}")))
        else:
            raise ValueError(f"line {lineno}: IoU {cell!r} is not a number")
    return out


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def _normalise(raw: list[tuple[str, float | None]], ls: LabelSpace) -> tuple[str, dict[str, float | None]]:
    if not raw:
        raise ValueError("no class IoU values found")
    values: dict[str, float | None] = {}
    for name, v in raw:
        try:
            cls = ls.get(name)
        except LabelforgeError:
            raise ValueError(f"unknown class {name!r} (valid: {', '.join(ls.class_names)})") from None
        if cls.name in values:
            raise ValueError(f"class {cls.name!r} is listed twice")
        if v is not None and v < 0:
            raise ValueError(f"class {cls.name!r}: negative IoU {v}")
        values[cls.name] = v
    known = [v for v in values.values() if v is not None]
    if not known:
        raise ValueError("every IoU value is empty")
    top = max(known)
    if top > 100:
        raise ValueError(f"IoU {top} is above 100 (expected a fraction 0..1 or a percentage 0..100)")
    # A fraction never exceeds 1; any value above it means the file speaks in percent.
    scale = "percent" if top > 1 else "fraction"
    if scale == "percent":
        values = {k: (None if v is None else v / 100.0) for k, v in values.items()}
    return scale, values
