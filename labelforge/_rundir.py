"""The run dir of a training command: one harness for ``train-eval`` and ``train-generator``.

Both trainers write the same kind of folder and follow the output-folder rules of
:mod:`labelforge.outputs`::

    RUN_DIR/
      run.json      config sections, label space, sampler, world size, device, versions
      log.jsonl     one JSON object per event: {"time", "event", ...}; events of epoch e carry "epoch": e
      <checkpoint>  one torch.save'd dict, rewritten atomically after every epoch
      _SUCCESS      written last

Under ``torchrun`` every process opens the run dir; rank 0 alone writes, the others wait at barriers.

A checkpoint explains itself: ``format``, ``command``, the config sections (e.g. ``config``, or
``train_config`` and ``generator_config``), ``label_space`` (the table) and
``label_space_fingerprint``, ``sampler`` (what fixes the order of the data), ``epoch`` (finished
epochs), ``step`` (optimizer steps), ``labelforge_version``, ``torch_version``; then the trainer's
own entries (model and optimizer states, its counters). ``torch.load(weights_only=True)`` reads it.

Resume rules, the same for every trainer: a resume continues the run in the checkpoint, so the
call must describe that run. Every config field must equal the checkpoint's except the fields the
trainer names in ``RunSpec.may_change`` (runtime settings that leave the result alone:
:data:`RUNTIME_FIELDS`, plus a trainer's own, such as the generator's ``epochs`` to train longer);
the label space must have the same fingerprint and the sampler state must be equal (the same seed
and the same number of samples). The first difference stops the run with one line naming the
checkpoint. Log lines of an epoch a kill interrupted are dropped, since that epoch runs again.

Example:
    >>> run = RunDir.open("runs/a", spec, info=info, device=device, resume=True)  # doctest: +SKIP
    >>> run.start(epoch=0, step=0)  # doctest: +SKIP
    >>> run.log("epoch", epoch=1, loss=0.5)  # doctest: +SKIP
    >>> run.save_checkpoint(epoch=1, step=10, state={"model": model.state_dict()})  # doctest: +SKIP
    >>> run.finish({"epochs": 1})  # doctest: +SKIP
"""

from __future__ import annotations

import io
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from cityscapes_tools.io import atomic_write_bytes

from . import __version__
from ._runtime import DistInfo, barrier
from .errors import InputError
from .labelspace import LabelSpace
from .outputs import (
    SUCCESS,
    atomic_write_json,
    atomic_write_text,
    check_output,
    is_finished,
    mark_finished,
    prepare_output,
)
from .progress import Progress

__all__ = [
    "RUNTIME_FIELDS",
    "RunSpec",
    "RunDir",
    "LOG",
    "RUN_JSON",
    "write_checkpoint",
    "read_checkpoint",
    "check_resume",
    "truncate_log",
]

LOG = "log.jsonl"
RUN_JSON = "run.json"

# Config fields that never change what a run computes (on the CPU, bit for bit): a resume may change them.
RUNTIME_FIELDS = frozenset({"out", "device", "workers", "amp_dtype", "log_every"})

_HEADER = (
    "format",
    "command",
    "label_space",
    "label_space_fingerprint",
    "sampler",
    "epoch",
    "step",
    "labelforge_version",
    "torch_version",
)


@dataclass(frozen=True)
class RunSpec:
    """What a trainer tells the harness about its run; saved in ``run.json`` and every checkpoint."""

    command: str  # "train-eval" | "train-generator"
    checkpoint: str  # file name inside the run dir
    format: str  # the checkpoint's format tag; another tag is refused on resume
    config: dict[str, dict[str, Any]]  # named, JSON-ready config sections
    label_space: LabelSpace
    sampler: dict[str, Any]  # what fixes the data order: seed, sample counts
    may_change: frozenset[str] = RUNTIME_FIELDS  # config fields a resume may change

    def __post_init__(self) -> None:
        clash = set(self.config) & set(_HEADER)
        if clash:
            raise ValueError(f"config section names clash with checkpoint header keys: {sorted(clash)}")

    def header(self, epoch: int, step: int) -> dict[str, Any]:
        """The harness's part of a checkpoint after ``epoch`` finished epochs and ``step`` steps."""
        return {
            "format": self.format,
            "command": self.command,
            **self.config,
            "label_space": self.label_space.to_dict(),
            "label_space_fingerprint": self.label_space.fingerprint,
            "sampler": dict(self.sampler),
            "epoch": epoch,
            "step": step,
            "labelforge_version": __version__,
            "torch_version": str(torch.__version__),
        }


