"""Which classes compose pastes: names from the command line or a stats.json, and reconstruct's weights.

``--classes auto`` reads ``recommendation.classes`` (class names) from a stats.json written by
``labelforge stats``. Reconstruct draws the classes of each map with probabilities from ``--target``:

* ``uniform``: weight ``max(f_top - f_c, 0)`` where ``f_c`` is the share of training maps holding class
  ``c`` and ``f_top`` that of the most frequent pasteable class: deficits to an even distribution
  (equal weights when the classes are already even);
* ``inverse``: weight ``1 / max(f_c, 1/n_maps)``: rare classes most;
* a JSON file: ``recommendation.target`` (class name -> weight) when present, otherwise per-class
  image frequencies found in it (``classes`` entries with ``image_frequency``) taken as the target
  ``t_c``, with weight ``max(t_c - f_c, 0)``.

Example:
    >>> import numpy as np
    >>> from labelforge.compose.targets import target_weights
    >>> target_weights("inverse", np.array([0.5, 0.25]), n_maps=4).tolist()
    [0.3333333333333333, 0.6666666666666666]
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError, LabelforgeError
from ..labelspace import LabelSpace

__all__ = ["read_stats", "recommended_classes", "stats_target", "target_weights"]

_FREQ_KEYS = ("image_frequency", "image_freq", "appearance_frequency", "image_share")


def read_stats(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        obj = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(path, "stats file not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(path, f"not a readable JSON stats file ({exc})") from None
    if not isinstance(obj, dict):
        raise InputError(path, "stats file must hold a JSON object")
    return obj


def recommended_classes(path: str | Path, ls: LabelSpace) -> list[str]:
    """Canonical names of ``recommendation.classes`` in a stats.json; each must be a class of ``ls``."""
    rec = read_stats(path).get("recommendation")
    names = rec.get("classes") if isinstance(rec, dict) else None
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise InputError(path, 'no "recommendation": {"classes": [...]} with class names (run labelforge stats)')
    try:
        return [ls.get(n).name for n in names]
    except LabelforgeError as exc:
        raise InputError(path, str(exc)) from None


def _per_class_frequency(obj: dict[str, Any]) -> dict[str, float]:
    """Class name -> image frequency from the shapes a stats.json may use."""
    classes = obj.get("classes")
    out: dict[str, float] = {}
    if isinstance(classes, list):
        for c in classes:
            if isinstance(c, dict) and isinstance(c.get("name"), str):
                for k in _FREQ_KEYS:
                    if isinstance(c.get(k), int | float):
                        out[c["name"]] = float(c[k])
                        break
    elif isinstance(classes, dict):
        for name, c in classes.items():
            for k in _FREQ_KEYS:
                if isinstance(c, dict) and isinstance(c.get(k), int | float):
                    out[name] = float(c[k])
                    break
    return out


def stats_target(path: str | Path, ls: LabelSpace) -> tuple[str, dict[int, float]]:
    """("weights" | "frequency", label id -> value) read from a stats.json used as ``--target``."""
    obj = read_stats(path)
    rec = obj.get("recommendation")
    kind, raw = "frequency", _per_class_frequency(obj)
    if isinstance(rec, dict) and isinstance(rec.get("target"), dict):
        kind, raw = "weights", {k: v for k, v in rec["target"].items() if isinstance(v, int | float)}
    if not raw:
        raise InputError(path, 'no per-class "image_frequency" nor "recommendation": {"target": {...}} to aim at')
    try:
        values = {ls.get(name).id: float(v) for name, v in raw.items()}
    except LabelforgeError as exc:
        raise InputError(path, str(exc)) from None
    if any(v < 0 for v in values.values()):
        raise InputError(path, "target values must be non-negative")
    return kind, values


def target_weights(
    target: str, freq: np.ndarray, *, n_maps: int, goal: np.ndarray | None = None, kind: str = "frequency"
) -> np.ndarray:
    """Paste weights (summing to 1) of classes whose image frequencies are ``freq``.

    ``goal`` holds the per-class values of a stats-file target (``kind`` "weights" or "frequency").
    When no class falls short of the target, every class gets the same weight.
    """
    freq = np.asarray(freq, float)
    if target == "uniform":
        w = np.maximum(freq.max(initial=0.0) - freq, 0.0)
    elif target == "inverse":
        w = 1.0 / np.maximum(freq, 1.0 / max(n_maps, 1))
    else:
        assert goal is not None
        w = np.asarray(goal, float) if kind == "weights" else np.maximum(np.asarray(goal, float) - freq, 0.0)
    total = w.sum()
    return w / total if total > 0 else np.full(freq.shape, 1.0 / max(freq.size, 1))
