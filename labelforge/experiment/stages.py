"""Stages of an experiment and their keys: a stage's output is named by a hash of everything that decides it.

A stage is one library call (synth, stats, train-generator, compose, render, train-eval, report).
Its key hashes its kind, its ``params`` (the settings that decide the output) and the keys of its
inputs, so a key changes exactly when the output would; ``runtime`` settings (workers, device,
batch size of rendering, ...) are left out, as each command already lets a resume change them.
The output lives in ``OUT/<kind>/<label>-<key>``: a finished plan rerun finds every folder
finished, a changed option gives new keys only downstream of it, and an unfinished folder is
resumed by the command that wrote it.

Example:
    >>> a = Stage.make("compose", "overlay-wall", {"method": "overlay", "ratio": 0.5}, inputs={})
    >>> b = Stage.make("compose", "overlay-wall", {"ratio": 0.5, "method": "overlay"}, {}, runtime={"workers": 8})
    >>> a.key == b.key, len(a.key)
    (True, 12)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..outputs import SUCCESS

__all__ = ["KEY_LENGTH", "External", "Stage", "stage_status", "hash_key", "STATUS_DONE", "STATUS_RESUME", "STATUS_RUN"]

KEY_LENGTH = 12
STATUS_DONE, STATUS_RESUME, STATUS_RUN = "done", "resume", "run"
STAGE_RECORD = "stage.json"


def hash_key(obj: Any) -> str:
    """A short stable hash of a JSON-able object (dict key order does not matter)."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:KEY_LENGTH]


@dataclass(frozen=True)
class External:
    """An input the plan names but no stage makes (a dataset root, a generator checkpoint)."""

    path: Path
    key: str

    @classmethod
    def of(cls, path: Path, identity: Mapping[str, Any] | None = None) -> External:
        """Keyed by its absolute path and whatever else identifies it (a checkpoint's size and mtime)."""
        return cls(path, hash_key({"path": str(path.resolve()), **(identity or {})}))

    def output(self, out: Path) -> Path:
        return self.path


@dataclass(frozen=True, eq=False)
class Stage:
    kind: str
    label: str  # human-readable part of the folder name
    params: dict[str, Any]  # decides the output: keyed
    inputs: dict[str, Stage | External]  # name -> upstream stage or external input: keyed by their keys
    key: str
    runtime: dict[str, Any] = field(default_factory=dict)  # does not decide the output: not keyed
    meta: dict[str, Any] = field(default_factory=dict)  # what the report needs to know (condition, seed...)
    processes: int = 1  # torchrun processes this stage asks for
    fixed_dir: str | None = None  # a stable folder (the report) instead of <kind>/<label>-<key>

    @classmethod
    def make(
        cls,
        kind: str,
        label: str,
        params: dict[str, Any],
        inputs: dict[str, Stage | External],
        runtime: dict[str, Any] | None = None,
        meta: dict[str, Any] | None = None,
        processes: int = 1,
        fixed_dir: str | None = None,
    ) -> Stage:
        key = hash_key({"kind": kind, "params": params, "inputs": {k: v.key for k, v in inputs.items()}})
        return cls(kind, label, params, inputs, key, runtime or {}, meta or {}, processes, fixed_dir)

    def output(self, out: Path) -> Path:
        """This stage's folder under the experiment folder ``out``."""
        if self.fixed_dir is not None:
            return out / self.fixed_dir
        return out / self.kind / f"{self.label}-{self.key}"

    @property
    def upstream(self) -> list[Stage]:
        return [s for s in self.inputs.values() if isinstance(s, Stage)]

    @property
    def name(self) -> str:
        return f"{self.kind} {self.label}"


def stage_status(stage: Stage, out: Path) -> str:
    """done (finished, and for a fixed folder made with this key), resume (started), or run."""
    folder = stage.output(out)
    if (folder / SUCCESS).exists():
        if stage.fixed_dir is None:
            return STATUS_DONE
        record = folder / STAGE_RECORD
        if record.exists() and json.loads(record.read_text()).get("key") == stage.key:
            return STATUS_DONE
        return STATUS_RUN  # made by another version of the plan: replaced
    return STATUS_RESUME if folder.exists() else STATUS_RUN