def write_checkpoint(path: str | Path, checkpoint: dict[str, Any]) -> Path:
    """``torch.save`` to a temporary file beside ``path``, then rename: a reader never sees half a file."""
    buf = io.BytesIO()
    torch.save(checkpoint, buf)
    path = Path(path)
    atomic_write_bytes(path, buf.getvalue())
    return path


def read_checkpoint(path: str | Path, fmt: str | tuple[str, ...], *, what: str = "checkpoint") -> dict[str, Any]:
    """Load a checkpoint of format ``fmt`` (or of one of several; tensors on the CPU); a missing, broken
    or foreign file is an InputError."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, f"{what} not found")
    try:
        # weights_only: a checkpoint holds tensors, numbers, strings and containers, never code to run.
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated or foreign file: torch raises many types
        raise InputError(path, f"cannot read {what} ({type(exc).__name__})") from None
    found = ck.get("format", ck.get("schema")) if isinstance(ck, dict) else None
    formats = (fmt,) if isinstance(fmt, str) else fmt
    if found not in formats:
        want = " or ".join(repr(f) for f in formats)
        raise InputError(path, f"not a labelforge {what} of format {want} (found {found!r})")
    return ck


def check_resume(ck: dict[str, Any], path: str | Path, spec: RunSpec) -> None:
    """Raise an InputError naming ``path`` and the first difference between the checkpoint's run and ``spec``."""
    for section, now in spec.config.items():
        saved = ck.get(section)
        if not isinstance(saved, dict):
            raise InputError(path, f"checkpoint lacks its {section!r}; rerun with --overwrite")
        for name, value in now.items():
            if name not in spec.may_change and saved.get(name) != value:
                free = sorted({f for f in spec.may_change if any(f in sec for sec in spec.config.values())})
                raise InputError(
                    path,
                    f"the run was started with {name}={saved.get(name)!r}, not {value!r}; resume with the same"
                    f" settings (only {', '.join(free)} may change) or pass --overwrite",
                )
    if ck.get("label_space_fingerprint") != spec.label_space.fingerprint:
        what = _label_space_difference(ck.get("label_space") or {}, spec.label_space.to_dict())
        raise InputError(
            path,
            f"label space {spec.label_space.name!r} is not the one the run was started with ({what});"
            " resume with the same label space or pass --overwrite",
        )
    saved_sampler = ck.get("sampler") or {}
    for name, value in spec.sampler.items():
        if saved_sampler.get(name) != value:
            raise InputError(
                path,
                f"the data changed since the run began (the checkpoint's sampler has {name}="
                f"{saved_sampler.get(name)!r}, this run's {value!r}); resume with the same data or pass --overwrite",
            )


def _label_space_difference(saved: Any, now: Any, where: str = "") -> str:
    """The first difference of two ``LabelSpace.to_dict()`` values (or of their parts), as
    ``"class 'car' color: [0, 0, 142] there, [1, 2, 3] now"``; classes are matched by name."""
    if isinstance(saved, dict) and isinstance(now, dict):
        for key in [*saved, *(k for k in now if k not in saved)]:
            if saved.get(key) != now.get(key):
                return _label_space_difference(saved.get(key), now.get(key), f"{where} {key}".strip())
    if isinstance(saved, list) and isinstance(now, list) and all(isinstance(x, dict) for x in saved + now):
        by_name_saved = {x.get("name"): x for x in saved}
        by_name_now = {x.get("name"): x for x in now}
        for name in [*by_name_saved, *(n for n in by_name_now if n not in by_name_saved)]:
            a, b = by_name_saved.get(name), by_name_now.get(name)
            if a is None or b is None:
                return f"class {name!r} {'added' if a is None else 'removed'}"
            if a != b:
                return _label_space_difference(a, b, f"class {name!r}")
        if saved != now:
            return "classes reordered"
    return f"{where}: {saved!r} there, {now!r} now"


def truncate_log(path: str | Path, epochs_done: int) -> None:
    """Keep the log lines of the first ``epochs_done`` epochs (lines without an epoch count as epoch 0).

    With nothing finished (``epochs_done == 0``) the run starts over and so does its log.
    """
    path = Path(path)
    if not path.exists():
        return
    keep: list[str] = []
    if epochs_done > 0:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip() and json.loads(line).get("epoch", 0) <= epochs_done:
                keep.append(line + "\n")
    atomic_write_text(path, "".join(keep))


