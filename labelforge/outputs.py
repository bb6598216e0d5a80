"""Output folders that appear atomically or resume cleanly.

Every command that writes follows one rule set (see docs/design.md, "Outputs"):

* a finished output folder holds a ``_SUCCESS`` marker (written last, atomically);
* an existing finished output is refused unless ``overwrite`` is set;
* an existing unfinished output is refused unless ``resume`` (continue) or ``overwrite`` is set;
* single files are written to a temporary name in the same folder, fsynced and renamed;
* a run that writes holds the folder's ``.lock`` (:mod:`labelforge._lock`); the lock file is no
  output: a folder holding only it is empty, and ``overwrite`` keeps it.

Example:
    >>> from labelforge.outputs import prepare_output, mark_finished  # doctest: +SKIP
    >>> out = prepare_output("runs/a", overwrite=False, resume=False)  # doctest: +SKIP
    >>> mark_finished(out)  # doctest: +SKIP
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from cityscapes_tools.io import atomic_write_bytes

from ._lock import LOCK, check_unlocked, check_writable
from .errors import OutputExistsError

__all__ = [
    "SUCCESS",
    "check_output",
    "check_writable",
    "prepare_output",
    "mark_finished",
    "is_finished",
    "atomic_write_json",
    "atomic_write_text",
]

SUCCESS = "_SUCCESS"


def is_finished(out: str | Path) -> bool:
    return (Path(out) / SUCCESS).exists()


def _holds_files(out: Path) -> bool:
    return out.is_dir() and any(p.name != LOCK for p in out.iterdir())


def check_output(out: str | Path, *, overwrite: bool = False, resume: bool = False, resumable: bool = True) -> None:
    """Raise :class:`OutputExistsError` when ``out`` holds work the caller did not say what to do with.

    Touches nothing, so commands call it before any costly work. ``resumable=False`` is for one-shot
    commands (evaluate, report, stats) that have no ``--resume`` to suggest. Another live run holding
    the folder's lock is refused first, whatever the flags (an InputError naming its pid).
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise OutputExistsError(out, "output path exists and is not a directory")
    check_unlocked(out)
    check_writable(out)
    if overwrite or resume or not _holds_files(out):
        return
    if is_finished(out):
        raise OutputExistsError(out, "output already finished; pass --overwrite to replace it")
    if resumable:
        raise OutputExistsError(out, "output holds unfinished work; pass --resume to continue or --overwrite")
    raise OutputExistsError(out, "output folder is not empty; pass --overwrite to replace it")


def prepare_output(out: str | Path, *, overwrite: bool = False, resume: bool = False) -> Path:
    """Make ``out`` ready to write into and return it.

    Raises :class:`OutputExistsError` when ``out`` already holds work and the caller did not say
    what to do with it (see :func:`check_output`). ``resume`` on a finished output is allowed (there
    is nothing left to do).
    """
    out = Path(out)
    check_output(out, overwrite=overwrite, resume=resume)
    if overwrite and _holds_files(out):
        for p in out.iterdir():  # all but the lock: removing it would let a second run in
            if p.name == LOCK:
                continue
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink()
    out.mkdir(parents=True, exist_ok=True)
    return out


def mark_finished(out: str | Path, info: dict[str, Any] | None = None) -> None:
    atomic_write_json(Path(out) / SUCCESS, info or {})


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")
