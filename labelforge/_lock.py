"""One writer per output folder: a ``.lock`` file inside it, held with ``fcntl.flock`` while a command writes.

The file names its holder (pid, host, command, start time) so a refused run can say who is writing.
The kernel drops a flock when its process dies, so a lock left by a killed run on this host is free
to take over at once; its file still names the dead pid, which the new holder overwrites. A holder on
another host is treated as live (its pid cannot be checked from here, and network file systems do
not always carry flocks across hosts): the message says to delete the file if that run is gone.
The lock is re-entrant within a process (an experiment calls commands in process), released when the
``with`` block ends, and its file removed then, so finished outputs hold no ``.lock``.

Example:
    >>> from labelforge._lock import output_lock  # doctest: +SKIP
    >>> with output_lock("out/compose-wall", "compose"):  # doctest: +SKIP
    ...     ...  # prepare_output, write, mark_finished
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .errors import InputError

__all__ = ["LOCK", "Holder", "output_lock", "check_unlocked", "read_holder"]

LOCK = ".lock"


@dataclass(frozen=True)
class Holder:
    """Who holds (or held) an output folder's lock, as its ``.lock`` file says."""

    pid: int
    host: str
    command: str
    since: float

    @classmethod
    def me(cls, command: str) -> Holder:
        return cls(os.getpid(), socket.gethostname(), command, round(time.time(), 3))

    def describe(self) -> str:
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.since))
        return f"pid {self.pid} on {self.host} ({self.command}, started {started})"


# Locks this process holds: (pid, resolved folder) -> [fd, depth, created dirs to remove if left empty].
# The pid keeps a forked worker from taking its parent's entry for its own.
_HELD: dict[tuple[int, Path], list] = {}


def read_holder(out: str | Path) -> Holder | None:
    """The holder named in ``out/.lock``, or None (no file, empty or unreadable)."""
    try:
        d = json.loads((Path(out) / LOCK).read_text(encoding="utf-8"))
        return Holder(int(d["pid"]), str(d["host"]), str(d["command"]), float(d["since"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    return True


def _live_holder(fd: int, out: Path, *, shared: bool) -> Holder | None:
    """The live holder of the lock file open at ``fd``, or None when it is free (flocked by us now)."""
    try:
        fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        flocked = True
    except BlockingIOError:
        return _named_holder(out)
    except OSError:  # no flock on this file system: the file's word is all there is
        flocked = False
    holder = read_holder(out)
    if holder is None or holder.pid == os.getpid() and holder.host == socket.gethostname():
        return None
    if holder.host != socket.gethostname():
        return holder
    return None if flocked else (holder if _pid_alive(holder.pid) else None)


def _named_holder(out: Path) -> Holder:
    """The holder of a flock someone holds; it writes its name just after taking the lock, so wait a moment."""
    for _ in range(50):
        holder = read_holder(out)
        if holder is not None:
            return holder
        time.sleep(0.01)
    return Holder(0, socket.gethostname(), "a run that wrote no name", time.time())


def _refusal(out: Path, holder: Holder) -> InputError:
    hint = "wait for it to finish"
    if holder.host != socket.gethostname():
        hint += f", or delete {out / LOCK} if that run is gone"
    return InputError(out, f"output is locked by {holder.describe()}; {hint}")


def _rank_zero() -> bool:
    """Not a torchrun process of rank > 0: rank 0 takes and checks the lock for every process."""
    return os.environ.get("RANK", "0") == "0"


def check_unlocked(out: str | Path) -> None:
    """Raise an InputError naming the holder when another live run holds ``out``'s lock (touches nothing)."""
    out = Path(out)
    path = out / LOCK
    if not _rank_zero() or not path.is_file() or (os.getpid(), out.resolve()) in _HELD:
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        holder = _live_holder(fd, out, shared=True)
    finally:
        os.close(fd)  # a flock belongs to its open file: closing this one leaves others' locks alone
    if holder is not None:
        raise _refusal(out, holder)


def check_writable(out: str | Path) -> None:
    """Raise InputError when ``out`` (or the folder it would be made in) may not be written: refused before
    the work, not after it."""
    where = Path(out).absolute()
    while not where.exists() and where != where.parent:
        where = where.parent
    if not os.access(where, os.W_OK | os.X_OK):
        raise InputError(where, "permission denied: cannot write the output here")


def _make_dirs(out: Path) -> list[Path]:
    """mkdir -p ``out``; the folders it created, deepest first (removed again if left empty)."""
    check_writable(out)  # before mkdir: root may create folders where the user asked for none to be
    created = []
    p = out
    while not p.exists():
        created.append(p)
        p = p.parent
    out.mkdir(parents=True, exist_ok=True)
    return created


def _acquire(out: Path, command: str) -> int:
    path = out / LOCK
    for _ in range(5):
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        holder = _live_holder(fd, out, shared=False)
        if holder is not None:
            os.close(fd)
            raise _refusal(out, holder)
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:  # else the holder removed the file between our open and flock: open the new one
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(Holder.me(command).__dict__).encode(), 0)
            return fd
        os.close(fd)
    raise InputError(out, "could not take the output lock (its file keeps changing); try again")


@contextmanager
def output_lock(out: str | Path, command: str, *, enabled: bool | None = None) -> Iterator[Path]:
    """Hold ``out``'s lock for the block (creating ``out``, and removing it again if it stays empty).

    Raises an InputError naming the holder's pid when another live run writes into ``out``.
    ``enabled`` defaults to "not a torchrun rank > 0": rank 0 writes for every process, and holds the lock.
    """
    out = Path(out)
    if enabled is None:
        enabled = _rank_zero()
    if not enabled:
        yield out
        return
    created = _make_dirs(out)
    key = (os.getpid(), out.resolve())
    if key in _HELD:
        _HELD[key][1] += 1
    else:
        try:
            _HELD[key] = [_acquire(out, command), 1, created]
        except BaseException:
            _remove_empty(created)
            raise
    try:
        yield out
    finally:
        _release(key)


def _release(key: tuple[int, Path]) -> None:
    held = _HELD[key]
    held[1] -= 1
    if held[1] > 0:
        return
    del _HELD[key]
    # Unlink before unlocking: a run that opened this file meanwhile sees its inode is gone and retries.
    (key[1] / LOCK).unlink(missing_ok=True)
    os.close(held[0])
    _remove_empty(held[2])


def _remove_empty(dirs: list[Path]) -> None:
    """Remove folders this lock created that stayed empty (input refused before anything was written)."""
    for d in dirs:
        try:
            d.rmdir()
        except OSError:
            return