@dataclass
class RunDir:
    """One process's view of a run dir: it reads what every process needs and writes on rank 0 only."""

    path: Path
    spec: RunSpec
    info: DistInfo
    device: torch.device
    progress: Progress  # the caller's sink on rank 0, a silent one elsewhere
    checkpoint: dict[str, Any] | None = None  # the checked checkpoint a resume continues from
    finished: bool = False  # the run dir was finished before this call

    @classmethod
    def open(
        cls,
        out: str | Path,
        spec: RunSpec,
        *,
        info: DistInfo,
        device: torch.device,
        overwrite: bool = False,
        resume: bool = False,
        progress: Progress | None = None,
    ) -> RunDir:
        """Prepare ``out`` (rank 0) and, when resuming, load and check its checkpoint (every rank).

        Raises OutputExistsError when ``out`` holds work and neither ``resume`` nor ``overwrite`` is
        set, and InputError when the checkpoint does not belong to this run (see the resume rules).
        """
        out = Path(out)
        check_output(out, overwrite=overwrite, resume=resume)  # every rank: read-only, so all raise alike
        if info.is_main:
            prepare_output(out, overwrite=overwrite, resume=resume)
        barrier()
        run = cls(out, spec, info, device, (progress or Progress()) if info.is_main else Progress())
        run.finished = resume and is_finished(out)
        ck_path = out / spec.checkpoint
        if resume and ck_path.exists():
            try:
                run.checkpoint = read_checkpoint(ck_path, spec.format)
            except InputError as exc:
                raise InputError(ck_path, f"{exc.problem}; rerun with --overwrite to start again") from None
            check_resume(run.checkpoint, ck_path, spec)
        return run

    @property
    def is_main(self) -> bool:
        return self.info.is_main

    @property
    def epoch(self) -> int:
        """Epochs finished before this call (0 for a fresh run)."""
        return int(self.checkpoint["epoch"]) if self.checkpoint else 0

    @property
    def step(self) -> int:
        """Optimizer steps taken before this call."""
        return int(self.checkpoint["step"]) if self.checkpoint else 0

    def start(self, *, run_info: dict[str, Any] | None = None, **event: Any) -> None:
        """Begin (or continue) writing: clear ``_SUCCESS``, drop the interrupted epoch's log lines, write
        ``run.json`` (with ``run_info`` added) and log a ``start`` (or ``resume``) event with ``event``."""
        if self.is_main:
            (self.path / SUCCESS).unlink(missing_ok=True)  # a finished run asked for more epochs
            truncate_log(self.path / LOG, self.epoch)
            atomic_write_json(self.path / RUN_JSON, self._run_json(run_info or {}))
        if self.checkpoint is None:
            self.log("start", **event)
        else:
            self.progress.log(f"resuming {self.path} after epoch {self.epoch}")
            self.log("resume", epoch=self.epoch, step=self.step, **event)
        barrier()

    def _run_json(self, run_info: dict[str, Any]) -> dict[str, Any]:
        spec = self.spec
        return {
            "command": spec.command,
            **spec.config,
            "label_space": spec.label_space.name,
            "label_space_fingerprint": spec.label_space.fingerprint,
            "sampler": spec.sampler,
            "world_size": self.info.world,
            "device": str(self.device),
            "resumed_at_epoch": self.epoch,
            **run_info,
            "labelforge_version": __version__,
            "torch_version": str(torch.__version__),
        }

    def log(self, event: str, **fields: Any) -> None:
        """Append one JSON line to ``log.jsonl`` (rank 0; the others return at once)."""
        if self.is_main:
            with (self.path / LOG).open("a", encoding="utf-8") as fh:
                fh.write(json.dumps({"time": round(time.time(), 3), "event": event, **fields}) + "\n")

    def save_checkpoint(self, *, epoch: int, step: int, state: dict[str, Any]) -> Path:
        """Rank 0 writes header + ``state`` atomically; every rank returns once it is on disk."""
        path = self.path / self.spec.checkpoint
        if self.is_main:
            clash = set(state) & (set(_HEADER) | set(self.spec.config))
            if clash:
                raise ValueError(f"trainer state entries clash with the checkpoint header: {sorted(clash)}")
            write_checkpoint(path, {**self.spec.header(epoch, step), **state})
        barrier()
        return path

    def finish(self, info: dict[str, Any]) -> None:
        """Write ``_SUCCESS`` (rank 0) once everything else is on disk, then wait for every rank."""
        barrier()
        if self.is_main:
            mark_finished(self.path, {**info, "labelforge_version": __version__})
        barrier()
